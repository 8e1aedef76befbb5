/**
 * Store URIs in messages: a store's URI joined with an object path.
 * @module
 */

/**
 * Joins a store URI and a relative path for messages.
 *
 * @example
 * ```ts
 * joinUri("gs://b/run", "shards/s000000.msgpack"); // "gs://b/run/shards/s000000.msgpack"
 * ```
 */
export function joinUri(uri: string, path: string): string {
  return uri.endsWith("/") ? uri + path : `${uri}/${path}`;
}
