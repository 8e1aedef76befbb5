/**
 * Store URIs: which scheme a location names (the key of the store registry) and what a local or `gs://`
 * location holds. Imports no store, so that every store module may use it.
 * @module
 */
import { fileURLToPath } from "node:url";
import { SparsekdError } from "../errors.ts";

/** What a store URI names. */
export type ParsedStoreUri =
  | { kind: "local"; path: string }
  | { kind: "gcs"; bucket: string; prefix: string }
  | { kind: "url"; scheme: string; url: string };

/**
 * The scheme of a store location, lower-cased: `file` for a plain path (anything without `scheme:`) or a
 * `file:` URL, else the URL's scheme (`gs`, `https`, …). A one-letter scheme is a Windows drive: `file`.
 *
 * @example
 * ```ts
 * storeScheme("runs/demo"); // "file"
 * storeScheme("gs://bucket/run"); // "gs"
 * ```
 */
export function storeScheme(uri: string): string {
  if (uri === "") throw new SparsekdError("the store location is empty");
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(uri);
  if (!m || m[1].length === 1) return "file";
  const scheme = m[1].toLowerCase();
  // "name:with-colon" without "//" is a relative path, except for file: URLs.
  return scheme === "file" || uri.slice(m[0].length).startsWith("//") ? scheme : "file";
}

/**
 * Parses a store URI: `gs://bucket[/prefix]`, `file:///abs/path` or a plain path; any other `scheme://…` is
 * returned as a URL for its store to read (whether a store serves that scheme is the registry's answer, in
 * `openStore`). A malformed bucket name or file URL is a one-line {@linkcode SparsekdError}.
 *
 * @example
 * ```ts
 * parseStoreUri("gs://my-bucket/runs/a"); // { kind: "gcs", bucket: "my-bucket", prefix: "runs/a" }
 * parseStoreUri("file:///tmp/out"); // { kind: "local", path: "/tmp/out" }
 * ```
 */
export function parseStoreUri(uri: string): ParsedStoreUri {
  const scheme = storeScheme(uri);
  if (scheme === "gs") {
    const rest = uri.slice(5);
    const slash = rest.indexOf("/");
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefix = slash < 0 ? "" : rest.slice(slash + 1).replace(/\/+$/, "");
    if (!/^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/.test(bucket)) {
      throw new SparsekdError(`${uri}: "${bucket}" is not a valid bucket name`);
    }
    return { kind: "gcs", bucket, prefix };
  }
  if (scheme === "file") {
    if (!/^file:/i.test(uri)) return { kind: "local", path: stripSlash(uri) };
    let path: string;
    try {
      path = fileURLToPath(uri);
    } catch (err) {
      throw new SparsekdError(`${uri} is not a valid file URL: ${(err as Error).message.split("\n")[0]}`);
    }
    return { kind: "local", path: stripSlash(path) };
  }
  return { kind: "url", scheme, url: uri };
}

function stripSlash(path: string): string {
  const p = path.replace(/\/+$/, "");
  return p === "" ? "/" : p;
}
