/**
 * The study's statistics: the mean of a metric over seeds with its standard error, and the share of the
 * CE-only → online-KD perplexity gap a method closes, with its uncertainty by the delta method.
 * @module
 */

/** A mean over seeds with its standard error (the sample standard deviation over √n; NaN for n < 2). */
export interface MeanSe {
  /** The mean. */
  mean: number;
  /** The standard error of the mean; NaN when fewer than two values were given. */
  se: number;
  /** How many values. */
  n: number;
}

/**
 * The mean of `xs` and its standard error, s/√n with s the sample standard deviation (n − 1 in the divisor).
 *
 * @example
 * ```ts
 * meanSe([1, 2, 3]); // { mean: 2, se: 0.577…, n: 3 }
 * ```
 */
export function meanSe(xs: readonly number[]): MeanSe {
  const n = xs.length;
  if (n === 0) return { mean: NaN, se: NaN, n };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n < 2) return { mean, se: NaN, n };
  const ss = xs.reduce((a, x) => a + (x - mean) ** 2, 0);
  return { mean, se: Math.sqrt(ss / (n - 1) / n), n };
}

/**
 * The share of the CE-only → online perplexity gap that a method closes, g = (c − p) / (c − o), with c, p,
 * o the mean held-out perplexities of CE-only, the method and online KD; its standard error comes from the
 * three standard errors by the delta method, treating the three means as independent:
 * se² = ((p − o)/D²)² se_c² + ((c − p)/D²)² se_o² + (1/D)² se_p², D = c − o. Returns null when online KD
 * does not beat CE-only (D ≤ 0): the gap is then undefined. A NaN standard error (one seed) stays NaN.
 *
 * @example
 * ```ts
 * gapClosed(meanSe([600, 610]), meanSe([520, 530]), meanSe([560, 570])); // { mean: 0.5, se: … }
 * ```
 */
export function gapClosed(ce: MeanSe, online: MeanSe, method: MeanSe): { mean: number; se: number } | null {
  const c = ce.mean, o = online.mean, p = method.mean;
  const d = c - o;
  if (!(d > 0)) return null;
  const dc = (p - o) / (d * d), d_o = (c - p) / (d * d), dp = -1 / d;
  const se = Math.sqrt((dc * ce.se) ** 2 + (d_o * online.se) ** 2 + (dp * method.se) ** 2);
  return { mean: (c - p) / d, se };
}
