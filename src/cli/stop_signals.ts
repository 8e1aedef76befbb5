/**
 * Ctrl-C and SIGTERM for long commands: the first signal asks the work to stop at its next safe point (an
 * `AbortSignal` the library polls, e.g. `train()` after a step, with a checkpoint); a second one exits at once.
 * @module
 */

/** What {@linkcode stopOnSignals} hands back. */
export interface StopSignals {
  /** Aborted by the first SIGINT or SIGTERM. */
  readonly signal: AbortSignal;
  /** 130 after SIGINT, 143 after SIGTERM, 0 while none came. */
  exitCode(): number;
  /** Removes the listeners (call it when the work is over). */
  dispose(): void;
}

/**
 * Listens for SIGINT and SIGTERM on behalf of `who`: the first prints `what` (what happens now) and aborts
 * the signal; a second exits at once with 130/143 (what was finished is on disk: every stage's files appear
 * atomically).
 *
 * @example
 * ```ts ignore
 * const stop = stopOnSignals("train", "finishing the current step and writing a checkpoint…");
 * try { await train({ ...options, signal: stop.signal }); } finally { stop.dispose(); }
 * ```
 */
export function stopOnSignals(who: string, what: string): StopSignals {
  const stop = new AbortController();
  let code = 0;
  const signals: [Deno.Signal, number][] = [["SIGINT", 130], ["SIGTERM", 143]];
  const handlers = signals.map(([sig, exit]) => {
    const h = () => {
      if (stop.signal.aborted) {
        console.error(`${who}: ${sig} again: stopping now`);
        Deno.exit(exit);
      }
      code = exit;
      console.error(`${who}: ${sig}: ${what} (${sig} again stops at once)`);
      stop.abort();
    };
    Deno.addSignalListener(sig, h);
    return [sig, h] as const;
  });
  return {
    signal: stop.signal,
    exitCode: () => code,
    dispose() {
      for (const [sig, h] of handlers) Deno.removeSignalListener(sig, h);
    },
  };
}
