/**
 * Object stores: one interface ({@linkcode ObjectStore}) over local folders, gs:// buckets and read-only
 * http(s), opened by URI through the registry ({@linkcode STORES}).
 *
 * @example Parse a URI; write and list objects of a local store
 * ```ts
 * import { openStore, parseStoreUri, STORES } from "./mod.ts";
 *
 * if (parseStoreUri("gs://bucket/run").kind !== "gcs") throw new Error("a gs:// URI");
 * if (!("file" in STORES && "gs" in STORES)) throw new Error("local and GCS stores are registered");
 * const dir = await Deno.makeTempDir();
 * const store = await openStore(dir, { create: true });
 * await store.writeBytes("shards/a.bin", new Uint8Array(4));
 * if ((await store.list("shards/")).length !== 1) throw new Error("one object listed");
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
export { LocalStore, openLocalStore } from "./local.ts";
export type { LocalStoreOptions } from "./local.ts";
export { openStore, parseStoreUri } from "./open_store.ts";
export type { OpenStoreOptions, ParsedStoreUri } from "./open_store.ts";
export { ObjectExistsError } from "./store.ts";
export type {
  ObjectInfo,
  ObjectStore,
  ObjectWriter,
  ReadOptions,
  StoreOpener,
  StoreOpenOptions,
} from "./store.ts";
export { GCS_CHUNK_QUANTUM, openGcsStore } from "./gcs.ts";
export type { GcsStoreOptions } from "./gcs.ts";
export { storeHelp, STORES } from "./registry.ts";
export type { StoreEntry } from "./registry.ts";
