/**
 * The `gs://bucket/prefix` store on the official client (`npm:@google-cloud/storage`).
 *
 * Writes are resumable uploads streamed from a web stream in chunks (no staging on disk), CRC32C-validated
 * against the server's hash, create-only (`ifGenerationMatch: 0`, so a 412 means the object exists) and retried
 * with exponential back-off on 408, 429, 5xx and dropped connections. An upload that still fails rejects its
 * writer with a one-line {@linkcode SparsekdError}; nothing half-written becomes visible.
 *
 * `endpoint` (the `--gcs-endpoint` flag) or the `STORAGE_EMULATOR_HOST` variable points the client at an
 * emulator such as `deno task gcs-emulator`; requests to a custom endpoint are sent without credentials.
 * @module
 */
import process from "node:process";
import http from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import { SparsekdError } from "../errors.ts";
import { parseStoreUri } from "./open_store.ts";
import {
  ObjectExistsError,
  type ObjectInfo,
  type ObjectStore,
  type ObjectWriter,
  type ReadOptions,
} from "./store.ts";

import type { Bucket, File, Storage } from "@google-cloud/storage";

type Interceptor = Storage["interceptors"][number];
type GcsModule = typeof import("@google-cloud/storage");

let clientModule: Promise<GcsModule> | null = null;

/** Loads the client on first use, so that importing this module (or mod.ts) stays cheap. */
function loadClient(): Promise<GcsModule> {
  // The client's dependencies import node's deprecated `punycode`; keep that warning off users' terminals.
  process.noDeprecation = true;
  clientModule ??= import("@google-cloud/storage");
  return clientModule;
}

/** Options of {@linkcode openGcsStore}. */
export interface GcsStoreOptions {
  /**
   * Base URL of a GCS-compatible endpoint, e.g. the emulator's `http://127.0.0.1:4443` (`http://` is assumed
   * when no scheme is given). Default: the `STORAGE_EMULATOR_HOST` variable, else the real service with the
   * application-default credentials.
   */
  endpoint?: string;
  /** Bytes per resumable-upload request: a multiple of 256 KiB (default 8 MiB). Each writer buffers one chunk. */
  chunkSize?: number;
  /** Retries of a failing request (default 8). */
  maxRetries?: number;
  /** Longest wait between two retries, in seconds (≥ 1; default 32). The first wait is 1–2 s, then doubling. */
  maxRetryDelaySeconds?: number;
  /** Time budget for all retries of one operation, in seconds (default 600). */
  totalTimeoutSeconds?: number;
  /** Time limit for one request to get its response headers, in milliseconds (default 300000). */
  requestTimeoutMs?: number;
  /** Project id sent with bucket-level calls (default `sparsekd` with an endpoint, else the credentials'). */
  projectId?: string;
}

/** Resumable uploads move data in multiples of this many bytes. */
export const GCS_CHUNK_QUANTUM = 256 * 1024;

/**
 * Opens `gs://bucket[/prefix]` as an {@linkcode ObjectStore}. A bucket that does not exist, or an endpoint that
 * cannot be reached, is a one-line {@linkcode SparsekdError} here, before any work starts.
 *
 * @example
 * ```ts
 * const store = await openGcsStore("gs://my-bucket/runs/a", { endpoint: "http://127.0.0.1:4443" });
 * await store.writeBytes("hello.txt", new TextEncoder().encode("hi"));
 * ```
 */
export async function openGcsStore(uri: string, options: GcsStoreOptions = {}): Promise<ObjectStore> {
  const parsed = parseStoreUri(uri);
  if (parsed.kind !== "gcs") throw new SparsekdError(`${uri} is not a gs:// URI`);
  const chunkSize = options.chunkSize ?? 8 * 1024 * 1024;
  if (!Number.isInteger(chunkSize) || chunkSize < GCS_CHUNK_QUANTUM || chunkSize % GCS_CHUNK_QUANTUM !== 0) {
    throw new SparsekdError(`the GCS chunk size must be a positive multiple of 256 KiB (got ${chunkSize})`);
  }
  const maxRetryDelay = options.maxRetryDelaySeconds ?? 32;
  if (!(maxRetryDelay >= 1)) {
    // The client's back-off starts at one second; a smaller cap makes it throw from inside a timer.
    throw new SparsekdError(`the longest GCS retry delay must be at least 1 second (got ${maxRetryDelay})`);
  }
  const endpoint = resolveEndpoint(options.endpoint ?? envEndpoint());
  const gcs = await loadClient();
  const isRetryable = retryRule(gcs);
  const client = (maxRetries: number, maxRetryDelay: number) => {
    const storage = new gcs.Storage({
      ...(endpoint ? { apiEndpoint: endpoint } : {}),
      projectId: options.projectId ?? (endpoint ? "sparsekd" : undefined),
      retryOptions: {
        autoRetry: true,
        maxRetries,
        retryDelayMultiplier: 2,
        maxRetryDelay,
        totalTimeout: options.totalTimeoutSeconds ?? 600,
        // Every call we make is safe to repeat: uploads are create-only (ifGenerationMatch: 0), deletes
        // ignore "not found", the rest only read.
        idempotencyStrategy: gcs.IdempotencyStrategy.RetryAlways,
        retryableErrorFn: isRetryable,
      },
    });
    if (endpoint) {
      // With STORAGE_EMULATOR_HOST set, the client takes the variable's raw value as its JSON API base URL;
      // use the normalized endpoint instead so both ways behave the same.
      (storage as unknown as { baseUrl: string }).baseUrl = `${endpoint}/storage/v1`;
    }
    return storage;
  };
  const storage = client(options.maxRetries ?? 8, maxRetryDelay);
  // Fresh connections for uploads: a kept-alive socket closed by the server before it reads a streamed request
  // body makes Deno's node:http client wait forever instead of failing (and being retried).
  const agents = { http: new http.Agent({ keepAlive: false }), https: new https.Agent({ keepAlive: false }) };
  const requestTimeout = options.requestTimeoutMs ?? 300_000;
  storage.interceptors.push({
    request: (reqOpts) =>
      ({
        ...reqOpts,
        agent: (url: URL) => (url.protocol === "http:" ? agents.http : agents.https),
        timeout: requestTimeout,
      }) as unknown as ReturnType<Interceptor["request"]>,
  });
  const bucket = storage.bucket(parsed.bucket);
  const where = endpoint ? ` at ${endpoint}` : "";
  // The bucket check retries little: the client retries every connection failure (even a refused one), and a
  // wrong endpoint must be reported in seconds, not after minutes of back-off.
  const probe = client(Math.min(2, options.maxRetries ?? 2), 2).bucket(parsed.bucket);
  let exists: boolean;
  try {
    [exists] = await probe.exists();
  } catch (err) {
    if (statusOf(err) === 403) exists = await canList(probe, parsed.prefix, uri, where);
    else throw new SparsekdError(`cannot open ${uri}${where}: ${describe(err)}`, { cause: err });
  }
  if (!exists) throw new SparsekdError(`bucket gs://${parsed.bucket} does not exist${where}`);
  const retry = { maxRetries: options.maxRetries ?? 8, maxRetryDelay, isRetryable };
  return new GcsStore(uri, storage, bucket, parsed.prefix, chunkSize, retry);
}

/** A bucket we may not read the metadata of but may list: it exists. */
async function canList(bucket: Bucket, prefix: string, uri: string, where: string): Promise<boolean> {
  try {
    await bucket.getFiles({ prefix, maxResults: 1, autoPaginate: false });
    return true;
  } catch (err) {
    if (statusOf(err) === 404) return false;
    throw new SparsekdError(`cannot open ${uri}${where}: ${describe(err)}`, { cause: err });
  }
}

function envEndpoint(): string | undefined {
  const v = process.env.STORAGE_EMULATOR_HOST;
  return v && v.trim() !== "" ? v.trim() : undefined;
}

/** Normalizes an endpoint: `http://` when no scheme is given, no trailing slash; a bad URL is a SparsekdError. */
function resolveEndpoint(endpoint: string | undefined): string | undefined {
  if (endpoint === undefined) return undefined;
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `http://${endpoint}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new SparsekdError(`the GCS endpoint "${endpoint}" is not a valid URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new SparsekdError(`the GCS endpoint "${endpoint}" must be an http:// or https:// URL`);
  }
  return withScheme.replace(/\/+$/, "");
}

/** The client's retry rule, plus dropped connections and timeouts as Deno reports them. */
const retryRule = (gcs: GcsModule) => (err: unknown): boolean => {
  if (gcs.RETRYABLE_ERR_FN_DEFAULT(err as Parameters<GcsModule["RETRYABLE_ERR_FN_DEFAULT"]>[0])) return true;
  // Errors from gaxios (the upload path) carry the HTTP status in `status`, not in `code`.
  const status = statusOf(err);
  if (status !== undefined && [408, 429, 500, 502, 503, 504].includes(status)) return true;
  const e = err as { code?: unknown; type?: unknown; message?: unknown; cause?: { code?: unknown } } | null;
  if (!e) return false;
  const codes = [e.code, e.cause?.code].filter((c): c is string => typeof c === "string").map((c) =>
    c.toUpperCase()
  );
  if (
    codes.some((c) =>
      ["ECONNRESET", "EPIPE", "ECONNABORTED", "ETIMEDOUT", "EAI_AGAIN", "UND_ERR_SOCKET"].includes(c)
    )
  ) {
    return true;
  }
  if (e.type === "request-timeout") return true;
  const msg = typeof e.message === "string" ? e.message.toLowerCase() : "";
  return msg.includes("socket hang up") || msg.includes("network timeout") ||
    msg.includes("connection reset");
};

/** How the status query of a resumed upload is retried. */
interface StatusQueryRetry {
  maxRetries: number;
  maxRetryDelay: number;
  isRetryable: (err: unknown) => boolean;
}

/** The parts of the client's (internal) resumable `Upload` that {@linkcode steadyStatusQueries} replaces. */
interface UploadInternals {
  offset?: number;
  destroyed: boolean;
  checkUploadStatus(
    config: { retry?: boolean },
  ): Promise<{ status: number; headers: Record<string, unknown> }>;
  getAndSetOffset(): Promise<void>;
  continueUploading(): Promise<void>;
  startUploading(): Promise<void>;
  destroy(err?: unknown): void;
}

/**
 * Makes a failing status query part of the retries. After a failed chunk, the client asks the server how many
 * bytes it holds; in @google-cloud/storage 7.19 a retryable failure of that query (another 503, a reset)
 * schedules a retry but also carries on at once from offset 0, which ends the upload with "The offset is lower
 * than the number of bytes written". Here the query itself is retried with the same back-off and limit, and a
 * destroyed upload does not carry on. Applied per file, to the upload its write stream creates; when the client's
 * internals are not as expected nothing is changed.
 */
function steadyStatusQueries(file: File, retry: StatusQueryRetry): void {
  const f = file as unknown as {
    startResumableUpload_: (dup: { _writable?: unknown }, options?: unknown) => void;
  };
  const original = f.startResumableUpload_;
  if (typeof original !== "function") return;
  f.startResumableUpload_ = function (this: unknown, dup, options) {
    original.call(this, dup, options);
    const upload = dup?._writable as UploadInternals | undefined;
    if (
      !upload || typeof upload.checkUploadStatus !== "function" ||
      typeof upload.getAndSetOffset !== "function" ||
      typeof upload.continueUploading !== "function" || typeof upload.startUploading !== "function"
    ) return;
    upload.getAndSetOffset = async function (this: UploadInternals) {
      for (let attempt = 0;; attempt++) {
        try {
          const resp = await this.checkUploadStatus({ retry: false });
          const range = resp.headers.range;
          this.offset = resp.status === 308 && typeof range === "string"
            ? Number(range.split("-")[1]) + 1
            : 0;
          return;
        } catch (err) {
          if (this.destroyed) return;
          if (attempt >= retry.maxRetries || !retry.isRetryable(err)) {
            this.destroy(err);
            return;
          }
          const delay = Math.min(2 ** attempt * 1000 + Math.random() * 1000, retry.maxRetryDelay * 1000);
          await new Promise((resolve) => setTimeout(resolve, delay));
          if (this.destroyed) return;
        }
      }
    };
    upload.continueUploading = async function (this: UploadInternals) {
      if (this.offset === undefined || this.offset === null) await this.getAndSetOffset();
      if (this.destroyed) return;
      return await this.startUploading();
    };
  };
}

/** The HTTP status an error from the client carries, if any. */
function statusOf(err: unknown): number | undefined {
  const e = err as {
    code?: unknown;
    status?: unknown;
    response?: { status?: unknown };
    errors?: Array<{ code?: unknown }>;
  } | null;
  for (const v of [e?.code, e?.status, e?.response?.status, e?.errors?.[0]?.code]) {
    const n = typeof v === "number" ? v : typeof v === "string" && /^\d{3}$/.test(v) ? Number(v) : NaN;
    if (n >= 100 && n < 600) return n;
  }
  return undefined;
}

/** One line about an error from the client. */
function describe(err: unknown): string {
  const status = statusOf(err);
  const e = err as { message?: unknown; code?: unknown } | null;
  let msg = typeof e?.message === "string" ? e.message : String(err);
  const json = /"message"\s*:\s*"([^"]*)"/.exec(msg);
  if (json) msg = json[1];
  msg = msg.split("\n")[0].trim();
  if (msg.length > 300) msg = msg.slice(0, 300) + "…";
  const code = typeof e?.code === "string" && !/^\d+$/.test(e.code) && !msg.includes(e.code)
    ? ` (${e.code})`
    : "";
  return `${status !== undefined && !msg.startsWith(String(status)) ? `HTTP ${status}: ` : ""}${msg}${code}`;
}

function checkRelative(path: string): void {
  if (
    path === "" || path.startsWith("/") || path.split("/").some((p) => p === "" || p === "." || p === "..")
  ) {
    throw new SparsekdError(`invalid object path "${path}"`);
  }
}

/**
 * A `gs://bucket/prefix` store. Obtain one with {@linkcode openGcsStore}.
 *
 * @example
 * ```ts
 * const store = await openGcsStore("gs://my-bucket/run", { endpoint: "http://127.0.0.1:4443" });
 * const names = await store.list("shards/");
 * ```
 */
export class GcsStore implements ObjectStore {
  readonly #storage: Storage;
  readonly #bucket: Bucket;
  readonly #root: string;
  readonly #chunkSize: number;
  readonly #retry: StatusQueryRetry;

  /**
   * @param uri the store's URI as the user wrote it
   * @param storage the client
   * @param bucket the bucket
   * @param prefix object-name prefix without slashes at either end ("" for the bucket's root)
   * @param chunkSize bytes per resumable-upload request
   * @param retry how the status query of a resumed upload is retried
   */
  constructor(
    readonly uri: string,
    storage: Storage,
    bucket: Bucket,
    prefix: string,
    chunkSize: number,
    retry: StatusQueryRetry,
  ) {
    this.#storage = storage;
    this.#bucket = bucket;
    this.#root = prefix === "" ? "" : prefix + "/";
    this.#chunkSize = chunkSize;
    this.#retry = retry;
  }

  /** The underlying client (for tests and tools). */
  get storage(): Storage {
    return this.#storage;
  }

  #file(path: string): File {
    checkRelative(path);
    return this.#bucket.file(this.#root + path);
  }

  #where(path: string): string {
    return `gs://${this.#bucket.name}/${this.#root}${path}`;
  }

  /** True when `path` exists. */
  async exists(path: string): Promise<boolean> {
    const file = this.#file(path);
    try {
      const [found] = await file.exists();
      return found;
    } catch (err) {
      throw new SparsekdError(`cannot read ${this.#where(path)}: ${describe(err)}`, { cause: err });
    }
  }

  /** Size in bytes, or null when absent. */
  async size(path: string): Promise<number | null> {
    const file = this.#file(path);
    try {
      const [meta] = await file.getMetadata();
      return Number(meta.size);
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw new SparsekdError(`cannot read ${this.#where(path)}: ${describe(err)}`, { cause: err });
    }
  }

  /** Paths (relative to the root) that start with `prefix`, sorted; fetched a page of 1000 at a time. */
  async list(prefix: string): Promise<string[]> {
    const out: string[] = [];
    let pageToken: string | undefined;
    try {
      do {
        const [files, next] = await this.#bucket.getFiles({
          prefix: this.#root + prefix,
          autoPaginate: false,
          maxResults: 1000,
          pageToken,
        });
        for (const f of files) out.push(f.name.slice(this.#root.length));
        pageToken = (next as { pageToken?: string } | null)?.pageToken;
      } while (pageToken);
    } catch (err) {
      throw new SparsekdError(`cannot list ${this.#where(prefix)}: ${describe(err)}`, { cause: err });
    }
    return out.sort();
  }

  /**
   * Streams an object's bytes, or the range [start, end). A whole-object read is checked against the object's
   * CRC32C; a missing object is a {@linkcode SparsekdError} here, not later in the stream.
   */
  async read(path: string, options: ReadOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const file = this.#file(path);
    const where = this.#where(path);
    const start = options.start ?? 0;
    const end = options.end;
    if (end !== undefined && end <= start) {
      if (!(await this.exists(path))) throw new SparsekdError(`${where} does not exist`);
      return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    }
    const ranged = start > 0 || end !== undefined;
    const node: Readable = ranged
      ? file.createReadStream({ start, end: end === undefined ? undefined : end - 1 })
      : file.createReadStream({ validation: "crc32c" });
    const it = node[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
    const failure = (err: unknown) =>
      statusOf(err) === 404
        ? new SparsekdError(`${where} does not exist`, { cause: err })
        : new SparsekdError(`cannot read ${where}: ${describe(err)}`, { cause: err });
    let first: IteratorResult<Uint8Array>;
    try {
      first = await it.next(); // starts the request, so that a missing object fails here
    } catch (err) {
      node.destroy();
      // A range that starts past the end reads as empty, as it does from a local file.
      if (statusOf(err) === 416) return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
      throw failure(err);
    }
    let pending: IteratorResult<Uint8Array> | null = first;
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        let r: IteratorResult<Uint8Array>;
        try {
          r = pending ?? await it.next();
        } catch (err) {
          controller.error(failure(err));
          return;
        }
        pending = null;
        if (r.done) controller.close();
        else controller.enqueue(new Uint8Array(r.value.buffer, r.value.byteOffset, r.value.byteLength));
      },
      cancel() {
        node.destroy();
      },
    }, { highWaterMark: 0 });
  }

  /** Reads a whole object, checked against its CRC32C. */
  async readBytes(path: string): Promise<Uint8Array> {
    const file = this.#file(path);
    try {
      const [buf] = await file.download({ validation: "crc32c" });
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    } catch (err) {
      if (statusOf(err) === 404) {
        throw new SparsekdError(`${this.#where(path)} does not exist`, { cause: err });
      }
      throw new SparsekdError(`cannot read ${this.#where(path)}: ${describe(err)}`, { cause: err });
    }
  }

  /**
   * Starts a create-only resumable upload. The writable buffers at most one chunk (plus the node stream's
   * high-water mark); closing it waits until the object exists and its CRC32C matches. It rejects with
   * {@linkcode ObjectExistsError} when the object exists, and with a {@linkcode SparsekdError} when the upload
   * failed after its retries. Aborting it cancels the upload: no object appears.
   */
  create(path: string): Promise<ObjectWriter> {
    const file = this.#file(path);
    const where = this.#where(path);
    steadyStatusQueries(file, this.#retry);
    const node = file.createWriteStream({
      resumable: true,
      validation: "crc32c",
      chunkSize: this.#chunkSize,
      preconditionOpts: { ifGenerationMatch: 0 },
      metadata: { contentType: "application/octet-stream" },
    });
    let failure: unknown = null;
    let settled = false;
    let resolveDone!: (info: ObjectInfo) => void;
    let rejectDone!: (err: unknown) => void;
    const done = new Promise<ObjectInfo>((resolve, reject) => {
      resolveDone = resolve;
      rejectDone = reject;
    });
    done.catch(() => {}); // the caller may await only the writable
    const fail = (err: unknown): unknown => {
      if (failure === null) {
        failure = statusOf(err) === 412
          ? new ObjectExistsError(where)
          : err instanceof SparsekdError
          ? err
          : new SparsekdError(`upload of ${where} failed: ${describe(err)}`, { cause: err });
      }
      if (!settled) {
        settled = true;
        rejectDone(failure);
      }
      return failure;
    };
    node.on("error", (err: unknown) => fail(err));
    node.once("finish", () => {
      if (settled) return;
      const meta = file.metadata;
      settled = true;
      resolveDone({ path, size: Number(meta.size), crc32c: String(meta.crc32c) });
    });
    node.once("close", () => {
      if (!settled) fail(new Error("the upload stream closed before the object was complete"));
    });
    const waitDrain = () =>
      new Promise<void>((resolve, reject) => {
        const cleanup = () => {
          node.off("drain", onDrain);
          node.off("close", onClose);
        };
        const onDrain = () => {
          cleanup();
          resolve();
        };
        const onClose = () => {
          cleanup();
          reject(failure ?? new SparsekdError(`upload of ${where} stopped`));
        };
        node.on("drain", onDrain);
        node.on("close", onClose);
      });
    const writable = new WritableStream<Uint8Array>({
      async write(chunk) {
        if (failure !== null) throw failure;
        // Copy: the caller may reuse its buffer once write() resolves, while the upload still holds the chunk.
        if (!node.write(Buffer.from(chunk))) await waitDrain();
        if (failure !== null) throw failure;
      },
      async close() {
        if (failure !== null) throw failure;
        node.end();
        await done;
      },
      abort(reason) {
        fail(reason instanceof Error ? reason : new Error(`upload of ${where} aborted`));
        node.destroy();
      },
    });
    return Promise.resolve({ writable, done });
  }

  /** Writes a whole object, create-only, through the same resumable upload as {@linkcode GcsStore.create}. */
  async writeBytes(path: string, bytes: Uint8Array): Promise<ObjectInfo> {
    const w = await this.create(path);
    const writer = w.writable.getWriter();
    try {
      await writer.write(bytes);
      await writer.close();
    } catch (err) {
      await writer.abort(err).catch(() => {});
      throw err;
    }
    return await w.done;
  }

  /** Deletes an object (no error when it is absent). */
  async delete(path: string): Promise<void> {
    const file = this.#file(path);
    try {
      await file.delete({ ignoreNotFound: true });
    } catch (err) {
      throw new SparsekdError(`cannot delete ${this.#where(path)}: ${describe(err)}`, { cause: err });
    }
  }
}
