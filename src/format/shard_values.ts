/**
 * The values of a shard, one MessagePack value at a time: the header checked against run.json, a record
 * turned into typed arrays, the trailer checked against the records read. Each failure is reported through
 * `corrupt(offset, detail)`, which throws the reader's one-line error.
 * @module
 */
import type { UnpackValue } from "./msgpack_decode.ts";
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
  const h = v as unknown as ShardHeader;
  if (shard !== undefined && h.shard !== shard) {
    corrupt(offset, `header says shard ${h.shard}, expected ${shard}`);
  }
  if (run) {
    for (const key of ["vocabSize", "k", "seqLen", "indexDtype", "valueDtype", "lseTemperatures"] as const) {
      const same = key === "lseTemperatures"
        ? sameTemperatures(h.lseTemperatures, run.lseTemperatures)
        : h[key] === run[key];
      if (!same) {
        corrupt(
          offset,
          `header ${key} ${JSON.stringify(h[key])} differs from run.json's ${JSON.stringify(run[key])}`,
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
  for (const key of ["seq", "tokens", "idx", "val", "lse"]) {
    if (!Object.hasOwn(v, key)) corrupt(offset, `record lacks "${key}"`);
  }
  if (keys.length !== 5) corrupt(offset, `record has unknown keys (${keys.join(", ")})`);
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
  return { seq, tokens, idx, val, lse };
}
