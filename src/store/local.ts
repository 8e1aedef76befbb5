/**
 * The local-folder store: create-only writes through a temporary file in the same folder (write, fsync,
 * hard-link into place, remove the temporary), so an object appears only once complete and is never
 * overwritten.
 *
 * Links are not followed at object names: a symbolic link where an object would be (even a dangling one) is a
 * one-line {@linkcode SparsekdError} naming it for `exists`, `size`, `read`, `readBytes` and `create`, never
 * taken for the object it points to.
 * @module
 */

import { SparsekdError } from "../errors.ts";
import { Crc32c } from "../format/crc32c.ts";
import {
  ObjectExistsError,
  type ObjectInfo,
  type ObjectStore,
  type ObjectWriter,
  type ReadOptions,
  type StoreOpener,
} from "./store.ts";
import { parseStoreUri } from "./uri.ts";

/** Options of {@linkcode openLocalStore}. */
export interface LocalStoreOptions {
  /** The URI to report (default: the root path). */
  uri?: string;
  /** Create the root folder (and check it is writable) now; default false. */
  create?: boolean;
}

const TMP_SUFFIX = ".tmp";

function oneLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split("\n")[0];
}

function checkRelative(path: string): void {
  if (
    path === "" || path.startsWith("/") || path.split("/").some((p) => p === "" || p === "." || p === "..")
  ) {
    throw new SparsekdError(`invalid object path "${path}"`);
  }
}

function dirOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? "" : path.slice(0, i);
}

/**
 * Opens a local folder as an {@linkcode ObjectStore}. With `create`, makes the folder and proves it is
 * writable, failing with a one-line {@linkcode SparsekdError} otherwise.
 *
 * @example
 * ```ts
 * const store = await openLocalStore("runs/demo", { create: true });
 * await store.writeBytes("hello.txt", new TextEncoder().encode("hi"));
 * ```
 */
export async function openLocalStore(root: string, options: LocalStoreOptions = {}): Promise<LocalStore> {
  const store = new LocalStore(root, options.uri ?? root);
  if (options.create) await store.ensureWritable();
  return store;
}

/**
 * The registry's opener of local folders: a plain path or a `file:` URL (see `registry.ts`).
 *
 * @example
 * ```ts
 * const store = await storeOpener("file:///tmp/out", { create: true });
 * ```
 */
export const storeOpener: StoreOpener = async (uri, options) => {
  const parsed = parseStoreUri(uri);
  if (parsed.kind !== "local") throw new SparsekdError(`${uri} is not a local folder`);
  return await openLocalStore(parsed.path, { uri, create: options.create });
};

/**
 * A local folder as an {@linkcode ObjectStore}. Create-only writes use `Deno.link`, which fails when the
 * target exists; on a file system without hard links it falls back to check-then-rename, which has a
 * race window between the check and the rename (documented in docs/format.md).
 *
 * @example
 * ```ts
 * const store = new LocalStore("/tmp/out", "/tmp/out");
 * const w = await store.create("a/b.bin");
 * ```
 */
export class LocalStore implements ObjectStore {
  /**
   * A store over a local folder (use {@linkcode openLocalStore} to check and create it).
   *
   * @param root the folder (a file-system path)
   * @param uri how it is named in messages
   */
  constructor(readonly root: string, readonly uri: string) {}

  #full(path: string): string {
    checkRelative(path);
    return this.root.endsWith("/") ? this.root + path : `${this.root}/${path}`;
  }

  #where(path: string): string {
    return this.uri.endsWith("/") ? this.uri + path : `${this.uri}/${path}`;
  }

  /** Makes the root folder and checks that a file can be created in it. */
  async ensureWritable(): Promise<void> {
    try {
      await Deno.mkdir(this.root, { recursive: true });
      const probe = `${this.root}/.sparsekd-probe-${crypto.randomUUID()}${TMP_SUFFIX}`;
      await Deno.writeFile(probe, new Uint8Array(0), { createNew: true });
      await Deno.remove(probe);
    } catch (err) {
      throw new SparsekdError(`cannot write to ${this.uri}: ${oneLine(err)}`, { cause: err });
    }
  }

  /** True when `path` exists. */
  async exists(path: string): Promise<boolean> {
    return (await this.size(path)) !== null;
  }

  /** Size in bytes, or null when absent; a symbolic link at the name is a {@linkcode SparsekdError}. */
  async size(path: string): Promise<number | null> {
    const st = await this.#lstat(path);
    return st !== null && st.isFile ? st.size : null;
  }

  /** lstat of an object (null when absent); refuses a symbolic link with one line naming it. */
  async #lstat(path: string): Promise<Deno.FileInfo | null> {
    let st: Deno.FileInfo;
    try {
      st = await Deno.lstat(this.#full(path));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return null;
      throw new SparsekdError(`cannot read ${this.#where(path)}: ${oneLine(err)}`, { cause: err });
    }
    if (st.isSymlink) {
      throw new SparsekdError(
        `${this.#where(path)} is a symbolic link; a store does not follow links at object names (remove it)`,
      );
    }
    return st;
  }

  /**
   * Opens an object for reading without following a link at its name: lstat first, then open, then check that
   * the opened file is the one lstat saw (a link swapped in between is refused too).
   */
  async #open(path: string): Promise<Deno.FsFile> {
    const where = this.#where(path);
    const st = await this.#lstat(path);
    if (st === null) throw new SparsekdError(`${where} does not exist`);
    if (!st.isFile) throw new SparsekdError(`${where} is not a file`);
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.#full(path), { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) {
        throw new SparsekdError(`${where} does not exist`);
      }
      throw new SparsekdError(`cannot read ${where}: ${oneLine(err)}`, { cause: err });
    }
    try {
      const opened = await file.stat();
      if (opened.ino !== st.ino || opened.dev !== st.dev) {
        throw new SparsekdError(
          `${where} changed while it was being opened (a link or another file took its place)`,
        );
      }
    } catch (err) {
      file.close();
      throw err instanceof SparsekdError
        ? err
        : new SparsekdError(`cannot read ${where}: ${oneLine(err)}`, { cause: err });
    }
    return file;
  }

  /** Paths (relative to the root, with `/`) that start with `prefix`, sorted; temporary files are skipped. */
  async list(prefix: string): Promise<string[]> {
    const dir = dirOf(prefix);
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      const full = rel === "" ? this.root : `${this.root}/${rel}`;
      let entries: Deno.DirEntry[];
      try {
        entries = await Array.fromAsync(Deno.readDir(full));
      } catch (err) {
        if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) return;
        throw new SparsekdError(`cannot list ${this.#where(rel)}: ${oneLine(err)}`, { cause: err });
      }
      for (const e of entries) {
        const path = rel === "" ? e.name : `${rel}/${e.name}`;
        if (e.isDirectory) {
          if (prefix.startsWith(path + "/") || path.startsWith(prefix)) await walk(path);
        } else if (e.isFile && path.startsWith(prefix) && !e.name.endsWith(TMP_SUFFIX)) out.push(path);
      }
    };
    await walk(dir);
    return out.sort();
  }

  /** Streams an object's bytes (or the range [start, end)). */
  async read(path: string, options: ReadOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const file = await this.#open(path);
    const where = this.#where(path);
    const start = options.start ?? 0;
    let left = options.end === undefined ? Infinity : Math.max(0, options.end - start);
    if (start > 0) await file.seek(start, Deno.SeekMode.Start);
    const chunk = 1 << 20;
    let closed = false;
    const close = () => {
      if (!closed) {
        closed = true;
        file.close();
      }
    };
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (left <= 0) {
          close();
          controller.close();
          return;
        }
        const buf = new Uint8Array(Math.min(chunk, left));
        let n: number | null;
        try {
          n = await file.read(buf);
        } catch (err) {
          close();
          throw new SparsekdError(`cannot read ${where}: ${oneLine(err)}`, { cause: err });
        }
        if (n === null || n === 0) {
          close();
          controller.close();
          return;
        }
        left -= n;
        controller.enqueue(buf.subarray(0, n));
      },
      cancel() {
        close();
      },
    }, { highWaterMark: 0 });
  }

  /** Reads a whole object (not through a link at its name). */
  async readBytes(path: string): Promise<Uint8Array> {
    const file = await this.#open(path);
    try {
      const size = (await file.stat()).size;
      const out = new Uint8Array(size);
      let at = 0;
      while (at < size) {
        const n = await file.read(out.subarray(at));
        if (n === null) break;
        at += n;
      }
      return at === size ? out : out.slice(0, at);
    } catch (err) {
      throw new SparsekdError(`cannot read ${this.#where(path)}: ${oneLine(err)}`, { cause: err });
    } finally {
      file.close();
    }
  }

  /**
   * Starts a create-only write: bytes go to a temporary file `.<name>.<random>.tmp` beside the target;
   * closing the writable fsyncs it and links it into place (failing with {@linkcode ObjectExistsError}
   * when the target exists); aborting removes it.
   */
  async create(path: string): Promise<ObjectWriter> {
    const full = this.#full(path);
    const where = this.#where(path);
    if (await this.exists(path)) throw new ObjectExistsError(where);
    const dir = full.slice(0, full.lastIndexOf("/"));
    const name = full.slice(full.lastIndexOf("/") + 1);
    const tmp = `${dir}/.${name}.${crypto.randomUUID().slice(0, 8)}${TMP_SUFFIX}`;
    let file: Deno.FsFile;
    try {
      await Deno.mkdir(dir, { recursive: true });
      file = await Deno.open(tmp, { write: true, createNew: true });
    } catch (err) {
      throw new SparsekdError(`cannot write to ${where}: ${oneLine(err)}`, { cause: err });
    }
    const crc = new Crc32c();
    let resolve!: (info: ObjectInfo) => void, reject!: (err: unknown) => void;
    const done = new Promise<ObjectInfo>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => {}); // the caller may only await the writable
    let open = true;
    const discard = async () => {
      if (open) {
        open = false;
        try {
          file.close();
        } catch { /* already closed */ }
      }
      await Deno.remove(tmp).catch(() => {});
    };
    const fail = async (err: unknown): Promise<never> => {
      await discard();
      const e = err instanceof SparsekdError
        ? err
        : new SparsekdError(`cannot write to ${where}: ${oneLine(err)}`, { cause: err });
      reject(e);
      throw e;
    };
    const writable = new WritableStream<Uint8Array>({
      async write(chunk) {
        try {
          let off = 0;
          while (off < chunk.length) off += await file.write(chunk.subarray(off));
          crc.update(chunk);
        } catch (err) {
          await fail(err);
        }
      },
      async close() {
        try {
          await file.sync();
          file.close();
          open = false;
          await publish(tmp, full, where);
          await Deno.remove(tmp).catch(() => {});
          await syncDir(dir);
        } catch (err) {
          await fail(err);
        }
        resolve({ path, size: crc.bytes, crc32c: crc.base64 });
      },
      async abort(reason) {
        await discard();
        reject(reason ?? new Error(`write of ${where} aborted`));
      },
    });
    return { writable, done };
  }

  /** Writes a whole object, create-only. */
  async writeBytes(path: string, bytes: Uint8Array): Promise<ObjectInfo> {
    const w = await this.create(path);
    const writer = w.writable.getWriter();
    await writer.write(bytes);
    await writer.close();
    return await w.done;
  }

  /** Deletes an object (no error when absent). */
  async delete(path: string): Promise<void> {
    try {
      await Deno.remove(this.#full(path));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw new SparsekdError(`cannot delete ${this.#where(path)}: ${oneLine(err)}`, { cause: err });
    }
  }
}

/** Links `tmp` to `full` without overwriting; falls back to check-then-rename where hard links fail. */
async function publish(tmp: string, full: string, where: string): Promise<void> {
  try {
    await Deno.link(tmp, full);
    return;
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) throw new ObjectExistsError(where);
    if (err instanceof Deno.errors.NotFound) throw err;
    // e.g. a file system without hard links: check, then rename (not atomic against a racing writer)
  }
  try {
    await Deno.lstat(full);
    throw new ObjectExistsError(where);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  await Deno.rename(tmp, full);
}

async function syncDir(dir: string): Promise<void> {
  // Make the new directory entry durable where the platform allows opening a directory.
  try {
    const d = await Deno.open(dir, { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch { /* not supported here (e.g. Windows): the file itself is synced */ }
}
