/** `deno task demo`: not implemented yet (issue 5). @module */
import { runMain, SparsekdError } from "../src/cli/errors.ts";

await runMain(() => {
  throw new SparsekdError("deno task demo is not implemented yet (issue 5)", { exitCode: 3 });
});
