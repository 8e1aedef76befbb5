/**
 * The save-topk pipeline: data → teacher → select (WGSL top-k) → encode (format v1) → store.
 *
 * Batches flow through a web `ReadableStream` whose `highWaterMark` bounds how far the GPU runs ahead:
 * while the consumer encodes and uploads batch n, the stream's `pull` already runs the teacher and the
 * top-k kernel on batch n+1. Memory is bounded by that queue, whatever the dataset's size.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import type { Runtime } from "../gpu/runtime.ts";
import { NonFiniteLogitsError, topK, topKFromBuffer } from "../kernels/topk.ts";
import type { TokenSource } from "../data/source.ts";
import { shardsForHost } from "../data/hosts.ts";
import type { Teacher } from "../teacher/teacher.ts";
import type { ObjectStore } from "../store/store.ts";
import {
  type ManifestEntry,
  type RunJson,
  shardCount,
  shardPath,
  shardRange,
  type ValueDtype,
} from "../format/constants.ts";
import { ensureRunJson, makeRunJson } from "../format/run_json.ts";
import { createShardWriter, type ShardRecordInput, shardWriterOptions } from "../format/shard_writer.ts";
import { Crc32c } from "../format/crc32c.ts";
import { encodeManifest, makeManifest } from "../format/manifest.ts";
import { type Manifest, manifestPath } from "../format/constants.ts";
import { ObjectExistsError } from "../store/store.ts";

/** Options of {@linkcode saveTopK}. */
export interface SaveTopKOptions {
  /** The runtime whose device runs the kernel (and the teacher, when it runs on the GPU). */
  rt: Runtime;
  /** The teacher. */
  teacher: Teacher;
  /** The token sequences; its `seqLen` is the run's. */
  source: TokenSource;
  /** Where to write; `null` encodes everything but writes nothing (the benchmark's "writing off"). */
  store: ObjectStore | null;
  /** Top-k entries kept per position. */
  k: number;
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
  /** Called after every batch written and every shard skipped. */
  onProgress?: (p: SaveProgress) => void;
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
}

/**
 * Runs the teacher over this host's shards that do not exist yet and writes them; then writes the host's
 * manifest. A shard that exists is skipped (its bytes are those an uninterrupted run writes, since every
 * shard is deterministic and appears only once complete), after checking that OUT's run.json matches.
 *
 * @example
 * ```ts
 * const summary = await saveTopK({ rt, teacher, source, store, k: 64, batchSize: 8, sequencesPerShard: 64,
 *   valueDtype: "f32", lseTemperatures: [1], host: { index: 0, count: 1 } });
 * ```
 */
export async function saveTopK(o: SaveTopKOptions): Promise<SaveSummary> {
  const t0 = performance.now();
  const { teacher, source, rt } = o;
  const V = teacher.vocabSize, L = source.seqLen;
  if (!Number.isInteger(o.k) || o.k < 1 || o.k > V) {
    throw new SparsekdError(`--k must be between 1 and the teacher's vocabulary size ${V} (got ${o.k})`);
  }
  if (o.k > 1024) throw new SparsekdError(`--k must be at most 1024 (got ${o.k})`);
  if (teacher.seqLen !== undefined && teacher.seqLen !== L) {
    throw new SparsekdError(
      `the teacher (${teacher.description}) works on sequences of ${teacher.seqLen} tokens, the data has ${L}`,
    );
  }
  const wanted = makeRunJson({
    vocabSize: V,
    k: o.k,
    seqLen: L,
    valueDtype: o.valueDtype,
    lseTemperatures: o.lseTemperatures,
    sequences: source.sequences,
    sequencesPerShard: o.sequencesPerShard,
    teacher: { fingerprint: teacher.fingerprint, description: teacher.description },
    data: { fingerprint: source.fingerprint, description: source.description },
  });
  const run = o.store ? await ensureRunJson(o.store, wanted) : wanted;
  const N = run.sequencesPerShard, S = run.sequences;
  const mine = shardsForHost(shardCount(S, N), o.host.index, o.host.count);

  const entries = new Map<number, ManifestEntry>();
  const todo: number[] = [];
  const progress: SaveProgress = {
    sequencesDone: 0,
    sequencesTotal: mine.reduce((n, j) => n + rangeSize(shardRange(j, N, S)), 0),
    sequencesComputed: 0,
    bytesWritten: 0,
  };
  for (const j of mine) {
    const existing = o.store ? await describeExisting(o.store, run, j) : null;
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
      controller.enqueue(await computeBatch(rt, teacher, source, run, b.shard, b.start, b.count));
      idleSince = performance.now();
    },
  }, { highWaterMark: o.queueDepth ?? 2 });

  // The writer stage: one shard object open at a time, records streamed into it.
  const reader = batches.getReader();
  let open:
    | {
      shard: number;
      writer: WritableStreamDefaultWriter<ShardRecordInput>;
      finished: Promise<ManifestEntry>;
    }
    | null = null;
  let shardsWritten = 0, tokens = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (open && open.shard !== value.shard) {
        await open.writer.close();
        entries.set(open.shard, await open.finished);
        shardsWritten++;
        open = null;
      }
      if (!open) open = await openShard(o.store, run, value.shard, o.host.index, progress);
      for (const rec of value.records) await open.writer.write(rec);
      progress.sequencesDone += value.records.length;
      progress.sequencesComputed += value.records.length;
      tokens += value.records.length * L;
      o.onProgress?.({ ...progress });
    }
    if (open) {
      await open.writer.close();
      entries.set(open.shard, await open.finished);
      shardsWritten++;
      open = null;
    }
  } catch (err) {
    await reader.cancel().catch(() => {});
    if (open) {
      // Abort the shard object and wait until the store has removed what it had started.
      await open.writer.abort(err).catch(() => {});
      await open.finished.catch(() => {});
    }
    throw err;
  }

  if (o.store) {
    const list = mine.map((j) => entries.get(j)!);
    await putManifest(o.store, makeManifest(o.host.index, list));
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  return {
    run,
    shardsWritten,
    shardsSkipped: mine.length - todo.length,
    tokens,
    bytes: progress.bytesWritten,
    bytesPerToken: tokens ? progress.bytesWritten / tokens : 0,
    fullLogitsBytesPerToken: 4 * V,
    wallSeconds,
    gpuWaitSeconds: gpuWait / 1000,
    tokensPerSecond: tokens / wallSeconds,
  };
}

function rangeSize(r: { start: number; end: number }): number {
  return r.end - r.start;
}

/** Teacher forward and top-k of one batch, split into per-sequence records. */
async function computeBatch(
  rt: Runtime,
  teacher: Teacher,
  source: TokenSource,
  run: RunJson,
  shard: number,
  start: number,
  count: number,
): Promise<Batch> {
  const L = run.seqLen, K = run.k, V = run.vocabSize, T = run.lseTemperatures.length;
  const tokens = await source.read(start, count);
  const logits = await teacher.forward(tokens, start, count, L);
  const rows = count * L;
  let top;
  try {
    const opts = { temperatures: run.lseTemperatures };
    top = logits.kind === "gpu"
      ? await topKFromBuffer(rt, logits.buffer, rows, V, K, opts)
      : await topK(rt, logits.array, rows, V, K, opts);
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
  const records: ShardRecordInput[] = [];
  for (let i = 0; i < count; i++) {
    records.push({
      seq: start + i,
      tokens: tokens.slice(i * L, (i + 1) * L),
      idx: top.indices.slice(i * L * K, (i + 1) * L * K),
      val: top.values.slice(i * L * K, (i + 1) * L * K),
      lse: top.logsumexp.slice(i * L * T, (i + 1) * L * T),
    });
  }
  return { shard, records };
}

/** Opens shard j for writing: a shard writer piped into a create-only store object, counting bytes and CRC. */
async function openShard(
  store: ObjectStore | null,
  run: RunJson,
  shard: number,
  host: number,
  progress: SaveProgress,
) {
  const range = shardRange(shard, run.sequencesPerShard, run.sequences);
  const encoder = createShardWriter(shardWriterOptions(run, shard, host));
  const crc = new Crc32c();
  let size = 0;
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, c) {
      crc.update(chunk);
      size += chunk.byteLength;
      progress.bytesWritten += chunk.byteLength;
      c.enqueue(chunk);
    },
  });
  const sink = store ? (await store.create(shardPath(shard))) : null;
  const piped = encoder.readable.pipeThrough(counter).pipeTo(sink ? sink.writable : new WritableStream());
  const finished = (async (): Promise<ManifestEntry> => {
    await piped;
    if (sink) {
      const info = await sink.done;
      if (info.size !== size) {
        throw new Error(`shard ${shard}: the store reports ${info.size} bytes, ${size} were sent`);
      }
    }
    const records = range.end - range.start;
    return {
      shard,
      path: shardPath(shard),
      bytes: size,
      crc32c: crc.base64,
      records,
      tokens: records * run.seqLen,
    };
  })();
  finished.catch(() => {}); // awaited by the caller; avoid an unhandled rejection while it writes
  return { shard, writer: encoder.writable.getWriter(), finished };
}

/** The manifest entry of shard j when it already exists (size and CRC32C read back from the store). */
async function describeExisting(
  store: ObjectStore,
  run: RunJson,
  shard: number,
): Promise<ManifestEntry | null> {
  const path = shardPath(shard);
  if (!(await store.exists(path))) return null;
  const crc = new Crc32c();
  let size = 0;
  const stream = await store.read(path);
  for await (const chunk of stream) {
    crc.update(chunk);
    size += chunk.byteLength;
  }
  const r = shardRange(shard, run.sequencesPerShard, run.sequences);
  return {
    shard,
    path,
    bytes: size,
    crc32c: crc.base64,
    records: r.end - r.start,
    tokens: (r.end - r.start) * run.seqLen,
  };
}

/**
 * Writes host h's manifest. When one is there already with the same content (a finished run started
 * again) nothing changes; when it differs (the host count changed since) it is replaced: a manifest is an
 * index of shards that are themselves never overwritten, and the new one describes the same bytes.
 */
async function putManifest(store: ObjectStore, manifest: Manifest): Promise<void> {
  const bytes = encodeManifest(manifest);
  const path = manifestPath(manifest.host);
  try {
    await store.writeBytes(path, bytes);
    return;
  } catch (err) {
    if (!(err instanceof ObjectExistsError)) throw err;
  }
  const old = await store.readBytes(path);
  if (old.length === bytes.length && old.every((b, i) => b === bytes[i])) return;
  await store.delete(path);
  await store.writeBytes(path, bytes);
}
