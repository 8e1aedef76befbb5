/**
 * Training a student: {@linkcode train} (what `deno task train` runs) and its parts — the KD loss op,
 * AdamW, the learning-rate schedule, batches, evaluation and the loop.
 *
 * @example The learning-rate schedule: linear warm-up, then decay to `minLr`
 * ```ts
 * import { learningRate } from "./mod.ts";
 *
 * const s = { lr: 1e-3, warmup: 10, steps: 100, minLr: 1e-4 };
 * if (!(learningRate(s, 0) < learningRate(s, 9))) throw new Error("warm-up rises");
 * if (!(learningRate(s, 99) < learningRate(s, 50))) throw new Error("then it decays");
 * ```
 * @module
 */
export type { AdamWOptions } from "./adamw.ts";
export { learningRate } from "./schedule.ts";
export type { LrSchedule } from "./schedule.ts";
export { nextTokenTargets } from "./ce_loss.ts";
export { prefetchBatches, shuffledRecords, tokenRecords, windowPermutation } from "./batches.ts";
export type { RecordSource } from "./batches.ts";
export { evaluate } from "./evaluate.ts";
export type { EvalResult } from "./evaluate.ts";
export type { TrainLoopResult } from "./trainer.ts";
export type { TrainMode, TrainRecord } from "./records.ts";
export { DEFAULT_STUDENT, train, validateTrainOptions } from "./train.ts";
export type { TrainOptions, TrainResult } from "./train.ts";
