/**
 * The values of a shard, one MessagePack value at a time: the header checked against run.json, a record
 * turned into typed arrays, the trailer checked against the records read. Each failure is reported through
 * `corrupt(offset, detail)`, which throws the reader's one-line error.
 * @module
 */
import type { UnpackValue } from "./msgpack_decode.ts";
import { sampleSpecProblem } from "./run_json.ts";
import { fromLeF16, fromLeF32, fromLeU16, fromLeU32 } from "./le_bytes.ts";
import {
  dtypeBytes,
  FORMAT_VERSION,
  type RunJson,
  SHARD_FORMAT,
  type ShardHeader,
  type ShardRecord,
} from "./types.ts";

/** How a check reports a corrupt value: the offset of the value at fault and what is wrong. Never returns. */
export type Corrupt = (offset: number, detail: string) => never;

/** A decoded MessagePack map. */
export type Obj = { [key: string]: UnpackValue };

/** Whether a decoded value is a map. */
export const isObj = (v: UnpackValue): v is Obj =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const isUint = (v: UnpackValue): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

export function checkHeader(
  v: UnpackValue,
  offset: number,
  corrupt: Corrupt,
  run: RunJson | undefined,
  shard: number | undefined,
): ShardHeader {
  if (!isObj(v)) return corrupt(offset, "the header is not a map");
  if (v.format !== SHARD_FORMAT) {
    corrupt(offset, `header format is ${JSON.stringify(v.format)}, expected "${SHARD_FORMAT}"`);
  }
  if (v.version !== FORMAT_VERSION) {
    corrupt(offset, `header version ${JSON.stringify(v.version)} is not supported`);
  }
  for (const key of ["shard", "host", "vocabSize", "k", "seqLen"]) {
    if (!isUint(v[key])) corrupt(offset, `header ${key} is not a non-negative integer`);
  }
  if (v.indexDtype !== "u16" && v.indexDtype !== "u32") {
    corrupt(offset, "header indexDtype is not u16 or u32");
  }
  if (v.valueDtype !== "f16" && v.valueDtype !== "f32") {
    corrupt(offset, "header valueDtype is not f16 or f32");
  }
  const temps = v.lseTemperatures;
  if (!Array.isArray(temps) || temps.some((t) => typeof t !== "number")) {
    corrupt(offset, "header lseTemperatures is not an array of numbers");
  }
  if (v.sample !== undefined) {
    const why = sampleSpecProblem(v.sample);
    if (why) corrupt(offset, `header sample ${why}`);
  }
  if (v.k === 0 && v.sample === undefined) corrupt(offset, "header k is 0 without sampled targets");
  const h = v as unknown as ShardHeader;
  if (shard !== undefined && h.shard !== shard) {
    corrupt(offset, `header says shard ${h.shard}, expected ${shard}`);
  }
  if (run) {
    for (
      const key of [
        "vocabSize",
        "k",
        "seqLen",
        "indexDtype",
        "valueDtype",
        "lseTemperatures",
        "sample",
      ] as const
    ) {
      const same = key === "lseTemperatures"
        ? sameTemperatures(h.lseTemperatures, run.lseTemperatures)
        : key === "sample"
        ? JSON.stringify(h.sample ?? null) === JSON.stringify(run.sample ?? null)
        : h[key] === run[key];
      if (!same) {
        corrupt(
          offset,
          `header ${key} ${JSON.stringify(h[key] ?? null)} differs from run.json's ${
            JSON.stringify(run[key] ?? null)
          }`,
        );
      }
    }
  }
  return h;
}

/** Equal temperature lists; a temperature stored as float32 by another writer matches its float64. */
function sameTemperatures(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i] || Math.fround(t) === Math.fround(b[i]));
}

export function checkTrailer(
  v: Obj,
  offset: number,
  corrupt: Corrupt,
  header: ShardHeader,
  records: number,
): { records: number; tokens: number } {
  if (v.end !== true || !isUint(v.records) || !isUint(v.tokens)) corrupt(offset, "malformed trailer");
  const n = v.records as number, t = v.tokens as number;
  if (n !== records) corrupt(offset, `trailer says ${n} records, the shard holds ${records}`);
  if (t !== records * header.seqLen) {
    corrupt(offset, `trailer says ${t} tokens, expected ${records * header.seqLen}`);
  }
  return { records: n, tokens: t };
}

export function decodeRecord(
  v: UnpackValue,
  offset: number,
  corrupt: Corrupt,
  h: ShardHeader,
): ShardRecord {
  if (!isObj(v)) return corrupt(offset, "a record is not a map");
  const keys = Object.keys(v);
  const wanted = h.sample ? [...RECORD_KEYS, ...SAMPLE_KEYS] : RECORD_KEYS;
  for (const key of wanted) {
    if (!Object.hasOwn(v, key)) corrupt(offset, `record lacks "${key}"`);
  }
  if (keys.length !== wanted.length) corrupt(offset, `record has unknown keys (${keys.join(", ")})`);
  if (!isUint(v.seq)) return corrupt(offset, "record seq is not a non-negative integer");
  const seq = v.seq;
  const L = h.seqLen, K = h.k, T = h.lseTemperatures.length;
  const binOf = (key: string, elems: number, width: number): Uint8Array => {
    const b = v[key];
    if (!(b instanceof Uint8Array)) return corrupt(offset, `record seq ${seq}: ${key} is not bin`);
    if (b.length !== elems * width) {
      corrupt(offset, `record seq ${seq}: ${key} has ${b.length} bytes, expected ${elems * width}`);
    }
    return b;
  };
  const tokens = fromLeU32(binOf("tokens", L, 4));
  const idxBytes = binOf("idx", L * K, dtypeBytes(h.indexDtype));
  const idx = h.indexDtype === "u16" ? fromLeU16(idxBytes) : fromLeU32(idxBytes);
  for (let i = 0; i < idx.length; i++) {
    if (idx[i] >= h.vocabSize) {
      corrupt(offset, `record seq ${seq}: idx[${i}] = ${idx[i]} is not below vocabSize ${h.vocabSize}`);
    }
  }
  const valBytes = binOf("val", L * K, dtypeBytes(h.valueDtype));
  const val = h.valueDtype === "f16" ? fromLeF16(valBytes) : fromLeF32(valBytes);
  const lse = fromLeF32(binOf("lse", L * T, 4));
  if (!h.sample) return { seq, tokens, idx, val, lse };
  return { seq, tokens, idx, val, lse, ...decodeSample(offset, corrupt, h, seq, binOf) };
}

const RECORD_KEYS = ["seq", "tokens", "idx", "val", "lse"];
const SAMPLE_KEYS = ["sampleLen", "sampleIdx", "sampleHits", "sampleVal"];

/**
 * The sampled targets of a record: every size is checked against Σ sampleLen (itself at most L·N) before a
 * typed array is made, then ids (below V, ascending per position) and hits (≥ 1, summing to N).
 */
function decodeSample(
  offset: number,
  corrupt: Corrupt,
  h: ShardHeader,
  seq: number,
  binOf: (key: string, elems: number, width: number) => Uint8Array,
): Required<Pick<ShardRecord, "sampleLen" | "sampleIdx" | "sampleHits" | "sampleVal">> {
  const L = h.seqLen, N = h.sample!.n;
  const at = `record seq ${seq}`;
  const sampleLen = fromLeU16(binOf("sampleLen", L, 2));
  let total = 0;
  for (let t = 0; t < L; t++) {
    if (sampleLen[t] < 1 || sampleLen[t] > N) {
      corrupt(offset, `${at}: sampleLen[${t}] = ${sampleLen[t]} is not between 1 and N = ${N}`);
    }
    total += sampleLen[t];
  }
  // total ≤ L·N here: the three arrays' sizes follow from it and are checked before decoding.
  const idxBytes = binOf("sampleIdx", total, dtypeBytes(h.indexDtype));
  const hitBytes = binOf("sampleHits", total, 2);
  const valBytes = binOf("sampleVal", total, dtypeBytes(h.valueDtype));
  const sampleIdx = h.indexDtype === "u16" ? fromLeU16(idxBytes) : fromLeU32(idxBytes);
  const sampleHits = fromLeU16(hitBytes);
  for (let t = 0, i = 0; t < L; t++) {
    let sum = 0;
    for (let e = 0; e < sampleLen[t]; e++, i++) {
      if (sampleIdx[i] >= h.vocabSize) {
        corrupt(offset, `${at}: sampleIdx[${i}] = ${sampleIdx[i]} is not below vocabSize ${h.vocabSize}`);
      }
      if (e > 0 && sampleIdx[i] <= sampleIdx[i - 1]) {
        corrupt(offset, `${at}: sampleIdx of position ${t} is not strictly ascending`);
      }
      if (sampleHits[i] === 0) corrupt(offset, `${at}: sampleHits[${i}] is 0`);
      sum += sampleHits[i];
    }
    if (sum !== N) corrupt(offset, `${at}: the sampleHits of position ${t} sum to ${sum}, expected N = ${N}`);
  }
  const sampleVal = h.valueDtype === "f16" ? fromLeF16(valBytes) : fromLeF32(valBytes);
  return { sampleLen, sampleIdx, sampleHits, sampleVal };
}
