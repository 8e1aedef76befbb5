/**
 * The library's one error type for bad input: its message is the single line the user sees.
 *
 * Library code names *options* (`k`, `lseTemperatures`), never command-line flags: a message that is about
 * one option starts with its name and sets {@linkcode SparsekdError.option}; the command that parsed the flag
 * maps the option back to its flag when it prints the error (`src/cli/run_main.ts`).
 *
 * Anything thrown that is not a {@linkcode SparsekdError} is a bug and keeps its stack.
 * @module
 */

/** Options of the {@linkcode SparsekdError} constructor. */
export interface SparsekdErrorOptions {
  /** Exit status the command-line wrapper uses (default 2). */
  exitCode?: number;
  /** The underlying error, if any. */
  cause?: unknown;
  /** The option the message is about, when it is about one; the message starts with this name. */
  option?: string;
}

/**
 * An error caused by the user's input or environment. Its message is the single line the user sees.
 *
 * @example
 * ```ts
 * import { SparsekdError } from "./errors.ts";
 * const err = new SparsekdError("k must be between 1 and the vocabulary size (got 0)", { option: "k" });
 * console.assert(err.option === "k" && err.exitCode === 2);
 * ```
 */
export class SparsekdError extends Error {
  /** Exit status the command-line wrapper uses for this error. */
  readonly exitCode: number;
  /** The option the message is about (its first word), or undefined. */
  readonly option: string | undefined;
  /**
   * A one-line error, optionally about an option.
   *
   * @param message the one line the user sees
   * @param options `exitCode` (default 2), an optional `cause` and the `option` the message is about
   */
  constructor(message: string, options: SparsekdErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.name = "SparsekdError";
    this.exitCode = options.exitCode ?? 2;
    this.option = options.option;
  }
}
