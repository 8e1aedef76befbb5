/**
 * The one storage interface shared by the local folder and Google Cloud Storage.
 *
 * Paths are relative to the store's root and use `/` (for example `shards/s000000.msgpack`).
 * @module
 */
import { SparsekdError } from "../errors.ts";

/** What a finished write reports. */
export interface ObjectInfo {
  /** Path relative to the store's root. */
  path: string;
  /** Size in bytes. */
  size: number;
  /** CRC32C of the bytes, base64 of the big-endian 4 bytes (the GCS convention). */
  crc32c: string;
}

/** Options of {@linkcode ObjectStore.read}. */
export interface ReadOptions {
  /** First byte to read (default 0). */
  start?: number;
  /** One past the last byte to read (default: the end). */
  end?: number;
}

/** A create-only writable object: the object appears only once `close()` has resolved. */
export interface ObjectWriter {
  /** The byte sink. Closing it completes the object; aborting it leaves no object behind. */
  readonly writable: WritableStream<Uint8Array>;
  /** Resolves with the object's info once the object exists; rejects if the write failed. */
  readonly done: Promise<ObjectInfo>;
}

/**
 * A store: a local folder or a `gs://bucket/prefix`. Writes are create-only: writing a path that already
 * exists fails with {@linkcode ObjectExistsError}, and a half-written object is never visible.
 */
export interface ObjectStore {
  /** The store's root as the user wrote it (a path, `file://…` or `gs://…`). */
  readonly uri: string;
  /** True when `path` exists. */
  exists(path: string): Promise<boolean>;
  /** The paths under `prefix`, sorted. */
  list(prefix: string): Promise<string[]>;
  /** Size of the object in bytes, or null when it does not exist. */
  size(path: string): Promise<number | null>;
  /** Streams an object's bytes (or a byte range). */
  read(path: string, options?: ReadOptions): Promise<ReadableStream<Uint8Array>>;
  /** Reads a whole small object. */
  readBytes(path: string): Promise<Uint8Array>;
  /** Starts a create-only streamed write. */
  create(path: string): Promise<ObjectWriter>;
  /** Writes a whole small object, create-only. */
  writeBytes(path: string, bytes: Uint8Array): Promise<ObjectInfo>;
  /** Deletes an object (no error when it is absent). */
  delete(path: string): Promise<void>;
}

/**
 * Thrown by create-only writes when the object already exists. It is a {@linkcode SparsekdError}, so a second
 * writer of the same object ends with one `error:` line naming it, never a stack trace.
 *
 * @example
 * ```ts
 * const err = new ObjectExistsError("gs://b/run/shards/s000001.msgpack");
 * console.assert(err instanceof SparsekdError && !err.message.includes("\n"));
 * ```
 */
export class ObjectExistsError extends SparsekdError {
  /**
   * The error for an object that already exists.
   *
   * @param uri the full URI of the object that exists
   */
  constructor(readonly uri: string) {
    super(`${uri} already exists (sparsekd never overwrites an object)`);
    this.name = "ObjectExistsError";
  }
}

/** What a store's opener gets besides the URI (see `src/store/registry.ts`). */
export interface StoreOpenOptions {
  /** The endpoint for this URI's scheme, when one was given (e.g. the GCS emulator's base URL). */
  endpoint?: string;
  /** Create the store's root now and check that it is writable (a read-only store refuses). */
  create?: boolean;
}

/** Opens the store a URI names; one per scheme in the store registry. */
export type StoreOpener = (uri: string, options: StoreOpenOptions) => Promise<ObjectStore>;
