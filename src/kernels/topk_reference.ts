/**
 * The plain TypeScript top-k + logsumexp: the test oracle for `shaders/topk.wgsl` and the CPU path of
 * {@linkcode topK}. Written for clarity, not speed. Also holds the argument checks and the NaN error that
 * both paths share.
 * @module
 */
import { SparsekdError } from "../errors.ts";

/** The largest vocabulary the top-k kernel supports. */
export const MAX_VOCAB = 262_144;
/** The largest k the top-k kernel supports. */
export const MAX_K = 1024;
/** The most temperatures one call may ask for. */
export const MAX_TEMPERATURES = 32;

/** Options of {@linkcode topK}. */
export interface TopKOptions {
  /** Temperatures T for which the logsumexp of logits/T is returned (default `[1]`). */
  temperatures?: number[];
}

/** Result of {@linkcode topK}: `rows*k` ids and values (row-major) and `rows*temperatures.length` logsumexps. */
export interface TopKResult {
  /** Token ids of the k largest logits per row, by value descending, ties by lower id. */
  indices: Uint32Array;
  /** The k largest logits per row, in the same order as `indices`. */
  values: Float32Array;
  /** The logsumexp of logits/T over the whole row, for each temperature T (row-major). */
  logsumexp: Float32Array;
}

/**
 * A row of the logits is not usable: it holds NaN or +Infinity, or it holds only -Infinity (no finite
 * value). `row` is the first such row (0-based).
 *
 * @example
 * ```ts
 * try {
 *   await topK(rt, logits, rows, vocab, k);
 * } catch (e) {
 *   if (e instanceof NonFiniteLogitsError) console.error(`bad row ${e.row}`);
 * }
 * ```
 */
export class NonFiniteLogitsError extends SparsekdError {
  /** The first row (0-based) that is not usable. */
  readonly row: number;
  /**
   * An error naming the first row that is not usable.
   *
   * @param row the first row (0-based) that holds NaN or +Infinity, or only -Infinity
   */
  constructor(row: number) {
    super(
      `the logits of row ${row} are not finite (NaN or +Infinity, or only -Infinity): ` +
        "the teacher produced non-finite output",
    );
    this.name = "NonFiniteLogitsError";
    this.row = row;
  }
}

/**
 * Checks the arguments of a top-k call and returns the temperatures to use. `length` is the number of
 * logits given (null when they live in a GPU buffer whose size is checked separately).
 *
 * @example
 * ```ts
 * const temps = checkTopKArgs(8, 2, 4, 2, {}); // [1]
 * ```
 */
export function checkTopKArgs(
  length: number | null,
  rows: number,
  vocab: number,
  k: number,
  options: TopKOptions = {},
): number[] {
  const fail = (msg: string): never => {
    throw new SparsekdError(`topK: ${msg}`);
  };
  if (!Number.isInteger(rows) || rows < 0) fail(`rows must be a non-negative integer (got ${rows})`);
  if (!Number.isInteger(vocab) || vocab < 2 || vocab > MAX_VOCAB) {
    fail(`vocab must be an integer from 2 to ${MAX_VOCAB} (got ${vocab})`);
  }
  if (!Number.isInteger(k) || k < 1 || k > Math.min(MAX_K, vocab)) {
    fail(`k must be an integer from 1 to min(${MAX_K}, vocab = ${vocab}) (got ${k})`);
  }
  if (length !== null && length !== rows * vocab) {
    fail(`logits hold ${length} values but rows * vocab = ${rows} * ${vocab} = ${rows * vocab}`);
  }
  const temps = options.temperatures ?? [1];
  if (!Array.isArray(temps) || temps.length === 0 || temps.length > MAX_TEMPERATURES) {
    fail(`temperatures must be a list of 1 to ${MAX_TEMPERATURES} numbers`);
  }
  for (const t of temps) {
    if (typeof t !== "number" || !Number.isFinite(t) || t <= 0) {
      fail(`every temperature must be a finite number > 0 (got ${t})`);
    }
  }
  return temps;
}

/** False when the row holds NaN or +Infinity, or holds no finite value. */
function usableRow(row: Float32Array): boolean {
  let finite = false;
  for (let i = 0; i < row.length; i++) {
    const x = row[i];
    if (Number.isNaN(x) || x === Infinity) return false;
    if (x !== -Infinity) finite = true;
  }
  return finite;
}

/**
 * Top-k and logsumexp on the CPU: for each row, the k largest logits and their ids (value descending,
 * ties by lower id; -0 equals +0) and, per temperature T, log(sum(exp(x/T))) over the row computed in
 * float64 and rounded to float32. A row with NaN or +Infinity, or of only -Infinity, throws
 * {@linkcode NonFiniteLogitsError}.
 *
 * @example
 * ```ts
 * const r = topKReference(new Float32Array([1, 3, 2, 3]), 1, 4, 2);
 * // r.indices = [1, 3], r.values = [3, 3]
 * ```
 */
export function topKReference(
  logits: Float32Array,
  rows: number,
  vocab: number,
  k: number,
  options: TopKOptions = {},
): TopKResult {
  const temps = checkTopKArgs(logits.length, rows, vocab, k, options);
  const indices = new Uint32Array(rows * k);
  const values = new Float32Array(rows * k);
  const logsumexp = new Float32Array(rows * temps.length);
  const order = new Uint32Array(vocab);
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * vocab, (r + 1) * vocab);
    if (!usableRow(row)) throw new NonFiniteLogitsError(r);
    for (let i = 0; i < vocab; i++) order[i] = i;
    order.sort((a, b) => (row[a] > row[b] ? -1 : row[a] < row[b] ? 1 : a - b));
    for (let j = 0; j < k; j++) {
      indices[r * k + j] = order[j];
      values[r * k + j] = row[order[j]];
    }
    const max = row[order[0]];
    temps.forEach((t, ti) => {
      let lse: number;
      if (max === Infinity || max === -Infinity) {
        lse = max;
      } else {
        let sum = 0;
        for (let i = 0; i < vocab; i++) sum += Math.exp((row[i] - max) / t);
        lse = max / t + Math.log(sum);
      }
      logsumexp[r * temps.length + ti] = lse;
    });
  }
  return { indices, values, logsumexp };
}
