/**
 * The float16 codec of format v1: float32 ⇄ IEEE 754 binary16 bit patterns.
 *
 * The conversions use the built-in `Float16Array` (Deno 2.9 / V8), which rounds to nearest, ties to even,
 * overflows to ±Inf and keeps subnormals: it is bit-exact with the hand-written conversion it replaced
 * for every non-NaN value (`tests/format_f16_test.ts` checks all 65,536 float16 patterns and millions of
 * float32 ones). It does not keep NaN payloads (V8 makes every NaN the canonical quiet NaN), so NaNs alone
 * go through the few lines below that keep their sign and payload.
 * @module
 */

/** NaN bits of a float32 NaN pattern as float16: sign and the top 10 payload bits (0 becomes the quiet bit). */
function nanF32ToF16(u: number): number {
  const m = (u & 0x7fffff) >>> 13;
  return ((u >>> 16) & 0x8000) | 0x7c00 | (m === 0 ? 0x200 : m);
}

/** Float32 bits of a float16 NaN pattern: sign and payload kept. */
function nanF16ToF32(h: number): number {
  return (((h & 0x8000) << 16) | 0x7f800000 | ((h & 0x3ff) << 13)) >>> 0;
}

const isF16NaN = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

/**
 * Converts float32 values to float16 bit patterns (round-to-nearest-even, NaN payloads kept).
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
  new Float16Array(out.buffer, out.byteOffset, values.length).set(values);
  for (let i = 0; i < values.length; i++) {
    // deno-lint-ignore no-self-compare
    if (values[i] !== values[i]) {
      out[i] = nanF32ToF16(new Uint32Array(values.buffer, values.byteOffset + 4 * i, 1)[0]);
    }
  }
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
  out.set(new Float16Array(halves.buffer, halves.byteOffset, halves.length));
  for (let i = 0; i < halves.length; i++) {
    if (isF16NaN(halves[i])) {
      new Uint32Array(out.buffer, out.byteOffset + 4 * i, 1)[0] = nanF16ToF32(halves[i]);
    }
  }
  return out;
}

const one32 = new Float32Array(1);
const one32Bits = new Uint32Array(one32.buffer);
const one16 = new Uint16Array(1);

/**
 * Float32 bit pattern of a float16 bit pattern (exact: every float16 is a float32; NaN payloads kept).
 *
 * @example
 * ```ts
 * f16BitsToF32Bits(0x3c00); // 0x3f800000 (1.0)
 * ```
 */
export function f16BitsToF32Bits(h: number): number {
  one16[0] = h;
  f16ToF32(one16, one32);
  return one32Bits[0];
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
  one32Bits[0] = u;
  return f32ToF16(one32, one16)[0];
}
