/**
 * Axis ticks of the report's charts: "nice" linear ticks and logarithmic ticks.
 * @module
 */

const round = (v: number) => Number(v.toPrecision(12));

/**
 * "Nice" evenly spaced ticks (steps of 1, 2 or 5 times a power of ten) within `[lo, hi]`, about `target` of
 * them. With `integer`, the step is at least 1.
 *
 * @example
 * ```ts
 * linearTicks(0, 1000, 5); // [0, 200, 400, 600, 800, 1000]
 * ```
 */
export function linearTicks(lo: number, hi: number, target = 5, integer = false): number[] {
  if (!(hi > lo)) return Number.isFinite(lo) ? [lo] : [];
  const raw = (hi - lo) / Math.max(1, target);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  let step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const ticks: number[] = [];
  for (let i = Math.ceil(lo / step - 1e-9); i * step <= hi + step * 1e-9; i++) ticks.push(round(i * step));
  // A coarse step can leave a single tick in a short range: ask for a finer one.
  if (ticks.length < 2 && target < 64 && !(integer && step === 1)) {
    return linearTicks(lo, hi, target * 2, integer);
  }
  return ticks;
}

/**
 * Ticks for a logarithmic axis over `[lo, hi]` (both > 0), at most about `maxTicks` of them: the densest of
 * the 1-2-3-5, 1-2-5, 1-3 and 1 multiples of the powers of ten that fits (every n-th power over very many
 * decades), and plain linear ticks when the range is under one decade.
 *
 * @example
 * ```ts
 * logTicks(8, 400); // [10, 20, 30, 50, 100, 200, 300]
 * ```
 */
export function logTicks(lo: number, hi: number, maxTicks = 8): number[] {
  if (!(lo > 0) || !(hi > lo)) return lo > 0 ? [lo] : [];
  const decades = Math.log10(hi / lo);
  if (decades < 0.8) {
    // the finest 1-2-5 step that gives at most min(5, maxTicks) ticks
    const budget = Math.max(1, Math.min(5, maxTicks));
    let previous: number[] = [];
    for (let e = Math.floor(Math.log10(hi - lo)) - 2;; e++) {
      for (const m of [1, 2, 5]) {
        const step = m * 10 ** e;
        const first = Math.ceil(lo / step - 1e-9), last = Math.floor(hi / step + 1e-9);
        const ticks: number[] = [];
        for (let i = first; i <= last && ticks.length <= budget; i++) ticks.push(round(i * step));
        if (ticks.length === 0) return previous.slice(0, budget); // this step skips the whole range
        if (ticks.length <= budget) return ticks;
        previous = ticks;
      }
    }
  }
  const at = (mults: number[]) => {
    const ticks: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      for (const m of mults) {
        const v = round(m * 10 ** e);
        if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) ticks.push(v);
      }
    }
    return ticks;
  };
  let previous: number[] = [];
  for (const mults of [[1, 2, 3, 5], [1, 2, 5], [1, 3], [1]]) {
    const ticks = at(mults);
    if (ticks.length === 0) break;
    if (ticks.length <= maxTicks) return ticks;
    previous = ticks;
  }
  // Too many decades even for one tick per power of ten: every n-th power.
  const powers = at([1]);
  if (powers.length === 0) return previous.slice(0, Math.max(1, maxTicks));
  const every = Math.ceil(powers.length / Math.max(1, maxTicks));
  return powers.filter((_, i) => i % every === 0);
}
