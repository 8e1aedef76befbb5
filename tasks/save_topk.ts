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

  --teacher SPEC            builtin:demo (default) | builtin:tslib | tfjs:<model.json path or URI> |
                            npy:<logits.npy> | openai:<base URL> (vLLM /v1/completions) |
                            sglang:<base URL> (/generate) (docs/teachers.md)
  --data SPEC               builtin:demo (default) | builtin:tslib | npy:<ids.npy> | tokens:<file> |
                            text:<file or folder> (.txt, .jsonl with a "text" field, .gz too; docs/data.md)
  --tokenizer FILE          a Hugging Face tokenizer.json, for text: data
  --eot-token TEXT          the end-of-text token put between documents (default <|endoftext|>)
  --cross-documents         let targets cross documents (default: run.json records the end-of-text token
                            and training masks the positions whose target starts the next document)
  --out OUT                 a folder, file://… or gs://bucket/prefix (default runs/demo/topk)
  --k K                     top-k entries kept per position (default 64; 0 with --sample: samples only)
  --sample N                also store N draws per position (with replacement, 1 to 1024) from the
                            teacher's softmax(z/t): distinct ids, hit counts, logits (docs/format.md)
  --sample-temperature t    the temperature t of the draws (default 1; added to --lse-temperatures)
  --seed S                  seed of the draws, keyed by (S, global position) (default 0)
  --seq-len L               tokens per sequence (default: the teacher's, else the data's, else 64)
  --batch-size B            sequences per teacher pass (default 8, or --teacher-concurrency if larger)
  --sequences-per-shard N   (default 64)
  --value-dtype f32|f16     stored logits (default f32)
  --lse-temperatures T,…    logsumexp temperatures (default 1)
  --max-sequences S|all     use only the first S sequences (default: all; 512 for builtin:* data,
                            which keeps the demo to minutes on a CPU-only machine)
  --host-index H            this host (default: JOB_COMPLETION_INDEX, BATCH_TASK_INDEX, else 0)
  --host-count C            hosts in all (default: BATCH_TASK_COUNT, else 1)
  --gcs-endpoint URL        GCS endpoint (default: STORAGE_EMULATOR_HOST, else Google's)
  --summary FILE            also write the end-of-run summary as JSON to FILE
  --topk-kernel KERNEL      auto (default: wg on software adapters, radix on real GPUs; the environment
                            variable SPARSEKD_TOPK_KERNEL overrides auto) | wg | radix
  --cpu                     run on the CPU, without WebGPU

 served teachers (openai:, sglang:):
  --teacher-model NAME      the served model (default: the only one GET /v1/models lists)
  --vocab-size V            the teacher's vocabulary size (default: the server's vocab_size, if it says)
  --teacher-api-key-env VAR environment variable holding the API key (default OPENAI_API_KEY; never printed)
  --teacher-concurrency N   requests in flight (default 4)
  --teacher-timeout S       seconds per request before it is tried again (default 300)
  --teacher-tries N         tries per request before the run fails (default 8)
`;

/** Library option → command-line flag, for the one-line errors. */
const FLAGS = {
  teacher: "--teacher",
  data: "--data",
  tokenizer: "--tokenizer",
  eotToken: "--eot-token",
  crossDocuments: "--cross-documents",
  out: "--out",
  k: "--k",
  sample: "--sample",
  sampleTemperature: "--sample-temperature",
  seed: "--seed",
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
  teacherModel: "--teacher-model",
  vocabSize: "--vocab-size",
  teacherApiKeyEnv: "--teacher-api-key-env",
  teacherConcurrency: "--teacher-concurrency",
  teacherTimeout: "--teacher-timeout",
  teacherTries: "--teacher-tries",
  topkKernel: "--topk-kernel",
};

await runMain(async () => {
  const { values: f } = parseFlags(Deno.args, {
    teacher: { type: "string", default: "builtin:demo" },
    data: { type: "string", default: "builtin:demo" },
    tokenizer: { type: "string" },
    "eot-token": { type: "string" },
    "cross-documents": { type: "boolean", default: false },
    out: { type: "string", default: "runs/demo/topk" },
    k: { type: "string" },
    sample: { type: "string" },
    "sample-temperature": { type: "string" },
    seed: { type: "string" },
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
    "teacher-model": { type: "string" },
    "vocab-size": { type: "string" },
    "teacher-api-key-env": { type: "string" },
    "teacher-concurrency": { type: "string" },
    "teacher-timeout": { type: "string" },
    "teacher-tries": { type: "string" },
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
    tokenizer: f.tokenizer,
    eotToken: f["eot-token"],
    crossDocuments: f["cross-documents"],
    out: f.out!,
    k: intFlag("k", f.k, 64),
    sample: f.sample === undefined ? undefined : intFlag("sample", f.sample, 0),
    sampleTemperature: f["sample-temperature"] === undefined
      ? undefined
      : numberFlag("sample-temperature", f["sample-temperature"], 1),
    seed: f.seed === undefined ? undefined : intFlag("seed", f.seed, 0),
    seqLen: f["seq-len"] === undefined ? undefined : intFlag("seq-len", f["seq-len"], 64),
    batchSize: f["batch-size"] === undefined ? undefined : intFlag("batch-size", f["batch-size"], 8),
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
    remote: {
      model: f["teacher-model"],
      vocabSize: f["vocab-size"] === undefined
        ? undefined
        : intFlag("vocab-size", f["vocab-size"], 0, { min: 2 }),
      apiKeyEnv: f["teacher-api-key-env"],
      concurrency: f["teacher-concurrency"] === undefined
        ? undefined
        : intFlag("teacher-concurrency", f["teacher-concurrency"], 4, { min: 1 }),
      timeoutMs: f["teacher-timeout"] === undefined
        ? undefined
        : 1000 * numberFlag("teacher-timeout", f["teacher-timeout"], 300, { min: 0, minExclusive: true }),
      tries: f["teacher-tries"] === undefined
        ? undefined
        : intFlag("teacher-tries", f["teacher-tries"], 8, { min: 1 }),
    },
    topkKernel: f["topk-kernel"] as TopKKernelChoice | undefined,
  });
}, FLAGS);
