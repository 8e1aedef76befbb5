/**
 * Opens a store from what the user wrote: a plain path, a `file://` URL or `gs://bucket/prefix`. The GCS
 * client is loaded only for gs:// URIs.
 * @module
 */

import { fileURLToPath } from "node:url";
import { SparsekdError } from "../errors.ts";
import { openLocalStore } from "./local.ts";
import type { ObjectStore } from "./store.ts";

/** Options of {@linkcode openStore}. */
export interface OpenStoreOptions {
  /** GCS endpoint (for gs:// URIs), e.g. the emulator's `http://localhost:4443`. */
  endpoint?: string;
  /** For a local folder: create it and check it is writable now (default false). */
  create?: boolean;
}

/** What a store URI names. */
export type ParsedStoreUri =
  | { kind: "local"; path: string }
  | { kind: "gcs"; bucket: string; prefix: string };

/**
 * Parses a store URI: `gs://bucket[/prefix]`, `file:///abs/path` or a plain path (anything without a
 * scheme). Other schemes are a one-line {@linkcode SparsekdError}.
 *
 * @example
 * ```ts
 * parseStoreUri("gs://my-bucket/runs/a"); // { kind: "gcs", bucket: "my-bucket", prefix: "runs/a" }
 * parseStoreUri("file:///tmp/out"); // { kind: "local", path: "/tmp/out" }
 * ```
 */
export function parseStoreUri(uri: string): ParsedStoreUri {
  if (uri === "") throw new SparsekdError("the output location is empty");
  if (uri.startsWith("gs://")) {
    const rest = uri.slice(5);
    const slash = rest.indexOf("/");
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = slash < 0 ? "" : rest.slice(slash + 1).replace(/\/+$/, "");
    if (!/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(bucket)) {
      throw new SparsekdError(`${uri}: "${bucket}" is not a valid bucket name`);
    }
    return { kind: "gcs", bucket, prefix };
  }
  if (uri.startsWith("file:")) {
    let path: string;
    try {
      path = fileURLToPath(uri);
    } catch (err) {
      throw new SparsekdError(`${uri} is not a valid file URL: ${(err as Error).message.split("\n")[0]}`);
    }
    return { kind: "local", path: stripSlash(path) };
  }
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(uri)) {
    throw new SparsekdError(`${uri}: unsupported store (use a folder path, file://… or gs://bucket/prefix)`);
  }
  return { kind: "local", path: stripSlash(uri) };
}

function stripSlash(path: string): string {
  const p = path.replace(/\/+$/, "");
  return p === "" ? "/" : p;
}

/**
 * Opens a store from a URI: a local folder or `gs://bucket/prefix` (through `src/store/gcs.ts`, loaded on
 * demand).
 *
 * @example
 * ```ts
 * const store = await openStore("runs/demo", { create: true });
 * const remote = await openStore("gs://bucket/run", { endpoint: "http://localhost:4443" });
 * ```
 */
export async function openStore(uri: string, options: OpenStoreOptions = {}): Promise<ObjectStore> {
  const parsed = parseStoreUri(uri);
  if (parsed.kind === "local") return await openLocalStore(parsed.path, { uri, create: options.create });
  const { openGcsStore } = await import("./gcs.ts");
  return await openGcsStore(uri, { endpoint: options.endpoint });
}
