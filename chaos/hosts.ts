/** stub @module */
import type { Category } from "./lib.ts";
/** stub */
export const severalHosts: Category = { name: "hosts", weight: 1, run: () => Promise.resolve({ name: "hosts", cases: [], notes: [] }) };
