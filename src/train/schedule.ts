/**
 * Schedules over training: the learning rate (linear warm-up, then cosine decay to a floor), and the KD
 * weight α and temperature T (a constant, or `START:END[:linear|cosine]` interpolated over the run).
 * @module
 */

import { SparsekdError } from "../errors.ts";

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

/** A value that goes from `start` to `end` over a run (equal ends: a constant). */
export interface ValueSchedule {
  /** The value at step 0. */
  start: number;
  /** The value at the last step. */
  end: number;
  /** How it goes from start to end. */
  shape: "constant" | "linear" | "cosine";
}

/**
 * Parses a schedule option (`alpha`, `temperature`): a number (a constant) or `START:END[:linear|cosine]`
 * (default linear). Each end must satisfy `ok`, described by `rule`; bad input throws a one-line
 * {@linkcode SparsekdError} naming `option`.
 *
 * @example
 * ```ts
 * const s = parseValueSchedule("alpha", "0.7:0.3:cosine", (x) => x >= 0 && x <= 1, "in [0, 1]");
 * ```
 */
export function parseValueSchedule(
  option: string,
  v: number | string,
  ok: (x: number) => boolean,
  rule: string,
): ValueSchedule {
  const bad = (why: string): never => {
    throw new SparsekdError(`${option} ${why}`, { option });
  };
  const check = (x: number, text: string) => {
    if (!Number.isFinite(x) || !ok(x)) bad(`must be ${rule} (got ${text})`);
    return x;
  };
  if (typeof v === "number") {
    const x = check(v, String(v));
    return { start: x, end: x, shape: "constant" };
  }
  if (typeof v !== "string") return bad(`must be a number or START:END[:linear|cosine] (got ${typeof v})`);
  const parts = v.split(":");
  const num = (s: string) => (s.trim() === "" ? NaN : Number(s));
  if (parts.length === 1) return parseValueSchedule(option, check(num(v), JSON.stringify(v)), ok, rule);
  if (parts.length > 3 || (parts.length === 3 && parts[2] !== "linear" && parts[2] !== "cosine")) {
    bad(`must be a number or START:END[:linear|cosine] (got ${JSON.stringify(v)})`);
  }
  const start = num(parts[0]), end = num(parts[1]);
  if (Number.isNaN(start) || Number.isNaN(end)) {
    bad(`must be a number or START:END[:linear|cosine] (got ${JSON.stringify(v)})`);
  }
  check(start, parts[0]);
  check(end, parts[1]);
  return { start, end, shape: (parts[2] ?? "linear") as "linear" | "cosine" };
}

/**
 * The value of schedule `s` at `step` (0-based) of a `steps`-step run: `start` at step 0, `end` at step
 * `steps − 1`, linear or cosine (half a period, `end + (start − end)·(1 + cos πp)/2`) in between. A
 * constant returns `start` exactly.
 *
 * @example
 * ```ts
 * scheduleValue({ start: 0.7, end: 0.3, shape: "cosine" }, 0, 100); // 0.7
 * ```
 */
export function scheduleValue(s: ValueSchedule, step: number, steps: number): number {
  if (s.shape === "constant" || s.start === s.end) return s.start;
  const p = Math.min(1, Math.max(0, step / Math.max(1, steps - 1)));
  if (p === 1) return s.end;
  if (s.shape === "linear") return s.start + (s.end - s.start) * p;
  return s.end + 0.5 * (s.start - s.end) * (1 + Math.cos(Math.PI * p));
}

/**
 * How a schedule is written in a checkpoint's identity and logs: the number for a constant (as before
 * schedules existed), else `START:END:shape`.
 *
 * @example
 * ```ts
 * scheduleLabel({ start: 1, end: 1, shape: "constant" }); // 1
 * ```
 */
export function scheduleLabel(s: ValueSchedule): number | string {
  return s.shape === "constant" || s.start === s.end ? s.start : `${s.start}:${s.end}:${s.shape}`;
}
