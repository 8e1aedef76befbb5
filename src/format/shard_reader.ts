/**
 * The shard reader: streams the records of one shard, or of a whole OUT (local or gs://), with an
 * incremental MessagePack decoder; checks the header against run.json, the sequence range, the trailer
 * counts, the size and the CRC32C against the host manifests; hands out typed arrays.
 * @module
 */

import { SparsekdError } from "../errors.ts";
import { openStore } from "../store/open_store.ts";
import type { ObjectStore } from "../store/store.ts";
import { fromLeF16, fromLeF32, fromLeU16, fromLeU32 } from "./le_bytes.ts";
import { MsgpackStreamDecoder, MsgpackSyntaxError } from "./msgpack_decode.ts";
import type { UnpackValue } from "./msgpack_decode.ts";
import { Crc32c, crc32cToBase64 } from "./crc32c.ts";
import {
  dtypeBytes,
  FORMAT_VERSION,
  type ManifestEntry,
  type RunJson,
  SHARD_FORMAT,
  type ShardHeader,
  type ShardRecord,
} from "./types.ts";
import { joinUri } from "./uri.ts";
import { shardCount, shardPath, shardRange } from "./layout.ts";
import { readManifests } from "./manifest.ts";
import { readRunJson } from "./run_json.ts";

/** What {@linkcode decodeShard} returns once the whole shard has been read and checked. */
export interface ShardSummary {
  header: ShardHeader;
  records: number;
  tokens: number;
  /** Size in bytes. */
  bytes: number;
  /** CRC32C of the bytes, GCS base64 form. */
  crc32c: string;
}

/** Options of {@linkcode decodeShard}. */
export interface DecodeShardOptions {
  /** How errors name the shard (its full URI). */
  where: string;
  /** run.json of the OUT: the header must agree with it. */
  run?: RunJson;
  /** The shard index j the header must carry; with `run`, fixes the sequence range. */
  shard?: number;
  /** A manifest entry: size, CRC32C and counts must match it. */
  expected?: Pick<ManifestEntry, "bytes" | "crc32c" | "records" | "tokens"> & { host?: number };
}

type Obj = { [key: string]: UnpackValue };
const isObj = (v: UnpackValue): v is Obj =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const isUint = (v: UnpackValue): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/**
 * Decodes one shard from its byte stream, yielding its records in order; the generator's return value
 * is the {@linkcode ShardSummary}. Any corrupt, truncated or inconsistent input is a one-line
 * {@linkcode SparsekdError} naming the shard and the byte offset. The size and CRC32C are compared at the
 * end of the stream (after the last record was yielded).
 *
 * @example
 * ```ts
 * for await (const r of decodeShard(await store.read("shards/s000000.msgpack"), { where: "out/…" })) {
 *   console.log(r.seq, r.idx[0], r.val[0]);
 * }
 * ```
 */
export async function* decodeShard(
  stream: ReadableStream<Uint8Array>,
  options: DecodeShardOptions,
): AsyncGenerator<ShardRecord, ShardSummary> {
  const { where, run, expected } = options;
  const corrupt = (offset: number, detail: string): never => {
    throw new SparsekdError(`corrupt shard ${where} at byte ${offset}: ${detail}`);
  };
  const dec = new MsgpackStreamDecoder();
  const crc = new Crc32c();
  const reader = stream.getReader();
  let finished = false;
  let header: ShardHeader | undefined;
  let trailer: { records: number; tokens: number } | undefined;
  let records = 0;
  let lastSeq = -1;
  let range: { start: number; end: number } | undefined;
  if (run && options.shard !== undefined) {
    range = shardRange(options.shard, run.sequencesPerShard, run.sequences);
  }
  try {
    let eof = false;
    while (true) {
      let item;
      try {
        item = dec.next();
      } catch (err) {
        if (err instanceof MsgpackSyntaxError) corrupt(err.offset, err.detail);
        throw err;
      }
      if (item === undefined) {
        if (eof) break;
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (err) {
          if (err instanceof SparsekdError) throw err;
          throw new SparsekdError(
            `cannot read shard ${where} at byte ${dec.received}: ${
              String((err as Error)?.message ?? err).split("\n")[0]
            }`,
            { cause: err },
          );
        }
        if (chunk.done) eof = true;
        else {
          crc.update(chunk.value);
          dec.push(chunk.value);
        }
        continue;
      }
      const { value, offset } = item;
      if (trailer) corrupt(offset, "data after the trailer");
      if (!header) {
        header = checkHeader(value, offset, corrupt, run, options.shard);
        continue;
      }
      if (isObj(value) && Object.hasOwn(value, "end")) {
        trailer = checkTrailer(value, offset, corrupt, header, records);
        continue;
      }
      const record = decodeRecord(value, offset, corrupt, header);
      if (record.seq <= lastSeq) corrupt(offset, `seq ${record.seq} does not follow seq ${lastSeq}`);
      if (range) {
        const want = range.start + records;
        if (record.seq !== want) {
          corrupt(
            offset,
            `seq ${record.seq} where seq ${want} belongs (shard covers [${range.start}, ${range.end}))`,
          );
        }
      }
      lastSeq = record.seq;
      records++;
      yield record;
    }
    finished = true;
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  const size = dec.received;
  if (trailer && dec.pending > 0) corrupt(dec.offset, `${dec.pending} bytes after the trailer`);
  if (!header) {
    throw new SparsekdError(
      `truncated shard ${where} at byte ${size}: ${size === 0 ? "empty" : "inside the header"}`,
    );
  }
  if (!trailer) {
    const detail = dec.pending > 0 ? `inside the record at byte ${dec.offset}` : "before the trailer";
    throw new SparsekdError(`truncated shard ${where} at byte ${size}: ended ${detail}`);
  }
  if (range && records !== range.end - range.start) {
    throw new SparsekdError(
      `corrupt shard ${where} at byte ${size}: ${records} records, the shard covers [${range.start}, ${range.end})`,
    );
  }
  const crcText = crc32cToBase64(crc.value);
  if (expected) {
    if (size !== expected.bytes) {
      throw new SparsekdError(
        `corrupt shard ${where} at byte ${size}: size ${size} bytes, the manifest says ${expected.bytes}`,
      );
    }
    if (crcText !== expected.crc32c) {
      throw new SparsekdError(
        `corrupt shard ${where} at byte ${size}: CRC32C of bytes [0, ${size}) is ${crcText}, the manifest says ${expected.crc32c}`,
      );
    }
    if (records !== expected.records || trailer.tokens !== expected.tokens) {
      throw new SparsekdError(
        `corrupt shard ${where} at byte ${size}: ${records} records/${trailer.tokens} tokens, the manifest says ${expected.records}/${expected.tokens}`,
      );
    }
    if (expected.host !== undefined && expected.host !== header.host) {
      throw new SparsekdError(
        `corrupt shard ${where} at byte 0: written by host ${header.host}, listed in the manifest of host ${expected.host}`,
      );
    }
  }
  return { header, records, tokens: trailer.tokens, bytes: size, crc32c: crcText };
}

function checkHeader(
  v: UnpackValue,
  offset: number,
  corrupt: (offset: number, detail: string) => never,
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

function checkTrailer(
  v: Obj,
  offset: number,
  corrupt: (offset: number, detail: string) => never,
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

function decodeRecord(
  v: UnpackValue,
  offset: number,
  corrupt: (offset: number, detail: string) => never,
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

/** Options of {@linkcode readShard}. */
export interface ReadShardOptions {
  /** run.json of the OUT (read from the store when absent). */
  run?: RunJson;
  /** The manifest entry to check size and CRC32C against (none: only computed and returned). */
  expected?: DecodeShardOptions["expected"];
}

/**
 * Streams the records of shard j of a store.
 *
 * @example
 * ```ts
 * const it = readShard(store, 0);
 * for await (const record of it) console.log(record.seq);
 * ```
 */
export async function* readShard(
  store: ObjectStore,
  shard: number,
  options: ReadShardOptions = {},
): AsyncGenerator<ShardRecord, ShardSummary> {
  const run = options.run ?? (await readRunJson(store));
  const path = shardPath(shard);
  const where = joinUri(store.uri, path);
  if (!(await store.exists(path))) throw new SparsekdError(`shard ${where} does not exist`);
  return yield* decodeShard(await store.read(path), { where, run, shard, expected: options.expected });
}

/** Options of {@linkcode readShards}. */
export interface ReadShardsOptions {
  /** Only these shard indices, in this order (default: all shards 0…ceil(S/N)−1). */
  shards?: Iterable<number>;
  /** Skip shards not written yet instead of failing. */
  skipMissing?: boolean;
  /** Fail when a shard is not listed in any host manifest (default false: its CRC is then only computed). */
  requireManifest?: boolean;
  /** GCS endpoint, for gs:// URIs (e.g. the emulator). */
  endpoint?: string;
  /** Called after each shard with its checked summary. */
  onShard?: (summary: ShardSummary & { path: string }) => void;
}

/** A record with the shard it came from. */
export type ShardsRecord = ShardRecord & { shard: number };

/**
 * Streams the records of a whole OUT (a path, `file://…`, `gs://bucket/prefix` or an open store), shard
 * after shard, checking every shard against run.json and, where a host manifest lists it, its size and
 * CRC32C. Memory stays bounded by one shard's read buffer.
 *
 * @example
 * ```ts
 * for await (const r of readShards("runs/demo", { shards: [0, 2] })) {
 *   console.log(r.shard, r.seq, r.tokens.length);
 * }
 * ```
 */
export async function* readShards(
  source: string | ObjectStore,
  options: ReadShardsOptions = {},
): AsyncGenerator<ShardsRecord, void> {
  const store = typeof source === "string" ? await openStore(source, { endpoint: options.endpoint }) : source;
  const run = await readRunJson(store);
  const manifests = await readManifests(store);
  const total = shardCount(run.sequences, run.sequencesPerShard);
  const shards = options.shards ? [...options.shards] : Array.from({ length: total }, (_, j) => j);
  for (const j of shards) {
    if (!Number.isSafeInteger(j) || j < 0 || j >= total) {
      throw new SparsekdError(`shard ${j} does not exist in ${store.uri} (it has shards 0 to ${total - 1})`);
    }
  }
  for (const j of shards) {
    const path = shardPath(j);
    const where = joinUri(store.uri, path);
    if (!(await store.exists(path))) {
      if (options.skipMissing) continue;
      throw new SparsekdError(`shard ${where} does not exist`);
    }
    const expected = manifests.get(j);
    if (!expected && options.requireManifest) {
      throw new SparsekdError(`shard ${where} is not in any host manifest`);
    }
    const it = decodeShard(await store.read(path), { where, run, shard: j, expected });
    while (true) {
      const step = await it.next();
      if (step.done) {
        options.onShard?.({ ...step.value, path });
        break;
      }
      yield Object.assign(step.value, { shard: j });
    }
  }
}
