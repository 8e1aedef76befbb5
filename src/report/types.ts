/**
 * The input of the demo report: everything `deno task report` draws, as written by the pipeline to
 * `<run folder>/report_input.json`.
 *
 * Units: cross-entropies and KL divergences are in nats per token; perplexity is `exp(ce)`; top-1 agreement
 * and ECE are fractions in [0, 1]; byte counts are bytes; rates are per second of wall-clock time.
 * @module
 */

/** The teacher whose top-k logits were saved. */
export interface ReportTeacher {
  /** One line saying what the teacher is (for example "builtin GPT, 4 layers, d=256, trained 2000 steps"). */
  description: string;
  /** Number of parameters, when known. */
  params?: number;
  /** The teacher's own perplexity on the held-out split, when measured (the floor the students aim at). */
  heldoutPpl?: number;
}

/** Statistics of one `save-topk` run: the shards and how fast they were written. */
export interface ReportSave {
  /** Token positions saved. */
  tokens: number;
  /** Total bytes of the shards as stored. */
  bytes: number;
  /** `bytes / tokens`: what one token position costs in the shards (headers included). */
  bytesPerToken: number;
  /** What one token position would cost as full-vocabulary float32 logits: `4 * vocabSize`. */
  fullLogitsBytesPerToken: number;
  /** Entries kept per token position. */
  k: number;
  /** Vocabulary size of the teacher. */
  vocabSize: number;
  /** Stored type of the top-k values (for example "f16" or "f32"). */
  valueDtype: string;
  /** Stored type of the top-k indices (for example "u16" or "u32"). */
  indexDtype: string;
  /** Save throughput: token positions per second over the whole run. */
  tokensPerSecond: number;
  /** Wall-clock seconds of the whole save. */
  wallSeconds: number;
  /** Of `wallSeconds`, the seconds spent waiting on the GPU (teacher forward, top-k, read-back). */
  gpuWaitSeconds: number;
}

/** One logged training step of a student. */
export interface TrainPoint {
  /** Optimizer step (1-based or 0-based, as the trainer counts). */
  step: number;
  /** Training loss at that step (nats per token, the objective the student optimizes). */
  loss: number;
}

/** One held-out evaluation of a student during training. */
export interface EvalPoint {
  /** Optimizer step at which the evaluation ran. */
  step: number;
  /** Held-out cross-entropy against the true next tokens (nats per token). */
  ce: number;
  /** Held-out perplexity, `exp(ce)`. */
  ppl: number;
  /** KL(teacher ‖ student) on the held-out split (nats per token), when measured. */
  kl?: number;
  /** Fraction of held-out positions where the student's argmax equals the teacher's. */
  top1?: number;
}

/**
 * One confidence bin of a reliability diagram: `CalibrationAccumulator.binStats()` writes these (its extra
 * `lo`/`hi` fields are allowed and ignored).
 */
export interface ReliabilityBin {
  /** Mean confidence of the top-1 predictions in the bin (NaN, written as null, when the bin is empty). */
  confidence: number;
  /** Fraction of those predictions that were right (NaN, written as null, when the bin is empty). */
  accuracy: number;
  /** Predictions in the bin. */
  count: number;
}

/** The final held-out metrics of a student. */
export interface FinalMetrics {
  /** Held-out perplexity. */
  ppl: number;
  /** Held-out cross-entropy (nats per token). */
  ce: number;
  /** KL(teacher ‖ student) on the held-out split (nats per token). */
  kl: number;
  /** Top-1 agreement with the teacher, in [0, 1]. */
  top1: number;
  /** Expected calibration error of the student's top-1 prediction against the true next token, in [0, 1]. */
  ece: number;
  /** The bins behind `ece`, for the reliability diagram (optional). */
  reliability?: ReliabilityBin[];
}

/** One trained student. */
export interface ReportStudent {
  /** Short unique name shown in legends and table headings (for example "kd-top64"). */
  name: string;
  /** One line saying how it was trained (for example "sparse KD, k=64, T=1, α=0.5"). */
  description: string;
  /** Number of parameters. */
  params: number;
  /** Optimizer steps taken. */
  steps: number;
  /** Training loss curve. */
  train: TrainPoint[];
  /** Held-out evaluations during training. */
  eval: EvalPoint[];
  /** Final held-out metrics. */
  final: FinalMetrics;
  /** Training throughput in optimizer steps per second. */
  stepsPerSecond: number;
  /** Training throughput in token positions per second. */
  tokensPerSecond: number;
}

/**
 * Everything the report shows. Written by the demo as `<run folder>/report_input.json`.
 *
 * @example
 * ```ts
 * const input: ReportInput = {
 *   title: "sparsekd demo",
 *   createdAt: new Date().toISOString(),
 *   teacher: { description: "builtin GPT", params: 1_200_000, heldoutPpl: 31.2 },
 *   save: {
 *     tokens: 100_000, bytes: 26_100_000, bytesPerToken: 261, fullLogitsBytesPerToken: 4 * 8192, k: 64,
 *     vocabSize: 8192, valueDtype: "f16", indexDtype: "u16", tokensPerSecond: 5000, wallSeconds: 20,
 *     gpuWaitSeconds: 12,
 *   },
 *   students: [],
 * };
 * ```
 */
export interface ReportInput {
  /** Heading of the report. */
  title: string;
  /** When the run was made, as an ISO 8601 string. */
  createdAt: string;
  /** The teacher. */
  teacher: ReportTeacher;
  /** The save-topk run. */
  save: ReportSave;
  /** The students, in the order they are shown (legend colours follow this order). */
  students: ReportStudent[];
  /** Free-form remarks shown at the end (one paragraph each). */
  notes?: string[];
  /**
   * The study's methods as points of the "gap closed against stored bytes per position" chart (one series
   * per teacher); absent outside the study.
   */
  gapPoints?: GapPoint[];
}

/** One method of the study in the gap chart: its teacher, label, stored bytes and gap closed ± its SE. */
export interface GapPoint {
  /** The series (the teacher, e.g. `builtin:demo (flat)`). */
  teacher: string;
  /** The method, e.g. `tail K=64` or `sampled N=16`. */
  label: string;
  /** Stored bytes per token position (> 0). */
  bytesPerPosition: number;
  /** Share of the CE-only → online-KD perplexity gap closed (mean over seeds). */
  gapClosed: number;
  /** Its standard error (NaN: one seed). */
  gapClosedSe: number;
}
