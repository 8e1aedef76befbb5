/** stub @module */
import type { Category } from "./lib.ts";
/** stub */
export const gcsFaults: Category = { name: "gcs_faults", weight: 1, run: () => Promise.resolve({ name: "gcs_faults", cases: [], notes: [] }) };
