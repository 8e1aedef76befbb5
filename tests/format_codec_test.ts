import assert from "node:assert/strict";
import { pack, unpack } from "msgpackr";
import {
  decodeMsgpackAt,
  MsgpackStreamDecoder,
  MsgpackSyntaxError,
  NeedMoreBytes,
} from "../src/format/msgpack_decode.ts";
import { encodeMsgpack, Float64, type PackValue } from "../src/format/msgpack_encode.ts";
import { f16BitsToF32Bits, f16ToF32, f32BitsToF16Bits, f32ToF16 } from "../src/format/f16.ts";
import { fromLeF16, fromLeF32, fromLeU16, fromLeU32, leBytes } from "../src/format/le_bytes.ts";
import { withSeed } from "./_rng.ts";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (x: number) => (f32[0] = x, u32[0]);
const valueOf = (bits: number) => (u32[0] = bits, f32[0]);

// The value of a float16 bit pattern from its definition, in float64.
function f16Value(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >>> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}

Deno.test("f16: every one of the 65,536 bit patterns widens to its exact value and narrows back bit-exactly", () => {
  for (let h = 0; h < 65536; h++) {
    const b = f16BitsToF32Bits(h);
    const want = f16Value(h);
    const got = valueOf(b);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(got), `pattern ${h.toString(16)}`);
    else assert.ok(Object.is(got, want), `pattern ${h.toString(16)}: ${got} != ${want}`);
    assert.equal(f32BitsToF16Bits(b), h, `pattern ${h.toString(16)} does not round-trip`);
  }
  // and through the array functions (bit level, NaN payloads included)
  const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
  assert.deepEqual(f32ToF16(f16ToF32(all)), all);
  assert.deepEqual(f32ToF16(fromLeF16(leBytes(all))), all);
});

Deno.test("f16: float32 → float16 rounds to nearest even like Math.f16round, on random and edge values", () =>
  withSeed("f16 rounding", (rng) => {
    const check = (bits: number) => {
      const x = valueOf(bits);
      const got = f16Value(f32BitsToF16Bits(bits));
      const want = Math.f16round(x);
      if (Number.isNaN(want)) assert.ok(Number.isNaN(got), `0x${bits.toString(16)}`);
      else assert.ok(Object.is(got, want), `0x${bits.toString(16)} (${x}): got ${got}, want ${want}`);
    };
    for (let i = 0; i < 300000; i++) check(rng.u32());
    // values concentrated in the float16 range, subnormals and the overflow boundary
    for (let i = 0; i < 300000; i++) {
      const e = 100 + rng.int(45); // float32 exponents around float16's range
      check(((rng.u32() & 0x80000000) | (e << 23) | (rng.u32() & 0x7fffff)) >>> 0);
    }
    const edges = [
      0,
      -0,
      1,
      -1,
      65504,
      -65504,
      65519.99,
      65520,
      65536,
      1e10,
      -1e10,
      Infinity,
      -Infinity,
      NaN,
      2 ** -14,
      2 ** -24,
      2 ** -25,
      2 ** -25 * 1.0000001,
      2 ** -26,
      3 * 2 ** -25,
      1.5 * 2 ** -24,
      (1023 / 1024) * 2 ** -14,
      1 + 2 ** -11,
      1 + 3 * 2 ** -11,
      2048 + 1,
      2048 + 3,
      1e-8,
      -1e-8,
      3.4e38,
      -87.25,
      31.99,
    ];
    for (const x of edges) check(bitsOf(x));
    for (let b = 0x33000000; b < 0x33800100; b += 0x100) check(b); // around 2^-25: ties to zero
    for (let b = 0x477fe000; b < 0x47800100; b += 0x10) check(b); // around 65520: rounding into Inf
  }));

Deno.test("f16: NaN keeps sign and payload; a payload lost to narrowing becomes the quiet bit", () => {
  assert.equal(f32BitsToF16Bits(0x7fc00000), 0x7e00);
  assert.equal(f32BitsToF16Bits(0xffc00000), 0xfe00);
  assert.equal(f32BitsToF16Bits(0x7f800001), 0x7e00);
  assert.equal(f32BitsToF16Bits(0x7f802000), 0x7c01);
  assert.equal(f32BitsToF16Bits(0x7f800000), 0x7c00);
});

Deno.test("typed arrays round-trip bit-exactly through little-endian bytes (ids ≥ 65,536, large and negative logits)", () =>
  withSeed("le bytes", (rng) => {
    const n = 1000 + rng.int(1000);
    const ids = Uint32Array.from({ length: n }, () => rng.u32());
    ids[0] = 65536, ids[1] = 0xffffffff, ids[2] = 0;
    const back = fromLeU32(leBytes(ids));
    assert.deepEqual(back, ids);
    const bytes = leBytes(Uint32Array.of(0x01020304));
    assert.deepEqual([...bytes], [4, 3, 2, 1]);
    const small = Uint16Array.from({ length: n }, () => rng.int(65536));
    assert.deepEqual(fromLeU16(leBytes(small)), small);
    const bits = Uint32Array.from({ length: n }, () => rng.u32());
    const logits = new Float32Array(bits.buffer);
    logits[0] = -3.4e38, logits[1] = 3.4e38, logits[2] = -0, logits[3] = -1e-45, logits[4] = -Infinity;
    const back32 = fromLeF32(leBytes(logits));
    assert.deepEqual(new Uint32Array(back32.buffer), new Uint32Array(logits.buffer));
    // unaligned source bytes still decode
    const shifted = new Uint8Array(4 * n + 1);
    shifted.set(leBytes(ids), 1);
    assert.deepEqual(fromLeU32(shifted.subarray(1)), ids);
  }));

Deno.test("msgpack: integers use the smallest form at every boundary and decode back; msgpackr agrees", () => {
  const cases: [number, number][] = [
    [0, 1],
    [127, 1],
    [128, 2],
    [255, 2],
    [256, 3],
    [65535, 3],
    [65536, 5],
    [2 ** 32 - 1, 5],
    [2 ** 32, 9],
    [Number.MAX_SAFE_INTEGER, 9],
    [-1, 1],
    [-32, 1],
    [-33, 2],
    [-128, 2],
    [-129, 3],
    [-32768, 3],
    [-32769, 5],
    [-(2 ** 31), 5],
    [-(2 ** 31) - 1, 9],
    [Number.MIN_SAFE_INTEGER, 9],
  ];
  for (const [n, len] of cases) {
    const bytes = encodeMsgpack(n);
    assert.equal(bytes.length, len, `${n}`);
    assert.equal(decodeMsgpackAt(bytes, 0).value, n);
    assert.equal(Number(unpack(bytes)), n);
  }
});

Deno.test("msgpack: random nested values round-trip through our codec and agree with msgpackr both ways", () =>
  withSeed("msgpack values", (rng) => {
    const gen = (depth: number): PackValue => {
      switch (rng.int(depth > 3 ? 6 : 8)) {
        case 0:
          return rng.int(3) === 0 ? null : rng.int(2) === 0;
        case 1:
          return rng.int(2) ? rng.int(2 ** 31) : -rng.int(2 ** 40);
        case 2:
          return (rng.uniform() - 0.5) * 10 ** rng.int(30);
        case 3:
          return Array.from({ length: rng.int(300) }, () => String.fromCharCode(32 + rng.int(2000))).join("");
        case 4:
          return Uint8Array.from({ length: rng.int(rng.int(20) === 0 ? 70000 : 300) }, () => rng.int(256));
        case 5:
          return rng.int(2) ? new Float64(rng.int(100)) : rng.int(2) ? 0.5 : -1e300;
        case 6:
          return Array.from({ length: rng.int(20) }, () => gen(depth + 1));
        default: {
          const o: { [k: string]: PackValue } = {};
          for (let i = rng.int(20); i > 0; i--) o[`k${rng.int(1000)}`] = gen(depth + 1);
          return o;
        }
      }
    };
    const plain = (v: unknown): unknown => {
      if (v instanceof Float64) return v.value;
      if (typeof v === "bigint") return Number(v); // msgpackr reads 64-bit ints as BigInt
      if (v instanceof Uint8Array) return [...v];
      if (Array.isArray(v)) return v.map(plain);
      if (v && typeof v === "object") {
        return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
      }
      return v;
    };
    for (let i = 0; i < 100; i++) {
      const v = gen(0);
      const bytes = encodeMsgpack(v);
      const ours = decodeMsgpackAt(bytes, 0);
      assert.equal(ours.end, bytes.length);
      assert.deepEqual(plain(ours.value), plain(v));
      assert.deepEqual([...encodeMsgpack(v)], [...bytes]); // deterministic
      assert.deepEqual(plain(unpack(bytes.slice())), plain(v)); // an independent decoder reads our bytes
      const theirs = pack(plain(v) === null ? null : v instanceof Float64 ? v.value : plain(v));
      assert.deepEqual(plain(decodeMsgpackAt(theirs, 0).value), plain(unpack(theirs))); // we read msgpackr's bytes
    }
  }));

Deno.test("msgpack: every strict prefix of a value needs more bytes; ext, 0xc1 and non-string keys are refused", () => {
  const bytes = encodeMsgpack({ a: [1, 2, "xyz"], b: new Uint8Array(300), c: 1.5, d: { e: true } });
  for (let n = 0; n < bytes.length; n++) {
    assert.throws(() => decodeMsgpackAt(bytes.subarray(0, n), 0), NeedMoreBytes);
  }
  assert.throws(
    () => decodeMsgpackAt(Uint8Array.of(0x91, 0xd4, 1, 2), 0),
    (e) => e instanceof MsgpackSyntaxError && e.offset === 1,
  );
  assert.throws(() => decodeMsgpackAt(Uint8Array.of(0xc1), 0), MsgpackSyntaxError);
  assert.throws(() => decodeMsgpackAt(Uint8Array.of(0x81, 0x01, 0x02), 0), /map key is not a string/);
  assert.throws(
    () => decodeMsgpackAt(Uint8Array.of(0x82, 0xa1, 0x61, 1, 0xa1, 0x61, 2), 0),
    /duplicate map key/,
  );
});

Deno.test("msgpack stream decoder frames values across arbitrary chunk boundaries with absolute offsets", () =>
  withSeed("msgpack stream", (rng) => {
    const values: PackValue[] = Array.from(
      { length: 50 },
      (_, i) => ({ i, bin: new Uint8Array(rng.int(100000)).fill(i) }),
    );
    const encoded = values.map((v) => encodeMsgpack(v));
    const all = new Uint8Array(encoded.reduce((s, b) => s + b.length, 0));
    const starts: number[] = [];
    let off = 0;
    for (const b of encoded) (starts.push(off), all.set(b, off), off += b.length);
    const d = new MsgpackStreamDecoder();
    const got: { i: number; len: number; offset: number }[] = [];
    let pos = 0;
    while (pos < all.length) {
      const n = Math.min(all.length - pos, 1 + rng.int(70000));
      d.push(all.subarray(pos, pos + n));
      pos += n;
      for (let item = d.next(); item; item = d.next()) {
        const v = item.value as { i: number; bin: Uint8Array };
        assert.ok(v.bin.every((x) => x === v.i % 256));
        got.push({ i: v.i, len: v.bin.length, offset: item.offset });
      }
    }
    assert.equal(d.pending, 0);
    assert.deepEqual(got.map((g) => g.offset), starts);
    assert.deepEqual(got.map((g) => g.len), values.map((v) => (v as { bin: Uint8Array }).bin.length));
  }));
