/**
 * The read-only `http(s)://` store: a folder on a web server, read with GET (ranges with `Range`) and probed
 * with HEAD. It is how teachers read model files that are served over HTTP (`tfjs:https://…/model.json`).
 * Writing, deleting and listing are refused with a one-line {@linkcode SparsekdError}.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import type { ObjectInfo, ObjectStore, ObjectWriter, ReadOptions, StoreOpener } from "./store.ts";

function oneLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split("\n")[0];
}

/**
 * The registry's opener of `http://` and `https://` folders (see `registry.ts`). Nothing is requested until
 * an object is read; `create` is refused.
 *
 * @example
 * ```ts
 * const store = await storeOpener("https://example.org/teacher/", {});
 * const json = await store.readBytes("model.json");
 * ```
 */
export const storeOpener: StoreOpener = (uri, options) => {
  if (options.create) return Promise.reject(new SparsekdError(`${uri}: http(s) stores are read-only`));
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return Promise.reject(new SparsekdError(`${uri} is not a valid URL`));
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return Promise.reject(new SparsekdError(`${uri} is not an http(s) URL`));
  }
  return Promise.resolve(new HttpStore(uri));
};

/**
 * A folder on a web server as a read-only {@linkcode ObjectStore}.
 *
 * @example
 * ```ts
 * const store = new HttpStore("http://127.0.0.1:8000/models/demo");
 * console.log(await store.size("model.json"));
 * ```
 */
export class HttpStore implements ObjectStore {
  readonly #base: URL;

  /** @param uri the folder's URL (a trailing slash is added when missing) */
  constructor(readonly uri: string) {
    this.#base = new URL(uri.endsWith("/") ? uri : uri + "/");
  }

  #url(path: string): URL {
    if (
      path === "" || path.startsWith("/") || path.split("/").some((p) => p === "" || p === "." || p === "..")
    ) {
      throw new SparsekdError(`invalid object path "${path}"`);
    }
    return new URL(path.split("/").map(encodeURIComponent).join("/"), this.#base);
  }

  async #fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const url = this.#url(path);
    try {
      return await fetch(url, init);
    } catch (err) {
      throw new SparsekdError(`cannot read ${url.href}: ${oneLine(err)}`, { cause: err });
    }
  }

  async #fail(res: Response, path: string): Promise<never> {
    await res.body?.cancel();
    const href = this.#url(path).href;
    if (res.status === 404 || res.status === 410) {
      throw new SparsekdError(`${href} does not exist (HTTP ${res.status})`);
    }
    throw new SparsekdError(`cannot read ${href}: HTTP ${res.status}`);
  }

  /** True when a HEAD of the object answers 2xx; false on 404 or 410. */
  async exists(path: string): Promise<boolean> {
    return (await this.size(path)) !== null;
  }

  /** The object's `Content-Length` from a HEAD, or null when it does not exist. */
  async size(path: string): Promise<number | null> {
    const res = await this.#fetch(path, { method: "HEAD" });
    await res.body?.cancel();
    if (res.status === 404 || res.status === 410) return null;
    if (!res.ok) return await this.#fail(res, path);
    const length = res.headers.get("content-length");
    if (length !== null && /^\d+$/.test(length)) return Number(length);
    // No length in the answer to HEAD: count the bytes.
    return (await this.readBytes(path)).length;
  }

  /** Listing is not part of HTTP: always a {@linkcode SparsekdError}. */
  list(_prefix: string): Promise<string[]> {
    return Promise.reject(new SparsekdError(`${this.uri}: an http(s) folder cannot be listed`));
  }

  /** Streams an object (or the range [start, end), with a `Range` request; a server that ignores it works too). */
  async read(path: string, options: ReadOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const start = options.start ?? 0;
    const end = options.end;
    const ranged = start > 0 || end !== undefined;
    if (end !== undefined && end <= start) {
      if (!(await this.exists(path))) throw new SparsekdError(`${this.#url(path).href} does not exist`);
      return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    }
    const headers: HeadersInit = ranged
      ? { range: `bytes=${start}-${end === undefined ? "" : end - 1}` }
      : {};
    const res = await this.#fetch(path, { headers });
    if (res.status === 416) {
      await res.body?.cancel();
      return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    }
    if (!res.ok) return await this.#fail(res, path);
    const body = res.body ?? new ReadableStream<Uint8Array>({ start: (c) => c.close() });
    if (res.status === 206 || !ranged) return body;
    // A 200 to a ranged request is the whole object: cut the range out of it.
    let at = 0;
    const stop = end ?? Infinity;
    return body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, c) {
          const from = Math.max(0, start - at);
          const to = Math.min(chunk.length, stop - at);
          at += chunk.length;
          if (to > from) c.enqueue(chunk.subarray(from, to));
        },
      }),
    );
  }

  /** Reads a whole object. */
  async readBytes(path: string): Promise<Uint8Array> {
    const res = await this.#fetch(path);
    if (!res.ok) return await this.#fail(res, path);
    try {
      return new Uint8Array(await res.arrayBuffer());
    } catch (err) {
      throw new SparsekdError(`cannot read ${this.#url(path).href}: ${oneLine(err)}`, { cause: err });
    }
  }

  /** Refused: the store is read-only. */
  create(path: string): Promise<ObjectWriter> {
    return Promise.reject(
      new SparsekdError(`cannot write ${this.#url(path).href}: http(s) stores are read-only`),
    );
  }

  /** Refused: the store is read-only. */
  writeBytes(path: string, _bytes: Uint8Array): Promise<ObjectInfo> {
    return this.create(path).then(() => ({ path, size: 0, crc32c: "" }));
  }

  /** Refused: the store is read-only. */
  delete(path: string): Promise<void> {
    return Promise.reject(
      new SparsekdError(`cannot delete ${this.#url(path).href}: http(s) stores are read-only`),
    );
  }
}
