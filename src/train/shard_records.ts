/**
 * Shards → training records: the records [from, to) of save-topk's shards in storage order, each cut to the
 * entries the training uses (the first k per position, ids inside the student's vocabulary, the logsumexp at
 * the training temperature). The shuffling and batching on top are in `batches.ts`.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import type { RunJson } from "../format/types.ts";
import { shardsCovering } from "../format/layout.ts";
import { readShards } from "../format/shard_reader.ts";
import type { ObjectStore } from "../store/store.ts";
import type { TrainRecord } from "./records.ts";

/** One record as the shard reader yields it. */
export interface ShardRow {
  /** L token ids. */
  tokens: Uint32Array;
  /** L×K teacher ids, in decreasing order of logit per position. */
  idx: Uint16Array | Uint32Array;
  /** L×K raw teacher logits. */
  val: Float32Array;
  /** L×T logsumexp values, one per stored temperature. */
  lse: Float32Array;
  /** Sampled targets (run.json has `sample`): distinct ids per position (see `ShardRecord`). */
  sampleLen?: Uint16Array;
  /** The distinct sampled ids, ascending within a position. */
  sampleIdx?: Uint16Array | Uint32Array;
  /** Their draw counts. */
  sampleHits?: Uint16Array;
  /** Their raw teacher logits. */
  sampleVal?: Float32Array;
}

/**
 * The records [from, to) of the shards, in order, each mapped by `map` (e.g. {@linkcode shardRecord}). Memory:
 * one shard at a time.
 *
 * @example
 * ```ts
 * for await (const r of shardStream(store, run, 0, 8, (r) => ({ tokens: r.tokens }))) use(r);
 * ```
 */
export async function* shardStream(
  store: ObjectStore,
  run: RunJson,
  from: number,
  to: number,
  map: (r: ShardRow) => TrainRecord,
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
 * they are stored in decreasing order of logit), teacher ids checked against the student's vocabulary
 * (`pad`: `error` refuses ids ≥ `vocab`, `drop` drops them), and the logsumexp at stored temperature number
 * `tempIndex` (none when −1). With `sampleTempIndex` ≥ 0 (mode `sampled`) it also carries the sampled targets
 * (ids ≥ `vocab` refused or dropped, with their draws, by the same rule) and the logsumexp at stored
 * temperature number `sampleTempIndex`. Shards without top-k (`k` = 0 in run.json) give no `idx`/`val`.
 *
 * @example
 * ```ts
 * const rec = shardRecord(r, run, 8, run.vocabSize, -1, run.seqLen, "error");
 * ```
 */
export function shardRecord(
  r: ShardRow,
  run: RunJson,
  k: number,
  vocab: number,
  tempIndex: number,
  seqLen: number,
  pad: "error" | "drop",
  sampleTempIndex = -1,
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
          throw new SparsekdError(
            `vocabPad: teacher id ${id} is outside the student's vocabulary (${vocab}); drop such ids`,
            { option: "vocabPad" },
          );
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
  const out: TrainRecord = run.k > 0 ? { tokens: r.tokens, idx, val, lse } : { tokens: r.tokens, lse };
  if (sampleTempIndex >= 0) {
    Object.assign(out, sampledTargets(r, vocab, seqLen, pad));
    const lseSample = new Float32Array(seqLen);
    for (let t = 0; t < seqLen; t++) lseSample[t] = r.lse[t * T + sampleTempIndex];
    out.lseSample = lseSample;
  }
  return out;
}

/** The sampled targets of a shard row, checked for consistency, with ids ≥ `vocab` refused or dropped. */
function sampledTargets(r: ShardRow, vocab: number, seqLen: number, pad: "error" | "drop") {
  const { sampleLen, sampleIdx, sampleHits, sampleVal } = r;
  if (!sampleLen || !sampleIdx || !sampleHits || !sampleVal) {
    throw new SparsekdError("kdMode sampled: a shard record has no sampled targets", { option: "kdMode" });
  }
  let total = 0;
  for (const n of sampleLen) total += n;
  if (
    sampleLen.length !== seqLen || sampleIdx.length !== total || sampleHits.length !== total ||
    sampleVal.length !== total
  ) {
    throw new SparsekdError(
      `kdMode sampled: a shard record's sampled targets are inconsistent (${sampleLen.length} positions, ` +
        `${total} ids by sampleLen; ${sampleIdx.length} ids, ${sampleHits.length} counts, ${sampleVal.length} logits)`,
      { option: "kdMode" },
    );
  }
  let keep = 0;
  for (const id of sampleIdx) if (id < vocab) keep++;
  if (keep === total) return { sampleLen, sampleIdx, sampleHits, sampleVal };
  if (pad === "error") {
    const id = sampleIdx.find((id) => id >= vocab);
    throw new SparsekdError(
      `vocabPad: sampled teacher id ${id} is outside the student's vocabulary (${vocab}); drop such ids`,
      { option: "vocabPad" },
    );
  }
  const len = new Uint16Array(seqLen), idx = new Uint32Array(keep);
  const hits = new Uint16Array(keep), val = new Float32Array(keep);
  let o = 0, n = 0;
  for (let t = 0; t < seqLen; t++) {
    for (let j = o; j < o + sampleLen[t]; j++) {
      if (sampleIdx[j] >= vocab) continue;
      idx[n] = sampleIdx[j];
      hits[n] = sampleHits[j];
      val[n] = sampleVal[j];
      n++;
      len[t]++;
    }
    o += sampleLen[t];
  }
  return { sampleLen: len, sampleIdx: idx, sampleHits: hits, sampleVal: val };
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
