/**
 * `deno task save-topk`: teacher → top-k on WebGPU → MessagePack shards in a local folder or gs://.
 * Run with `--help` for the flags. This file only parses flags; {@linkcode runSaveTopK} does the work.
 * @module
 */
import { runMain } from "../src/cli/run_main.ts";
import { SparsekdError } from "../src/errors.ts";
import { intFlag, numberFlag, parseFlags } from "../src/cli/flags.ts";
import { hostFromEnv } from "../src/data/hosts.ts";
import { runSaveTopK } from "../src/save/run_save_topk.ts";
import type { TopKKernelChoice } from "../src/kernels/topk_select.ts";

const HELP = `deno task save-topk [flags]

  --teacher SPEC            builtin:demo (default) | tfjs:<model.json path or URI> | npy:<logits.npy>
  --data SPEC               builtin:demo (default) | npy:<ids.npy> | tokens:<file> (docs/data.md)
  --out OUT                 a folder, file://… or gs://bucket/prefix (default runs/demo/topk)
  --k K                     top-k entries kept per position (default 64)
  --seq-len L               tokens per sequence (default: the teacher's, else the data's, else 64)
  --batch-size B            sequences per teacher pass (default 8)
  --sequences-per-shard N   (default 64)
  --value-dtype f32|f16     stored logits (default f32)
  --lse-temperatures T,…    logsumexp temperatures (default 1)
  --max-sequences S|all     use only the first S sequences (default: all; 512 for builtin:demo data,
                            which keeps the demo to minutes on a CPU-only machine)
  --host-index H            this host (default: JOB_COMPLETION_INDEX, BATCH_TASK_INDEX, else 0)
  --host-count C            hosts in all (default: BATCH_TASK_COUNT, else 1)
  --gcs-endpoint URL        GCS endpoint (default: STORAGE_EMULATOR_HOST, else Google's)
  --summary FILE            also write the end-of-run summary as JSON to FILE
  --topk-kernel KERNEL      auto (default: wg on software adapters, radix on real GPUs; the environment
                            variable SPARSEKD_TOPK_KERNEL overrides auto) | wg | radix
  --cpu                     run on the CPU, without WebGPU
`;

/** Library option → command-line flag, for the one-line errors. */
const FLAGS = {
  teacher: "--teacher",
  data: "--data",
  out: "--out",
  k: "--k",
  seqLen: "--seq-len",
  batchSize: "--batch-size",
  sequencesPerShard: "--sequences-per-shard",
  valueDtype: "--value-dtype",
  lseTemperatures: "--lse-temperatures",
  maxSequences: "--max-sequences",
  hostIndex: "--host-index",
  hostCount: "--host-count",
  gcsEndpoint: "--gcs-endpoint",
  summary: "--summary",
  cpu: "--cpu",
  topkKernel: "--topk-kernel",
};

await runMain(async () => {
  const { values: f } = parseFlags(Deno.args, {
    teacher: { type: "string", default: "builtin:demo" },
    data: { type: "string", default: "builtin:demo" },
    out: { type: "string", default: "runs/demo/topk" },
    k: { type: "string" },
    "seq-len": { type: "string" },
    "batch-size": { type: "string" },
    "sequences-per-shard": { type: "string" },
    "value-dtype": { type: "string", default: "f32" },
    "lse-temperatures": { type: "string", default: "1" },
    "max-sequences": { type: "string" },
    "host-index": { type: "string" },
    "host-count": { type: "string" },
    "gcs-endpoint": { type: "string" },
    summary: { type: "string" },
    cpu: { type: "boolean", default: false },
    "topk-kernel": { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (f.help) {
    console.log(HELP);
    return;
  }
  const valueDtype = f["value-dtype"];
  if (valueDtype !== "f32" && valueDtype !== "f16") {
    throw new SparsekdError(`--value-dtype must be f32 or f16 (got "${valueDtype}")`);
  }
  await runSaveTopK({
    teacher: f.teacher!,
    data: f.data!,
    out: f.out!,
    k: intFlag("k", f.k, 64),
    seqLen: f["seq-len"] === undefined ? undefined : intFlag("seq-len", f["seq-len"], 64),
    batchSize: intFlag("batch-size", f["batch-size"], 8),
    sequencesPerShard: intFlag("sequences-per-shard", f["sequences-per-shard"], 64),
    valueDtype,
    lseTemperatures: f["lse-temperatures"]!.split(",").map((t) => numberFlag("lse-temperatures", t, 1)),
    maxSequences: f["max-sequences"] === "all" || f["max-sequences"] === undefined
      ? f["max-sequences"] as "all" | undefined
      : intFlag("max-sequences", f["max-sequences"], 0),
    host: hostFromEnv(Deno.env.toObject(), { hostIndex: f["host-index"], hostCount: f["host-count"] }),
    gcsEndpoint: f["gcs-endpoint"] ?? Deno.env.get("STORAGE_EMULATOR_HOST") ?? undefined,
    summary: f.summary,
    cpu: f.cpu,
    topkKernel: f["topk-kernel"] as TopKKernelChoice | undefined,
  });
}, FLAGS);
