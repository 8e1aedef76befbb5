/**
 * The emulator's in-memory state: buckets, objects with generations and hashes, and resumable upload sessions.
 *
 * Everything lives in memory and disappears with the process; the emulator is for trying `gs://` output and for
 * tests, not for keeping data.
 * @module
 */
import { createHash } from "node:crypto";
import { crc32c, crc32cToBase64 } from "../../src/format/crc32c.ts";

/** One stored object (a single live generation; older generations are not kept). */
export interface StoredObject {
  /** Object name inside its bucket. */
  name: string;
  /** Bucket name. */
  bucket: string;
  /** The bytes. */
  data: Uint8Array;
  /** Generation number (microseconds since the epoch, strictly increasing within the emulator). */
  generation: bigint;
  /** Metageneration (always 1: metadata updates are not emulated). */
  metageneration: number;
  /** Content type given at upload time. */
  contentType: string;
  /** CRC32C, base64 of the big-endian 4 bytes. */
  crc32c: string;
  /** MD5, base64. */
  md5Hash: string;
  /** Creation time. */
  created: Date;
  /** Custom metadata given at upload time. */
  metadata?: Record<string, string>;
}

/** One bucket. */
export interface StoredBucket {
  /** Bucket name. */
  name: string;
  /** Creation time. */
  created: Date;
  /** Objects by name. */
  objects: Map<string, StoredObject>;
}

/** Preconditions on an object's generation, as in the JSON API's query parameters. */
export interface Preconditions {
  /** The object's generation must equal this; 0 means the object must not exist. */
  ifGenerationMatch?: bigint;
  /** The object's generation must differ from this; 0 means the object must exist. */
  ifGenerationNotMatch?: bigint;
  /** The object's metageneration must equal this. */
  ifMetagenerationMatch?: bigint;
  /** The object's metageneration must differ from this. */
  ifMetagenerationNotMatch?: bigint;
}

/** A resumable upload session, keyed by its upload id. */
export interface UploadSession {
  /** The `upload_id` of the session URI. */
  id: string;
  /** Target bucket. */
  bucket: string;
  /** Target object name. */
  name: string;
  /** Content type for the object. */
  contentType: string;
  /** Custom metadata for the object. */
  metadata?: Record<string, string>;
  /** Preconditions checked at initiation and again when the object is finalized. */
  preconditions: Preconditions;
  /** Bytes persisted so far, in order. */
  chunks: Uint8Array[];
  /** Number of bytes persisted so far. */
  received: number;
  /** The finished object, once the session is complete. */
  result?: StoredObject;
  /** Set when the session failed for good (412 at finalization, checksum mismatch, cancellation). */
  failure?: { status: number; reason: string; message: string };
}

/**
 * A request the JSON API refuses: the HTTP status, a GCS `reason` and a message.
 *
 * @example
 * ```ts
 * throw new ApiFailure(404, "notFound", "No such object: bkt/a.bin");
 * ```
 */
export class ApiFailure extends Error {
  /**
   * @param status HTTP status
   * @param reason GCS error reason (`notFound`, `conditionNotMet`, …)
   * @param message human-readable message
   */
  constructor(readonly status: number, readonly reason: string, message: string) {
    super(message);
    this.name = "ApiFailure";
  }
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/;

/**
 * The emulator's state. All methods are synchronous; the HTTP layer calls them once a request's body is in.
 *
 * @example
 * ```ts
 * const state = new EmulatorState();
 * state.createBucket("demo");
 * state.putObject("demo", "a.txt", new TextEncoder().encode("hi"), "text/plain", {});
 * ```
 */
export class EmulatorState {
  /** Buckets by name. */
  readonly buckets: Map<string, StoredBucket> = new Map();
  /** Open and finished resumable sessions by upload id. */
  readonly sessions: Map<string, UploadSession> = new Map();
  #lastGeneration = 0n;

  /** A fresh generation number, strictly larger than every earlier one. */
  nextGeneration(): bigint {
    const now = BigInt(Date.now()) * 1000n;
    this.#lastGeneration = now > this.#lastGeneration ? now : this.#lastGeneration + 1n;
    return this.#lastGeneration;
  }

  /** Creates a bucket; 409 when it exists, 400 for an invalid name. */
  createBucket(name: string): StoredBucket {
    if (typeof name !== "string" || !BUCKET_NAME.test(name) || name.includes("..")) {
      throw new ApiFailure(400, "invalid", `Invalid bucket name: '${name}'`);
    }
    if (this.buckets.has(name)) {
      throw new ApiFailure(
        409,
        "conflict",
        `Your previous request to create the named bucket succeeded and you already own it.`,
      );
    }
    const bucket: StoredBucket = { name, created: new Date(), objects: new Map() };
    this.buckets.set(name, bucket);
    return bucket;
  }

  /** The bucket, or a 404. */
  bucket(name: string): StoredBucket {
    const bucket = this.buckets.get(name);
    if (!bucket) throw new ApiFailure(404, "notFound", `The specified bucket does not exist.`);
    return bucket;
  }

  /** Deletes an empty bucket (409 when it still holds objects). */
  deleteBucket(name: string): void {
    const bucket = this.bucket(name);
    if (bucket.objects.size > 0) {
      throw new ApiFailure(409, "conflict", `The bucket you tried to delete is not empty.`);
    }
    this.buckets.delete(name);
  }

  /** The object, or a 404 (bucket or object missing). */
  object(bucket: string, name: string): StoredObject {
    const obj = this.bucket(bucket).objects.get(name);
    if (!obj) throw new ApiFailure(404, "notFound", `No such object: ${bucket}/${name}`);
    return obj;
  }

  /** Throws a 412 when `obj` (undefined: absent) does not satisfy `pre`. */
  checkPreconditions(obj: StoredObject | undefined, pre: Preconditions): void {
    const gen = obj ? obj.generation : 0n;
    const fail = (what: string) => {
      throw new ApiFailure(
        412,
        "conditionNotMet",
        `At least one of the pre-conditions you specified did not hold (${what}).`,
      );
    };
    if (pre.ifGenerationMatch !== undefined && pre.ifGenerationMatch !== gen) fail("ifGenerationMatch");
    if (pre.ifGenerationNotMatch !== undefined && pre.ifGenerationNotMatch === gen) {
      fail("ifGenerationNotMatch");
    }
    if (
      pre.ifMetagenerationMatch !== undefined &&
      (!obj || BigInt(obj.metageneration) !== pre.ifMetagenerationMatch)
    ) {
      fail("ifMetagenerationMatch");
    }
    if (
      pre.ifMetagenerationNotMatch !== undefined && obj &&
      BigInt(obj.metageneration) === pre.ifMetagenerationNotMatch
    ) {
      fail("ifMetagenerationNotMatch");
    }
  }

  /** Stores a complete object after checking the preconditions (412) and the bucket (404). */
  putObject(
    bucket: string,
    name: string,
    data: Uint8Array,
    contentType: string,
    pre: Preconditions,
    metadata?: Record<string, string>,
  ): StoredObject {
    const b = this.bucket(bucket);
    validateObjectName(name);
    this.checkPreconditions(b.objects.get(name), pre);
    const obj: StoredObject = {
      name,
      bucket,
      data,
      generation: this.nextGeneration(),
      metageneration: 1,
      contentType,
      crc32c: crc32cToBase64(crc32c(data)),
      md5Hash: createHash("md5").update(data).digest("base64"),
      created: new Date(),
      metadata,
    };
    b.objects.set(name, obj);
    return obj;
  }

  /** Deletes an object after checking the preconditions; 404 when it is absent. */
  deleteObject(bucket: string, name: string, pre: Preconditions): void {
    const obj = this.object(bucket, name);
    this.checkPreconditions(obj, pre);
    this.bucket(bucket).objects.delete(name);
  }

  /** Opens a resumable session (checks bucket and preconditions now, and again at finalization). */
  openSession(
    bucket: string,
    name: string,
    contentType: string,
    pre: Preconditions,
    metadata?: Record<string, string>,
  ): UploadSession {
    const b = this.bucket(bucket);
    validateObjectName(name);
    this.checkPreconditions(b.objects.get(name), pre);
    const id = crypto.randomUUID().replaceAll("-", "");
    const session: UploadSession = {
      id,
      bucket,
      name,
      contentType,
      metadata,
      preconditions: pre,
      chunks: [],
      received: 0,
    };
    this.sessions.set(id, session);
    return session;
  }

  /** The session, or a 404. */
  session(id: string): UploadSession {
    const s = this.sessions.get(id);
    if (!s) throw new ApiFailure(404, "notFound", `No such upload session: ${id}`);
    return s;
  }

  /** Appends persisted bytes to an open session. */
  appendToSession(session: UploadSession, bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    session.chunks.push(bytes);
    session.received += bytes.length;
  }

  /**
   * Completes a session: checks the optional client hashes (400 on mismatch), the preconditions (412), then
   * stores the object. A session that failed stays failed.
   */
  finalizeSession(session: UploadSession, clientHashes: { crc32c?: string; md5?: string }): StoredObject {
    const data = concat(session.chunks, session.received);
    try {
      verifyHashes(data, clientHashes);
      const obj = this.putObject(
        session.bucket,
        session.name,
        data,
        session.contentType,
        session.preconditions,
        session.metadata,
      );
      session.result = obj;
      session.chunks = [];
      return obj;
    } catch (err) {
      if (err instanceof ApiFailure) {
        session.failure = { status: err.status, reason: err.reason, message: err.message };
        session.chunks = [];
      }
      throw err;
    }
  }
}

/**
 * Checks bytes against hashes a client sent (base64 CRC32C and MD5, either may be absent); a mismatch is a 400.
 *
 * @example
 * ```ts
 * verifyHashes(new TextEncoder().encode("123456789"), { crc32c: "4waSgw==" }); // passes
 * ```
 */
export function verifyHashes(data: Uint8Array, hashes: { crc32c?: string; md5?: string }): void {
  if (hashes.crc32c !== undefined) {
    const crc = crc32cToBase64(crc32c(data));
    if (hashes.crc32c !== crc) {
      throw new ApiFailure(
        400,
        "invalid",
        `Provided CRC32C "${hashes.crc32c}" doesn't match calculated CRC32C "${crc}".`,
      );
    }
  }
  if (hashes.md5 !== undefined) {
    const md5 = createHash("md5").update(data).digest("base64");
    if (hashes.md5 !== md5) {
      throw new ApiFailure(
        400,
        "invalid",
        `Provided MD5 hash "${hashes.md5}" doesn't match calculated MD5 hash "${md5}".`,
      );
    }
  }
}

/** Object names: 1–1024 bytes of UTF-8, no carriage return or line feed. */
function validateObjectName(name: string): void {
  const bytes = new TextEncoder().encode(name).length;
  if (!name || bytes > 1024 || /[\r\n]/.test(name)) {
    throw new ApiFailure(400, "invalid", `Invalid object name: '${name.slice(0, 80)}'`);
  }
}

/**
 * Concatenates byte chunks into one array (returns the only chunk itself when there is one).
 *
 * @example
 * ```ts
 * concat([new Uint8Array([1]), new Uint8Array([2, 3])]); // Uint8Array [1, 2, 3]
 * ```
 */
export function concat(chunks: Uint8Array[], total = chunks.reduce((n, c) => n + c.length, 0)): Uint8Array {
  if (chunks.length === 1 && chunks[0].length === total) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
