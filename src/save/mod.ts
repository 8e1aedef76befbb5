/**
 * Saving a teacher's top-k: {@linkcode runSaveTopK} (what `deno task save-topk` runs) and the
 * {@linkcode saveTopK} it drives.
 *
 * @example Save two demo sequences on the CPU into a temporary folder, then read them back
 * ```ts
 * import { runSaveTopK } from "./mod.ts";
 * import { readShards } from "../format/mod.ts";
 *
 * const out = await Deno.makeTempDir();
 * const summary = await runSaveTopK({
 *   teacher: "builtin:demo",
 *   data: "builtin:demo",
 *   out,
 *   k: 4,
 *   maxSequences: 2,
 *   cpu: true,
 *   print: false,
 * });
 * let records = 0;
 * for await (const r of readShards(out)) if (r.idx.length === r.val.length) records++;
 * if (summary.shardsWritten !== 1 || records !== 2) throw new Error("one shard of two records");
 * await Deno.remove(out, { recursive: true });
 * ```
 * @module
 */
export { saveTopK } from "./save_topk.ts";
export type { SaveProgress, SaveSummary, SaveTopKOptions } from "./save_topk.ts";
export { DEMO_DEFAULT_SEQUENCES, runSaveTopK } from "./run_save_topk.ts";
export type { RunSaveTopKOptions } from "./run_save_topk.ts";
