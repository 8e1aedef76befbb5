/**
 * The MessagePack encoder of format v1: small, deterministic (integers in their shortest form, keys in
 * insertion order, `bin` in the shortest of bin8/16/32), for the values the format uses.
 * @module
 */

/** A value the encoder accepts. Numbers that are safe integers become ints; use {@linkcode Float64} for floats. */
export type PackValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | Float64
  | PackValue[]
  | { [key: string]: PackValue };

/**
 * Marks a number to be encoded as a MessagePack float64 even when it is an integer.
 *
 * @example
 * ```ts
 * encodeMsgpack(new Float64(1)); // 0xcb + 8 bytes
 * ```
 */
export class Float64 {
  /** @param value the number */
  constructor(readonly value: number) {}
}

const textEncoder = new TextEncoder();

/**
 * A growable byte buffer that encodes MessagePack deterministically: integers in the smallest form, map
 * keys in insertion order, `bin` in the smallest of bin8/16/32.
 *
 * @example
 * ```ts
 * const w = new PackWriter();
 * w.value({ a: 1 });
 * w.take(); // Uint8Array [0x81, 0xa1, 0x61, 0x01]
 * ```
 */
export class PackWriter {
  #buf: Uint8Array;
  #view: DataView;
  #pos = 0;
  /** @param capacity initial capacity in bytes */
  constructor(capacity = 256) {
    this.#buf = new Uint8Array(capacity);
    this.#view = new DataView(this.#buf.buffer);
  }
  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#pos + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }
  #u8(b: number): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = b;
  }
  /** Encodes an integer in the smallest MessagePack form. */
  int(n: number): this {
    if (!Number.isSafeInteger(n)) throw new Error(`msgpack: ${n} is not a safe integer`);
    this.#ensure(9);
    const v = this.#view;
    let p = this.#pos;
    if (n >= 0) {
      if (n < 0x80) this.#buf[p++] = n;
      else if (n < 0x100) (this.#buf[p++] = 0xcc, this.#buf[p++] = n);
      else if (n < 0x10000) (this.#buf[p++] = 0xcd, v.setUint16(p, n), p += 2);
      else if (n < 0x100000000) (this.#buf[p++] = 0xce, v.setUint32(p, n), p += 4);
      else (this.#buf[p++] = 0xcf, v.setBigUint64(p, BigInt(n)), p += 8);
    } else {
      if (n >= -32) this.#buf[p++] = n & 0xff;
      else if (n >= -0x80) (this.#buf[p++] = 0xd0, v.setInt8(p, n), p += 1);
      else if (n >= -0x8000) (this.#buf[p++] = 0xd1, v.setInt16(p, n), p += 2);
      else if (n >= -0x80000000) (this.#buf[p++] = 0xd2, v.setInt32(p, n), p += 4);
      else (this.#buf[p++] = 0xd3, v.setBigInt64(p, BigInt(n)), p += 8);
    }
    this.#pos = p;
    return this;
  }
  /** Encodes a float64 (0xcb). */
  float64(x: number): this {
    this.#ensure(9);
    this.#buf[this.#pos] = 0xcb;
    this.#view.setFloat64(this.#pos + 1, x);
    this.#pos += 9;
    return this;
  }
  /** Encodes a UTF-8 string in the smallest str form. */
  str(s: string): this {
    const bytes = textEncoder.encode(s);
    const n = bytes.length;
    this.#ensure(5 + n);
    const v = this.#view;
    if (n < 32) this.#buf[this.#pos++] = 0xa0 | n;
    else if (n < 0x100) (this.#buf[this.#pos++] = 0xd9, this.#buf[this.#pos++] = n);
    else if (n < 0x10000) (this.#buf[this.#pos++] = 0xda, v.setUint16(this.#pos, n), this.#pos += 2);
    else (this.#buf[this.#pos++] = 0xdb, v.setUint32(this.#pos, n), this.#pos += 4);
    this.#buf.set(bytes, this.#pos);
    this.#pos += n;
    return this;
  }
  /** Encodes raw bytes as `bin` in the smallest of bin8/bin16/bin32. */
  bin(bytes: Uint8Array): this {
    const n = bytes.length;
    this.#ensure(5 + n);
    const v = this.#view;
    if (n < 0x100) (this.#buf[this.#pos++] = 0xc4, this.#buf[this.#pos++] = n);
    else if (n < 0x10000) (this.#buf[this.#pos++] = 0xc5, v.setUint16(this.#pos, n), this.#pos += 2);
    else (this.#buf[this.#pos++] = 0xc6, v.setUint32(this.#pos, n), this.#pos += 4);
    this.#buf.set(bytes, this.#pos);
    this.#pos += n;
    return this;
  }
  /** Writes a map header for `n` entries. */
  mapHeader(n: number): this {
    if (n < 16) this.#u8(0x80 | n);
    else if (n < 0x10000) {
      (this.#u8(0xde), this.#ensure(2), this.#view.setUint16(this.#pos, n), this.#pos += 2);
    } else (this.#u8(0xdf), this.#ensure(4), this.#view.setUint32(this.#pos, n), this.#pos += 4);
    return this;
  }
  /** Writes an array header for `n` items. */
  arrayHeader(n: number): this {
    if (n < 16) this.#u8(0x90 | n);
    else if (n < 0x10000) {
      (this.#u8(0xdc), this.#ensure(2), this.#view.setUint16(this.#pos, n), this.#pos += 2);
    } else (this.#u8(0xdd), this.#ensure(4), this.#view.setUint32(this.#pos, n), this.#pos += 4);
    return this;
  }
  /** Encodes any {@linkcode PackValue}. */
  value(x: PackValue): this {
    if (x === null) this.#u8(0xc0);
    else if (x === true) this.#u8(0xc3);
    else if (x === false) this.#u8(0xc2);
    else if (typeof x === "number") Number.isSafeInteger(x) ? this.int(x) : this.float64(x);
    else if (typeof x === "string") this.str(x);
    else if (x instanceof Uint8Array) this.bin(x);
    else if (x instanceof Float64) this.float64(x.value);
    else if (Array.isArray(x)) {
      this.arrayHeader(x.length);
      for (const item of x) this.value(item);
    } else {
      const keys = Object.keys(x);
      this.mapHeader(keys.length);
      for (const key of keys) this.str(key).value(x[key]);
    }
    return this;
  }
  /** The bytes written so far (a copy), and resets the writer. */
  take(): Uint8Array {
    const out = this.#buf.slice(0, this.#pos);
    this.#pos = 0;
    return out;
  }
}

/**
 * Encodes one value as MessagePack (deterministic: the same value gives the same bytes).
 *
 * @example
 * ```ts
 * encodeMsgpack({ end: true, records: 2, tokens: 16 });
 * ```
 */
export function encodeMsgpack(x: PackValue): Uint8Array {
  return new PackWriter().value(x).take();
}
