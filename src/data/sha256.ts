/**
 * SHA-256 fingerprints that stream: `crypto.subtle.digest` needs the whole input in memory, so files are
 * hashed chunk by chunk with `node:crypto` (native speed, several hundred MB/s). The digests equal
 * `crypto.subtle.digest("SHA-256", bytes)` of the same bytes.
 * @module
 */
import { createHash } from "node:crypto";

/**
 * SHA-256 of some bytes, or of several byte arrays in a row, as lower-case hex.
 *
 * @example
 * ```ts
 * const hex = sha256Hex(new TextEncoder().encode("abc")); // "ba7816bf…"
 * ```
 */
export function sha256Hex(...parts: Uint8Array[]): string {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest("hex");
}

/**
 * SHA-256 of a whole file, read in chunks (memory stays bounded whatever the file size), as hex.
 *
 * @example
 * ```ts
 * const hex = await sha256File("tokens.npy");
 * ```
 */
export async function sha256File(path: string | URL, chunkBytes = 4 << 20): Promise<string> {
  const h = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  const buf = new Uint8Array(chunkBytes);
  for (;;) {
    const n = await file.read(buf);
    if (n === null) break;
    h.update(buf.subarray(0, n));
  }
  return h.digest("hex");
}
