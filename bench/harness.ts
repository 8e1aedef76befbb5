/**
 * Shared helpers of the benchmarks: timing with a time budget, a plain-text table, and the JSON record
 * written under `bench/results/` (ignored by git).
 * @module
 */

/** What {@linkcode timeAsync} measured. */
export interface Timing {
  /** Median of the timed repetitions (ms). */
  medianMs: number;
  /** Fastest timed repetition (ms). */
  minMs: number;
  /** Number of timed repetitions. */
  reps: number;
}

/** Options of {@linkcode timeAsync}. */
export interface TimeOptions {
  /** Untimed runs first (compilation, caches); default 1. */
  warmup?: number;
  /** Timed repetitions at most; default 5. */
  reps?: number;
  /** Stop repeating once the timed runs have taken this long (ms); at least one run is timed. Default 5000. */
  budgetMs?: number;
}

/**
 * Times an async function: `warmup` untimed runs, then up to `reps` timed runs within `budgetMs`.
 *
 * @example
 * ```ts
 * const t = await timeAsync(() => device.queue.onSubmittedWorkDone(), { reps: 3 });
 * console.log(t.medianMs);
 * ```
 */
export async function timeAsync(fn: () => Promise<unknown>, options: TimeOptions = {}): Promise<Timing> {
  const { warmup = 1, reps = 5, budgetMs = 5000 } = options;
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < reps && (times.length === 0 || performance.now() - start < budgetMs)) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor((sorted.length - 1) / 2)], minMs: sorted[0], reps: times.length };
}

/**
 * Formats rows as an aligned plain-text table (numbers right-aligned).
 *
 * @example
 * ```ts
 * console.log(formatTable(["shape", "ms"], [["256x32000", "12.5"]]));
 * ```
 */
export function formatTable(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? "").length)));
  const line = (r: string[]) =>
    r.map((v, c) => (c === 0 ? v.padEnd(widths[c]) : v.padStart(widths[c]))).join("  ").trimEnd();
  return [line(cells[0]), widths.map((w) => "-".repeat(w)).join("  "), ...cells.slice(1).map(line)].join(
    "\n",
  );
}

/**
 * Writes a benchmark's record as JSON to `bench/results/<name>-<timestamp>.json` and returns the path.
 *
 * @example
 * ```ts
 * const path = await writeResults("topk", { rows: [] });
 * ```
 */
export async function writeResults(name: string, record: unknown): Promise<string> {
  const dir = "bench/results";
  await Deno.mkdir(dir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const path = `${dir}/${name}-${stamp}.json`;
  await Deno.writeTextFile(path, JSON.stringify(record, null, 2) + "\n");
  return path;
}

/**
 * Formats a number with a fixed count of significant digits for tables.
 *
 * @example
 * ```ts
 * fmt(1234.567); // "1235"
 * fmt(0.012345); // "0.0123"
 * ```
 */
export function fmt(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  if (Math.abs(x) >= 10 ** digits) return x.toFixed(0);
  return x.toPrecision(digits);
}
