/**
 * The library's one error type for bad input: its message is the single line the user sees.
 *
 * Anything thrown that is not a {@linkcode SparsekdError} is a bug and keeps its stack (`src/cli/run_main.ts`).
 * @module
 */

/**
 * An error caused by the user's input or environment. Its message is the single line the user sees.
 *
 * @example
 * ```ts
 * throw new SparsekdError("--k must be between 1 and the vocabulary size (got 0)");
 * ```
 */
export class SparsekdError extends Error {
  /** Exit status the command-line wrapper uses for this error. */
  readonly exitCode: number;
  /**
   * @param message the one line the user sees
   * @param options `exitCode` (default 2) and an optional `cause`
   */
  constructor(message: string, options: { exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = "SparsekdError";
    this.exitCode = options.exitCode ?? 2;
  }
}
