/**
 * The shard format: run.json, per-host manifests and MessagePack shards of top-k records, with their
 * checksums (CRC32C) and f16 values; writing and reading them.
 *
 * @example CRC32C of the standard check string, and f16 round trips
 * ```ts
 * import { crc32c, f16ToF32, f32ToF16 } from "./mod.ts";
 *
 * if (crc32c(new TextEncoder().encode("123456789")) !== 0xe3069283) throw new Error("CRC32C check value");
 * const back = f16ToF32(f32ToF16(new Float32Array([1.5, -2, 0.25])));
 * if (back.join() !== "1.5,-2,0.25") throw new Error("values exact in f16 survive the round trip");
 * ```
 * @module
 */
export {
  dtypeBytes,
  FORMAT_VERSION,
  indexDtypeFor,
  MANIFEST_FORMAT,
  MAX_SAMPLE_N,
  RUN_FORMAT,
  SHARD_FORMAT,
} from "./types.ts";
export { manifestPath, shardCount, shardPath, shardRange } from "./layout.ts";
export type {
  Backend,
  Fingerprinted,
  IndexDtype,
  Manifest,
  ManifestEntry,
  RunJson,
  SampleSpec,
  ShardHeader,
  ShardRecord,
  ShardTrailer,
  ValueDtype,
} from "./types.ts";
export { f16ToF32, f32ToF16 } from "./f16.ts";
export { Crc32c, crc32c, crc32cFromBase64, crc32cToBase64, crc32cUpdate } from "./crc32c.ts";
export { createShardWriter, encodeShardRecord, shardWriterOptions } from "./shard_writer.ts";
export type { ShardRecordInput, ShardWriterOptions } from "./shard_writer.ts";
export { decodeShard, readShard, readShards } from "./shard_reader.ts";
export type {
  DecodeShardOptions,
  ReadShardOptions,
  ReadShardsOptions,
  ShardsRecord,
  ShardSummary,
} from "./shard_reader.ts";
export {
  checkRunCompatible,
  ensureRunJson,
  makeRunJson,
  readRunJson,
  runDifference,
  validateRunJson,
  writeRunJson,
} from "./run_json.ts";
export type { RunJsonInput } from "./run_json.ts";
export { makeManifest, readManifests, writeManifest } from "./manifest.ts";
