/** stub @module */
import type { Category } from "./lib.ts";
/** stub */
export const corruptInputs: Category = { name: "corrupt", weight: 1, run: () => Promise.resolve({ name: "corrupt", cases: [], notes: [] }) };
