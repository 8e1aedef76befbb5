/**
 * Host manifests `OUT/manifests/h{h:05d}.json`: the shards a host wrote, with size, CRC32C, record and
 * token counts.
 * @module
 */

import { SparsekdError } from "../errors.ts";
import { ObjectExistsError, type ObjectStore } from "../store/store.ts";
import { crc32cFromBase64 } from "./crc32c.ts";
import { FORMAT_VERSION, type Manifest, MANIFEST_FORMAT, type ManifestEntry } from "./types.ts";
import { joinUri } from "./uri.ts";
import { manifestPath, shardPath } from "./layout.ts";
import { MAX_JSON_BYTES } from "./run_json.ts";

/**
 * Builds a host manifest, its shards sorted by index.
 *
 * @example
 * ```ts
 * const m = makeManifest(0, [{ shard: 0, path: "shards/s000000.msgpack", bytes: 123, crc32c: "4waSgw==",
 *   records: 4, tokens: 256 }]);
 * ```
 */
export function makeManifest(host: number, shards: ManifestEntry[]): Manifest {
  const sorted = [...shards].sort((a, b) => a.shard - b.shard).map((e) => ({
    shard: e.shard,
    path: e.path,
    bytes: e.bytes,
    crc32c: e.crc32c,
    records: e.records,
    tokens: e.tokens,
  }));
  return { format: MANIFEST_FORMAT, version: FORMAT_VERSION, host, shards: sorted };
}

/**
 * Checks a parsed manifest; throws a one-line {@linkcode SparsekdError} naming `where`.
 *
 * @example
 * ```ts
 * const m = validateManifest(JSON.parse(text), "out/manifests/h00000.json");
 * ```
 */
export function validateManifest(x: unknown, where: string): Manifest {
  const bad = (what: string): never => {
    throw new SparsekdError(`${where}: ${what}`);
  };
  if (typeof x !== "object" || x === null || Array.isArray(x)) bad("not a JSON object");
  const m = x as Record<string, unknown>;
  if (m.format !== MANIFEST_FORMAT) {
    bad(`format is ${JSON.stringify(m.format)}, expected "${MANIFEST_FORMAT}"`);
  }
  if (m.version !== FORMAT_VERSION) bad(`version ${JSON.stringify(m.version)} is not supported (only 1)`);
  if (!Number.isSafeInteger(m.host) || (m.host as number) < 0) bad("host must be a non-negative integer");
  if (!Array.isArray(m.shards)) bad("shards must be an array");
  for (const [i, e] of (m.shards as Record<string, unknown>[]).entries()) {
    if (typeof e !== "object" || e === null) bad(`shards[${i}] is not an object`);
    for (const key of ["shard", "bytes", "records", "tokens"]) {
      if (!Number.isSafeInteger(e[key]) || (e[key] as number) < 0) {
        bad(`shards[${i}].${key} must be a non-negative integer`);
      }
    }
    if (e.path !== shardPath(e.shard as number)) {
      bad(`shards[${i}].path must be "${shardPath(e.shard as number)}"`);
    }
    if (typeof e.crc32c !== "string" || crc32cFromBase64(e.crc32c) === null) {
      bad(`shards[${i}].crc32c must be base64 of 4 bytes`);
    }
  }
  return m as unknown as Manifest;
}

/**
 * Writes host h's manifest, create-only.
 *
 * @example
 * ```ts
 * await writeManifest(store, makeManifest(0, entries));
 * ```
 */
export async function writeManifest(store: ObjectStore, manifest: Manifest): Promise<void> {
  await store.writeBytes(manifestPath(manifest.host), encodeManifest(manifest));
}

/**
 * Writes host h's manifest. When one is there already with the same content (a finished run started
 * again) nothing changes; when it differs (the host count changed since) it is replaced: a manifest is an
 * index of shards that are themselves never overwritten, and the new one describes the same bytes.
 *
 * @example
 * ```ts
 * await putManifest(store, makeManifest(0, entries));
 * ```
 */
export async function putManifest(store: ObjectStore, manifest: Manifest): Promise<void> {
  const bytes = encodeManifest(manifest);
  const path = manifestPath(manifest.host);
  try {
    await store.writeBytes(path, bytes);
    return;
  } catch (err) {
    if (!(err instanceof ObjectExistsError)) throw err;
  }
  const old = await store.readBytes(path);
  if (old.length === bytes.length && old.every((b, i) => b === bytes[i])) return;
  await store.delete(path);
  try {
    await store.writeBytes(path, bytes);
  } catch (err) {
    // another process with the same host index replaced it at the same moment: with the same shards
    if (!(err instanceof ObjectExistsError)) throw err;
  }
}

/**
 * The bytes of a manifest as written: pretty-printed JSON and a final newline.
 *
 * @example
 * ```ts
 * const bytes = encodeManifest(makeManifest(0, entries));
 * ```
 */
export function encodeManifest(manifest: Manifest): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(manifest, null, 2) + "\n");
}

/**
 * Reads every manifest under `OUT/manifests/` and indexes their entries by shard, with the host that
 * listed each; two manifests that disagree about a shard are an error.
 *
 * @example
 * ```ts
 * const entries = await readManifests(store);
 * entries.get(0)?.crc32c;
 * ```
 */
export async function readManifests(
  store: ObjectStore,
): Promise<Map<number, ManifestEntry & { host: number }>> {
  const out = new Map<number, ManifestEntry & { host: number }>();
  const paths = (await store.list("manifests/")).filter((p) => /^manifests\/h\d{5,}\.json$/.test(p));
  for (const path of paths) {
    const where = joinUri(store.uri, path);
    let parsed: unknown;
    try {
      const size = await store.size(path);
      if (size !== null && size > MAX_JSON_BYTES) {
        throw new SparsekdError(`${where} is ${size} bytes, more than a manifest can be (${MAX_JSON_BYTES})`);
      }
      parsed = JSON.parse(new TextDecoder().decode(await store.readBytes(path)));
    } catch (err) {
      if (err instanceof SparsekdError) throw err;
      throw new SparsekdError(`${where} is not valid JSON: ${(err as Error).message.split("\n")[0]}`);
    }
    const m = validateManifest(parsed, where);
    for (const e of m.shards) {
      const prev = out.get(e.shard);
      if (prev && (prev.bytes !== e.bytes || prev.crc32c !== e.crc32c)) {
        throw new SparsekdError(
          `${where} disagrees with ${joinUri(store.uri, manifestPath(prev.host))} about ${e.path}`,
        );
      }
      out.set(e.shard, { ...e, host: m.host });
    }
  }
  return out;
}
