/**
 * `deno task demo`: the whole job on the embedded default (save-topk with the demo teacher, a KD student and
 * a CE-only student, their evaluation, the report), in this process. Run with `--help` for the flags.
 * @module
 */
import { runMain } from "../src/cli/run_main.ts";
import { stopOnSignals } from "../src/cli/stop_signals.ts";
import { intFlag, parseFlags } from "../src/cli/flags.ts";
import { readRunFlags, RUN_FLAG_SPEC, RUN_FLAGS, runFlagsHelp } from "../src/cli/run_flags.ts";
import { runDemo } from "../src/demo/run_demo.ts";

const HELP = `deno task demo [flags]

${runFlagsHelp("runs/demo", "finished stages")}  --k K                top-k kept per position (default 64)
`;

await runMain(async () => {
  const { values: f } = parseFlags(Deno.args, { ...RUN_FLAG_SPEC, k: { type: "string" } });
  if (f.help) return void console.log(HELP);
  const stop = stopOnSignals("demo", "finishing the current stage (a student: its step and a checkpoint)…");
  const report = await runDemo({
    ...readRunFlags(f),
    k: intFlag("k", f.k, 64, { min: 1 }),
    signal: stop.signal,
  })
    .finally(() => stop.dispose());
  console.log(`demo: report written to ${report}`);
}, { ...RUN_FLAGS, k: "--k" });
