/**
 * `deno task demo`: the whole job on the embedded default (save-topk with the demo teacher, a KD student and
 * a CE-only student, their evaluation, the report). Run with `--help` for the flags.
 * @module
 */
import { runMain } from "../src/cli/run_main.ts";
import { intFlag, parseFlags } from "../src/cli/flags.ts";
import { runDemo } from "../src/demo/run_demo.ts";

const HELP = `deno task demo [flags]

  --dir DIR            the run folder (default runs/demo); a second run resumes and skips finished stages
  --sequences S        demo-corpus sequences given to save-topk (default 512)
  --steps N            optimizer steps of each student (default 100)
  --batch-size B       sequences per step (default 16)
  --k K                top-k kept per position (default 64)
  --cpu                run on the CPU, without WebGPU
`;

await runMain(async () => {
  const { values: f } = parseFlags(Deno.args, {
    dir: { type: "string" },
    sequences: { type: "string" },
    steps: { type: "string" },
    "batch-size": { type: "string" },
    k: { type: "string" },
    cpu: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (f.help) return void console.log(HELP);
  const report = await runDemo({
    dir: f.dir,
    sequences: intFlag("sequences", f.sequences, 512, { min: 2 }),
    steps: intFlag("steps", f.steps, 100, { min: 1 }),
    batchSize: intFlag("batch-size", f["batch-size"], 16, { min: 1 }),
    k: intFlag("k", f.k, 64, { min: 1 }),
    cpu: f.cpu,
  });
  console.log(`demo: report written to ${report}`);
});
