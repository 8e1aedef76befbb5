/** stub @module */
import type { Category } from "./lib.ts";
/** stub */
export const badInput: Category = { name: "bad_input", weight: 1, run: () => Promise.resolve({ name: "bad_input", cases: [], notes: [] }) };
