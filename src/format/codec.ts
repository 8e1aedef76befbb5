/**
 * The byte-level codec of format v1: float16 ⇄ float32 (round-to-nearest-even, subnormals, Inf, NaN with
 * its payload), little-endian typed-array ⇄ bytes, and a small deterministic MessagePack encoder and
 * decoder for the values the format uses (maps with string keys, integers, float64, strings, booleans,
 * arrays, `bin`; `ext` is refused).
 * @module
 */

/** True when this machine is little-endian (typed arrays then match the format's byte order directly). */
export const HOST_LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------------------
// float16

/**
 * Float32 bit pattern of a float16 bit pattern (exact: every float16 is a float32; NaN payloads kept).
 *
 * @example
 * ```ts
 * f16BitsToF32Bits(0x3c00); // 0x3f800000 (1.0)
 * ```
 */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // subnormal: normalise
  let e = 113; // exponent of 2^-14 in float32 bias
  while ((mant & 0x400) === 0) {
    mant <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((mant & 0x3ff) << 13)) >>> 0;
}

/**
 * Float16 bit pattern nearest to a float32 bit pattern, ties to even; overflow gives ±Inf, underflow
 * gives ±0 or a subnormal, NaN keeps its sign and the top 10 bits of its payload (a payload that would
 * become 0 becomes the quiet bit).
 *
 * @example
 * ```ts
 * f32BitsToF16Bits(0x3f800000); // 0x3c00 (1.0)
 * ```
 */
export function f32BitsToF16Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00;
    const m = mant >>> 13;
    return sign | 0x7c00 | (m === 0 ? 0x200 : m);
  }
  const he = exp - 112; // float16 biased exponent
  if (he >= 0x1f) return sign | 0x7c00;
  if (he <= 0) {
    if (he < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - he; // 14..24
    let half = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (half & 1) === 1)) half++;
    return sign | half;
  }
  let half = (he << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1) === 1)) half++; // a carry into the exponent is right
  return sign | half;
}

const F16_TO_F32: Uint32Array = (() => {
  const t = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = f16BitsToF32Bits(h);
  return t;
})();

/**
 * Converts float32 values to float16 bit patterns (round-to-nearest-even), bit-exactly from the
 * float32 bit patterns.
 *
 * @example
 * ```ts
 * f32ToF16(new Float32Array([1, -2, 65504])); // Uint16Array [0x3c00, 0xc000, 0x7bff]
 * ```
 */
export function f32ToF16(
  values: Float32Array,
  out: Uint16Array = new Uint16Array(values.length),
): Uint16Array {
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
  return out;
}

/**
 * Widens float16 bit patterns to float32 values (exact, NaN payloads kept).
 *
 * @example
 * ```ts
 * f16ToF32(new Uint16Array([0x3c00, 0x7c00])); // Float32Array [1, Infinity]
 * ```
 */
export function f16ToF32(
  halves: Uint16Array,
  out: Float32Array = new Float32Array(halves.length),
): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < halves.length; i++) bits[i] = F16_TO_F32[halves[i]];
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// little-endian typed arrays

type Typed = Uint16Array | Uint32Array | Float32Array;

/**
 * The little-endian bytes of a typed array (a view when the host is little-endian, a swapped copy
 * otherwise).
 *
 * @example
 * ```ts
 * leBytes(new Uint32Array([1])); // Uint8Array [1, 0, 0, 0]
 * ```
 */
export function leBytes(a: Typed): Uint8Array {
  const view = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return HOST_LITTLE_ENDIAN ? view : swapCopy(view, a.BYTES_PER_ELEMENT);
}

function swapCopy(bytes: Uint8Array, width: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i += width) {
    for (let j = 0; j < width; j++) out[i + j] = bytes[i + width - 1 - j];
  }
  return out;
}

function copyAligned(bytes: Uint8Array, width: number): ArrayBuffer {
  const buf = new ArrayBuffer(bytes.length);
  new Uint8Array(buf).set(HOST_LITTLE_ENDIAN ? bytes : swapCopy(bytes, width));
  return buf;
}

/**
 * Decodes little-endian u16 bytes into a new (aligned, owned) Uint16Array.
 *
 * @example
 * ```ts
 * fromLeU16(new Uint8Array([1, 0])); // Uint16Array [1]
 * ```
 */
export function fromLeU16(bytes: Uint8Array): Uint16Array {
  return new Uint16Array(copyAligned(bytes, 2));
}

/**
 * Decodes little-endian u32 bytes into a new Uint32Array.
 *
 * @example
 * ```ts
 * fromLeU32(new Uint8Array([1, 0, 0, 0])); // Uint32Array [1]
 * ```
 */
export function fromLeU32(bytes: Uint8Array): Uint32Array {
  return new Uint32Array(copyAligned(bytes, 4));
}

/**
 * Decodes little-endian f32 bytes into a new Float32Array (bit-exact, NaN payloads kept).
 *
 * @example
 * ```ts
 * fromLeF32(new Uint8Array([0, 0, 0x80, 0x3f])); // Float32Array [1]
 * ```
 */
export function fromLeF32(bytes: Uint8Array): Float32Array {
  return new Float32Array(copyAligned(bytes, 4));
}

/**
 * Decodes little-endian f16 bytes into a new Float32Array.
 *
 * @example
 * ```ts
 * fromLeF16(new Uint8Array([0, 0x3c])); // Float32Array [1]
 * ```
 */
export function fromLeF16(bytes: Uint8Array): Float32Array {
  return f16ToF32(fromLeU16(bytes));
}

// ---------------------------------------------------------------------------------------------------------
// MessagePack encoder

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

// ---------------------------------------------------------------------------------------------------------
// MessagePack decoder

/** A decoded value: maps become plain objects with string keys, `bin` becomes a Uint8Array view. */
export type UnpackValue =
  | null
  | boolean
  | number
  | string
  | Uint8Array
  | UnpackValue[]
  | { [key: string]: UnpackValue };

/**
 * Thrown by {@linkcode decodeMsgpackAt} when the bytes end inside a value.
 *
 * @example
 * ```ts
 * try { decodeMsgpackAt(new Uint8Array([0x92, 0x01]), 0); } catch (e) { e instanceof NeedMoreBytes; } // true
 * ```
 */
export class NeedMoreBytes extends Error {
  /** @param needed the buffer length at which the value might become decodable (at least) */
  constructor(readonly needed = 0) {
    super("msgpack: more bytes needed");
    this.name = "NeedMoreBytes";
  }
}

/**
 * Thrown by {@linkcode decodeMsgpackAt} for bytes that are not valid MessagePack (or use `ext`).
 *
 * @example
 * ```ts
 * try { decodeMsgpackAt(new Uint8Array([0xc1]), 0); } catch (e) { (e as MsgpackSyntaxError).offset; } // 0
 * ```
 */
export class MsgpackSyntaxError extends Error {
  /**
   * @param offset index of the offending byte within the buffer passed to the decoder
   * @param detail what is wrong
   */
  constructor(readonly offset: number, readonly detail: string) {
    super(`msgpack: ${detail} at byte ${offset}`);
    this.name = "MsgpackSyntaxError";
  }
}

const textDecoder = new TextDecoder("utf-8", { fatal: true });
const MAX_DEPTH = 32;

/**
 * Decodes one MessagePack value starting at `pos` of `buf`, returning it and the position after it.
 * Throws {@linkcode NeedMoreBytes} when `buf` ends inside the value and {@linkcode MsgpackSyntaxError}
 * (with the offending byte's position) for invalid bytes, `ext` types, non-string map keys, duplicate
 * keys or nesting deeper than 32. `bin` values are views into `buf`.
 *
 * @example
 * ```ts
 * decodeMsgpackAt(new Uint8Array([0x81, 0xa1, 0x61, 0x01]), 0); // { value: { a: 1 }, end: 4 }
 * ```
 */
export function decodeMsgpackAt(buf: Uint8Array, pos: number): { value: UnpackValue; end: number } {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let p = pos;
  const need = (n: number) => {
    if (p + n > buf.length) throw new NeedMoreBytes(p + n);
  };
  const str = (n: number, at: number): string => {
    need(n);
    let s: string;
    try {
      s = textDecoder.decode(buf.subarray(p, p + n));
    } catch {
      throw new MsgpackSyntaxError(at, "invalid UTF-8 in a string");
    }
    p += n;
    return s;
  };
  const bin = (n: number): Uint8Array => {
    need(n);
    const b = buf.subarray(p, p + n);
    p += n;
    return b;
  };
  const read = (depth: number): UnpackValue => {
    if (depth > MAX_DEPTH) throw new MsgpackSyntaxError(p, "nesting deeper than 32");
    need(1);
    const at = p;
    const b = buf[p++];
    if (b < 0x80) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xf0) === 0x80) return map(b & 0x0f, depth);
    if ((b & 0xf0) === 0x90) return arr(b & 0x0f, depth);
    if ((b & 0xe0) === 0xa0) return str(b & 0x1f, at);
    let n: number;
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        need(1);
        return bin(buf[p++]);
      case 0xc5:
        need(2), n = view.getUint16(p), p += 2;
        return bin(n);
      case 0xc6:
        need(4), n = view.getUint32(p), p += 4;
        return bin(n);
      case 0xca:
        need(4), n = view.getFloat32(p), p += 4;
        return n;
      case 0xcb:
        need(8), n = view.getFloat64(p), p += 8;
        return n;
      case 0xcc:
        need(1);
        return buf[p++];
      case 0xcd:
        need(2), n = view.getUint16(p), p += 2;
        return n;
      case 0xce:
        need(4), n = view.getUint32(p), p += 4;
        return n;
      case 0xcf: {
        need(8);
        const big = view.getBigUint64(p);
        p += 8;
        if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new MsgpackSyntaxError(at, "integer too large");
        return Number(big);
      }
      case 0xd0:
        need(1), n = view.getInt8(p), p += 1;
        return n;
      case 0xd1:
        need(2), n = view.getInt16(p), p += 2;
        return n;
      case 0xd2:
        need(4), n = view.getInt32(p), p += 4;
        return n;
      case 0xd3: {
        need(8);
        const big = view.getBigInt64(p);
        p += 8;
        if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
          throw new MsgpackSyntaxError(at, "integer too large");
        }
        return Number(big);
      }
      case 0xd9:
        need(1);
        return str(buf[p++], at);
      case 0xda:
        need(2), n = view.getUint16(p), p += 2;
        return str(n, at);
      case 0xdb:
        need(4), n = view.getUint32(p), p += 4;
        return str(n, at);
      case 0xdc:
        need(2), n = view.getUint16(p), p += 2;
        return arr(n, depth);
      case 0xdd:
        need(4), n = view.getUint32(p), p += 4;
        return arr(n, depth);
      case 0xde:
        need(2), n = view.getUint16(p), p += 2;
        return map(n, depth);
      case 0xdf:
        need(4), n = view.getUint32(p), p += 4;
        return map(n, depth);
      case 0xc7:
      case 0xc8:
      case 0xc9:
      case 0xd4:
      case 0xd5:
      case 0xd6:
      case 0xd7:
      case 0xd8:
        throw new MsgpackSyntaxError(at, `ext type 0x${b.toString(16)} is not allowed`);
      default:
        throw new MsgpackSyntaxError(at, "invalid byte 0xc1");
    }
  };
  const arr = (n: number, depth: number): UnpackValue[] => {
    const out: UnpackValue[] = [];
    for (let i = 0; i < n; i++) out.push(read(depth + 1));
    return out;
  };
  const map = (n: number, depth: number): { [key: string]: UnpackValue } => {
    const out: { [key: string]: UnpackValue } = {};
    for (let i = 0; i < n; i++) {
      const at = p;
      const key = read(depth + 1);
      if (typeof key !== "string") throw new MsgpackSyntaxError(at, "map key is not a string");
      if (Object.hasOwn(out, key)) throw new MsgpackSyntaxError(at, `duplicate map key "${key}"`);
      const value = read(depth + 1);
      Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
    }
    return out;
  };
  const value = read(0);
  return { value, end: p };
}

/**
 * Incremental framing of a byte stream into top-level MessagePack values: push chunks, pull values.
 * Tracks absolute byte offsets so that errors can name them.
 *
 * @example
 * ```ts
 * const d = new MsgpackStreamDecoder();
 * d.push(new Uint8Array([0x01, 0x81]));
 * d.next(); // { value: 1, offset: 0 }
 * d.next(); // undefined (the map is incomplete)
 * ```
 */
export class MsgpackStreamDecoder {
  #buf = new Uint8Array(0);
  #start = 0;
  #end = 0;
  /** Absolute stream offset of `#buf[0]`. */
  #base = 0;
  /** Absolute offset the pending value needs to reach before decoding is worth retrying. */
  #wantEnd = 0;
  /** Total bytes pushed. */
  get received(): number {
    return this.#base + this.#end;
  }
  /** Absolute offset of the next undecoded byte. */
  get offset(): number {
    return this.#base + this.#start;
  }
  /** Bytes pushed but not yet decoded. */
  get pending(): number {
    return this.#end - this.#start;
  }
  /** Appends a chunk. */
  push(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#buf.length) {
      const live = this.#end - this.#start;
      let cap = Math.max(this.#buf.length, 1 << 16);
      while (cap < live + chunk.length) cap *= 2;
      // Values already returned may hold views into the old buffer, so always move into a fresh one.
      const next = new Uint8Array(cap);
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#base += this.#start;
      this.#buf = next;
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }
  /**
   * The next complete value with its absolute offset, or undefined when more bytes are needed. `bin`
   * values are views that stay valid until the next {@linkcode push}. Throws
   * {@linkcode MsgpackSyntaxError} with an absolute offset.
   */
  next(): { value: UnpackValue; offset: number; end: number } | undefined {
    if (this.#start === this.#end || this.#base + this.#end < this.#wantEnd) return undefined;
    const window = this.#buf.subarray(0, this.#end);
    try {
      const { value, end } = decodeMsgpackAt(window, this.#start);
      const offset = this.#base + this.#start;
      this.#start = end;
      return { value, offset, end: this.#base + end };
    } catch (err) {
      if (err instanceof NeedMoreBytes) {
        this.#wantEnd = this.#base + err.needed;
        return undefined;
      }
      if (err instanceof MsgpackSyntaxError) {
        throw new MsgpackSyntaxError(this.#base + err.offset, err.detail);
      }
      throw err;
    }
  }
}
