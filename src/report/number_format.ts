/**
 * Number, byte, percentage and duration formatting for the report: stable across locales (ASCII digits,
 * `,` between thousands, `.` before decimals) so that tests can read the numbers back.
 * @module
 */

function groupThousands(intPart: string): string {
  return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * Formats `x` with `significant` significant digits, or as a whole number when it has more integer digits than
 * that: thousands grouped (`12,345`), trailing zeros of
 * the fraction dropped (`1.5`), exponent notation for very small or very large magnitudes (`3.2e-7`), `n/a` for
 * NaN and `∞` for infinities.
 *
 * @example
 * ```ts
 * formatNumber(1234567.8); // "1,234,568"
 * formatNumber(0.0123456); // "0.01235"
 * ```
 */
export function formatNumber(x: number, significant = 4): string {
  if (Number.isNaN(x)) return "n/a";
  if (x === Infinity) return "∞";
  if (x === -Infinity) return "-∞";
  if (x === 0) return "0";
  const sign = x < 0 ? "-" : "";
  const a = Math.abs(x);
  if (a < 1e-4 || a >= 1e15) {
    const [m, e] = a.toExponential(Math.max(0, significant - 1)).split("e");
    const mant = m.includes(".") ? m.replace(/\.?0+$/, "") : m;
    return `${sign}${mant}e${e.replace("+", "")}`;
  }
  if (a >= 10 ** significant) return `${sign}${groupThousands(String(Math.round(a)))}`;
  // Round to `significant` digits first: rounding can carry into a new digit (9.9996 → 10.00).
  const rounded = Number(a.toPrecision(significant));
  const magnitude = Math.floor(Math.log10(rounded));
  const decimals = Math.max(0, significant - 1 - magnitude);
  let s = rounded.toFixed(decimals);
  if (s.includes(".")) s = s.replace(/\.?0+$/, "");
  const [intPart, frac] = s.split(".");
  return `${sign}${groupThousands(intPart)}${frac ? `.${frac}` : ""}`;
}

/**
 * Formats an integer count with thousands grouped, rounding a fractional input.
 *
 * @example
 * ```ts
 * formatInteger(1048576); // "1,048,576"
 * ```
 */
export function formatInteger(x: number): string {
  if (!Number.isFinite(x)) return formatNumber(x);
  const r = Math.round(x);
  return `${r < 0 ? "-" : ""}${groupThousands(String(Math.abs(r)))}`;
}

/**
 * Formats a byte count with binary units (`B`, `KiB`, `MiB`, `GiB`, `TiB`), three significant digits.
 *
 * @example
 * ```ts
 * formatBytes(1536); // "1.5 KiB"
 * ```
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return formatNumber(bytes);
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = Math.abs(bytes);
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  // 1023.9 KiB rounds to "1,024 KiB"; show it as the next unit instead.
  if (u > 0 && Number(v.toPrecision(3)) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${bytes < 0 ? "-" : ""}${u === 0 ? formatInteger(v) : formatNumber(v, 3)} ${units[u]}`;
}

/**
 * Formats a fraction as a percentage with `decimals` decimals.
 *
 * @example
 * ```ts
 * formatPercent(0.8734); // "87.3%"
 * ```
 */
export function formatPercent(fraction: number, decimals = 1): string {
  if (!Number.isFinite(fraction)) return formatNumber(fraction);
  return `${(fraction * 100).toFixed(decimals)}%`;
}

/**
 * Formats a duration in seconds: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
 *
 * @example
 * ```ts
 * formatDuration(245); // "4 min 05 s"
 * ```
 */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return formatNumber(seconds);
  if (seconds < 1) return `${formatNumber(seconds * 1000, 3)} ms`;
  if (seconds < 60) return `${formatNumber(seconds, 3)} s`;
  const total = Math.round(seconds);
  if (total < 3600) return `${Math.floor(total / 60)} min ${String(total % 60).padStart(2, "0")} s`;
  const minutes = Math.round(seconds / 60);
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}
