/**
 * Progress on long work: a bar on stderr when stderr is a terminal, a log line every few seconds when not.
 * @module
 */

/** Options of {@linkcode createProgress}. */
export interface ProgressOptions {
  /** What is being done, e.g. `save-topk`. */
  label: string;
  /** Units in all (for the percentage and the ETA). */
  total: number;
  /** Name of a unit, e.g. `seq`. */
  unit: string;
  /** Draw a bar (default: whether stderr is a terminal). */
  tty?: boolean;
  /** Seconds between log lines when not drawing a bar (default 5). */
  logEverySeconds?: number;
  /** Where lines go (default stderr). */
  write?: (text: string) => void;
}

/** A progress reporter. */
export interface Progress {
  /** Reports `done` units so far, with extra text (e.g. `12.3 MB written, 4,100 tok/s`). */
  update(done: number, extra?: string): void;
  /** Ends the display: prints the last state, unless the last log line already showed exactly it. */
  finish(extra?: string): void;
}

/**
 * Creates a progress reporter.
 *
 * @example
 * ```ts
 * const p = createProgress({ label: "save-topk", total: 100, unit: "seq" });
 * p.update(50, "1.2 MB");
 * p.finish();
 * ```
 */
export function createProgress(options: ProgressOptions): Progress {
  const tty = options.tty ?? Deno.stderr.isTerminal();
  const every = (options.logEverySeconds ?? 5) * 1000;
  const enc = new TextEncoder();
  const write = options.write ?? ((t: string) => Deno.stderr.writeSync(enc.encode(t)));
  const t0 = performance.now();
  let lastLog = t0, lastDraw = 0, lastDone = 0, lastExtra = "", lastLine = "";
  const line = (done: number, extra: string) => {
    const secs = (performance.now() - t0) / 1000;
    const frac = options.total > 0 ? Math.min(1, done / options.total) : 1;
    const rate = secs > 0 ? done / secs : 0;
    const eta = rate > 0 && done < options.total ? (options.total - done) / rate : 0;
    const pct = (frac * 100).toFixed(1).padStart(5);
    const tail = `${done}/${options.total} ${options.unit}${extra ? ", " + extra : ""}, ETA ${
      fmtSeconds(eta)
    }`;
    if (!tty) return `${options.label}: ${pct}% ${tail}`;
    const width = 24, fill = Math.round(frac * width);
    return `${options.label} [${"#".repeat(fill)}${"-".repeat(width - fill)}] ${pct}% ${tail}`;
  };
  return {
    update(done, extra = "") {
      lastDone = done;
      lastExtra = extra;
      const now = performance.now();
      if (tty) {
        if (now - lastDraw < 100) return;
        lastDraw = now;
        write(`\r\x1b[2K${line(done, extra)}`);
      } else if (now - lastLog >= every) {
        lastLog = now;
        lastLine = line(done, extra);
        write(lastLine + "\n");
      }
    },
    finish(extra) {
      const text = line(lastDone, extra ?? lastExtra);
      if (tty) write(`\r\x1b[2K${text}\n`);
      else if (text !== lastLine) {
        lastLine = text;
        write(text + "\n");
      }
    },
  };
}

/**
 * Formats seconds as `1h02m`, `3m05s` or `12s`.
 *
 * @example
 * ```ts
 * fmtSeconds(185); // "3m05s"
 * ```
 */
export function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  const t = Math.round(s);
  if (t >= 3600) return `${Math.floor(t / 3600)}h${String(Math.floor((t % 3600) / 60)).padStart(2, "0")}m`;
  if (t >= 60) return `${Math.floor(t / 60)}m${String(t % 60).padStart(2, "0")}s`;
  return `${t}s`;
}
