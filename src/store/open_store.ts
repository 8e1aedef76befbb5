/**
 * Opens a store from what the user wrote, through the store registry (`registry.ts`): a plain path or
 * `file://…` (a local folder), `gs://bucket/prefix`, or a read-only `http(s)://…` folder. A store's module is
 * loaded only when a URI of its scheme is opened.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { storeHelp, STORES } from "./registry.ts";
import type { ObjectStore } from "./store.ts";
import { storeScheme } from "./uri.ts";

export { type ParsedStoreUri, parseStoreUri, storeScheme } from "./uri.ts";

/** Options of {@linkcode openStore}. */
export interface OpenStoreOptions {
  /**
   * The endpoint of a remote store: either one URL for the URI's own scheme (what `--gcs-endpoint` gives, e.g.
   * the emulator's `http://127.0.0.1:4443` for a gs:// URI), or endpoints by scheme (`{ gs: "http://…" }`).
   * Unset: the store's default (for gs://, the `STORAGE_EMULATOR_HOST` variable, else Google's service).
   */
  endpoint?: string | Readonly<Record<string, string | undefined>>;
  /** Create the store's root now and check that it is writable (default false; a read-only store refuses). */
  create?: boolean;
}

/**
 * Opens a store from a URI through the registry. An unknown scheme, a read-only store opened with `create`,
 * and whatever its opener finds wrong (a missing bucket, an unwritable folder) are one-line
 * {@linkcode SparsekdError}s.
 *
 * @example
 * ```ts
 * const store = await openStore("runs/demo", { create: true });
 * const remote = await openStore("gs://bucket/run", { endpoint: "http://localhost:4443" });
 * const same = await openStore("gs://bucket/run", { endpoint: { gs: "http://localhost:4443" } });
 * ```
 */
export async function openStore(uri: string, options: OpenStoreOptions = {}): Promise<ObjectStore> {
  const scheme = storeScheme(uri);
  const entry = Object.hasOwn(STORES, scheme) ? STORES[scheme] : undefined;
  if (entry === undefined) throw new SparsekdError(`${uri}: unsupported store (use ${storeHelp()})`);
  if (options.create && entry.readOnly) throw new SparsekdError(`${uri}: ${scheme}:// stores are read-only`);
  const endpoint = typeof options.endpoint === "string"
    ? options.endpoint
    : options.endpoint && Object.hasOwn(options.endpoint, scheme)
    ? options.endpoint[scheme]
    : undefined;
  const open = await entry.load();
  return await open(uri, { endpoint, create: options.create });
}

/**
 * Reads one whole object that a full URI names (a file path, `file:`, `http(s):` or `gs://` URL) through the
 * registry: the store is the URI's folder, the object its last segment. For model files of teachers.
 *
 * @example
 * ```ts
 * const json = await readUriBytes("https://example.org/teacher/model.json");
 * ```
 */
export async function readUriBytes(uri: string, options: OpenStoreOptions = {}): Promise<Uint8Array> {
  const { store, path } = await openStoreOf(uri, options);
  return await store.readBytes(path);
}

/**
 * Opens the store of the folder that holds the object a full URI names, and returns that object's path in
 * it (its last segment, decoded for URLs).
 *
 * @example
 * ```ts
 * const { store, path } = await openStoreOf("gs://bucket/teacher/model.json");
 * ```
 */
export async function openStoreOf(
  uri: string,
  options: OpenStoreOptions = {},
): Promise<{ store: ObjectStore; path: string }> {
  const url = storeScheme(uri) !== "file" || /^file:/i.test(uri);
  const cut = uri.replace(/[?#].*$/, "").lastIndexOf("/");
  let name = cut < 0 ? uri : uri.slice(cut + 1);
  if (url) {
    try {
      name = decodeURIComponent(name);
    } catch {
      throw new SparsekdError(`${uri}: malformed %-escape in the object's name`);
    }
  }
  if (name === "" || name === "." || name === "..") throw new SparsekdError(`${uri} does not name an object`);
  const folder = cut < 0 ? "." : cut === 0 ? "/" : uri.slice(0, cut);
  return { store: await openStore(url && cut >= 0 ? uri.slice(0, cut + 1) : folder, options), path: name };
}
