/**
 * The save-topk pipeline: data → teacher → select (WGSL top-k) → encode (format v1) → store. A sparse
 * teacher (one that returns top-k ids, values and logsumexps itself) skips the select stage.
 *
 * Batches flow through a web `ReadableStream` whose `highWaterMark` bounds how far the GPU runs ahead:
 * while the consumer encodes and uploads batch n, the stream's `pull` already runs the teacher and the
 * top-k kernel on batch n+1. Memory is bounded by that queue, whatever the dataset's size.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import type { Runtime } from "../gpu/runtime.ts";
import { NonFiniteLogitsError } from "../kernels/topk.ts";
import {
  chooseTopKKernel,
  parseTopKKernel,
  type TopKKernel,
  type TopKKernelChoice,
  topKSelected,
  topKSelectedFromBuffer,
} from "../kernels/topk_select.ts";
import { MAX_K, MAX_TEMPERATURES, MAX_VOCAB } from "../kernels/topk_reference.ts";
import { sampleTokens, sampleTokensFromBuffer } from "../kernels/sample.ts";
import type { SampleResult } from "../kernels/sample_reference.ts";
import type { TokenSource } from "../data/source.ts";
import { shardsForHost } from "../data/hosts.ts";
import type { AnyTeacher, SparseTeacher, Teacher } from "../teacher/teacher.ts";
import type { ObjectStore } from "../store/store.ts";
import {
  type ManifestEntry,
  MAX_SAMPLE_N,
  type RunJson,
  type SampleSpec,
  type ValueDtype,
} from "../format/types.ts";
import { shardCount, shardPath, shardRange } from "../format/layout.ts";
import {
  checkRunCompatible,
  ensureRunJson,
  makeRunJson,
  readRunJson,
  RUN_JSON_PATH,
} from "../format/run_json.ts";
import type { ShardRecordInput } from "../format/shard_writer.ts";
import { makeManifest, putManifest, readManifests } from "../format/manifest.ts";
import { openShardSink, type ShardSink, verifyShard } from "../format/shard_sink.ts";
import { backendOf, checkSameBackend } from "./backend.ts";

/** Options of {@linkcode saveTopK}. */
export interface SaveTopKOptions {
  /** The runtime whose device runs the kernel (and the teacher, when it runs on the GPU). */
  rt: Runtime;
  /** The teacher: dense (full logits, reduced by the top-k kernel) or sparse (stored as it returns them). */
  teacher: AnyTeacher;
  /** The token sequences; its `seqLen` is the run's. */
  source: TokenSource;
  /** Where to write; `null` encodes everything but writes nothing (the benchmark's "writing off"). */
  store: ObjectStore | null;
  /** Top-k entries kept per position (0 with `sample`: samples only). */
  k: number;
  /**
   * Sampled targets: N draws per position from softmax(z/t), keyed by (seed, global position). Its
   * temperature is added to `lseTemperatures` when missing there (with a note), so that training can weight
   * the draws.
   */
  sample?: SampleSpec;
  /** Sequences per teacher forward pass. */
  batchSize: number;
  /** Sequences per shard (N). */
  sequencesPerShard: number;
  /** Element type of the stored logits. */
  valueDtype: ValueDtype;
  /** Temperatures of the stored logsumexps. */
  lseTemperatures: number[];
  /** This host and the host count: shard j belongs to host j mod count. */
  host: { index: number; count: number };
  /** Batches the GPU may run ahead of the writer (default 2). */
  queueDepth?: number;
  /**
   * The top-k kernel: `auto` (default; `wg` on software adapters, `radix` on real GPUs, or the
   * `SPARSEKD_TOPK_KERNEL` environment variable), `wg` or `radix` (docs/performance.md).
   */
  topkKernel?: TopKKernelChoice;
  /** Called after every batch written and every shard skipped. */
  onProgress?: (p: SaveProgress) => void;
  /** Told one-line notes (OUT's run.json records no backend). */
  onNote?: (line: string) => void;
}

/** Progress of a save. */
export interface SaveProgress {
  /** Sequences of this host's shards done (written or skipped). */
  sequencesDone: number;
  /** Sequences of this host's shards in all. */
  sequencesTotal: number;
  /** Sequences computed by the teacher in this process. */
  sequencesComputed: number;
  /** Bytes written in this process. */
  bytesWritten: number;
}

/** What a save did. */
export interface SaveSummary {
  /** The run.json in OUT. */
  run: RunJson;
  /** Shards written by this process. */
  shardsWritten: number;
  /** Shards of this host that already existed and were skipped. */
  shardsSkipped: number;
  /** Token positions computed and written by this process. */
  tokens: number;
  /** Shard bytes written by this process. */
  bytes: number;
  /** bytes / tokens (0 when nothing was written). */
  bytesPerToken: number;
  /** Mean distinct sampled ids per position written by this process (runs with `sample`; else 0). */
  sampleDistinctPerToken: number;
  /** What the same positions cost as full-vocabulary float32 logits, per token (4·V). */
  fullLogitsBytesPerToken: number;
  /** Wall time of the save, in seconds. */
  wallSeconds: number;
  /** Seconds the GPU stage sat idle because the writer had not taken the previous batches yet. */
  gpuWaitSeconds: number;
  /** Tokens per second over the wall time. */
  tokensPerSecond: number;
}

interface Batch {
  shard: number;
  records: ShardRecordInput[];
  /** Set on the last item when the teacher failed: the writer finishes what is complete, then throws it. */
  error?: unknown;
}

/**
 * Checks every option of a save against the teacher and the data before anything is written; a bad one
 * is a one-line {@linkcode SparsekdError} naming the option.
 *
 * @example
 * ```ts
 * checkSaveOptions(options); // throws on k = 0, 33 temperatures, host index ≥ count, …
 * ```
 */
export function checkSaveOptions(o: Omit<SaveTopKOptions, "rt" | "store">): void {
  const V = o.teacher.vocabSize, L = o.source.seqLen;
  const bad = (option: string, what: string): never => {
    throw new SparsekdError(`${option} ${what}`, { option });
  };
  const int = (x: number, min: number) => Number.isSafeInteger(x) && x >= min;
  const sparse = o.teacher.kind === "sparse";
  if (sparse && (!int(V, 2) || V > 2 ** 32)) {
    throw new SparsekdError(`the teacher's vocabulary size ${V} is outside 2 to 2^32`);
  }
  if (!sparse && (!int(V, 2) || V > MAX_VOCAB)) {
    throw new SparsekdError(
      `the teacher's vocabulary size ${V} is outside the 2 to ${MAX_VOCAB} that the top-k kernel supports`,
    );
  }
  if (o.sample !== undefined) checkSampleSpec(o.sample);
  if (o.sample !== undefined && (o.teacher as { kind?: string }).kind === "sparse") {
    bad(
      "sample",
      "needs a teacher that returns full logits: a sparse teacher's top-k cannot be sampled from",
    );
  }
  if (o.k === 0 && o.sample === undefined) {
    bad("k", "0 stores no top-k: give sample N as well to store sampled targets only (got k 0)");
  }
  if (!int(o.k, o.sample ? 0 : 1) || o.k > V) {
    bad("k", `must be between ${o.sample ? 0 : 1} and the teacher's vocabulary size ${V} (got ${o.k})`);
  }
  if (o.k > MAX_K) bad("k", `must be at most ${MAX_K} (got ${o.k})`);
  if (o.teacher.kind === "sparse" && o.teacher.k !== o.k) {
    bad(
      "k",
      `is ${o.k}, but the teacher (${o.teacher.description}) returns ${o.teacher.k} entries per position`,
    );
  }
  if (!int(o.batchSize, 1)) bad("batchSize", `must be an integer ≥ 1 (got ${o.batchSize})`);
  if (!int(o.sequencesPerShard, 1)) {
    bad("sequencesPerShard", `must be an integer ≥ 1 (got ${o.sequencesPerShard})`);
  }
  if (o.valueDtype !== "f32" && o.valueDtype !== "f16") {
    bad("valueDtype", `must be f32 or f16 (got ${JSON.stringify(o.valueDtype)})`);
  }
  const temps = Array.isArray(o.lseTemperatures)
    ? lseTemperaturesWithSample(o.lseTemperatures, o.sample)
    : undefined;
  if (!Array.isArray(temps) || temps.length < 1 || temps.length > MAX_TEMPERATURES) {
    bad("lseTemperatures", `must hold 1 to ${MAX_TEMPERATURES} temperatures (got ${temps?.length})`);
  }
  for (const t of temps!) {
    if (typeof t !== "number" || !Number.isFinite(t) || t <= 0) {
      bad("lseTemperatures", `must be finite numbers > 0 (got ${t})`);
    }
  }
  if (
    o.teacher.kind === "sparse" &&
    JSON.stringify(o.teacher.lseTemperatures) !== JSON.stringify(temps)
  ) {
    bad(
      "lseTemperatures",
      `are ${temps!.join(",")}, but the teacher (${o.teacher.description}) returns logsumexps at ` +
        `${o.teacher.lseTemperatures.join(",")}`,
    );
  }
  if (!int(o.host.count, 1)) bad("hostCount", `must be an integer ≥ 1 (got ${o.host.count})`);
  if (!int(o.host.index, 0) || o.host.index >= o.host.count) {
    bad(
      "hostIndex",
      `must be an integer from 0 to hostCount - 1 = ${o.host.count - 1} (got ${o.host.index})`,
    );
  }
  if (o.topkKernel !== undefined) parseTopKKernel(o.topkKernel);
  if (o.queueDepth !== undefined && !int(o.queueDepth, 1)) {
    bad("queueDepth", `must be an integer ≥ 1 (got ${o.queueDepth})`);
  }
  if (o.teacher.seqLen !== undefined && o.teacher.seqLen !== L) {
    throw new SparsekdError(
      `the teacher (${o.teacher.description}) works on sequences of ${o.teacher.seqLen} tokens, the data has ${L}`,
    );
  }
}

/**
 * Checks sampling settings (one-line {@linkcode SparsekdError}s naming `sample`, `sampleTemperature` or
 * `seed`): 1 to {@linkcode MAX_SAMPLE_N} draws, a finite temperature > 0, a seed from 0 to 2^53 − 1.
 *
 * @example
 * ```ts
 * checkSampleSpec({ n: 16, temperature: 1, seed: 0 });
 * ```
 */
export function checkSampleSpec(s: SampleSpec): void {
  const bad = (option: string, what: string): never => {
    throw new SparsekdError(`${option} ${what}`, { option });
  };
  if (!Number.isSafeInteger(s.n) || s.n < 1 || s.n > MAX_SAMPLE_N) {
    bad(
      "sample",
      `must be an integer from 1 to ${MAX_SAMPLE_N} draws per position (hit counts are 16-bit; got ${s.n})`,
    );
  }
  if (typeof s.temperature !== "number" || !Number.isFinite(s.temperature) || !(s.temperature > 0)) {
    bad("sampleTemperature", `must be a finite number > 0 (got ${s.temperature})`);
  }
  if (!Number.isSafeInteger(s.seed) || s.seed < 0) {
    bad("seed", `must be an integer from 0 to 2^53 - 1 (got ${s.seed})`);
  }
}

/**
 * The logsumexp temperatures a run stores: `temps`, plus the sample temperature t when sampling and t is
 * not among them (training weighs the draws by p_T / p_t, which needs the logsumexp at t).
 *
 * @example
 * ```ts
 * lseTemperaturesWithSample([1], { n: 16, temperature: 2, seed: 0 }); // [1, 2]
 * ```
 */
export function lseTemperaturesWithSample(temps: number[], sample: SampleSpec | undefined): number[] {
  if (!sample || temps.includes(sample.temperature)) return temps;
  return [...temps, sample.temperature];
}

/**
 * Runs the teacher over this host's shards that do not exist yet and writes them; then writes the host's
 * manifest. Every option is checked before anything is written, and OUT's run.json (when there is one)
 * must describe the same run, computed on the same backend (WebGPU or the CPU: their logsumexps differ in
 * the last bits; a run.json that records none is accepted with a note); this process writes run.json only
 * once its first shard exists, so a run that fails on its first shard leaves OUT as it found it. A shard
 * that exists is read back and verified (structure, the manifest's CRC32C where one lists it, its tokens
 * against the data) before it is skipped; a damaged one is a one-line error that names it. A shard that
 * another process writes meanwhile (the same host index twice) is verified and kept. When the teacher fails
 * (a served teacher's persistent error, non-finite logits), the shard whose records are all computed is
 * still written before the error ends the run, so that a rerun resumes after it.
 *
 * @example
 * ```ts
 * const summary = await saveTopK({ rt, teacher, source, store, k: 64, batchSize: 8, sequencesPerShard: 64,
 *   valueDtype: "f32", lseTemperatures: [1], host: { index: 0, count: 1 } });
 * ```
 */
export async function saveTopK(o: SaveTopKOptions): Promise<SaveSummary> {
  const t0 = performance.now();
  const { teacher, source, rt, store } = o;
  checkSaveOptions(o);
  const kernel = chooseTopKKernel(rt.adapter, o.topkKernel);
  const V = teacher.vocabSize, L = source.seqLen;
  const lseTemperatures = lseTemperaturesWithSample(o.lseTemperatures, o.sample);
  if (lseTemperatures !== o.lseTemperatures) {
    o.onNote?.(
      `note: the sample temperature ${o.sample!.temperature} is added to the logsumexp temperatures ` +
        `(now ${lseTemperatures.join(",")}), so that training can weight the draws`,
    );
  }
  const run = makeRunJson({
    vocabSize: V,
    k: o.k,
    seqLen: L,
    valueDtype: o.valueDtype,
    lseTemperatures,
    sequences: source.sequences,
    sequencesPerShard: o.sequencesPerShard,
    teacher: { fingerprint: teacher.fingerprint, description: teacher.description },
    data: {
      fingerprint: source.fingerprint,
      description: source.description,
      // Training masks the positions holding this id: their targets are in the next document.
      ...(source.boundaryToken !== undefined ? { boundaryToken: source.boundaryToken } : {}),
    },
    // A sparse teacher's targets do not depend on where save-topk runs: no backend to keep.
    backend: teacher.kind === "sparse" ? undefined : backendOf(rt),
    sample: o.sample,
  });
  if (store && (await store.exists(RUN_JSON_PATH))) {
    const existing = await readRunJson(store);
    checkRunCompatible(existing, { ...run, backend: existing.backend }, store.uri);
    if (run.backend !== undefined) checkSameBackend(existing, run.backend, store.uri, o.onNote);
  }
  let claimed = false;
  const claim = async () => {
    if (store && !claimed) await ensureRunJson(store, run);
    claimed = true;
  };
  const N = run.sequencesPerShard, S = run.sequences;
  const mine = shardsForHost(shardCount(S, N), o.host.index, o.host.count);
  const sizeOf = (j: number) => {
    const r = shardRange(j, N, S);
    return r.end - r.start;
  };

  const entries = new Map<number, ManifestEntry>();
  const todo: number[] = [];
  const progress: SaveProgress = {
    sequencesDone: 0,
    sequencesTotal: mine.reduce((n, j) => n + sizeOf(j), 0),
    sequencesComputed: 0,
    bytesWritten: 0,
  };
  const listed = store ? await readManifests(store) : new Map();
  for (const j of mine) {
    const existing = store && (await store.exists(shardPath(j)))
      ? await verifyShard(store, run, j, {
        expected: listed.get(j),
        checkRecord: await tokensOf(source, run, j),
      })
      : null;
    if (existing) {
      entries.set(j, existing);
      progress.sequencesDone += existing.records;
      o.onProgress?.({ ...progress });
    } else {
      todo.push(j);
    }
  }

  // The GPU stage: one batch per pull, at most `queueDepth` batches ahead of the writer.
  let gpuWait = 0;
  let idleSince = -1;
  const batchStarts = todo.flatMap((j) => {
    const r = shardRange(j, N, S);
    const out: { shard: number; start: number; count: number }[] = [];
    for (let s = r.start; s < r.end; s += o.batchSize) {
      out.push({ shard: j, start: s, count: Math.min(o.batchSize, r.end - s) });
    }
    return out;
  });
  let next = 0;
  const batches = new ReadableStream<Batch>({
    async pull(controller) {
      if (idleSince >= 0) gpuWait += performance.now() - idleSince;
      if (next >= batchStarts.length) return controller.close();
      const b = batchStarts[next++];
      let batch: Batch;
      try {
        batch = await computeBatch(rt, kernel, teacher, source, run, b.shard, b.start, b.count);
      } catch (error) {
        // Not controller.error: that would drop the batches queued before this one.
        next = batchStarts.length;
        controller.enqueue({ shard: b.shard, records: [], error });
        return controller.close();
      }
      controller.enqueue(batch);
      idleSince = performance.now();
    },
  }, { highWaterMark: o.queueDepth ?? 2 });

  // The writer stage: one shard sink open at a time, records streamed into it.
  const reader = batches.getReader();
  let open: ShardSink | null = null;
  let openRecords = 0;
  let shardsWritten = 0, shardsSkipped = mine.length - todo.length, tokens = 0, distinct = 0;
  const finish = async (sink: ShardSink) => {
    const { entry, existed } = await sink.close();
    if (entry) entries.set(sink.shard, entry);
    if (existed) shardsSkipped++;
    else shardsWritten++;
    await claim();
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (value.error !== undefined) {
        // The teacher failed: a shard whose records are all written is closed and kept, then the error ends
        // the run (a rerun resumes after it).
        if (open && openRecords === sizeOf(open.shard)) {
          const closing: ShardSink = open;
          open = null;
          await finish(closing);
        }
        throw value.error;
      }
      if (open && open.shard !== value.shard) {
        const closing: ShardSink = open;
        open = null;
        await finish(closing);
      }
      if (open === null) openRecords = 0;
      open ??= await openShardSink(store, run, value.shard, o.host.index, {
        onBytes: (n) => (progress.bytesWritten += n),
        recordCheck: () => tokensOf(source, run, value.shard),
      });
      for (const rec of value.records) {
        await open.write(rec);
        for (const n of rec.sampleLen ?? []) distinct += n;
      }
      openRecords += value.records.length;
      progress.sequencesDone += value.records.length;
      progress.sequencesComputed += value.records.length;
      tokens += value.records.length * L;
      o.onProgress?.({ ...progress });
    }
    if (open) {
      const closing: ShardSink = open;
      open = null;
      await finish(closing);
    }
  } catch (err) {
    await reader.cancel().catch(() => {});
    // Abort the shard object and wait until the store has removed what it had started.
    if (open) await open.abort(err);
    throw err;
  }

  if (store) {
    await claim();
    await putManifest(store, makeManifest(o.host.index, mine.map((j) => entries.get(j)!)));
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  return {
    run,
    shardsWritten,
    shardsSkipped,
    tokens,
    bytes: progress.bytesWritten,
    bytesPerToken: tokens ? progress.bytesWritten / tokens : 0,
    sampleDistinctPerToken: tokens && run.sample ? distinct / tokens : 0,
    fullLogitsBytesPerToken: 4 * V,
    wallSeconds,
    gpuWaitSeconds: gpuWait / 1000,
    tokensPerSecond: tokens / wallSeconds,
  };
}

/**
 * A record check for shard j: its tokens must be the data's (a shard of another run over other data, or
 * one whose token bytes changed, is refused).
 */
async function tokensOf(source: TokenSource, run: RunJson, shard: number) {
  const r = shardRange(shard, run.sequencesPerShard, run.sequences);
  const L = run.seqLen;
  const want = await source.read(r.start, r.end - r.start);
  return (record: { seq: number; tokens: Uint32Array }) => {
    const at = (record.seq - r.start) * L;
    for (let t = 0; t < L; t++) {
      if (record.tokens[t] !== want[at + t]) {
        throw new SparsekdError(
          `sequence ${record.seq} holds token ${record.tokens[t]} at position ${t}, the data has ${
            want[at + t]
          }`,
        );
      }
    }
  };
}

/**
 * A sparse teacher's targets of one batch, checked against the run (sizes, ids below V, the top-k order,
 * finite logsumexps) so that what is stored is a valid shard.
 */
async function sparseBatch(
  teacher: SparseTeacher,
  tokens: Uint32Array,
  start: number,
  count: number,
  run: RunJson,
) {
  const L = run.seqLen, K = run.k, V = run.vocabSize, T = run.lseTemperatures.length, rows = count * L;
  const top = await teacher.forwardSparse(tokens, start, count, L);
  if (top.ids.length !== rows * K || top.values.length !== rows * K || top.logsumexp.length !== rows * T) {
    throw new Error(`sparse teacher ${teacher.description} returned arrays of the wrong size`);
  }
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < K; i++) {
      const id = top.ids[r * K + i], v = top.values[r * K + i];
      const prev = i > 0 ? top.values[r * K + i - 1] : Infinity;
      if (id >= V || Number.isNaN(v) || v > prev) {
        throw new SparsekdError(
          `the teacher (${teacher.description}) returned an invalid top-k at sequence ${
            start + Math.floor(r / L)
          }, ` +
            `position ${r % L} (an id ≥ ${V}, a NaN or values out of order)`,
        );
      }
    }
    for (let m = 0; m < T; m++) {
      if (!Number.isFinite(top.logsumexp[r * T + m])) {
        throw new SparsekdError(
          `the teacher (${teacher.description}) returned a non-finite logsumexp at sequence ` +
            `${start + Math.floor(r / L)}, position ${r % L}`,
        );
      }
    }
  }
  return { indices: top.ids, values: top.values, logsumexp: top.logsumexp };
}

/** Teacher forward and top-k of one batch (a sparse teacher's own top-k), split into per-sequence records. */
async function computeBatch(
  rt: Runtime,
  kernel: TopKKernel,
  teacher: AnyTeacher,
  source: TokenSource,
  run: RunJson,
  shard: number,
  start: number,
  count: number,
): Promise<Batch> {
  const L = run.seqLen, K = run.k, T = run.lseTemperatures.length;
  const tokens = await source.read(start, count);
  const top = teacher.kind === "sparse"
    ? { ...await sparseBatch(teacher, tokens, start, count, run), kk: K, sampled: null }
    : await denseTopK(rt, kernel, teacher, tokens, start, count, run);
  const { kk, sampled } = top;
  const records: ShardRecordInput[] = [];
  let so = 0; // offset of the current sequence's sampled entries
  for (let i = 0; i < count; i++) {
    const rec: ShardRecordInput = {
      seq: start + i,
      tokens: tokens.slice(i * L, (i + 1) * L),
      idx: topRows(top.indices, i, L, K, kk),
      val: topRows(top.values, i, L, K, kk),
      lse: top.logsumexp.slice(i * L * T, (i + 1) * L * T),
    };
    if (sampled) {
      const len = sampled.len.slice(i * L, (i + 1) * L);
      const n = len.reduce((a, b) => a + b, 0);
      Object.assign(rec, {
        sampleLen: len,
        sampleIdx: sampled.idx.slice(so, so + n),
        sampleHits: sampled.hits.slice(so, so + n),
        sampleVal: sampled.val.slice(so, so + n),
      });
      so += n;
    }
    records.push(rec);
  }
  return { shard, records };
}

/** A dense teacher's logits of one batch reduced by the top-k kernel. */
async function denseTopK(
  rt: Runtime,
  kernel: TopKKernel,
  teacher: Teacher,
  tokens: Uint32Array,
  start: number,
  count: number,
  run: RunJson,
) {
  const L = run.seqLen, K = run.k, V = run.vocabSize;
  const logits = await teacher.forward(tokens, start, count, L);
  const rows = count * L;
  let top;
  let sampled: SampleResult | null = null;
  try {
    const opts = { temperatures: run.lseTemperatures, kernel };
    // k = 0 (samples only) still needs the logsumexps and the non-finite check: a top-1 pass gives both
    const kk = Math.max(K, 1);
    top = logits.kind === "gpu"
      ? await topKSelectedFromBuffer(rt, logits.buffer, rows, V, kk, opts)
      : await topKSelected(rt, logits.array, rows, V, kk, opts);
    if (run.sample) {
      const so = { ...run.sample, position0: start * L };
      sampled = logits.kind === "gpu"
        ? await sampleTokensFromBuffer(rt, logits.buffer, rows, V, so)
        : await sampleTokens(rt, logits.array, rows, V, so);
    }
  } catch (err) {
    if (err instanceof NonFiniteLogitsError) {
      const seq = start + Math.floor(err.row / L), pos = err.row % L;
      throw new SparsekdError(
        `the teacher's logits are not finite (NaN, +Infinity or only -Infinity) at sequence ${seq}, position ${pos}`,
      );
    }
    throw err;
  } finally {
    if (logits.kind === "gpu") logits.release();
  }
  return { ...top, kk: Math.max(K, 1), sampled };
}

/** Sequence i's L×K block of a top-kk result (K ≤ kk; K = 0 gives an empty array). */
function topRows<A extends Uint32Array | Float32Array>(a: A, i: number, L: number, K: number, kk: number): A {
  if (K === kk) return a.slice(i * L * K, (i + 1) * L * K) as A;
  return a.slice(0, 0) as A; // K = 0: the top-1 pass only gave the logsumexps
}
