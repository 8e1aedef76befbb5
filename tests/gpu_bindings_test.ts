import assert from "node:assert/strict";
import { bindRange } from "../src/gpu/bindings.ts";
import { withSeed } from "./_rng.ts";

Deno.test("bindRange starts every binding on an aligned offset and a whole record, covering the range", () =>
  withSeed("gpu_bindings_test", (rng) => {
    const buffer = {} as GPUBuffer;
    for (const align of [32, 64, 256]) {
      for (const bytes of [4, 16, 20]) {
        for (let trial = 0; trial < 200; trial++) {
          const first = Math.floor(rng.uniform() * 100_000), count = 1 + Math.floor(rng.uniform() * 1000);
          const r = bindRange(buffer, first, count, bytes, align);
          const what = `align ${align}, ${bytes}-byte records ${first}..${first + count - 1}`;
          assert.equal(r.entry.offset % align, 0, what);
          assert.equal(r.entry.offset % bytes, 0, what);
          assert.ok(Number.isInteger(r.skip) && r.skip >= 0, what);
          assert.equal(r.entry.offset + r.skip * bytes, first * bytes, what);
          assert.equal(r.entry.size, (r.skip + count) * bytes, what);
          assert.ok(r.skip * bytes < align * bytes, what); // less than lcm(align, bytes) ahead of the range
        }
      }
    }
  }));
