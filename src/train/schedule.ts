/**
 * The learning-rate schedule: linear warm-up, then cosine decay to a floor.
 * @module
 */

/** Parameters of {@linkcode learningRate}. */
export interface LrSchedule {
  /** Peak learning rate. */
  lr: number;
  /** Warm-up steps (linear from lr/warmup to lr). */
  warmup: number;
  /** Total steps; the cosine reaches `minLr` at this step. */
  steps: number;
  /** Floor of the decay (default lr/10). */
  minLr?: number;
}

/**
 * The learning rate at `step` (0-based): `lr·(step+1)/warmup` during warm-up, then cosine decay from `lr` to
 * `minLr` over the remaining steps.
 *
 * @example
 * ```ts
 * const lr = learningRate({ lr: 1e-3, warmup: 100, steps: 1000 }, 500);
 * ```
 */
export function learningRate(s: LrSchedule, step: number): number {
  const minLr = s.minLr ?? s.lr / 10;
  if (step < s.warmup) return (s.lr * (step + 1)) / s.warmup;
  const span = Math.max(1, s.steps - s.warmup);
  const progress = Math.min(1, (step - s.warmup) / span);
  return minLr + 0.5 * (s.lr - minLr) * (1 + Math.cos(Math.PI * progress));
}
