/**
 * The little-endian codec of format v1: typed arrays ⇄ the little-endian bytes stored in a shard's `bin`
 * values, on hosts of either byte order.
 * @module
 */
import { f16ToF32 } from "./f16.ts";

/** True when this machine is little-endian (typed arrays then match the format's byte order directly). */
export const HOST_LITTLE_ENDIAN: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

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
