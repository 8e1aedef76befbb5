/**
 * The float16 codec against the hand-written conversion it replaced (kept here as the reference): all
 * 65,536 float16 bit patterns widened, and millions of float32 bit patterns (random, and every pattern of
 * the exponents around the float16 range) narrowed, bit for bit, NaN payloads included.
 */
import assert from "node:assert/strict";
import { f16BitsToF32Bits, f16ToF32, f32BitsToF16Bits, f32ToF16 } from "../src/format/f16.ts";

/**
 * Float32 bit pattern of a float16 bit pattern (exact: every float16 is a float32; NaN payloads kept).
 *
 * @example
 * ```ts
 * f16BitsToF32Bits(0x3c00); // 0x3f800000 (1.0)
 * ```
 */
function refF16BitsToF32Bits(h: number): number {
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
function refF32BitsToF16Bits(u: number): number {
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

Deno.test("f16 (built-in Float16Array): all 65,536 float16 patterns widen to the reference's float32 bits", () => {
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const wide = new Uint32Array(f16ToF32(all).buffer);
  for (let h = 0; h < 65536; h++) {
    assert.equal(wide[h], refF16BitsToF32Bits(h), `pattern 0x${h.toString(16)}`);
    assert.equal(f16BitsToF32Bits(h), refF16BitsToF32Bits(h), `scalar, pattern 0x${h.toString(16)}`);
  }
});

Deno.test("f16 (built-in Float16Array): float32 → float16 equals the reference on the boundary exponents exhaustively, 51 exponents sampled and 2^22 random patterns", () => {
  // Every float32 of the exponents 95..145 (float16's normal and subnormal range with the rounding and
  // overflow boundaries on either side), both signs, in slices of 2^20 patterns.
  const slice = 1 << 20;
  const bits = new Uint32Array(slice);
  const values = new Float32Array(bits.buffer);
  const out = new Uint16Array(slice);
  const compare = (what: string) => {
    f32ToF16(values, out);
    for (let i = 0; i < slice; i++) {
      const want = refF32BitsToF16Bits(bits[i]);
      if (out[i] !== want) {
        assert.fail(
          `${what}: 0x${bits[i].toString(16)} → 0x${out[i].toString(16)}, want 0x${want.toString(16)}`,
        );
      }
    }
  };
  // Exponents at the boundaries (the smallest subnormal, subnormal → normal, overflow) are exhaustive,
  // the others every 31st mantissa.
  const exhaustive = new Set([101, 102, 103, 112, 113, 142, 143]);
  for (let e = 95; e <= 145; e++) {
    const step = exhaustive.has(e) ? 1 : 31;
    for (const sign of [0, 0x80000000]) {
      for (let m0 = 0; m0 < 1 << 23; m0 += slice * step) {
        for (let i = 0; i < slice; i++) bits[i] = (sign | (e << 23) | ((m0 + i * step) & 0x7fffff)) >>> 0;
        compare(`exponent ${e}`);
      }
    }
  }
  // Random patterns, every exponent (NaNs with random payloads and signs, ±Inf, zeros, huge values).
  let s = 0x9e3779b9;
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < slice; i++) {
      s ^= s << 13, s ^= s >>> 17, s ^= s << 5;
      bits[i] = s >>> 0;
    }
    bits[0] = 0x7f800000,
      bits[1] = 0xff800000,
      bits[2] = 0x7fc00000,
      bits[3] = 0xff800001,
      bits[4] = 0x7f802000;
    compare(`random round ${round}`);
  }
  for (
    const b of [
      0x7f800001,
      0xffffffff,
      0x7fbfe000,
      0x3f800000,
      0x477fe000,
      0x477ff000,
      0x33800000,
      0x33000000,
    ]
  ) {
    assert.equal(f32BitsToF16Bits(b), refF32BitsToF16Bits(b), `scalar 0x${b.toString(16)}`);
  }
});
