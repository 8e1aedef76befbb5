/**
 * `deno task bench <name>`: runs one benchmark from the registry below; `deno task bench --help` lists them
 * and `deno task bench <name> --help` gives one benchmark's flags.
 * @module
 */
import { runMain } from "../src/cli/run_main.ts";
import { SparsekdError } from "../src/errors.ts";
import { benchTopK } from "../bench/topk.ts";
import { benchSaveTopK } from "../bench/save_topk.ts";
import { benchSparseKd } from "../bench/sparse_kd.ts";
import { benchTrain } from "../bench/train.ts";

/** One benchmark: how to run it, one line on what it measures, and its flags as `--help` shows them. */
interface Benchmark {
  run: (args: string[]) => Promise<void>;
  summary: string;
  flags: string;
}

/** Every benchmark, by the name given on the command line. */
const BENCHMARKS: Record<string, Benchmark> = {
  topk: {
    run: benchTopK,
    summary: "the WGSL top-k kernel against a streaming read (roofline) and tf.topk (webgpu, cpu)",
    flags: `  --shapes RxVxK,…     shapes (rows x vocabulary x k) to time (default: the shapes of issue 2)
  --reps N             timed repetitions of our kernel (default 3; medians)
  --tfjs-reps N        of tf.topk on tfjs-backend-webgpu, per fit point (default 3; 0 skips it)
  --tfjs-cpu-reps N    of tf.topk on tfjs-backend-cpu (default 3; 0 skips it)
  --fit-ns N,N,…       dispatches per submission of the kernel's wall-time fit (default 10,50,200)
  --tfjs-fit-ns N,N,…  tf.topk calls per read-back of tf-webgpu's wall-time fit (default: --fit-ns)
  --wall               time our kernel by the wall-time fit even where the adapter has timestamps`,
  },
  "sparse-kd": {
    run: benchSparseKd,
    summary: "the fused sparse-KD loss kernel against the roofline and the same loss from tfjs ops",
    flags: `  --shapes RxV,…       shapes (rows x vocabulary) to time (default 1024x32000,256x131072)
  --modes topk,renorm,tail   loss modes (default all)
  --k K                teacher ids per row (default 64)
  --alpha A            KD weight in [0, 1] (default 0.5)
  --reps N             timed repetitions of our kernel (default 5)
  --tfjs-reps N        of the same loss from tfjs ops, per fit point (default 2; 0 skips it)
  --fit-ns N,N,…       dispatches per submission of the kernel's wall-time fit (default 10,50,200)
  --tfjs-fit-ns N,N,…  tfjs runs per wait of the tfjs loss's wall-time fit (default: --fit-ns)
  --rows-in-flight N   rows read twice (vocab > 32768): also time at most N rows per dispatch (L2 reuse)
  --wall               time our kernel by the wall-time fit even where the adapter has timestamps`,
  },
  "save-topk": {
    run: benchSaveTopK,
    summary: "the save-topk pipeline (npy teacher) writing to a local disk, against writing switched off",
    flags: `  --sequences S        sequences of random logits (default 16)
  --seq-len L          tokens per sequence (default 128)
  --reps N             repetitions (default 2)`,
  },
  train: {
    run: benchTrain,
    summary: "a training step with the sparse-KD loss against hard-label cross-entropy (goal: ≤ 1.2×)",
    flags: `  --steps N            timed steps (default 10); --warmup N untimed steps first (default 3)
  --batch-size B       sequences per step (default 16)
  --vocab V            vocabulary (default 2048); --seq-len L (default 64); --k K (default 64)
  --cpu                run on tfjs-backend-cpu instead of WebGPU`,
  },
};

const isHelp = (arg: string | undefined) => arg === "--help" || arg === "-h";

/** The text of `deno task bench --help`. */
function usage(): string {
  const width = Math.max(...Object.keys(BENCHMARKS).map((n) => n.length));
  return [
    "deno task bench <name> [flags]",
    "",
    "Benchmarks (each prints a table and writes it as JSON under bench/results/; see docs/performance.md):",
    ...Object.entries(BENCHMARKS).map(([name, b]) => `  ${name.padEnd(width)}  ${b.summary}`),
    "",
    "deno task bench <name> --help lists the flags of one benchmark.",
    "Choose the WebGPU path with DENO_WEBGPU_BACKEND=vulkan (or gl).",
  ].join("\n");
}

await runMain(async () => {
  const name = Deno.args[0];
  if (isHelp(name)) {
    console.log(usage());
    return 0;
  }
  if (!name || !(name in BENCHMARKS)) {
    throw new SparsekdError(
      `usage: deno task bench <name>, with <name> one of: ${Object.keys(BENCHMARKS).join(", ")}` +
        (name ? ` (got ${JSON.stringify(name)})` : " (deno task bench --help describes them)"),
    );
  }
  const bench = BENCHMARKS[name];
  if (Deno.args.slice(1).some(isHelp)) {
    const what = bench.summary[0].toUpperCase() + bench.summary.slice(1);
    console.log(`deno task bench ${name} [flags]\n\n${what}.\n\n${bench.flags}`);
    return 0;
  }
  await bench.run(Deno.args.slice(1));
});
