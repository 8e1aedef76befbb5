/**
 * `deno task save-topk`: teacher → top-k on WebGPU → MessagePack shards in a local folder or gs://.
 * Run with `--help` for the flags.
 * @module
 */
import { runMain } from "../src/cli/run_main.ts";
import { SparsekdError } from "../src/errors.ts";
import { intFlag, numberFlag, parseFlags } from "../src/cli/flags.ts";
import { createProgress } from "../src/cli/progress.ts";
import { createRuntime } from "../src/gpu/runtime.ts";
import { hostFromEnv } from "../src/data/hosts.ts";
import { openSource } from "../src/data/open_source.ts";
import { openTeacher } from "../src/teacher/open_teacher.ts";
import { openStore } from "../src/store/open_store.ts";
import { saveTopK } from "../src/save/save_topk.ts";

/** Sequences of the demo corpus used when --data is builtin:demo and --max-sequences is not given. */
const DEMO_DEFAULT_SEQUENCES = 512;

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
  --cpu                     run on the CPU, without WebGPU
`;

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
    help: { type: "boolean", default: false },
  });
  if (f.help) {
    console.log(HELP);
    return;
  }
  const k = intFlag("k", f.k, 64, { min: 1 });
  const batchSize = intFlag("batch-size", f["batch-size"], 8, { min: 1 });
  const perShard = intFlag("sequences-per-shard", f["sequences-per-shard"], 64, { min: 1 });
  const demoData = f.data === "builtin:demo";
  const maxSequences = f["max-sequences"] === "all"
    ? undefined
    : f["max-sequences"] === undefined
    ? (demoData ? DEMO_DEFAULT_SEQUENCES : undefined)
    : intFlag("max-sequences", f["max-sequences"], 0, { min: 1 });
  if (f["value-dtype"] !== "f32" && f["value-dtype"] !== "f16") {
    throw new SparsekdError(`--value-dtype must be f32 or f16 (got "${f["value-dtype"]}")`);
  }
  const temps = f["lse-temperatures"]!.split(",").map((t) =>
    numberFlag("lse-temperatures", t, 1, { min: 0, minExclusive: true })
  );
  const host = hostFromEnv(Deno.env.toObject(), { hostIndex: f["host-index"], hostCount: f["host-count"] });
  const endpoint = f["gcs-endpoint"] ?? Deno.env.get("STORAGE_EMULATOR_HOST") ?? undefined;

  const rt = await createRuntime({ cpu: f.cpu });
  const store = await openStore(f.out!, { endpoint, create: true });
  const teacher = await openTeacher(f.teacher!, rt);
  const seqLen = f["seq-len"] === undefined
    ? teacher.seqLen
    : intFlag("seq-len", f["seq-len"], 64, { min: 1 });
  const source = await openSource(f.data!, {
    seqLen: seqLen ?? (f.data!.startsWith("builtin:") ? 64 : undefined),
    maxSequences,
    vocabSize: teacher.vocabSize,
  });
  console.error(
    `save-topk: ${teacher.description} over ${source.description}: ${source.sequences} sequences × ${source.seqLen} ` +
      `tokens, k=${k}, host ${host.index}/${host.count} → ${store.uri}`,
  );
  let progress: ReturnType<typeof createProgress> | null = null;
  const t0 = performance.now();
  const summary = await saveTopK({
    rt,
    teacher,
    source,
    store,
    k,
    batchSize,
    sequencesPerShard: perShard,
    valueDtype: f["value-dtype"],
    lseTemperatures: temps,
    host,
    onProgress(p) {
      progress ??= createProgress({ label: "save-topk", total: p.sequencesTotal, unit: "seq" });
      const secs = (performance.now() - t0) / 1000;
      const tokS = secs > 0 ? (p.sequencesComputed * source.seqLen) / secs : 0;
      progress.update(
        p.sequencesDone,
        `${(p.bytesWritten / 1e6).toFixed(1)} MB written, ${tokS.toFixed(0)} tok/s`,
      );
    },
  });
  (progress as ReturnType<typeof createProgress> | null)?.finish();
  teacher.dispose();
  const s = summary;
  console.log(
    `save-topk: ${s.shardsWritten} shards written, ${s.shardsSkipped} already there; ${s.tokens} tokens, ` +
      `${(s.bytes / 1e6).toFixed(2)} MB, ${s.bytesPerToken.toFixed(1)} bytes/token ` +
      `(full float32 logits: ${s.fullLogitsBytesPerToken} bytes/token); ${
        s.wallSeconds.toFixed(1)
      } s wall, ` +
      `${s.tokensPerSecond.toFixed(0)} tokens/s; GPU waited ${s.gpuWaitSeconds.toFixed(2)} s for I/O`,
  );
  console.log(`save-topk: ${store.uri}`);
  if (f.summary) {
    const { run: _run, ...numbers } = s;
    await Deno.writeTextFile(f.summary, JSON.stringify({ out: store.uri, ...numbers }, null, 1) + "\n");
  }
});
