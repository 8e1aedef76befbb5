/**
 * The one error type for bad input, and the wrapper that turns it into one line on stderr.
 *
 * Anything thrown that is not a {@linkcode SparsekdError} is a bug and keeps its stack.
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

/**
 * Runs a task's main function: a {@linkcode SparsekdError} becomes `error: <message>` on stderr and a
 * non-zero exit, never a stack trace; any other error is a bug and is printed with its stack.
 *
 * @example
 * ```ts
 * await runMain(async () => { console.log("hello"); });
 * ```
 */
export async function runMain(main: () => Promise<void | number>): Promise<never> {
  let code = 0;
  try {
    code = (await main()) ?? 0;
  } catch (err) {
    if (err instanceof SparsekdError) {
      console.error(`error: ${err.message.split("\n")[0]}`);
      code = err.exitCode;
    } else {
      console.error(err);
      code = 1;
    }
  }
  Deno.exit(code);
}
