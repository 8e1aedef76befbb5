/** `deno task save-topk`: not implemented yet (issue 3). @module */
import { runMain, SparsekdError } from "../src/cli/errors.ts";

await runMain(() => {
  throw new SparsekdError("deno task save-topk is not implemented yet (issue 3)", { exitCode: 3 });
});
