/**
 * The shard writer: a TransformStream from sequence records to the bytes of one shard (header, one map
 * per record, trailer), deterministic so that a restarted run writes identical bytes.
 * @module
 */

import { SparsekdError } from "../errors.ts";
import { f32ToF16 } from "./f16.ts";
import { Float64, PackWriter } from "./msgpack_encode.ts";
import { leBytes } from "./le_bytes.ts";
import { FORMAT_VERSION, type RunJson, SHARD_FORMAT, type ShardHeader } from "./types.ts";
import { shardRange } from "./layout.ts";

/** What a record given to the writer may hold. */
export interface ShardRecordInput {
  /** Global sequence index. */
  seq: number;
  /** L token ids. */
  tokens: Uint32Array;
  /** L×K top-k ids (either width; checked against the vocabulary and narrowed/widened as needed). */
  idx: Uint16Array | Uint32Array;
  /** L×K logits as float32, or, when the value dtype is f16, float16 bit patterns as a Uint16Array. */
  val: Float32Array | Uint16Array;
  /** L×T logsumexps. */
  lse: Float32Array;
  /** Sampled targets (runs with `sample` only, then required): distinct ids per position. */
  sampleLen?: Uint16Array;
  /** The distinct sampled ids, ascending within a position (either width). */
  sampleIdx?: Uint16Array | Uint32Array;
  /** Draws per id (sum N per position). */
  sampleHits?: Uint16Array;
  /** Their logits as float32, or float16 bit patterns when the value dtype is f16. */
  sampleVal?: Float32Array | Uint16Array;
}

/** Options of {@linkcode createShardWriter}: the header's fields (shard j, host, shapes, dtypes), plus its range. */
export interface ShardWriterOptions extends Omit<ShardHeader, "format" | "version"> {
  /**
   * When given, records must be exactly `[first, end)` in order (the shard's range); the writer errors on
   * a gap, a repeat or a short shard.
   */
  range?: { start: number; end: number };
}

/**
 * Writer options for shard j of a run, with the shard's range filled in.
 *
 * @example
 * ```ts
 * const opts = shardWriterOptions(run, 3, 0);
 * ```
 */
export function shardWriterOptions(run: RunJson, shard: number, host: number): ShardWriterOptions {
  return {
    shard,
    host,
    vocabSize: run.vocabSize,
    k: run.k,
    seqLen: run.seqLen,
    indexDtype: run.indexDtype,
    valueDtype: run.valueDtype,
    lseTemperatures: run.lseTemperatures,
    ...(run.sample ? { sample: { ...run.sample } } : {}),
    range: shardRange(shard, run.sequencesPerShard, run.sequences),
  };
}

/**
 * The header map of a shard in its canonical key order.
 *
 * @example
 * ```ts
 * const h = shardHeader(shardWriterOptions(run, 0, 0));
 * ```
 */
export function shardHeader(o: ShardWriterOptions): ShardHeader {
  const h: ShardHeader = {
    format: SHARD_FORMAT,
    version: FORMAT_VERSION,
    shard: o.shard,
    host: o.host,
    vocabSize: o.vocabSize,
    k: o.k,
    seqLen: o.seqLen,
    indexDtype: o.indexDtype,
    valueDtype: o.valueDtype,
    lseTemperatures: o.lseTemperatures,
  };
  if (o.sample) h.sample = { n: o.sample.n, temperature: o.sample.temperature, seed: o.sample.seed };
  return h;
}

/**
 * Encodes a shard header (lseTemperatures and the sample temperature always as float64, integers in their
 * smallest form; `sample` last and only when the run has it).
 *
 * @example
 * ```ts
 * const bytes = encodeShardHeader(shardHeader(options));
 * ```
 */
export function encodeShardHeader(h: ShardHeader): Uint8Array {
  const w = new PackWriter();
  w.mapHeader(h.sample ? 11 : 10);
  w.str("format").str(h.format);
  w.str("version").int(h.version);
  w.str("shard").int(h.shard);
  w.str("host").int(h.host);
  w.str("vocabSize").int(h.vocabSize);
  w.str("k").int(h.k);
  w.str("seqLen").int(h.seqLen);
  w.str("indexDtype").str(h.indexDtype);
  w.str("valueDtype").str(h.valueDtype);
  w.str("lseTemperatures").arrayHeader(h.lseTemperatures.length);
  for (const t of h.lseTemperatures) w.value(new Float64(t));
  if (h.sample) {
    w.str("sample").mapHeader(3);
    w.str("n").int(h.sample.n);
    w.str("temperature").float64(h.sample.temperature);
    w.str("seed").int(h.sample.seed);
  }
  return w.take();
}

/**
 * Encodes a shard trailer.
 *
 * @example
 * ```ts
 * encodeShardTrailer(2, 16); // {"end":true,"records":2,"tokens":16}
 * ```
 */
export function encodeShardTrailer(records: number, tokens: number): Uint8Array {
  const w = new PackWriter(32);
  w.mapHeader(3).str("end").value(true).str("records").int(records).str("tokens").int(tokens);
  return w.take();
}

function fail(o: ShardWriterOptions, what: string): never {
  throw new SparsekdError(`shard ${o.shard}: ${what}`);
}

/**
 * Encodes one sequence record, checking its shapes and ids against the options.
 *
 * @example
 * ```ts
 * const bytes = encodeShardRecord(options, { seq: 0, tokens, idx, val, lse });
 * ```
 */
export function encodeShardRecord(o: ShardWriterOptions, r: ShardRecordInput): Uint8Array {
  const L = o.seqLen, K = o.k, T = o.lseTemperatures.length;
  if (!Number.isSafeInteger(r.seq) || r.seq < 0) fail(o, `record seq ${r.seq} is not a non-negative integer`);
  const at = `record seq ${r.seq}`;
  if (r.tokens.length !== L) fail(o, `${at}: tokens has ${r.tokens.length} entries, expected ${L}`);
  if (r.idx.length !== L * K) fail(o, `${at}: idx has ${r.idx.length} entries, expected ${L * K}`);
  if (r.val.length !== L * K) fail(o, `${at}: val has ${r.val.length} entries, expected ${L * K}`);
  if (r.lse.length !== L * T) fail(o, `${at}: lse has ${r.lse.length} entries, expected ${L * T}`);
  for (let i = 0; i < r.idx.length; i++) {
    if (r.idx[i] >= o.vocabSize) {
      fail(o, `${at}: idx[${i}] = ${r.idx[i]} is not below vocabSize ${o.vocabSize}`);
    }
  }
  let idx: Uint16Array | Uint32Array = r.idx;
  if (o.indexDtype === "u16" && !(idx instanceof Uint16Array)) idx = new Uint16Array(idx);
  if (o.indexDtype === "u32" && !(idx instanceof Uint32Array)) idx = new Uint32Array(idx);
  let val: Float32Array | Uint16Array = r.val;
  if (o.valueDtype === "f16" && val instanceof Float32Array) val = f32ToF16(val);
  if (o.valueDtype === "f32" && !(val instanceof Float32Array)) {
    fail(o, `${at}: val must be a Float32Array for f32`);
  }
  const sample = o.sample ? sampleFields(o, r, at) : null;
  const w = new PackWriter(
    128 + r.tokens.byteLength + idx.byteLength + val.byteLength + r.lse.byteLength +
      (sample ? sample.reduce((n, b) => n + b.byteLength, 0) : 0),
  );
  w.mapHeader(sample ? 9 : 5);
  w.str("seq").int(r.seq);
  w.str("tokens").bin(leBytes(r.tokens));
  w.str("idx").bin(leBytes(idx));
  w.str("val").bin(leBytes(val));
  w.str("lse").bin(leBytes(r.lse));
  if (sample) {
    const [len, sIdx, hits, sVal] = sample;
    w.str("sampleLen").bin(leBytes(len));
    w.str("sampleIdx").bin(leBytes(sIdx));
    w.str("sampleHits").bin(leBytes(hits));
    w.str("sampleVal").bin(leBytes(sVal));
  } else if (r.sampleLen || r.sampleIdx || r.sampleHits || r.sampleVal) {
    fail(o, `${at}: holds sampled targets but the run has no sample settings`);
  }
  return w.take();
}

/**
 * Checks a record's sampled targets against the run (per position: 1..N distinct ids, ascending, below V,
 * hits ≥ 1 summing to N) and returns them in the stored dtypes.
 */
function sampleFields(
  o: ShardWriterOptions,
  r: ShardRecordInput,
  at: string,
): [Uint16Array, Uint16Array | Uint32Array, Uint16Array, Float32Array | Uint16Array] {
  const L = o.seqLen, N = o.sample!.n;
  const { sampleLen: len, sampleIdx, sampleHits: hits, sampleVal } = r;
  if (!len || !sampleIdx || !hits || !sampleVal) {
    fail(o, `${at}: lacks its sampled targets (sampleLen, sampleIdx, sampleHits, sampleVal)`);
  }
  if (!(len instanceof Uint16Array) || !(hits instanceof Uint16Array)) {
    fail(o, `${at}: sampleLen and sampleHits must be Uint16Arrays`);
  }
  if (len.length !== L) fail(o, `${at}: sampleLen has ${len.length} entries, expected ${L}`);
  let total = 0;
  for (let t = 0; t < L; t++) {
    if (len[t] < 1 || len[t] > N) fail(o, `${at}: sampleLen[${t}] = ${len[t]} is not between 1 and N = ${N}`);
    total += len[t];
  }
  for (
    const [name, a] of [["sampleIdx", sampleIdx], ["sampleHits", hits], ["sampleVal", sampleVal]] as const
  ) {
    if (a.length !== total) {
      fail(
        o,
        `${at}: ${name} has ${a.length} entries, expected Σ sampleLen = ${total}`,
      );
    }
  }
  for (let t = 0, i = 0; t < L; t++) {
    let sum = 0;
    for (let e = 0; e < len[t]; e++, i++) {
      if (sampleIdx[i] >= o.vocabSize) {
        fail(o, `${at}: sampleIdx[${i}] = ${sampleIdx[i]} is not below vocabSize ${o.vocabSize}`);
      }
      if (e > 0 && sampleIdx[i] <= sampleIdx[i - 1]) {
        fail(o, `${at}: sampleIdx of position ${t} is not ascending`);
      }
      if (hits[i] < 1) fail(o, `${at}: sampleHits[${i}] is 0`);
      sum += hits[i];
    }
    if (sum !== N) fail(o, `${at}: the hits of position ${t} sum to ${sum}, expected N = ${N}`);
  }
  let sIdx: Uint16Array | Uint32Array = sampleIdx;
  if (o.indexDtype === "u16" && !(sIdx instanceof Uint16Array)) sIdx = new Uint16Array(sIdx);
  if (o.indexDtype === "u32" && !(sIdx instanceof Uint32Array)) sIdx = new Uint32Array(sIdx);
  let sVal: Float32Array | Uint16Array = sampleVal;
  if (o.valueDtype === "f16" && sVal instanceof Float32Array) sVal = f32ToF16(sVal);
  if (o.valueDtype === "f32" && !(sVal instanceof Float32Array)) {
    fail(o, `${at}: sampleVal must be a Float32Array for f32`);
  }
  return [len, sIdx, hits, sVal];
}

/**
 * A TransformStream from records to the bytes of one shard: the header comes out at once, one chunk per
 * record, the trailer when the input closes. Records must come in increasing `seq` (exactly the shard's
 * range when `range` is set). Pipe its readable into `store.create(path)`'s writable.
 *
 * @example
 * ```ts
 * const writer = createShardWriter(shardWriterOptions(run, 0, 0));
 * const object = await store.create(shardPath(0));
 * const piped = writer.readable.pipeTo(object.writable);
 * const w = writer.writable.getWriter();
 * await w.write({ seq: 0, tokens, idx, val, lse });
 * await w.close();
 * await piped;
 * const info = await object.done;
 * ```
 */
export function createShardWriter(
  options: ShardWriterOptions,
): TransformStream<ShardRecordInput, Uint8Array> {
  const o = { ...options, lseTemperatures: [...options.lseTemperatures] };
  let records = 0;
  let last = -1;
  return new TransformStream<ShardRecordInput, Uint8Array>({
    start(controller) {
      controller.enqueue(encodeShardHeader(shardHeader(o)));
    },
    transform(record, controller) {
      if (record.seq <= last) fail(o, `record seq ${record.seq} does not follow seq ${last}`);
      if (o.range) {
        const want = o.range.start + records;
        if (record.seq !== want) fail(o, `record seq ${record.seq} given where seq ${want} belongs`);
      }
      controller.enqueue(encodeShardRecord(o, record));
      last = record.seq;
      records++;
    },
    flush(controller) {
      if (o.range && records !== o.range.end - o.range.start) {
        fail(o, `closed after ${records} records, expected ${o.range.end - o.range.start}`);
      }
      controller.enqueue(encodeShardTrailer(records, records * o.seqLen));
    },
  });
}
