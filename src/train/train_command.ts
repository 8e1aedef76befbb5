/**
 * `deno task train`: the command line of the trainer — flags, data (shards or a token source), the held-out
 * set, the student's shape, and the final export.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { intFlag, numberFlag, parseFlags } from "../cli/flags.ts";
import { openSource } from "../data/open_source.ts";
import { joinUri } from "../format/uri.ts";
import { shardsCovering } from "../format/layout.ts";
import { readRunJson } from "../format/run_json.ts";
import { readShards } from "../format/shard_reader.ts";
import type { RunJson } from "../format/types.ts";
import { createRuntime, type Runtime } from "../gpu/runtime.ts";
import { openTeacher } from "../teacher/open_teacher.ts";
import type { Teacher } from "../teacher/teacher.ts";
import { useTfjsOnRuntime } from "../gpu/tfjs_backend.ts";
import { saveModel } from "../model/checkpoint.ts";
import type { GptConfig } from "../model/gpt.ts";
import { openStore, parseStoreUri } from "../store/open_store.ts";
import type { ObjectStore } from "../store/store.ts";
import { type RecordSource, tokenRecords } from "./batches.ts";
import { createSparseKdLossOp } from "./kd_loss_op.ts";
import { train, type TrainMode, type TrainRecord } from "./trainer.ts";

/** The default student: several times smaller than the demo teacher (see models/demo_teacher/README.md). */
export const DEFAULT_STUDENT = { layers: 1, width: 32, heads: 2 } as const;

/** Help text of `deno task train`. */
export const TRAIN_HELP = `deno task train [flags]
  --shards OUT            top-k shards from save-topk: a folder, file://… or gs://… (default runs/demo/topk)
  --data SPEC             train on a token source instead, with --ce-only (builtin:demo | npy:… | tokens:…)
  --out DIR               checkpoints and metrics.jsonl (default runs/demo/train/<mode>-<time>)
  --steps N               optimizer steps (default 200)
  --batch-size B          sequences per step (default 16)
  --lr LR                 peak learning rate (default 3e-3); --warmup N (default steps/20); --min-lr (default lr/10)
  --weight-decay WD       AdamW decoupled weight decay (default 0.1); --clip C global-norm clipping (default 1)
  --kd-mode topk|renorm|tail   the sparse-KD loss (default topk)
  --k N                   use only the first N of the stored top-k per position (their top-N; default all)
  --online-teacher SPEC   online KD instead: run this teacher (builtin:demo | tfjs:…) in the process and
                          distil from its full logits (the upper reference of docs/study.md)
  --alpha A               weight of the KD term in [0, 1] (default 1); 1−A weights the hard-label CE
  --temperature T         KD temperature > 0 (default 1)
  --ce-only               hard labels alone (no teacher); how the demo teacher is trained
  --vocab-pad error|drop  teacher ids ≥ the student's vocabulary (--vocab): fail (default) or drop them
  --vocab V               the student's vocabulary (default: the shards' or the data's)
  --layers N --width C --heads H --untied   the student (default ${DEFAULT_STUDENT.layers} × ${DEFAULT_STUDENT.width} × ${DEFAULT_STUDENT.heads}, tied)
  --seed S                weights and shuffling (default 1); --shuffle-window N (default 1024)
  --heldout-sequences M   held out for evaluation (default 64): the last M of the shards, or the demo heldout split
  --eval-every N          held-out evaluation every N steps (default 50, and at the end)
  --checkpoint-every N    checkpoint every N steps (default 50, and at the end)
  --log-every N           read losses back every N steps (default 10)
  --resume                continue from the newest checkpoint in --out, exactly
  --export DIR            also write the final model (model.json + weights) to DIR
  --export-dtype f32|f16  weights of --export (default f32)
  --gcs-endpoint URL      GCS endpoint (default: STORAGE_EMULATOR_HOST, else Google's)
  --cpu                   run on tfjs-backend-cpu instead of WebGPU`;

/**
 * Runs `deno task train` with `args`; returns the exit status.
 *
 * @example
 * ```ts
 * await trainCommand(["--ce-only", "--data", "builtin:demo", "--steps", "10"]);
 * ```
 */
export async function trainCommand(args: string[]): Promise<number> {
  const { values: f } = parseFlags(args, {
    shards: { type: "string" },
    data: { type: "string" },
    out: { type: "string" },
    steps: { type: "string" },
    "batch-size": { type: "string" },
    lr: { type: "string" },
    warmup: { type: "string" },
    "min-lr": { type: "string" },
    "weight-decay": { type: "string" },
    clip: { type: "string" },
    "kd-mode": { type: "string" },
    k: { type: "string" },
    "online-teacher": { type: "string" },
    alpha: { type: "string" },
    temperature: { type: "string" },
    "ce-only": { type: "boolean", default: false },
    "vocab-pad": { type: "string", default: "error" },
    vocab: { type: "string" },
    layers: { type: "string" },
    width: { type: "string" },
    heads: { type: "string" },
    untied: { type: "boolean", default: false },
    "seq-len": { type: "string" },
    seed: { type: "string" },
    "shuffle-window": { type: "string" },
    "heldout-sequences": { type: "string" },
    "eval-every": { type: "string" },
    "checkpoint-every": { type: "string" },
    "log-every": { type: "string" },
    resume: { type: "boolean", default: false },
    export: { type: "string" },
    "export-dtype": { type: "string", default: "f32" },
    "gcs-endpoint": { type: "string" },
    cpu: { type: "boolean", default: false },
    quiet: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (f.help) {
    console.log(TRAIN_HELP);
    return 0;
  }
  const ceOnly = f["ce-only"]!;
  const online = f["online-teacher"];
  const kdMode = f["kd-mode"] ?? "topk";
  if (online !== undefined && ceOnly) throw new SparsekdError("give --online-teacher or --ce-only, not both");
  if (online !== undefined && f["kd-mode"] !== undefined) {
    throw new SparsekdError("--online-teacher distils from full logits: it takes no --kd-mode");
  }
  if (!["topk", "renorm", "tail"].includes(kdMode)) {
    throw new SparsekdError(`--kd-mode must be topk, renorm or tail (got "${kdMode}")`);
  }
  const alpha = numberFlag("alpha", f.alpha, 1);
  if (alpha < 0 || alpha > 1) throw new SparsekdError(`--alpha must be in [0, 1] (got ${alpha})`);
  const temperature = numberFlag("temperature", f.temperature, 1);
  if (!(temperature > 0)) throw new SparsekdError(`--temperature must be > 0 (got ${temperature})`);
  if (f["vocab-pad"] !== "error" && f["vocab-pad"] !== "drop") {
    throw new SparsekdError(`--vocab-pad must be error or drop (got "${f["vocab-pad"]}")`);
  }
  if (f["export-dtype"] !== "f32" && f["export-dtype"] !== "f16") {
    throw new SparsekdError(`--export-dtype must be f32 or f16 (got "${f["export-dtype"]}")`);
  }
  if (f.data && !ceOnly && online === undefined) {
    throw new SparsekdError(
      "--data trains on tokens alone: add --ce-only or --online-teacher (or use --shards)",
    );
  }
  if (f.data && f.k !== undefined) {
    throw new SparsekdError("--k selects from the shards' top-k: use --shards");
  }
  if (f.data && f.shards) throw new SparsekdError("give --shards or --data, not both");
  const steps = intFlag("steps", f.steps, 200, { min: 1 });
  const batchSize = intFlag("batch-size", f["batch-size"], 16, { min: 1 });
  const lr = numberFlag("lr", f.lr, 3e-3, { min: 0, minExclusive: true });
  const warmup = intFlag("warmup", f.warmup, Math.max(1, Math.round(steps / 20)), { min: 0 });
  const minLr = f["min-lr"] === undefined ? undefined : numberFlag("min-lr", f["min-lr"], 0, { min: 0 });
  const weightDecay = numberFlag("weight-decay", f["weight-decay"], 0.1, { min: 0 });
  const clipNorm = numberFlag("clip", f.clip, 1, { min: 0 });
  const seed = intFlag("seed", f.seed, 1);
  const heldoutCount = intFlag("heldout-sequences", f["heldout-sequences"], 64, { min: 0 });
  const endpoint = f["gcs-endpoint"] ?? Deno.env.get("STORAGE_EMULATOR_HOST") ?? undefined;
  const mode: TrainMode = ceOnly ? "ce" : online !== undefined ? "full" : kdMode as TrainMode;

  // The data: a token source (CE only) or the shards of save-topk.
  let data: RecordSource<TrainRecord>;
  let heldout: TrainRecord[] = [];
  let seqLen: number;
  let vocab: number;
  let k = 0;
  let dataIdentity: Record<string, unknown>;
  if (f.data) {
    const seqFlag = f["seq-len"] === undefined ? undefined : intFlag("seq-len", f["seq-len"], 64, { min: 2 });
    const source = await openSource(f.data, {
      seqLen: seqFlag ?? (f.data.startsWith("builtin:") ? 64 : undefined),
    });
    seqLen = source.seqLen;
    vocab = intFlag("vocab", f.vocab, f.data === "builtin:demo" ? 2048 : 0, { min: 1 });
    const tokens = tokenRecords(source);
    data = {
      sequences: source.sequences,
      stream: (from) => mapAsync(tokens.stream(from), (t) => ({ tokens: t })),
    };
    if (heldoutCount > 0) {
      if (f.data === "builtin:demo") {
        const h = await openSource("builtin:demo", { seqLen, split: "heldout", maxSequences: heldoutCount });
        const ids = await h.read(0, h.sequences);
        for (let i = 0; i < h.sequences; i++) {
          heldout.push({ tokens: ids.slice(i * seqLen, (i + 1) * seqLen) });
        }
      } else {
        const n = Math.min(heldoutCount, Math.floor(source.sequences / 2));
        const ids = await source.read(source.sequences - n, n);
        for (let i = 0; i < n; i++) heldout.push({ tokens: ids.slice(i * seqLen, (i + 1) * seqLen) });
        data = { sequences: source.sequences - n, stream: data.stream };
      }
    }
    dataIdentity = { data: source.description, fingerprint: source.fingerprint };
  } else {
    const uri = f.shards ?? "runs/demo/topk";
    const store = await openStore(uri, { endpoint });
    if (!(await store.exists("run.json"))) {
      throw new SparsekdError(
        f.shards
          ? `${uri} has no run.json: it is not an OUT of save-topk`
          : `${uri} has no run.json: make the demo shards first with \`deno task save-topk\``,
      );
    }
    const run = await readRunJson(store);
    seqLen = run.seqLen;
    k = intFlag("k", f.k, run.k, { min: 1 });
    if (k > run.k) throw new SparsekdError(`${uri} holds the top-${run.k} per position: --k ${k} is more`);
    vocab = intFlag("vocab", f.vocab, run.vocabSize, { min: 1 });
    if (f["seq-len"] !== undefined && Number(f["seq-len"]) !== run.seqLen) {
      throw new SparsekdError(
        `the shards hold sequences of ${run.seqLen} tokens, not --seq-len ${f["seq-len"]}`,
      );
    }
    if (vocab > run.vocabSize) {
      throw new SparsekdError(
        `the shards' vocabulary (${run.vocabSize}) is smaller than the student's (${vocab})`,
      );
    }
    if (vocab < run.vocabSize && f["vocab-pad"] === "error" && mode !== "ce") {
      throw new SparsekdError(
        `the shards' vocabulary (${run.vocabSize}) is larger than the student's (${vocab}): pass --vocab-pad drop to drop teacher ids ≥ ${vocab}`,
      );
    }
    const tempIndex = run.lseTemperatures.indexOf(temperature);
    if (mode === "tail" && tempIndex < 0) {
      throw new SparsekdError(
        `--kd-mode tail needs the teacher's logsumexp at T=${temperature}; ${uri} has it at T=${
          run.lseTemperatures.join(",")
        } only`,
      );
    }
    const held = Math.min(heldoutCount, Math.floor(run.sequences / 2));
    const trainCount = run.sequences - held;
    const toRecord = (kept: number) =>
    (
      r: { tokens: Uint32Array; idx: Uint16Array | Uint32Array; val: Float32Array; lse: Float32Array },
    ) => shardRecord(r, run, kept, vocab, tempIndex, seqLen, f["vocab-pad"] as "error" | "drop");
    data = {
      sequences: trainCount,
      stream: (from) =>
        shardStream(
          store,
          run,
          from,
          trainCount,
          mode === "ce" || mode === "full" ? (r) => ({ tokens: r.tokens }) : toRecord(k),
        ),
    };
    // The held-out records keep every stored entry, so that runs with another --k are scored alike.
    for await (const r of shardStream(store, run, trainCount, run.sequences, toRecord(run.k))) {
      heldout.push(r);
    }
    dataIdentity = { shards: store.uri, teacher: run.teacher, data: run.data, k: run.k };
    if (k < run.k) dataIdentity.kUsed = k;
  }
  if (heldoutCount === 0) heldout = [];
  for (const h of heldout) {
    for (const t of h.tokens) {
      if (t >= vocab) throw new SparsekdError(`token id ${t} is outside the student's vocabulary (${vocab})`);
    }
  }

  const model: GptConfig = {
    vocabSize: vocab,
    seqLen,
    layers: intFlag("layers", f.layers, DEFAULT_STUDENT.layers, { min: 1 }),
    width: intFlag("width", f.width, DEFAULT_STUDENT.width, { min: 1 }),
    heads: intFlag("heads", f.heads, DEFAULT_STUDENT.heads, { min: 1 }),
    tiedEmbeddings: !f.untied,
  };
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "").replace("T", "-");
  const outUri = f.out ?? `runs/demo/train/${mode}-${stamp}`;
  const parsed = parseStoreUri(outUri);
  const out: ObjectStore = await openStore(outUri, { endpoint, create: true });
  const metricsPath = parsed.kind === "local" ? `${parsed.path}/metrics.jsonl` : null;

  const rt = await createRuntime({ cpu: f.cpu });
  await useTfjsOnRuntime(rt);
  const kdLoss = mode === "ce" || mode === "full" ? undefined : await createSparseKdLossOp(rt);
  const teacher = online === undefined ? undefined : await openOnlineTeacher(online, rt, vocab);
  if (teacher) {
    dataIdentity.onlineTeacher = { teacher: teacher.description, fingerprint: teacher.fingerprint };
  }
  console.error(
    `train: ${
      mode === "ce"
        ? "cross-entropy"
        : mode === "full"
        ? `online KD from ${teacher!.description}'s full logits α=${alpha} T=${temperature}`
        : `KD ${mode} α=${alpha} T=${temperature}${
          k < (dataIdentity.k as number) ? ` (top-${k} of the stored top-${dataIdentity.k})` : ""
        }`
    }; student ${model.layers}×${model.width}×${model.heads}` +
      ` (vocab ${vocab}, context ${seqLen}); ${data.sequences} training sequences, ${heldout.length} held out; → ${out.uri}`,
  );
  const result = await train({
    rt,
    model,
    seed,
    steps,
    batchSize,
    lr,
    warmup,
    minLr,
    weightDecay,
    clipNorm,
    mode,
    alpha,
    temperature,
    k,
    data,
    heldout,
    shuffleWindow: intFlag("shuffle-window", f["shuffle-window"], 1024, { min: 1 }),
    out,
    metricsPath,
    checkpointEvery: intFlag("checkpoint-every", f["checkpoint-every"], 50, { min: 0 }),
    evalEvery: intFlag("eval-every", f["eval-every"], 50, { min: 0 }),
    logEvery: intFlag("log-every", f["log-every"], 10, { min: 1 }),
    resume: f.resume,
    kdLoss,
    teacher: teacher && ((tokens, count, L) => teacher.forwardTensor!(tokens, 0, count, L)),
    identity: dataIdentity,
    progress: !f.quiet,
  });
  const last = result.evals.at(-1);
  console.log(
    `train: ${result.step} steps, ${
      result.msPerStep.toFixed(0)
    } ms/step, ${result.model.parameterCount()} parameters` +
      (last ? `; held-out perplexity ${last.perplexity.toFixed(2)}` : "") + `; checkpoints in ${out.uri}`,
  );
  if (f.export) {
    const exp = await openStore(f.export, { endpoint, create: true });
    await saveModel(exp, "", result.model, {
      storage: f["export-dtype"] === "f16" ? "float16" : "float32",
      metadata: {
        trainedWith: ["deno task train", ...args].join(" "),
        steps: result.step,
        eval: last ?? null,
      },
    });
    console.log(`train: model exported to ${joinUri(exp.uri, "model.json")}`);
  }
  result.model.dispose();
  teacher?.dispose();
  return 0;
}

/** Opens the teacher of `--online-teacher`: one that runs on tfjs, with the student's vocabulary. */
async function openOnlineTeacher(spec: string, rt: Runtime, vocab: number): Promise<Teacher> {
  const teacher = await openTeacher(spec, rt);
  if (!teacher.forwardTensor) {
    teacher.dispose();
    throw new SparsekdError(
      `--online-teacher ${spec}: precomputed logits cannot run online; use builtin:demo or tfjs:<model.json>`,
    );
  }
  if (teacher.vocabSize !== vocab) {
    teacher.dispose();
    throw new SparsekdError(
      `--online-teacher ${spec}: its vocabulary (${teacher.vocabSize}) is not the student's (${vocab})`,
    );
  }
  return teacher;
}

async function* mapAsync<A, B>(it: AsyncIterable<A>, f: (a: A) => B): AsyncGenerator<B> {
  for await (const a of it) yield f(a);
}

/** Records [from, to) of the shards, in order. */
async function* shardStream(
  store: ObjectStore,
  run: RunJson,
  from: number,
  to: number,
  map: (
    r: { tokens: Uint32Array; idx: Uint16Array | Uint32Array; val: Float32Array; lse: Float32Array },
  ) => TrainRecord,
): AsyncGenerator<TrainRecord> {
  if (from >= to) return;
  const { first, last } = shardsCovering(from, to, run.sequencesPerShard);
  const shards = Array.from({ length: last - first + 1 }, (_, i) => first + i);
  for await (const r of readShards(store, { shards })) {
    if (r.seq < from) continue;
    if (r.seq >= to) break;
    yield map(r);
  }
}

/**
 * A shard record as a training record: the first `k` of the stored entries per position (the top-k, since
 * they are stored in decreasing order of logit), teacher ids checked against the student's vocabulary.
 */
function shardRecord(
  r: { tokens: Uint32Array; idx: Uint16Array | Uint32Array; val: Float32Array; lse: Float32Array },
  run: RunJson,
  k: number,
  vocab: number,
  tempIndex: number,
  seqLen: number,
  pad: "error" | "drop",
): TrainRecord {
  if (k < run.k) r = { ...r, ...firstOfEachRow(r.idx, r.val, run.k, k) };
  let idx: Uint16Array | Uint32Array = r.idx;
  let val = r.val;
  if (vocab < run.vocabSize) {
    // Drop ids ≥ vocab: keep the others in order and fill the row's tail with unused ids of zero weight.
    const K = r.idx.length / seqLen;
    idx = new Uint32Array(r.idx.length);
    val = new Float32Array(r.val.length);
    for (let t = 0; t < seqLen; t++) {
      const used = new Set<number>();
      let n = 0;
      for (let j = 0; j < K; j++) {
        const id = r.idx[t * K + j];
        if (id < vocab) {
          idx[t * K + n] = id;
          val[t * K + n] = r.val[t * K + j];
          used.add(id);
          n++;
        } else if (pad === "error") {
          throw new SparsekdError(`teacher id ${id} is outside the student's vocabulary (${vocab})`);
        }
      }
      for (let id = 0; n < K; id++) {
        if (used.has(id)) continue;
        idx[t * K + n] = id;
        val[t * K + n] = -1e30;
        n++;
      }
    }
  }
  const T = run.lseTemperatures.length;
  let lse: Float32Array | undefined;
  if (tempIndex >= 0) {
    lse = new Float32Array(seqLen);
    for (let t = 0; t < seqLen; t++) lse[t] = r.lse[t * T + tempIndex];
  }
  return { tokens: r.tokens, idx, val, lse };
}

/** The first `k` of every row of `K` entries. */
function firstOfEachRow(idx: Uint16Array | Uint32Array, val: Float32Array, K: number, k: number) {
  const rows = idx.length / K;
  const outIdx = new Uint32Array(rows * k), outVal = new Float32Array(rows * k);
  for (let t = 0; t < rows; t++) {
    outIdx.set(idx.subarray(t * K, t * K + k), t * k);
    outVal.set(val.subarray(t * K, t * K + k), t * k);
  }
  return { idx: outIdx, val: outVal };
}
