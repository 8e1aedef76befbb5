import assert from "node:assert/strict";
import { Crc32c, crc32c, crc32cFromBase64, crc32cToBase64, crc32cUpdate } from "../src/format/crc32c.ts";
import { withSeed } from "./_rng.ts";

// Bit-by-bit reference, written for clarity.
function crc32cBitwise(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let i = 0; i < 8; i++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

Deno.test("crc32c matches the published check values (RFC 3720 and '123456789')", () => {
  assert.equal(crc32c(new TextEncoder().encode("123456789")), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});

Deno.test("crc32c slicing-by-8 agrees with the bitwise reference on random bytes of every length mod 8", () =>
  withSeed("crc32c reference", (rng) => {
    for (let n = 0; n < 300; n++) {
      const bytes = Uint8Array.from({ length: n + rng.int(40) }, () => rng.int(256));
      assert.equal(crc32c(bytes), crc32cBitwise(bytes));
    }
  }));

Deno.test("crc32c streaming over random splits equals the one-shot value", () =>
  withSeed("crc32c streaming", (rng) => {
    const bytes = Uint8Array.from({ length: 10000 + rng.int(5000) }, () => rng.int(256));
    const whole = crc32c(bytes);
    for (let trial = 0; trial < 20; trial++) {
      const h = new Crc32c();
      let pos = 0;
      let crc = 0;
      while (pos < bytes.length) {
        const n = Math.min(bytes.length - pos, rng.int(300));
        h.update(bytes.subarray(pos, pos + n));
        crc = crc32cUpdate(crc, bytes.subarray(pos, pos + n));
        pos += n;
      }
      assert.equal(h.value, whole);
      assert.equal(crc, whole);
      assert.equal(h.bytes, bytes.length);
    }
  }));

Deno.test("crc32c base64 is the big-endian GCS form and parses back", () =>
  withSeed("crc32c base64", (rng) => {
    assert.equal(crc32cToBase64(0xe3069283), btoa(String.fromCharCode(0xe3, 0x06, 0x92, 0x83)));
    for (let i = 0; i < 1000; i++) {
      const v = rng.u32();
      assert.equal(crc32cFromBase64(crc32cToBase64(v)), v);
    }
    assert.equal(crc32cFromBase64("not base64!"), null);
    assert.equal(crc32cFromBase64(btoa("abc")), null);
  }));
