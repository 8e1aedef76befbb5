/**
 * The `gs://bucket/prefix` store on the official client (`npm:@google-cloud/storage`).
 *
 * Writes are resumable uploads streamed from a web stream in chunks (no staging on disk), CRC32C-validated
 * against the server's hash, create-only (`ifGenerationMatch: 0`, so a 412 means the object exists) and retried
 * with exponential back-off on 408, 429, 5xx and dropped connections. An upload that still fails rejects its
 * writer with a one-line {@linkcode SparsekdError}; nothing half-written becomes visible.
 *
 * Reads do not use the client's download path (its retry crashes under Deno): they are our own `alt=media`
 * requests, retried the same way and resumed at the byte reached (`gcs_read.ts`). Metadata calls (exists,
 * size, list, delete) use the client and its retries.
 *
 * `endpoint` (`openStore`'s endpoint for the gs scheme, from `--gcs-endpoint`) or the `STORAGE_EMULATOR_HOST`
 * variable points the store at an emulator such as `deno task gcs-emulator`; requests to a custom endpoint are
 * sent without credentials.
 * @module
 */
import process from "node:process";
import http from "node:http";
import https from "node:https";
import { SparsekdError } from "../errors.ts";
import { parseStoreUri } from "./uri.ts";
import type { ObjectInfo, ObjectStore, ObjectWriter, ReadOptions, StoreOpener } from "./store.ts";

import type { Bucket, File, Storage } from "../deps/gcs.ts";
import { describe, type GcsModule, retryRule, statusOf, type StatusQueryRetry } from "./gcs_retry.ts";
import { type MediaReadConfig, readMedia, readMediaBytes } from "./gcs_read.ts";
import { startUpload } from "./gcs_upload.ts";

type Interceptor = Storage["interceptors"][number];

let clientModule: Promise<GcsModule> | null = null;

/** Loads the client on first use, so that importing this module (or mod.ts) stays cheap. */
function loadClient(): Promise<GcsModule> {
  // The client's dependencies import node's deprecated `punycode`; keep that warning off users' terminals.
  process.noDeprecation = true;
  clientModule ??= import("../deps/gcs.ts");
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
  const retry: GcsRetry = {
    maxRetries: options.maxRetries ?? 8,
    maxRetryDelay,
    isRetryable,
    requestTimeoutMs: requestTimeout,
    baseUrl: (storage as unknown as { baseUrl: string }).baseUrl.replace(/\/+$/, ""),
    // A custom endpoint gets no credentials (as the client does); Google's gets the client's.
    headers: endpoint ? () => Promise.resolve({}) : () => authHeaders(storage),
  };
  return new GcsStore(uri, storage, bucket, parsed.prefix, chunkSize, retry);
}

/**
 * The registry's opener of `gs://` URIs (see `registry.ts`): {@linkcode openGcsStore} with the endpoint given
 * for the gs scheme, if any.
 *
 * @example
 * ```ts
 * const store = await storeOpener("gs://bucket/run", { endpoint: "http://127.0.0.1:4443" });
 * ```
 */
export const storeOpener: StoreOpener = (uri, options) => openGcsStore(uri, { endpoint: options.endpoint });

/** How the store retries, and what its own media reads need. */
interface GcsRetry extends StatusQueryRetry {
  /** Time limit for one request to get its response headers, in milliseconds. */
  requestTimeoutMs: number;
  /** The JSON API's base URL, e.g. `https://storage.googleapis.com/storage/v1`. */
  baseUrl: string;
  /** The headers that authorize a request. */
  headers: () => Promise<HeadersInit>;
}

/** The client's authorization headers (application-default credentials), as a one-line error when absent. */
async function authHeaders(storage: Storage): Promise<HeadersInit> {
  try {
    const h = await storage.authClient.getRequestHeaders();
    return h instanceof Headers
      ? h
      : Object.fromEntries(Object.entries(h ?? {}).map(([k, v]) => [k, String(v)]));
  } catch (err) {
    throw new SparsekdError(`cannot get Google Cloud credentials: ${describe(err)}`, { cause: err });
  }
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
  readonly #retry: GcsRetry;

  /**
   * @param uri the store's URI as the user wrote it
   * @param storage the client
   * @param bucket the bucket
   * @param prefix object-name prefix without slashes at either end ("" for the bucket's root)
   * @param chunkSize bytes per resumable-upload request
   * @param retry how requests are retried, and what media reads need
   */
  constructor(
    readonly uri: string,
    storage: Storage,
    bucket: Bucket,
    prefix: string,
    chunkSize: number,
    retry: GcsRetry,
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

  #media(path: string): MediaReadConfig {
    checkRelative(path);
    const r = this.#retry;
    return {
      url: `${r.baseUrl}/b/${encodeURIComponent(this.#bucket.name)}/o/${
        encodeURIComponent(this.#root + path)
      }`,
      where: this.#where(path),
      headers: r.headers,
      maxRetries: r.maxRetries,
      maxRetryDelaySeconds: r.maxRetryDelay,
      requestTimeoutMs: r.requestTimeoutMs,
    };
  }

  /**
   * Streams an object's bytes, or the range [start, end), retried and resumed at the byte reached on 408, 429,
   * 5xx and dropped connections (`src/store/gcs_read.ts`). A whole-object read is checked against the object's
   * CRC32C; a missing object is a {@linkcode SparsekdError} here, not later in the stream.
   */
  async read(path: string, options: ReadOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const media = this.#media(path);
    const start = options.start ?? 0;
    const end = options.end;
    if (end !== undefined && end <= start) {
      if (!(await this.exists(path))) throw new SparsekdError(`${media.where} does not exist`);
      return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    }
    return await readMedia(media, start, end);
  }

  /** Reads a whole object, checked against its CRC32C, with the retries of {@linkcode GcsStore.read}. */
  async readBytes(path: string): Promise<Uint8Array> {
    return await readMediaBytes(this.#media(path));
  }

  /**
   * Starts a create-only resumable upload. The writable buffers at most one chunk (plus the node stream's
   * high-water mark); closing it waits until the object exists and its CRC32C matches. It rejects with
   * `ObjectExistsError` when the object exists, and with a {@linkcode SparsekdError} when the upload
   * failed after its retries. Aborting it cancels the upload: no object appears.
   */
  create(path: string): Promise<ObjectWriter> {
    const file = this.#file(path);
    return Promise.resolve(startUpload(file, path, this.#where(path), this.#chunkSize, this.#retry));
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
