/**
 * The wrapper that runs a task's main function and turns a {@linkcode SparsekdError} into one line on stderr.
 * @module
 */
import { SparsekdError } from "../errors.ts";

/**
 * The one line a command prints for a {@linkcode SparsekdError}: the message's first line, with the option it
 * is about replaced by its command-line flag when `flags` maps it (`{ k: "--k" }`).
 *
 * @example
 * ```ts
 * import { SparsekdError } from "../errors.ts";
 * import { errorLine } from "./run_main.ts";
 * const line = errorLine(new SparsekdError("k must be ≥ 1 (got 0)", { option: "k" }), { k: "--k" });
 * console.assert(line === "error: --k must be ≥ 1 (got 0)");
 * ```
 */
export function errorLine(err: SparsekdError, flags: Record<string, string> = {}): string {
  let msg = err.message.split("\n")[0];
  const flag = err.option !== undefined ? flags[err.option] : undefined;
  if (flag !== undefined && msg.startsWith(err.option!)) msg = flag + msg.slice(err.option!.length);
  return `error: ${msg}`;
}

/**
 * Runs a task's main function: a {@linkcode SparsekdError} becomes `error: <message>` on stderr and a
 * non-zero exit, never a stack trace; any other error is a bug and is printed with its stack. `flags` maps
 * library option names to the command's flags for those messages.
 *
 * @example
 * ```ts ignore
 * await runMain(async () => { console.log("hello"); }, { k: "--k" });
 * ```
 */
export async function runMain(
  main: () => Promise<void | number>,
  flags: Record<string, string> = {},
): Promise<never> {
  let code = 0;
  try {
    code = (await main()) ?? 0;
  } catch (err) {
    if (err instanceof SparsekdError) {
      console.error(errorLine(err, flags));
      code = err.exitCode;
    } else {
      console.error(err);
      code = 1;
    }
  }
  Deno.exit(code);
}
