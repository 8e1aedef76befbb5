/** `deno task train`: not implemented yet (issue 4). @module */
import { runMain, SparsekdError } from "../src/cli/errors.ts";

await runMain(() => {
  throw new SparsekdError("deno task train is not implemented yet (issue 4)", { exitCode: 3 });
});
