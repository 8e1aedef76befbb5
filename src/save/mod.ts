/**
 * Saving a teacher's top-k: {@linkcode runSaveTopK} (what `deno task save-topk` runs) and the
 * {@linkcode saveTopK} it drives.
 *
 * @example Save two demo sequences on the CPU into a temporary folder
 * ```ts
 * import { runSaveTopK } from "./mod.ts";
 *
 * const out = await Deno.makeTempDir();
 * const summary = await runSaveTopK({
 *   teacher: "builtin:demo",
 *   data: "builtin:demo",
 *   out,
 *   k: 4,
 *   seqLen: 16,
 *   maxSequences: 2,
 *   cpu: true,
 *   print: false,
 * });
 * console.log(summary);
 * await Deno.remove(out, { recursive: true });
 * ```
 * @module
 */
export { saveTopK } from "./save_topk.ts";
export type { SaveProgress, SaveSummary, SaveTopKOptions } from "./save_topk.ts";
export { DEMO_DEFAULT_SEQUENCES, runSaveTopK } from "./run_save_topk.ts";
export type { RunSaveTopKOptions } from "./run_save_topk.ts";
