/**
 * The shard reader: streams the records of one shard, or of a whole OUT (local or gs://), with an
 * incremental MessagePack decoder; checks the header against run.json, the sequence range, the trailer
 * counts, the size and the CRC32C against the host manifests; hands out typed arrays.
 * @module
 */

import { SparsekdError } from "../errors.ts";
import { openStore } from "../store/open_store.ts";
import type { ObjectStore } from "../store/store.ts";
import { MsgpackStreamDecoder, MsgpackSyntaxError } from "./msgpack_decode.ts";
import { Crc32c, crc32cToBase64 } from "./crc32c.ts";
import type { ManifestEntry, RunJson, ShardHeader, ShardRecord } from "./types.ts";
import { joinUri } from "./uri.ts";
import { shardCount, shardPath, shardRange } from "./layout.ts";
import { readManifests } from "./manifest.ts";
import { readRunJson } from "./run_json.ts";
import { checkHeader, checkTrailer, decodeRecord, isObj } from "./shard_values.ts";

/** What {@linkcode decodeShard} returns once the whole shard has been read and checked. */
export interface ShardSummary {
  /** The shard's header. */
  header: ShardHeader;
  /** Sequence records read. */
  records: number;
  /** Token positions read (records × seqLen). */
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
  /**
   * A manifest entry: size, CRC32C and counts must match it. (The header's `host` is who wrote the shard;
   * a host restarted with another host count lists shards that other hosts wrote, so it is not compared.)
   */
  expected?: Pick<ManifestEntry, "bytes" | "crc32c" | "records" | "tokens">;
}

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
  const dec = new MsgpackStreamDecoder({ maxValueBytes: run ? maxValueBytes(run) : undefined });
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
  }
  return { header, records, tokens: trailer.tokens, bytes: size, crc32c: crcText };
}

/**
 * A bound on the encoded size of any one value of a shard of `run` (header, record or trailer): a record
 * holds at most `seqLen` tokens, k ids and values per position and one logsumexp per temperature and
 * position, each at most 4 bytes (and the sampled targets, when the run has them), plus MessagePack framing; 64 KiB covers the header and the keys. A value
 * announced larger is refused before its bytes are buffered.
 */
function maxValueBytes(run: RunJson): number {
  // sampled targets: per position a Uint16 length and at most N (id, hit, value) triples of ≤ 10 bytes
  const sample = run.sample ? 2 + 10 * run.sample.n : 0;
  return 65536 + run.seqLen * (4 + 8 * run.k + 4 * run.lseTemperatures.length + sample) + 1024;
}

/** Options of {@linkcode readShard}. */
export interface ReadShardOptions {
  /** run.json of the OUT (read from the store when absent). */
  run?: RunJson;
  /**
   * The manifest entry to check size and CRC32C against, before any record is handed out. Without it the
   * shard is checked by its structure alone, and its records come out as they are read.
   */
  expected?: DecodeShardOptions["expected"];
}

/**
 * Streams the records of shard j of a store. With `expected`, the whole shard is read and its size and
 * CRC32C checked before its first record is yielded.
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
  const expected = options.expected;
  if (!expected) return yield* decodeShard(await store.read(path), { where, run, shard });
  const bytes = await readVerified(store, path, where, run, shard, expected);
  return yield* decodeShard(streamOf(bytes), { where, run, shard, expected });
}

/** A one-chunk stream of `bytes`. */
function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      c.enqueue(bytes);
      c.close();
    },
  });
}

/**
 * Reads a whole shard that a manifest lists and checks it completely (structure, size, CRC32C, counts):
 * the store's size must be the manifest's before anything is allocated, and no more bytes than that are
 * read. Returns the bytes, which are then decoded a second time to hand out the records.
 */
async function readVerified(
  store: ObjectStore,
  path: string,
  where: string,
  run: RunJson,
  shard: number,
  expected: NonNullable<DecodeShardOptions["expected"]>,
): Promise<Uint8Array> {
  const size = await store.size(path);
  if (size === null) throw new SparsekdError(`shard ${where} does not exist`);
  if (size > expected.bytes) {
    throw new SparsekdError(
      `corrupt shard ${where} at byte ${expected.bytes}: size ${size} bytes, the manifest says ${expected.bytes}`,
    );
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  const reader = (await store.read(path)).getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (at + value.length > size) {
        throw new SparsekdError(`corrupt shard ${where} at byte ${size}: it grew while being read`);
      }
      bytes.set(value, at);
      at += value.length;
    }
  } catch (err) {
    await reader.cancel().catch(() => {});
    if (err instanceof SparsekdError) throw err;
    throw new SparsekdError(
      `cannot read shard ${where} at byte ${at}: ${String((err as Error)?.message ?? err).split("\n")[0]}`,
      { cause: err },
    );
  } finally {
    reader.releaseLock();
  }
  const got = bytes.subarray(0, at);
  // The first pass checks everything (the documented errors, in their order) and hands out nothing.
  const it = decodeShard(streamOf(got), { where, run, shard, expected });
  while (!(await it.next()).done) { /* records are dropped: only the checks matter here */ }
  return got;
}

/** Options of {@linkcode readShards}. */
export interface ReadShardsOptions {
  /** Only these shard indices, in this order (default: all shards 0…ceil(S/N)−1). */
  shards?: Iterable<number>;
  /** Skip shards not written yet instead of failing. */
  skipMissing?: boolean;
  /**
   * Fail when a shard is not listed in any host manifest (default true). A listed shard is read whole and
   * its size and CRC32C checked before its records are handed out; an unlisted one (only with `false`: a
   * host that has not finished yet) is checked by its structure alone, which cannot tell a shard copied
   * from another run of the same shapes, nor flipped bits inside the numbers.
   */
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
 * after shard, checking every shard against run.json and its host manifest (size and CRC32C, before any
 * of its records is yielded). Memory stays bounded by one shard.
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
  const requireManifest = options.requireManifest ?? true;
  const shards = options.shards ? [...options.shards] : null;
  for (const j of shards ?? []) {
    if (!Number.isSafeInteger(j) || j < 0 || j >= total) {
      throw new SparsekdError(`shard ${j} does not exist in ${store.uri} (it has shards 0 to ${total - 1})`);
    }
  }
  for (let i = 0; i < (shards ? shards.length : total); i++) {
    const j = shards ? shards[i] : i;
    const path = shardPath(j);
    const where = joinUri(store.uri, path);
    if (!(await store.exists(path))) {
      if (options.skipMissing) continue;
      throw new SparsekdError(`shard ${where} does not exist`);
    }
    const expected = manifests.get(j);
    if (!expected && requireManifest) {
      throw new SparsekdError(
        `shard ${where} is not in any host manifest (its host has not finished, or it comes from elsewhere)`,
      );
    }
    const it = expected
      ? readShard(store, j, { run, expected })
      : decodeShard(await store.read(path), { where, run, shard: j });
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
