/**
 * `deno task study`: CE-only, online full KD and offline top-k KD (topk, renorm, tail at several K) on the
 * demo task, scored on the held-out split (docs/study.md). Run with `--help` for the flags.
 * @module
 */
import { runMain } from "../src/cli/run_main.ts";
import { SparsekdError } from "../src/errors.ts";
import { intFlag, numberFlag, parseFlags } from "../src/cli/flags.ts";
import { runStudy } from "../src/demo/run_study.ts";

const HELP = `deno task study [flags]

  --dir DIR            the run folder (default runs/study); a second run resumes and skips finished students
  --sequences S        demo-corpus sequences given to save-topk (default 512)
  --steps N            optimizer steps of each student (default 100)
  --batch-size B       sequences per step (default 16)
  --ks K1,K2,…         the K of the offline students (default 8,64); the shards hold the largest
  --alpha A            weight of the KD term of every KD student (default 1)
  --seeds S1,S2,…      train every student with each seed; the table gives means (default 1)
  --cpu                run on the CPU, without WebGPU
`;

await runMain(async () => {
  const { values: f } = parseFlags(Deno.args, {
    dir: { type: "string" },
    sequences: { type: "string" },
    steps: { type: "string" },
    "batch-size": { type: "string" },
    ks: { type: "string" },
    alpha: { type: "string" },
    seeds: { type: "string" },
    cpu: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (f.help) return void console.log(HELP);
  const ks = (f.ks ?? "8,64").split(",").map((k) => intFlag("ks", k.trim(), 0, { min: 1 }));
  const seeds = (f.seeds ?? "1").split(",").map((x) => intFlag("seeds", x.trim(), 0, { min: 0 }));
  const alpha = numberFlag("alpha", f.alpha, 1, { min: 0, max: 1 });
  if (ks.length === 0) throw new SparsekdError("--ks needs at least one K");
  const { markdown, report } = await runStudy({
    dir: f.dir,
    sequences: intFlag("sequences", f.sequences, 512, { min: 2 }),
    steps: intFlag("steps", f.steps, 100, { min: 1 }),
    batchSize: intFlag("batch-size", f["batch-size"], 16, { min: 1 }),
    ks,
    alpha,
    seeds,
    cpu: f.cpu,
  });
  console.log(markdown);
  console.log(`study: table in ${f.dir ?? "runs/study"}/study.md, report in ${report}`);
});
