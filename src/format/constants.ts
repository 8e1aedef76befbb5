/**
 * Format v1: names, versions, dtypes, the shapes of run.json, shard headers, records, trailers and host
 * manifests, and the path helpers. `docs/format.md` is the normative description.
 * @module
 */

/** `format` of run.json. */
export const RUN_FORMAT = "sparsekd.topk";
/** `format` of a shard header. */
export const SHARD_FORMAT = "sparsekd.shard";
/** `format` of a host manifest. */
export const MANIFEST_FORMAT = "sparsekd.manifest";
/** The one version this code reads and writes. */
export const FORMAT_VERSION = 1;

/** Element type of the top-k token ids. */
export type IndexDtype = "u16" | "u32";
/** Element type of the top-k logits. */
export type ValueDtype = "f32" | "f16";

/** A `teacher` or `data` entry of run.json: a fingerprint plus free-form description fields. */
export interface Fingerprinted {
  /** A hash of the weights (teacher) or of the token data (data). */
  fingerprint: string;
  [key: string]: unknown;
}

/** `OUT/run.json`. */
export interface RunJson {
  format: typeof RUN_FORMAT;
  version: typeof FORMAT_VERSION;
  vocabSize: number;
  k: number;
  seqLen: number;
  indexDtype: IndexDtype;
  valueDtype: ValueDtype;
  lseTemperatures: number[];
  sequences: number;
  sequencesPerShard: number;
  teacher: Fingerprinted;
  data: Fingerprinted;
}

/** The first MessagePack value of a shard. */
export interface ShardHeader {
  format: typeof SHARD_FORMAT;
  version: typeof FORMAT_VERSION;
  shard: number;
  host: number;
  vocabSize: number;
  k: number;
  seqLen: number;
  indexDtype: IndexDtype;
  valueDtype: ValueDtype;
  lseTemperatures: number[];
}

/**
 * One decoded sequence record. `idx` is a `Uint16Array` when the index dtype is `u16` and a `Uint32Array`
 * when it is `u32`; `val` is always float32 (f16 values are widened exactly). Row-major: position t's
 * entries are `[t*K, (t+1)*K)` of `idx`/`val` and `[t*T, (t+1)*T)` of `lse` (T = number of temperatures).
 */
export interface ShardRecord {
  /** Global sequence index. */
  seq: number;
  /** L input token ids. */
  tokens: Uint32Array;
  /** L×K top-k token ids, value-descending, ties by the lower id. */
  idx: Uint16Array | Uint32Array;
  /** L×K raw teacher logits of those ids. */
  val: Float32Array;
  /** L×T logsumexp over the full vocabulary of logits/T, for each temperature T. */
  lse: Float32Array;
}

/** The last MessagePack value of a shard. */
export interface ShardTrailer {
  end: true;
  records: number;
  tokens: number;
}

/** One shard of a host manifest. */
export interface ManifestEntry {
  /** Shard index j. */
  shard: number;
  /** Path relative to OUT, e.g. `shards/s000003.msgpack`. */
  path: string;
  /** Size in bytes. */
  bytes: number;
  /** CRC32C of the bytes: base64 of its 4 big-endian bytes (the GCS convention). */
  crc32c: string;
  /** Number of sequence records. */
  records: number;
  /** records × seqLen. */
  tokens: number;
}

/** `OUT/manifests/h{h:05d}.json`, written by host h after its last shard. */
export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof FORMAT_VERSION;
  host: number;
  shards: ManifestEntry[];
}

/**
 * The index dtype the format prescribes for a vocabulary: `u16` when V ≤ 65,536, else `u32`.
 *
 * @example
 * ```ts
 * indexDtypeFor(50257); // "u16"
 * indexDtypeFor(128256); // "u32"
 * ```
 */
export function indexDtypeFor(vocabSize: number): IndexDtype {
  return vocabSize <= 65536 ? "u16" : "u32";
}

/**
 * Bytes per element of a dtype.
 *
 * @example
 * ```ts
 * dtypeBytes("f16"); // 2
 * ```
 */
export function dtypeBytes(dtype: IndexDtype | ValueDtype): number {
  return dtype === "u16" || dtype === "f16" ? 2 : 4;
}

/**
 * Path of shard j relative to OUT.
 *
 * @example
 * ```ts
 * shardPath(3); // "shards/s000003.msgpack"
 * ```
 */
export function shardPath(shard: number): string {
  return `shards/s${String(shard).padStart(6, "0")}.msgpack`;
}

/**
 * Path of host h's manifest relative to OUT.
 *
 * @example
 * ```ts
 * manifestPath(2); // "manifests/h00002.json"
 * ```
 */
export function manifestPath(host: number): string {
  return `manifests/h${String(host).padStart(5, "0")}.json`;
}

/**
 * Number of shards of a run: ceil(S / N).
 *
 * @example
 * ```ts
 * shardCount(10, 4); // 3
 * ```
 */
export function shardCount(sequences: number, sequencesPerShard: number): number {
  return Math.ceil(sequences / sequencesPerShard);
}

/**
 * The global sequences [start, end) that shard j covers: [j·N, min((j+1)·N, S)).
 *
 * @example
 * ```ts
 * shardRange(2, 4, 10); // { start: 8, end: 10 }
 * ```
 */
export function shardRange(
  shard: number,
  sequencesPerShard: number,
  sequences: number,
): { start: number; end: number } {
  const start = shard * sequencesPerShard;
  return { start, end: Math.min(start + sequencesPerShard, sequences) };
}

/**
 * Joins a store URI and a relative path for messages.
 *
 * @example
 * ```ts
 * joinUri("gs://b/run", "shards/s000000.msgpack"); // "gs://b/run/shards/s000000.msgpack"
 * ```
 */
export function joinUri(uri: string, path: string): string {
  return uri.endsWith("/") ? uri + path : `${uri}/${path}`;
}
