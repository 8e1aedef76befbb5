/**
 * Command-line plumbing: {@linkcode runMain} (one-line errors, option → flag names), the `train` flags and
 * progress lines.
 *
 * @example Parse `train` flags into options
 * ```ts
 * import { parseTrainFlags } from "./mod.ts";
 *
 * const o = parseTrainFlags(["--shards", "runs/demo", "--steps", "3"]);
 * if (o?.steps !== 3) throw new Error("--steps 3");
 * ```
 * @module
 */
export { runMain } from "./run_main.ts";
export { parseTrainFlags, TRAIN_FLAGS, TRAIN_HELP, trainCommand } from "./train_flags.ts";
export { createProgress } from "./progress.ts";
export type { Progress, ProgressOptions } from "./progress.ts";
