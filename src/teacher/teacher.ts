/**
 * The teacher interface: token ids in, and either the full logits out (a *dense* teacher, on the GPU where it
 * runs there) or, per position, only its top-k ids and logits plus the full-vocabulary logsumexp (a *sparse*
 * teacher, e.g. one served behind an API that returns top-k log-probabilities).
 * @module
 */
import type * as tf from "../deps/tfjs_core.ts";
import type { Runtime } from "../gpu/runtime.ts";
import type { OpenStoreOptions } from "../store/open_store.ts";

/** Logits of a batch: rows = count*seqLen, each of `vocabSize` float32, either on the GPU or in memory. */
export type TeacherLogits =
  | { kind: "gpu"; buffer: GPUBuffer; release(): void }
  | { kind: "cpu"; array: Float32Array };

/** A teacher model that returns its full logits: what save-topk and online distillation run. */
export interface Teacher {
  /**
   * `"dense"`: this teacher returns full logits. Optional so that existing implementations stay valid; absent
   * means dense. Tell a teacher's kind with `teacher.kind === "sparse"` on an {@linkcode AnyTeacher}.
   */
  readonly kind?: "dense";
  /** Vocabulary size V of its logits. */
  readonly vocabSize: number;
  /** A hash of the weights (hex), stored in run.json. */
  readonly fingerprint: string;
  /** A short description for run.json's `teacher` entry, e.g. `builtin:demo`. */
  readonly description: string;
  /** Its fixed sequence length, when it has one (npy logits, a model with fixed positions). */
  readonly seqLen?: number;
  /**
   * Computes logits for `count` sequences of `seqLen` tokens that start at global sequence index `start`
   * (the npy teacher uses the index; models use the tokens).
   */
  forward(tokens: Uint32Array, start: number, count: number, seqLen: number): Promise<TeacherLogits>;
  /**
   * The same logits as a float32 tfjs tensor `[count·seqLen, V]` that the caller disposes. Only teachers that
   * run on tfjs have it (`builtin:demo`, `tfjs:`); online distillation (`train --online-teacher`) needs it.
   * @ignore
   */
  forwardTensor?(tokens: Uint32Array, start: number, count: number, seqLen: number): Promise<tf.Tensor2D>;
  /** Frees what the teacher holds. */
  dispose(): void;
}

/**
 * What a sparse teacher returns for a batch of `rows = count·seqLen` positions, row-major, in the same terms as
 * a shard record of format v1 (docs/format.md), so that it can be stored without a top-k pass:
 *
 * - `ids[r·k + i]`: the i-th of the k token ids with the largest logits at position r, in decreasing order of
 *   logit (ties in increasing id order);
 * - `values[r·k + i]`: the teacher's raw logit (temperature 1) of `ids[r·k + i]`;
 * - `logsumexp[r·M + m]`: `log Σ_{v<V} exp(z_v / T_m)` over the *full* vocabulary at the teacher's
 *   `lseTemperatures[m]`, so that `exp(values[r·k+i] / T_m − logsumexp[r·M+m])` is the teacher's probability.
 *
 * A service that returns log-probabilities `log p_v` at temperature 1 gives `values = log p_v` and
 * `logsumexp = 0` for T = 1 (the logits are then defined up to that normalization).
 */
export interface SparseTargets {
  /** Top-k token ids, `[rows, k]`. */
  ids: Uint32Array;
  /** Their raw logits, `[rows, k]`. */
  values: Float32Array;
  /** Full-vocabulary logsumexp per temperature, `[rows, lseTemperatures.length]`. */
  logsumexp: Float32Array;
}

/**
 * A teacher that returns sparse targets (top-k ids, their logits and the logsumexp) instead of full logits:
 * for teachers served elsewhere that never hand out a whole vocabulary row (`openai:<base URL>`). save-topk
 * stores its targets as they come, without the top-k kernel; `openTeacher` refuses it where dense logits are
 * needed (online distillation).
 */
export interface SparseTeacher {
  /** `"sparse"`: this teacher returns {@linkcode SparseTargets}. */
  readonly kind: "sparse";
  /** Vocabulary size V the ids index. */
  readonly vocabSize: number;
  /** A hash or version that identifies the teacher (hex or any stable string), stored in run.json. */
  readonly fingerprint: string;
  /** A short description for run.json's `teacher` entry. */
  readonly description: string;
  /** Its fixed sequence length, when it has one. */
  readonly seqLen?: number;
  /** Entries per position it returns (the k of {@linkcode SparseTargets}). */
  readonly k: number;
  /** The temperatures (> 0) of its logsumexp values, in order. */
  readonly lseTemperatures: readonly number[];
  /**
   * Requests it runs at once, when it calls a server: save-topk's default batch size is at least this, so
   * that a batch keeps them all busy.
   */
  readonly concurrency?: number;
  /** Computes the sparse targets of `count` sequences of `seqLen` tokens that start at sequence `start`. */
  forwardSparse(tokens: Uint32Array, start: number, count: number, seqLen: number): Promise<SparseTargets>;
  /** Frees what the teacher holds. */
  dispose(): void;
}

/** Any teacher: dense ({@linkcode Teacher}) or sparse ({@linkcode SparseTeacher}); tell them by `kind`. */
export type AnyTeacher = Teacher | SparseTeacher;

/** What an opener gets besides the spec's argument and the runtime. */
export interface TeacherOpenOptions {
  /** Endpoints of remote stores that model files are read from (as in `openStore`), e.g. `{ gs: url }`. */
  endpoint?: OpenStoreOptions["endpoint"];
  /**
   * Top-k entries per position the command stores: a sparse teacher returns exactly this many (save-topk
   * passes its `k`).
   */
  k?: number;
  /** Temperatures of the logsumexps the command stores (save-topk passes its `lseTemperatures`). */
  lseTemperatures?: readonly number[];
  /**
   * True when the command needs full logits (online distillation): a teacher that can only return sparse
   * targets refuses in one line before it contacts anything.
   */
  dense?: boolean;
  /** Settings of teachers served over HTTP (`openai:`): model name, API key variable, concurrency, …. */
  remote?: RemoteTeacherOptions;
}

/** Settings of a teacher served over HTTP (`openai:<base URL>`); every field has a default. */
export interface RemoteTeacherOptions {
  /** The served model's name (default: the only model `GET /v1/models` lists). */
  model?: string;
  /** Environment variable holding the API key sent as `Authorization: Bearer …` (default OPENAI_API_KEY). */
  apiKeyEnv?: string;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** The teacher's vocabulary size V (default: what `GET /v1/models` reports as `vocab_size`). */
  vocabSize?: number;
  /** Time limit of one request, in milliseconds, body included (default 300000). */
  timeoutMs?: number;
  /** Tries of one request before the run fails (default 8). */
  tries?: number;
  /** First backoff between tries, in milliseconds; it doubles up to 30 s, with jitter (default 500). */
  backoffMs?: number;
}

/**
 * Opens a teacher from what follows `prefix:` in its spec (`""` when there is nothing). A bad argument is a
 * one-line `SparsekdError` about the option `teacher`.
 */
export type TeacherOpener = (arg: string, rt: Runtime, options: TeacherOpenOptions) => Promise<AnyTeacher>;
