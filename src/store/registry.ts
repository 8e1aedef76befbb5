/**
 * The store registry: URI scheme → the module that opens it, loaded only when a URI of that scheme is opened.
 *
 * A new store is one new file that exports a {@linkcode StoreOpener} named `storeOpener` (implementing
 * `ObjectStore` of `store.ts`) and one line here; `openStore`, the commands and the teachers that read models
 * through stores (`tfjs:`, `builtin:demo`) then accept its URIs. See docs/extending.md.
 * @module
 */
import type { StoreOpener } from "./store.ts";

/** One registered store. */
export interface StoreEntry {
  /** One line for help texts and the "unsupported store" message, e.g. `gs://bucket/prefix (Google Cloud Storage)`. */
  readonly help: string;
  /** True when the store can only be read (opening it with `create` is refused). */
  readonly readOnly?: boolean;
  /** Loads the store's module and returns its opener. */
  readonly load: () => Promise<StoreOpener>;
}

/** The registered stores, by lower-case URI scheme (`file` also serves plain paths). */
export const STORES: Readonly<Record<string, StoreEntry>> = {
  file: {
    help: "a folder path or file:///… (local)",
    load: async () => (await import("./local.ts")).storeOpener,
  },
  gs: {
    help: "gs://bucket/prefix (Google Cloud Storage)",
    load: async () => (await import("./gcs.ts")).storeOpener,
  },
  http: {
    help: "http://… (read-only)",
    readOnly: true,
    load: async () => (await import("./http.ts")).storeOpener,
  },
  https: {
    help: "https://… (read-only)",
    readOnly: true,
    load: async () => (await import("./http.ts")).storeOpener,
  },
};

/**
 * The registered stores in one line, for messages: `a folder path or file:///… (local), gs://bucket/prefix …`.
 *
 * @example
 * ```ts
 * console.log(`--out: ${storeHelp()}`);
 * ```
 */
export function storeHelp(): string {
  return Object.values(STORES).map((s) => s.help).join(", ");
}
