/**
 * The shard sink: the one place that turns a shard's records into a stored object and its manifest entry
 * (size and CRC32C as the store computed them while writing, record and token counts from the shard's
 * range), and the one check of a shard that exists already (read back whole: structure, trailer, header
 * against run.json, the manifest's size and CRC32C where one lists it, and whatever the caller checks in
 * each record, e.g. the tokens against the data).
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { ObjectExistsError, type ObjectStore } from "../store/store.ts";
import { shardPath, shardRange } from "./layout.ts";
import { decodeShard } from "./shard_reader.ts";
import { createShardWriter, type ShardRecordInput, shardWriterOptions } from "./shard_writer.ts";
import type { ManifestEntry, RunJson, ShardRecord } from "./types.ts";
import { joinUri } from "./uri.ts";

/** What a finished {@linkcode ShardSink} reports. */
export interface ShardSinkResult {
  /** The shard's manifest entry (null when there is no store: the bytes were only counted). */
  entry: ManifestEntry | null;
  /** True when another process created the shard first; it was then verified instead of written. */
  existed: boolean;
}

/** A shard being written: records in, a manifest entry out. */
export interface ShardSink {
  /** Shard index j. */
  readonly shard: number;
  /** Writes the next record of the shard's range. */
  write(record: ShardRecordInput): Promise<void>;
  /** Ends the shard; resolves once the object exists (or was found written by another process). */
  close(): Promise<ShardSinkResult>;
  /** Drops the shard: the store removes what it had started; resolves when it has. */
  abort(reason: unknown): Promise<void>;
}

/** Options of {@linkcode verifyShard}. */
export interface VerifyShardOptions {
  /** The entry a host manifest has for the shard: its size and CRC32C must match. */
  expected?: ManifestEntry;
  /** Called for every record of the shard; throws a SparsekdError to refuse it. */
  checkRecord?: (record: ShardRecord) => void;
  /** The shard was found written by another process while this one wrote it (changes the hint). */
  concurrent?: boolean;
}

/** Options of {@linkcode openShardSink}. */
export interface ShardSinkOptions {
  /** Called with the size of every chunk written (progress). */
  onBytes?: (bytes: number) => void;
  /**
   * Makes the record check for {@linkcode verifyShard}, called only when another process wrote the shard
   * first and it must be verified.
   */
  recordCheck?: () => Promise<(record: ShardRecord) => void>;
}

/**
 * Opens shard j of `run` for writing into `store` (create-only), as written by host `host`. When another
 * process creates the same shard first (two processes with the same host index), the sink verifies that
 * shard with {@linkcode verifyShard} and reports it as `existed` instead of failing; a shard that does not
 * verify is a one-line {@linkcode SparsekdError}. With `store` null the bytes are encoded and counted only.
 *
 * @example
 * ```ts
 * const sink = await openShardSink(store, run, 0, 0);
 * for (const record of records) await sink.write(record);
 * const { entry } = await sink.close();
 * ```
 */
export async function openShardSink(
  store: ObjectStore | null,
  run: RunJson,
  shard: number,
  host: number,
  options: ShardSinkOptions = {},
): Promise<ShardSink> {
  const path = shardPath(shard);
  const range = shardRange(shard, run.sequencesPerShard, run.sequences);
  const encoder = createShardWriter(shardWriterOptions(run, shard, host));
  const counter = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, c) {
      options.onBytes?.(chunk.byteLength);
      c.enqueue(chunk);
    },
  });
  let object = null;
  let existedAtCreate = false;
  if (store) {
    try {
      object = await store.create(path);
    } catch (err) {
      if (!(err instanceof ObjectExistsError)) throw err;
      existedAtCreate = true;
    }
  }
  const piped = encoder.readable.pipeThrough(counter).pipeTo(object ? object.writable : new WritableStream());
  const finished = (async (): Promise<ShardSinkResult> => {
    try {
      if (existedAtCreate) throw new ObjectExistsError(joinUri(store!.uri, path));
      await piped;
      if (!object) return { entry: null, existed: false };
      const info = await object.done;
      const records = range.end - range.start;
      const entry = {
        shard,
        path,
        bytes: info.size,
        crc32c: info.crc32c,
        records,
        tokens: records * run.seqLen,
      };
      return { entry, existed: false };
    } catch (err) {
      if (!(err instanceof ObjectExistsError) || !store) throw err;
      // Another process wrote this shard meanwhile: the encoding is canonical, so a shard of the same run
      // has our bytes. Check it rather than trust it.
      await piped.catch(() => {});
      const checkRecord = await options.recordCheck?.();
      const entry = await verifyShard(store, run, shard, { checkRecord, concurrent: true });
      return { entry, existed: true };
    }
  })();
  finished.catch(() => {}); // awaited by close(); avoid an unhandled rejection while records are written
  const writer = encoder.writable.getWriter();
  return {
    shard,
    async write(record) {
      if (existedAtCreate) return;
      try {
        await writer.write(record);
      } catch (err) {
        await finished; // a failed store rejects here with its own error, which says more
        throw err;
      }
    },
    async close() {
      // A failed store surfaces through `finished`, with its own error; the writer only echoes it.
      await writer.close().catch(() => {});
      return await finished;
    },
    async abort(reason) {
      await writer.abort(reason).catch(() => {});
      await finished.catch(() => {});
    },
  };
}

/**
 * Checks a shard that exists in `store` before a resumed run skips it, and returns its manifest entry: the
 * whole shard is read back and decoded against run.json (header, range, every record, trailer, nothing
 * after it); `expected` (the entry a host manifest has for it) must match its size and CRC32C;
 * `checkRecord` may check each record against the run's inputs. Anything wrong is a one-line
 * {@linkcode SparsekdError} that names the shard and says how to recover (delete it and run again).
 *
 * @example
 * ```ts
 * const entry = await verifyShard(store, run, 3, { expected: manifests.get(3) });
 * ```
 */
export async function verifyShard(
  store: ObjectStore,
  run: RunJson,
  shard: number,
  options: VerifyShardOptions = {},
): Promise<ManifestEntry> {
  const path = shardPath(shard);
  const where = joinUri(store.uri, path);
  try {
    const it = decodeShard(await store.read(path), { where, run, shard, expected: options.expected });
    let step = await it.next();
    while (!step.done) {
      try {
        options.checkRecord?.(step.value);
      } catch (err) {
        if (!(err instanceof SparsekdError)) throw err;
        throw new SparsekdError(`shard ${where} is not this run's: ${err.message}`);
      }
      step = await it.next();
    }
    const s = step.value;
    return { shard, path, bytes: s.bytes, crc32c: s.crc32c, records: s.records, tokens: s.tokens };
  } catch (err) {
    if (!(err instanceof SparsekdError)) throw err;
    const how = options.concurrent
      ? "another process wrote it meanwhile (the same host index twice?) and it does not match this run"
      : "it cannot be kept";
    throw new SparsekdError(
      `${err.message} (${how}: delete ${where} and run again)`,
      { cause: err },
    );
  }
}
