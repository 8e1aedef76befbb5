/**
 * Format v1's names and version, its dtypes, and the shapes of run.json, shard headers, records, trailers
 * and host manifests. `docs/format.md` is the normative description.
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

/**
 * What computed a run's top-k and logsumexps: the WGSL kernel on a WebGPU adapter, or the CPU reference.
 * Ids and logits agree between the two, the logsumexps only up to their last bits, so one run's shards
 * come from one backend.
 */
export type Backend = "webgpu" | "cpu";

/** A `teacher` or `data` entry of run.json: a fingerprint plus free-form description fields. */
export interface Fingerprinted {
  /** A hash of the weights (teacher) or of the token data (data). */
  fingerprint: string;
  /** Free-form description fields (e.g. a `description`). */
  [key: string]: unknown;
}

/** `OUT/run.json`. */
export interface RunJson {
  /** Always {@linkcode RUN_FORMAT}. */
  format: typeof RUN_FORMAT;
  /** Always {@linkcode FORMAT_VERSION}. */
  version: typeof FORMAT_VERSION;
  /** Vocabulary size V of the teacher. */
  vocabSize: number;
  /** Top-k entries kept per token position. */
  k: number;
  /** Tokens per sequence. */
  seqLen: number;
  /** How token ids are stored: `u16` when V ≤ 65536, else `u32`. */
  indexDtype: IndexDtype;
  /** How the top-k logits are stored. */
  valueDtype: ValueDtype;
  /** Temperatures T of the stored full-vocabulary logsumexp (one value per position and T). */
  lseTemperatures: number[];
  /** Number of sequences of the run. */
  sequences: number;
  /** Sequences per shard (the last shard may hold fewer). */
  sequencesPerShard: number;
  /** The teacher: its fingerprint and description. */
  teacher: Fingerprinted;
  /** The token data: its fingerprint and description. */
  data: Fingerprinted;
  /** The backend that wrote the shards; absent in run.json files written before it was recorded. */
  backend?: Backend;
  /**
   * Sampled targets (`save-topk --sample N`): absent when the run stores none. When present, every record
   * carries the `sample*` fields of {@linkcode ShardRecord}; `k` may then be 0 (samples only).
   */
  sample?: SampleSpec;
}

/** The most draws per position a run may store (`sample.n`; hit counts are Uint16). */
export const MAX_SAMPLE_N = 1024;

/** How a run's sampled targets were drawn (run.json `sample`, repeated in every shard header). */
export interface SampleSpec {
  /** Draws per position N, with replacement. */
  n: number;
  /** The temperature t of the teacher distribution softmax(z/t) the draws come from. */
  temperature: number;
  /** The run seed of the counter-based generator, keyed by (seed, global position). */
  seed: number;
}

/** The first MessagePack value of a shard: its identity plus the run.json fields a reader needs. */
export interface ShardHeader
  extends
    Pick<RunJson, "vocabSize" | "k" | "seqLen" | "indexDtype" | "valueDtype" | "lseTemperatures" | "sample"> {
  /** Always {@linkcode SHARD_FORMAT}. */
  format: typeof SHARD_FORMAT;
  /** Always {@linkcode FORMAT_VERSION}. */
  version: typeof FORMAT_VERSION;
  /** Shard index j. */
  shard: number;
  /** The host that wrote the shard. */
  host: number;
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
  /**
   * Sampled targets only (run.json has `sample`): for each of the L positions, the number of distinct ids
   * its N draws gave. Position t's entries are `[o_t, o_t + sampleLen[t])` of the three arrays below, where
   * o_t is the sum of `sampleLen[0..t)`.
   */
  sampleLen?: Uint16Array;
  /** The distinct sampled ids, ascending within a position (same dtype as `idx`). */
  sampleIdx?: Uint16Array | Uint32Array;
  /** How many of the position's N draws gave each id (they sum to N per position). */
  sampleHits?: Uint16Array;
  /** The raw teacher logits of the sampled ids (float32 after decoding). */
  sampleVal?: Float32Array;
}

/** The last MessagePack value of a shard. */
export interface ShardTrailer {
  /** Marks the trailer (always true). */
  end: true;
  /** Sequence records in the shard. */
  records: number;
  /** Token positions in the shard (records × seqLen). */
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
  /** Always {@linkcode MANIFEST_FORMAT}. */
  format: typeof MANIFEST_FORMAT;
  /** Always {@linkcode FORMAT_VERSION}. */
  version: typeof FORMAT_VERSION;
  /** Host index h. */
  host: number;
  /** The shards host h wrote. */
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
