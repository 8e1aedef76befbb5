/** `deno task report <run folder>`: renders `<run folder>/report_input.json` into `report.html`. @module */
import { runMain } from "../src/cli/run_main.ts";
import { SparsekdError } from "../src/errors.ts";
import { parseFlags } from "../src/cli/flags.ts";
import { writeReport } from "../src/report/write_report.ts";

await runMain(async () => {
  const { positionals } = parseFlags(Deno.args, {}, true);
  if (positionals.length !== 1) {
    throw new SparsekdError(`usage: deno task report <run folder> (got ${positionals.length} arguments)`);
  }
  console.log(await writeReport(positionals[0]));
});
