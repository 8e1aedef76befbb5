/**
 * The GCS emulator's HTTP server: the part of the Cloud Storage JSON API that the official Node client uses
 * (buckets, object metadata, listing with prefix and pageToken, media download with Range, delete, resumable
 * uploads answered with 308 and `Range`, multipart and media uploads, generation preconditions), plus a control
 * endpoint for fault injection. It listens on 127.0.0.1 only.
 *
 * Paths are served both under `/storage/v1/…` and bare (`/b/…`), because the client uses the bare form when it
 * is pointed at an emulator through `STORAGE_EMULATOR_HOST`.
 * @module
 */
import http from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { SparsekdError } from "../../src/errors.ts";
import { type FaultHit, FaultInjector, type FaultRule } from "./faults.ts";
import {
  ApiFailure,
  concat,
  EmulatorState,
  type Preconditions,
  type StoredBucket,
  type StoredObject,
  type UploadSession,
  verifyHashes,
} from "./model.ts";
import { parseMultipartRelated } from "./multipart_related.ts";

/** Options of {@linkcode startEmulator}. */
export interface EmulatorOptions {
  /** TCP port on 127.0.0.1 (0, the default: any free port). */
  port?: number;
  /** Buckets to create at start. */
  buckets?: string[];
  /** Called with one line per request (method, path, status), e.g. `console.log`. */
  log?: (line: string) => void;
  /** Largest request body accepted, in bytes (default 1 GiB); larger bodies get a 413. */
  maxBodyBytes?: number;
}

/** A running emulator. */
export interface RunningEmulator {
  /** Base URL, e.g. `http://127.0.0.1:4443`: give it to `--gcs-endpoint` or `STORAGE_EMULATOR_HOST`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** Fault rules and the log of faults that happened. */
  readonly faults: FaultInjector;
  /** The in-memory buckets, objects and upload sessions. */
  readonly state: EmulatorState;
  /** Stops the server and drops open connections. */
  close(): Promise<void>;
}

/** Resumable uploads persist data in multiples of this many bytes when a request is cut short. */
export const UPLOAD_GRANULARITY = 256 * 1024;

/**
 * Starts the emulator on 127.0.0.1.
 *
 * @example
 * ```ts
 * const emu = await startEmulator({ port: 0, buckets: ["demo"] });
 * emu.faults.add({ method: "PUT", path: "upload_id", status: 503, count: 2 });
 * // … point the client at emu.url …
 * await emu.close();
 * ```
 */
export async function startEmulator(options: EmulatorOptions = {}): Promise<RunningEmulator> {
  const state = new EmulatorState();
  const faults = new FaultInjector();
  for (const name of options.buckets ?? []) {
    try {
      state.createBucket(name);
    } catch (err) {
      if (err instanceof ApiFailure) {
        throw new SparsekdError(`cannot create bucket "${name}": ${err.message}`);
      }
      throw err;
    }
  }
  const ctx: Ctx = { state, faults, log: options.log, maxBodyBytes: options.maxBodyBytes ?? 2 ** 30 };
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    handle(ctx, req, res).catch((err) => {
      // A bug in the emulator: answer 500 and keep serving.
      console.error(err);
      if (!res.headersSent) sendError(res, 500, "backendError", String(err?.message ?? err));
      else res.destroy();
    });
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  const port = options.port ?? 0;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        err.code === "EADDRINUSE"
          ? new SparsekdError(`port ${port} on 127.0.0.1 is already in use`, { cause: err })
          : err,
      );
    };
    server.once("error", onError);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", onError);
      resolve();
    });
  });
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  return {
    url: `http://127.0.0.1:${actualPort}`,
    port: actualPort,
    faults,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

interface Ctx {
  state: EmulatorState;
  faults: FaultInjector;
  log?: (line: string) => void;
  maxBodyBytes: number;
}

interface Body {
  bytes: Uint8Array;
  /** True when a reset fault cut the request at `bytes.length`. */
  cut: boolean;
  /** True when the client closed the connection before the body ended. */
  aborted?: boolean;
}

async function handle(ctx: Ctx, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const method = (req.method ?? "GET").toUpperCase();
  const url = new URL(req.url ?? "/", "http://emulator");
  const pathAndQuery = url.pathname + url.search;
  if (ctx.log) res.on("finish", () => ctx.log!(`${method} ${pathAndQuery} → ${res.statusCode}`));

  if (url.pathname.startsWith("/_emulator/")) return await control(ctx, method, url, req, res);

  const decision = ctx.faults.atStart(method, pathAndQuery);
  if (decision?.kind === "reset") {
    ctx.log?.(`${method} ${pathAndQuery} → connection reset (injected)`);
    req.socket.destroy();
    return;
  }
  if (decision?.kind === "status") {
    await readBody(ctx, req, method, pathAndQuery);
    return sendError(res, decision.status, "injectedFault", `Injected fault: HTTP ${decision.status}`);
  }

  if (decision?.kind === "corrupt" && decision.inResponse) {
    corruptResponseBody(ctx, res, method, pathAndQuery);
  }
  const responseCut = ctx.faults.responseResetOffset(method, pathAndQuery);
  if (responseCut !== null) cutResponseBody(ctx, req, res, method, pathAndQuery, responseCut);

  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > ctx.maxBodyBytes) {
    req.socket.destroy();
    return;
  }
  const body = await readBody(ctx, req, method, pathAndQuery);
  if (body.aborted) return; // the client went away mid-request: nothing to answer
  if (decision?.kind === "corrupt" && !decision.inResponse && body.bytes.length > 0) {
    body.bytes[body.bytes.length >> 1] ^= 0xff;
    ctx.log?.(`${method} ${pathAndQuery} → one body byte flipped (injected)`);
  }
  const base = `http://${req.headers.host ?? "127.0.0.1"}`;
  try {
    route(ctx, method, url, req, res, body, base);
  } catch (err) {
    if (!(err instanceof ApiFailure)) throw err;
    if (body.cut) {
      req.socket.destroy();
      return;
    }
    sendError(res, err.status, err.reason, err.message);
  }
}

/** Flips the middle byte of the first non-empty piece of the response body (sent with write or end). */
function corruptResponseBody(ctx: Ctx, res: ServerResponse, method: string, path: string): void {
  type Write = (chunk: unknown, ...rest: unknown[]) => unknown;
  const r = res as unknown as { write: Write; end: Write };
  const write = r.write.bind(res);
  const end = r.end.bind(res);
  let done = false;
  const flip = (chunk: unknown): unknown => {
    if (done || !(chunk instanceof Uint8Array) || chunk.length === 0) return chunk;
    done = true;
    const copy = chunk.slice();
    copy[copy.length >> 1] ^= 0xff;
    ctx.log?.(`${method} ${path} → one response byte flipped (injected)`);
    return copy;
  };
  r.write = (chunk, ...rest) => write(flip(chunk), ...rest);
  r.end = (chunk, ...rest) => end(flip(chunk), ...rest);
}

/**
 * Arms a reset or a stall of the response: once its body would pass `cutAt` bytes (and the fault injector
 * agrees), the first `cutAt` bytes go out and the connection is destroyed, as a dropped download looks to a
 * client, or left open with nothing more sent, as a stalled one does.
 */
function cutResponseBody(
  ctx: Ctx,
  req: IncomingMessage,
  res: ServerResponse,
  method: string,
  path: string,
  cutAt: number,
): void {
  type Write = (chunk: unknown, ...rest: unknown[]) => unknown;
  const r = res as unknown as { write: Write; end: Write };
  const write = r.write.bind(res);
  const end = r.end.bind(res);
  let sent = 0;
  let cut = false;
  /** Sends what may go out of `chunk`; true when the connection is being cut. */
  const pass = (chunk: unknown): boolean => {
    if (cut) return true;
    if (chunk === undefined || chunk === null || typeof chunk === "function") return false;
    const bytes = typeof chunk === "string" ? new TextEncoder().encode(chunk) : chunk as Uint8Array;
    const fault = sent + bytes.length > cutAt ? ctx.faults.cutResponse(method, path, cutAt) : null;
    if (fault !== null) {
      cut = true;
      const part = bytes.subarray(0, cutAt - sent);
      if (fault === "stall") {
        // Nothing more is sent; the connection stays open until the client gives up (or the emulator stops).
        ctx.log?.(`${method} ${path} → response stalled after ${cutAt} bytes (injected)`);
        write(part);
        return true;
      }
      ctx.log?.(`${method} ${path} → connection reset after ${cutAt} response bytes (injected)`);
      write(part, () => req.socket.destroy());
      return true;
    }
    sent += bytes.length;
    return false;
  };
  r.write = (chunk, ...rest) => pass(chunk) ? true : write(chunk, ...rest);
  r.end = (chunk, ...rest) => {
    if (pass(chunk)) return res;
    return end(chunk, ...rest);
  };
}

/** Reads the request body; a reset fault may cut it, and then the socket is destroyed after routing. */
function readBody(ctx: Ctx, req: IncomingMessage, method: string, path: string): Promise<Body> {
  let cutAt = ctx.faults.resetOffset(method, path);
  return new Promise<Body>((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    let total = 0;
    let done = false;
    const finish = (cut: boolean) => {
      if (done) return;
      done = true;
      req.off("data", onData);
      resolve({ bytes: concat(chunks, total), cut });
    };
    const onData = (chunk: Uint8Array) => {
      if (done) return;
      if (total + chunk.length > ctx.maxBodyBytes) {
        done = true;
        req.socket.destroy();
        reject(new ApiFailure(413, "uploadTooLarge", "request body too large"));
        return;
      }
      if (cutAt !== null && total + chunk.length >= cutAt) {
        if (ctx.faults.cut(method, path, cutAt)) {
          chunks.push(new Uint8Array(chunk.buffer, chunk.byteOffset, cutAt - total).slice());
          total = cutAt;
          req.pause();
          ctx.log?.(`${method} ${path} → connection reset after ${cutAt} body bytes (injected)`);
          finish(true);
          return;
        }
        cutAt = null; // a skipped rule lets this whole request through
      }
      chunks.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength).slice());
      total += chunk.length;
    };
    req.on("data", onData);
    req.once("end", () => finish(false));
    req.once("error", () => {
      // The client aborted (e.g. a cancelled upload): there is no one left to answer.
      if (!done) {
        done = true;
        resolve({ bytes: new Uint8Array(0), cut: false, aborted: true });
      }
    });
  });
}

function route(
  ctx: Ctx,
  method: string,
  url: URL,
  req: IncomingMessage,
  res: ServerResponse,
  body: Body,
  base: string,
): void {
  const { state } = ctx;
  let path = url.pathname;
  let api: "json" | "upload" | "download" = "json";
  const apis = [["/upload/storage/v1", "upload"], ["/download/storage/v1", "download"], [
    "/storage/v1",
    "json",
  ]] as const;
  for (const [prefix, kind] of apis) {
    if (path === prefix || path.startsWith(prefix + "/")) {
      path = path.slice(prefix.length);
      api = kind;
      break;
    }
  }
  const q = url.searchParams;
  const m = /^\/b(?:\/([^/]+)(?:\/o(?:\/(.+))?)?)?\/?$/.exec(path);
  if (!m) throw new ApiFailure(404, "notFound", `Not Found: ${url.pathname}`);
  const bucketName = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
  const objectsPath = /^\/b\/[^/]+\/o\/?$/.test(path);
  const objectName = m[2] === undefined ? undefined : decodeURIComponent(m[2]);

  if (body.cut && !(api === "upload" && method === "PUT")) {
    // A cut request that is not an upload chunk: nothing to persist.
    req.socket.destroy();
    return;
  }

  if (bucketName === undefined) {
    if (api !== "json") throw new ApiFailure(404, "notFound", "Not Found");
    if (method === "POST") {
      const meta = parseJson(body.bytes) as { name?: string };
      const bucket = state.createBucket(String(meta?.name ?? ""));
      return sendJson(res, 200, bucketJson(bucket, base));
    }
    if (method === "GET") {
      const items = [...state.buckets.values()].sort((a, b) => cmp(a.name, b.name)).map((b) =>
        bucketJson(b, base)
      );
      return sendJson(res, 200, { kind: "storage#buckets", items });
    }
    throw new ApiFailure(405, "methodNotAllowed", `${method} not allowed here`);
  }

  if (api === "upload") {
    if (!objectsPath) throw new ApiFailure(404, "notFound", "Not Found");
    return upload(ctx, method, q, req, res, body, base, bucketName);
  }

  if (objectName === undefined && !objectsPath) {
    if (method === "GET") return sendJson(res, 200, bucketJson(state.bucket(bucketName), base));
    if (method === "DELETE") {
      state.deleteBucket(bucketName);
      return sendEmpty(res, 204);
    }
    throw new ApiFailure(405, "methodNotAllowed", `${method} not allowed on a bucket`);
  }

  if (objectName === undefined) {
    if (method !== "GET") {
      throw new ApiFailure(405, "methodNotAllowed", `${method} not allowed on the object list`);
    }
    return sendJson(res, 200, listObjects(state.bucket(bucketName), q, base));
  }

  if (method === "GET" || method === "HEAD") {
    const obj = state.object(bucketName, objectName);
    const gen = q.get("generation");
    if (gen !== null && gen !== String(obj.generation)) {
      throw new ApiFailure(404, "notFound", `No such object: ${bucketName}/${objectName}#${gen}`);
    }
    state.checkPreconditions(obj, preconditions(q));
    if (api === "download" || q.get("alt") === "media") return sendMedia(req, res, obj, method === "HEAD");
    return sendJson(res, 200, objectJson(obj, base));
  }
  if (method === "DELETE") {
    state.deleteObject(bucketName, objectName, preconditions(q));
    return sendEmpty(res, 204);
  }
  throw new ApiFailure(405, "methodNotAllowed", `${method} not allowed on an object`);
}

function upload(
  ctx: Ctx,
  method: string,
  q: URLSearchParams,
  req: IncomingMessage,
  res: ServerResponse,
  body: Body,
  base: string,
  bucket: string,
): void {
  const { state } = ctx;
  const uploadId = q.get("upload_id");
  if (uploadId !== null) {
    const session = state.session(uploadId);
    if (method === "DELETE") {
      session.failure ??= { status: 499, reason: "cancelled", message: "upload cancelled" };
      return sendEmpty(res, 499);
    }
    if (method !== "PUT" && method !== "POST") {
      throw new ApiFailure(405, "methodNotAllowed", `${method} on a session`);
    }
    return sessionPut(ctx, session, req, res, body, base);
  }
  if (method !== "POST") throw new ApiFailure(405, "methodNotAllowed", `${method} not allowed on uploads`);
  const uploadType = q.get("uploadType") ?? "media";
  const pre = preconditions(q);
  if (uploadType === "resumable") {
    const meta = (body.bytes.length ? parseJson(body.bytes) : {}) as ObjectMeta;
    const name = q.get("name") ?? meta.name;
    if (!name) throw new ApiFailure(400, "required", "Required parameter: name");
    const contentType = header(req, "x-upload-content-type") ?? meta.contentType ??
      "application/octet-stream";
    const session = state.openSession(bucket, name, contentType, pre, meta.metadata);
    const location = `${base}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${
      encodeURIComponent(name)
    }&upload_id=${session.id}`;
    res.writeHead(200, { location, "content-length": "0" });
    res.end();
    return;
  }
  if (uploadType === "multipart") {
    const parts = parseMultipartRelated(header(req, "content-type") ?? "", body.bytes);
    if (!parts || parts.length < 2) throw new ApiFailure(400, "invalid", "Malformed multipart body");
    const meta = parseJson(parts[0].body) as ObjectMeta;
    const name = q.get("name") ?? meta.name;
    if (!name) throw new ApiFailure(400, "required", "Required parameter: name");
    checkHashes(parts[1].body, header(req, "x-goog-hash"), meta);
    const contentType = meta.contentType ?? parts[1].headers["content-type"] ?? "application/octet-stream";
    const obj = state.putObject(bucket, name, parts[1].body, contentType, pre, meta.metadata);
    return sendJson(res, 200, objectJson(obj, base));
  }
  if (uploadType === "media") {
    const name = q.get("name");
    if (!name) throw new ApiFailure(400, "required", "Required parameter: name");
    checkHashes(body.bytes, header(req, "x-goog-hash"), {});
    const obj = state.putObject(
      bucket,
      name,
      body.bytes,
      header(req, "content-type") ?? "application/octet-stream",
      pre,
    );
    return sendJson(res, 200, objectJson(obj, base));
  }
  throw new ApiFailure(400, "invalid", `Unknown uploadType: ${uploadType}`);
}

interface ObjectMeta {
  name?: string;
  contentType?: string;
  metadata?: Record<string, string>;
  crc32c?: string;
  md5Hash?: string;
}

/** One PUT on a resumable session: a chunk, the final chunk, or a status query. */
function sessionPut(
  ctx: Ctx,
  session: UploadSession,
  req: IncomingMessage,
  res: ServerResponse,
  body: Body,
  base: string,
): void {
  const { state } = ctx;
  if (session.failure) {
    if (body.cut) return void req.socket.destroy();
    throw new ApiFailure(session.failure.status, session.failure.reason, session.failure.message);
  }
  if (session.result) {
    // A finished session answers every further request with the object.
    if (body.cut) return void req.socket.destroy();
    return sendJson(res, 200, objectJson(session.result, base));
  }
  const range = header(req, "content-range");
  const len = body.bytes.length;
  let start: number;
  let total: number | null;
  if (range === undefined) {
    start = 0;
    total = len;
  } else {
    const status = /^bytes \*\/(\*|\d+)$/.exec(range);
    const data = /^bytes (\d+)-(-?\d+|\*)\/(\*|\d+)$/.exec(range);
    if (status) {
      if (len !== 0) {
        throw new ApiFailure(400, "invalid", `A status query carries no body (got ${len} bytes)`);
      }
      start = session.received;
      total = status[1] === "*" ? null : Number(status[1]);
    } else if (data) {
      start = Number(data[1]);
      if (data[2] !== "*") {
        const end = Number(data[2]);
        const expected = Math.max(0, end - start + 1);
        if (!body.cut && expected !== len) {
          throw new ApiFailure(
            400,
            "invalid",
            `Content-Range ${range} announces ${expected} bytes, body has ${len}`,
          );
        }
      }
      total = data[3] === "*" ? (data[2] === "*" ? start + len : null) : Number(data[3]);
    } else {
      throw new ApiFailure(400, "invalid", `Malformed Content-Range: ${range}`);
    }
  }
  if (start > session.received) {
    throw new ApiFailure(
      400,
      "invalid",
      `The upload offset is ${start} byte(s), which exceeds the ${session.received} byte(s) already uploaded`,
    );
  }
  // Bytes from `start` that the session already has are skipped; the rest is appended.
  const skip = session.received - start;
  if (body.cut) {
    // The connection is cut: keep what arrived, in whole multiples of the granularity, then drop the socket.
    const reached = start + len;
    const keepTo = Math.floor(reached / UPLOAD_GRANULARITY) * UPLOAD_GRANULARITY;
    if (keepTo > session.received) state.appendToSession(session, body.bytes.subarray(skip, keepTo - start));
    req.socket.destroy();
    return;
  }
  if (skip < len) state.appendToSession(session, body.bytes.subarray(skip));
  if (total !== null && session.received > total) {
    throw new ApiFailure(
      400,
      "invalid",
      `Received ${session.received} bytes, more than the announced ${total}`,
    );
  }
  if (total !== null && session.received === total) {
    const hashes = parseGoogHash(header(req, "x-goog-hash"));
    const obj = state.finalizeSession(session, hashes);
    return sendJson(res, 200, objectJson(obj, base));
  }
  const headers: Record<string, string> = { "content-length": "0" };
  if (session.received > 0) headers["range"] = `bytes=0-${session.received - 1}`;
  res.writeHead(308, headers);
  res.end();
}

function checkHashes(data: Uint8Array, googHash: string | undefined, meta: ObjectMeta): void {
  const hashes = parseGoogHash(googHash);
  const crc32c = hashes.crc32c ?? meta.crc32c;
  const md5 = hashes.md5 ?? meta.md5Hash;
  if (crc32c === undefined && md5 === undefined) return;
  verifyHashes(data, { crc32c, md5 });
}

function parseGoogHash(value: string | undefined): { crc32c?: string; md5?: string } {
  const out: { crc32c?: string; md5?: string } = {};
  for (const pair of (value ?? "").split(",")) {
    const eq = pair.indexOf("=");
    if (eq < 0) continue;
    const key = pair.slice(0, eq).trim().toLowerCase();
    const val = pair.slice(eq + 1).trim();
    if (key === "crc32c") out.crc32c = val;
    if (key === "md5") out.md5 = val;
  }
  return out;
}

function listObjects(bucket: StoredBucket, q: URLSearchParams, base: string): unknown {
  const prefix = q.get("prefix") ?? "";
  const delimiter = q.get("delimiter") ?? "";
  const maxResults = Math.max(1, Math.min(1000, Number(q.get("maxResults") ?? 1000) || 1000));
  const token = q.get("pageToken");
  const after = token ? new TextDecoder().decode(Uint8Array.from(atob(token), (c) => c.charCodeAt(0))) : null;
  const startOffset = q.get("startOffset");
  const endOffset = q.get("endOffset");
  const names = [...bucket.objects.keys()].filter((n) => n.startsWith(prefix)).sort(cmp);
  const items: unknown[] = [];
  const prefixes: string[] = [];
  let last: string | null = null;
  let more = false;
  for (const name of names) {
    if (after !== null && cmp(name, after) <= 0) continue;
    if (startOffset !== null && cmp(name, startOffset) < 0) continue;
    if (endOffset !== null && cmp(name, endOffset) >= 0) continue;
    let key = name;
    let isPrefix = false;
    if (delimiter) {
      const at = name.indexOf(delimiter, prefix.length);
      if (at >= 0) {
        key = name.slice(0, at + delimiter.length);
        isPrefix = true;
        if (prefixes.length && prefixes[prefixes.length - 1] === key) continue;
      }
    }
    if (items.length + prefixes.length >= maxResults) {
      more = true;
      break;
    }
    if (isPrefix) {
      prefixes.push(key);
      last = key + "\u{10FFFF}";
    } else {
      items.push(objectJson(bucket.objects.get(name)!, base));
      last = name;
    }
  }
  const out: Record<string, unknown> = { kind: "storage#objects" };
  if (items.length) out.items = items;
  if (prefixes.length) out.prefixes = prefixes;
  if (more && last !== null) out.nextPageToken = btoa(String.fromCharCode(...new TextEncoder().encode(last)));
  return out;
}

/** Byte-order comparison of UTF-8 names, as GCS sorts them (equal to UTF-16 order below U+D800). */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sendMedia(req: IncomingMessage, res: ServerResponse, obj: StoredObject, headOnly: boolean): void {
  const size = obj.data.length;
  const headers: Record<string, string> = {
    "content-type": obj.contentType,
    "x-goog-generation": String(obj.generation),
    "x-goog-metageneration": String(obj.metageneration),
    "x-goog-hash": `crc32c=${obj.crc32c},md5=${obj.md5Hash}`,
    "x-goog-stored-content-encoding": "identity",
    "x-goog-stored-content-length": String(size),
    "accept-ranges": "bytes",
    "etag": etag(obj),
  };
  const range = header(req, "range");
  let start = 0;
  let end = size; // exclusive
  let partial = false;
  if (range !== undefined) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    if (m && (m[1] !== "" || m[2] !== "")) {
      if (m[1] === "") {
        start = Math.max(0, size - Number(m[2]));
      } else {
        start = Number(m[1]);
        end = m[2] === "" ? size : Math.min(size, Number(m[2]) + 1);
      }
      if (start >= size && !(size === 0 && start === 0)) {
        res.writeHead(416, { "content-range": `bytes */${size}`, "content-length": "0" });
        res.end();
        return;
      }
      partial = true;
    }
  }
  if (partial) headers["content-range"] = `bytes ${start}-${Math.max(start, end - 1)}/${size}`;
  headers["content-length"] = String(end - start);
  res.writeHead(partial ? 206 : 200, headers);
  if (headOnly) res.end();
  else res.end(obj.data.subarray(start, end));
}

function objectJson(o: StoredObject, base: string): Record<string, unknown> {
  const enc = encodeURIComponent(o.name);
  const time = o.created.toISOString();
  const json: Record<string, unknown> = {
    kind: "storage#object",
    id: `${o.bucket}/${o.name}/${o.generation}`,
    selfLink: `${base}/storage/v1/b/${o.bucket}/o/${enc}`,
    mediaLink: `${base}/download/storage/v1/b/${o.bucket}/o/${enc}?generation=${o.generation}&alt=media`,
    name: o.name,
    bucket: o.bucket,
    generation: String(o.generation),
    metageneration: String(o.metageneration),
    contentType: o.contentType,
    storageClass: "STANDARD",
    size: String(o.data.length),
    md5Hash: o.md5Hash,
    crc32c: o.crc32c,
    etag: etag(o),
    timeCreated: time,
    updated: time,
    timeStorageClassUpdated: time,
  };
  if (o.metadata) json.metadata = o.metadata;
  return json;
}

function etag(o: StoredObject): string {
  return btoa(`${o.generation}/${o.metageneration}`);
}

function bucketJson(b: StoredBucket, base: string): Record<string, unknown> {
  const time = b.created.toISOString();
  return {
    kind: "storage#bucket",
    selfLink: `${base}/storage/v1/b/${b.name}`,
    id: b.name,
    name: b.name,
    projectNumber: "0",
    metageneration: "1",
    location: "US",
    storageClass: "STANDARD",
    etag: "CAE=",
    timeCreated: time,
    updated: time,
  };
}

function preconditions(q: URLSearchParams): Preconditions {
  const get = (name: string): bigint | undefined => {
    const v = q.get(name);
    if (v === null) return undefined;
    if (!/^\d+$/.test(v)) throw new ApiFailure(400, "invalid", `Invalid value for ${name}: ${v}`);
    return BigInt(v);
  };
  return {
    ifGenerationMatch: get("ifGenerationMatch"),
    ifGenerationNotMatch: get("ifGenerationNotMatch"),
    ifMetagenerationMatch: get("ifMetagenerationMatch"),
    ifMetagenerationNotMatch: get("ifMetagenerationNotMatch"),
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return bytes.length ? JSON.parse(new TextDecoder().decode(bytes)) : {};
  } catch {
    throw new ApiFailure(400, "parseError", "Parse Error: the body is not JSON");
  }
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = new TextEncoder().encode(JSON.stringify(value));
  res.writeHead(status, {
    "content-type": "application/json; charset=UTF-8",
    "content-length": String(text.length),
  });
  res.end(text);
}

function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status, { "content-length": "0" });
  res.end();
}

function sendError(res: ServerResponse, status: number, reason: string, message: string): void {
  sendJson(res, status, {
    error: { code: status, message, errors: [{ message, domain: "global", reason }] },
  });
}

/** `/_emulator/…`: the control endpoint (never subject to faults). */
async function control(
  ctx: Ctx,
  method: string,
  url: URL,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const body = await readBody({ ...ctx, faults: new FaultInjector() }, req, method, url.pathname);
  if (url.pathname === "/_emulator/health") return sendJson(res, 200, { ok: true });
  if (url.pathname !== "/_emulator/faults") {
    return sendError(res, 404, "notFound", `Not Found: ${url.pathname}`);
  }
  const view = (): { pending: FaultRule[]; hits: FaultHit[] } => ({
    pending: ctx.faults.pending(),
    hits: ctx.faults.hits,
  });
  if (method === "GET") return sendJson(res, 200, view());
  if (method === "DELETE") {
    ctx.faults.clear();
    return sendJson(res, 200, view());
  }
  if (method === "POST") {
    try {
      ctx.faults.add(parseJson(body.bytes) as FaultRule | FaultRule[]);
    } catch (err) {
      if (err instanceof SparsekdError || err instanceof ApiFailure) {
        return sendError(res, 400, "invalid", err.message);
      }
      throw err;
    }
    return sendJson(res, 200, view());
  }
  return sendError(res, 405, "methodNotAllowed", `${method} not allowed on ${url.pathname}`);
}
