/**
 * Expected calibration error (ECE) with equal-width confidence bins, as in Guo et al. 2017, "On Calibration of
 * Modern Neural Networks": bin `b` of `B` holds the predictions with confidence in `(b/B, (b+1)/B]` (the first
 * bin also holds confidence 0), and
 *
 *     ECE = Σ_b (n_b / n) · |accuracy_b − mean confidence_b|
 *
 * The accumulator takes predictions in chunks, so an evaluation can stream over any number of tokens in
 * bounded memory.
 * @module
 */
import { SparsekdError } from "../errors.ts";

/** One confidence bin of a {@linkcode CalibrationAccumulator}. */
export interface CalibrationBin {
  /** Lower edge (exclusive, except for the first bin). */
  lo: number;
  /** Upper edge (inclusive). */
  hi: number;
  /** Predictions in the bin. */
  count: number;
  /** Mean confidence of those predictions (NaN when the bin is empty). */
  confidence: number;
  /** Fraction of those predictions that were correct (NaN when the bin is empty). */
  accuracy: number;
}

/**
 * Accumulates (confidence, correct) pairs into equal-width bins and reports the ECE and the per-bin
 * reliability figures.
 *
 * @example
 * ```ts
 * const acc = new CalibrationAccumulator(15);
 * acc.add(new Float32Array([0.9, 0.6]), new Uint8Array([1, 0]));
 * acc.add([0.3], [false]);
 * const ece = acc.ece();
 * ```
 */
export class CalibrationAccumulator {
  /** Number of bins. */
  readonly bins: number;
  #count: Float64Array;
  #confSum: Float64Array;
  #correct: Float64Array;
  #n = 0;

  /**
   * An empty accumulator.
   *
   * @param bins number of equal-width bins over [0, 1] (a positive integer, default 15)
   */
  constructor(bins = 15) {
    if (!Number.isInteger(bins) || bins < 1) {
      throw new SparsekdError(`ECE bins must be a positive integer (got ${bins})`);
    }
    this.bins = bins;
    this.#count = new Float64Array(bins);
    this.#confSum = new Float64Array(bins);
    this.#correct = new Float64Array(bins);
  }

  /** Predictions added so far. */
  get count(): number {
    return this.#n;
  }

  /**
   * Adds predictions: `confidences[i]` in [0, 1] is the probability the model gave its top-1 choice, and
   * `correct[i]` (boolean or 0/1) says whether that choice was right.
   */
  add(confidences: ArrayLike<number>, correct: ArrayLike<boolean | number>): void {
    if (confidences.length !== correct.length) {
      throw new SparsekdError(
        `ECE needs as many correctness flags as confidences (got ${correct.length} and ${confidences.length})`,
      );
    }
    const B = this.bins;
    for (let i = 0; i < confidences.length; i++) {
      const c = confidences[i];
      if (!(c >= 0 && c <= 1)) {
        throw new SparsekdError(`ECE confidences must be in [0, 1] (got ${c} at ${i})`);
      }
      // bin b holds (b/B, (b+1)/B]; c * B can land just past an edge (0.3 * 10 = 3.0000000000000004),
      // so check against the edges themselves
      let b = Math.ceil(c * B) - 1;
      if (b > 0 && c <= b / B) b--;
      else if (b < B - 1 && c > (b + 1) / B) b++;
      b = Math.min(B - 1, Math.max(0, b));
      this.#count[b]++;
      this.#confSum[b] += c;
      if (correct[i]) this.#correct[b]++;
    }
    this.#n += confidences.length;
  }

  /** The expected calibration error over everything added; NaN when nothing was added. */
  ece(): number {
    if (this.#n === 0) return NaN;
    let e = 0;
    for (let b = 0; b < this.bins; b++) {
      const n = this.#count[b];
      if (n > 0) e += Math.abs(this.#correct[b] - this.#confSum[b]) / this.#n; // n_b/n · |acc − conf|
    }
    return e;
  }

  /** The per-bin figures (for a reliability diagram). */
  binStats(): CalibrationBin[] {
    return Array.from({ length: this.bins }, (_, b) => {
      const n = this.#count[b];
      return {
        lo: b / this.bins,
        hi: (b + 1) / this.bins,
        count: n,
        confidence: n > 0 ? this.#confSum[b] / n : NaN,
        accuracy: n > 0 ? this.#correct[b] / n : NaN,
      };
    });
  }
}

/**
 * The expected calibration error of top-1 predictions with `bins` equal-width bins (default 15).
 * An empty input is a {@linkcode SparsekdError}.
 *
 * @param confidences the probability given to each top-1 choice, in [0, 1]
 * @param correct whether each top-1 choice was right (boolean or 0/1)
 * @example
 * ```ts
 * expectedCalibrationError([0.95, 0.85, 0.55, 0.35], [1, 0, 1, 0], 10); // 0.425
 * ```
 */
export function expectedCalibrationError(
  confidences: ArrayLike<number>,
  correct: ArrayLike<boolean | number>,
  bins = 15,
): number {
  const acc = new CalibrationAccumulator(bins);
  acc.add(confidences, correct);
  if (acc.count === 0) throw new SparsekdError("ECE needs at least one prediction");
  return acc.ece();
}
