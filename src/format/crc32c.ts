/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven (slicing by 8), with a streaming
 * update and the GCS base64 form.
 * @module
 */

const POLY = 0x82f63b78;

/** 8 tables of 256 entries: table 0 is the classic byte table, table i advances i more zero bytes. */
const TABLES: Uint32Array = (() => {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let b = 0; b < 8; b++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n];
    for (let i = 1; i < 8; i++) {
      c = t[c & 0xff] ^ (c >>> 8);
      t[i * 256 + n] = c >>> 0;
    }
  }
  return t;
})();

/**
 * Advances a CRC32C over `bytes`. Start with 0; the result of one call is the `crc` of the next.
 *
 * @example
 * ```ts
 * const enc = new TextEncoder();
 * let crc = crc32cUpdate(0, enc.encode("1234"));
 * crc = crc32cUpdate(crc, enc.encode("56789")); // 0xe3069283
 * ```
 */
export function crc32cUpdate(crc: number, bytes: Uint8Array): number {
  const t = TABLES;
  let c = ~crc >>> 0;
  let i = 0;
  const n = bytes.length;
  const n8 = n - (n % 8);
  for (; i < n8; i += 8) {
    const lo = c ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    c = t[1792 + (lo & 0xff)] ^ t[1536 + ((lo >>> 8) & 0xff)] ^ t[1280 + ((lo >>> 16) & 0xff)] ^
      t[1024 + (lo >>> 24)] ^ t[768 + bytes[i + 4]] ^ t[512 + bytes[i + 5]] ^ t[256 + bytes[i + 6]] ^
      t[bytes[i + 7]];
  }
  for (; i < n; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * CRC32C of a whole byte array.
 *
 * @example
 * ```ts
 * crc32c(new TextEncoder().encode("123456789")); // 0xe3069283
 * ```
 */
export function crc32c(bytes: Uint8Array): number {
  return crc32cUpdate(0, bytes);
}

/**
 * The GCS form of a CRC32C: base64 of its 4 big-endian bytes.
 *
 * @example
 * ```ts
 * crc32cToBase64(0xe3069283); // "4waSgw=="
 * ```
 */
export function crc32cToBase64(crc: number): string {
  const b = [(crc >>> 24) & 0xff, (crc >>> 16) & 0xff, (crc >>> 8) & 0xff, crc & 0xff];
  return btoa(String.fromCharCode(...b));
}

/**
 * Parses the GCS base64 form back into a number; null when it is not 4 bytes of base64.
 *
 * @example
 * ```ts
 * crc32cFromBase64("4waSgw=="); // 0xe3069283
 * ```
 */
export function crc32cFromBase64(text: string): number | null {
  let raw: string;
  try {
    raw = atob(text);
  } catch {
    return null;
  }
  if (raw.length !== 4) return null;
  return ((raw.charCodeAt(0) << 24) | (raw.charCodeAt(1) << 16) | (raw.charCodeAt(2) << 8) |
    raw.charCodeAt(3)) >>> 0;
}

/**
 * A streaming CRC32C and byte count.
 *
 * @example
 * ```ts
 * const h = new Crc32c();
 * h.update(new TextEncoder().encode("123456789"));
 * h.value; // 0xe3069283
 * h.base64; // "4waSgw=="
 * ```
 */
export class Crc32c {
  /** The CRC so far. */
  value = 0;
  /** Bytes seen so far. */
  bytes = 0;
  /** Adds bytes. */
  update(bytes: Uint8Array): this {
    this.value = crc32cUpdate(this.value, bytes);
    this.bytes += bytes.length;
    return this;
  }
  /** The CRC in the GCS base64 form. */
  get base64(): string {
    return crc32cToBase64(this.value);
  }
}
