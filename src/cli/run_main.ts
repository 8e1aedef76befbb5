/**
 * The wrapper that runs a task's main function and turns a {@linkcode SparsekdError} into one line on stderr.
 * @module
 */
import { SparsekdError } from "../errors.ts";

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
