/**
 * The MessagePack decoder of format v1: one value from a buffer, or top-level values framed incrementally
 * from a byte stream. Maps with string keys, integers, floats, strings, booleans, arrays and `bin`; `ext`
 * is refused. A length read from the bytes is checked against the bytes there before anything is
 * allocated for it, so hostile input cannot make the decoder allocate more than it was given.
 * @module
 */

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

/** A DataView getter of a fixed-size field. */
type Getter = (this: DataView, at: number) => number;
const dv = DataView.prototype;
/**
 * The type bytes followed by one fixed-size field: the number itself, or the length (count) of what follows.
 * (The 64-bit integers, which need a range check, are handled apart.)
 */
const HEADS = new Map<
  number,
  { size: number; get: Getter; then: "number" | "bin" | "str" | "array" | "map" }
>([
  [0xc4, { size: 1, get: dv.getUint8, then: "bin" }],
  [0xc5, { size: 2, get: dv.getUint16, then: "bin" }],
  [0xc6, { size: 4, get: dv.getUint32, then: "bin" }],
  [0xca, { size: 4, get: dv.getFloat32, then: "number" }],
  [0xcb, { size: 8, get: dv.getFloat64, then: "number" }],
  [0xcc, { size: 1, get: dv.getUint8, then: "number" }],
  [0xcd, { size: 2, get: dv.getUint16, then: "number" }],
  [0xce, { size: 4, get: dv.getUint32, then: "number" }],
  [0xd0, { size: 1, get: dv.getInt8, then: "number" }],
  [0xd1, { size: 2, get: dv.getInt16, then: "number" }],
  [0xd2, { size: 4, get: dv.getInt32, then: "number" }],
  [0xd9, { size: 1, get: dv.getUint8, then: "str" }],
  [0xda, { size: 2, get: dv.getUint16, then: "str" }],
  [0xdb, { size: 4, get: dv.getUint32, then: "str" }],
  [0xdc, { size: 2, get: dv.getUint16, then: "array" }],
  [0xdd, { size: 4, get: dv.getUint32, then: "array" }],
  [0xde, { size: 2, get: dv.getUint16, then: "map" }],
  [0xdf, { size: 4, get: dv.getUint32, then: "map" }],
]);

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
  // Moves p past a fixed-size field and returns where the field starts.
  const skip = (size: number): number => {
    need(size);
    p += size;
    return p - size;
  };
  // A fixed-size field read with `get` (a DataView method).
  const fixed = (size: number, get: Getter): number => get.call(view, skip(size));
  const int64 = (big: bigint, at: number): number => {
    if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new MsgpackSyntaxError(at, "integer too large");
    }
    return Number(big);
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
    const head = HEADS.get(b);
    if (head) {
      const n = fixed(head.size, head.get);
      switch (head.then) {
        case "number":
          return n;
        case "bin":
          return bin(n);
        case "str":
          return str(n, at);
        case "array":
          return arr(n, depth);
        case "map":
          return map(n, depth);
      }
    }
    switch (b) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xcf:
        return int64(view.getBigUint64(skip(8)), at);
      case 0xd3:
        return int64(view.getBigInt64(skip(8)), at);
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
  // Every item takes at least one byte (a map entry two): a count beyond the bytes there cannot be
  // complete yet, so it asks for them before anything is allocated.
  const arr = (n: number, depth: number): UnpackValue[] => {
    need(n);
    const out: UnpackValue[] = [];
    for (let i = 0; i < n; i++) out.push(read(depth + 1));
    return out;
  };
  const map = (n: number, depth: number): { [key: string]: UnpackValue } => {
    need(2 * n);
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
  /** The largest value (in bytes) this decoder buffers; a larger one is a syntax error, not an allocation. */
  readonly maxValueBytes: number;
  /** @param options `maxValueBytes`: refuse values larger than this (default: no limit) */
  constructor(options: { maxValueBytes?: number } = {}) {
    this.maxValueBytes = options.maxValueBytes ?? Infinity;
  }
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
        if (err.needed - this.#start > this.maxValueBytes) {
          throw new MsgpackSyntaxError(
            this.#base + this.#start,
            `a value of at least ${
              err.needed - this.#start
            } bytes, more than the ${this.maxValueBytes} the largest ` +
              "one of this run can take",
          );
        }
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
