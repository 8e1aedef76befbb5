/**
 * `deno task report <folder>`: renders the HTML report of a run folder (a demo or study folder, a train
 * `--out` folder or a save-topk `--out` folder, told apart by what they hold). `--help` says more.
 * @module
 */
import { runMain } from "../src/cli/run_main.ts";
import { SparsekdError } from "../src/errors.ts";
import { parseFlags } from "../src/cli/flags.ts";
import { REPORT_HELP, writeReport } from "../src/report/write_report.ts";

await runMain(async () => {
  const { values: f, positionals } = parseFlags(Deno.args, {
    out: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  }, true);
  if (f.help) {
    console.log(REPORT_HELP);
    return 0;
  }
  if (positionals.length !== 1) {
    throw new SparsekdError(
      `usage: deno task report <run folder> [--out FILE] (got ${positionals.length} arguments; --help says more)`,
    );
  }
  console.log(await writeReport(positionals[0], { out: f.out }));
}, { out: "--out" });
