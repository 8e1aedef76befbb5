/** stub @module */
import type { Category } from "./lib.ts";
/** stub */
export const hostileMsgpack: Category = { name: "hostile_msgpack", weight: 1, run: () => Promise.resolve({ name: "hostile_msgpack", cases: [], notes: [] }) };
