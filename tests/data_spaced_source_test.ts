import assert from "node:assert/strict";
import { evenlySpaced } from "../src/data/spaced_source.ts";
import type { TokenSource } from "../src/data/source.ts";

/** 10 sequences of 3 tokens; sequence s holds s*10, s*10+1, s*10+2. */
const base: TokenSource = {
  sequences: 10,
  seqLen: 3,
  fingerprint: "abc",
  description: "ten",
  boundaryToken: 7,
  read(start, count) {
    return Promise.resolve(
      Uint32Array.from({ length: count * 3 }, (_, i) => (start + Math.floor(i / 3)) * 10 + (i % 3)),
    );
  },
};

Deno.test("evenlySpaced picks sequences ⌊i·total/n⌋ and reads them in order, across several reads", async () => {
  const s = evenlySpaced(base, 4); // indices 0, 2, 5, 7
  assert.equal(s.sequences, 4);
  assert.equal(s.seqLen, 3);
  assert.equal(s.boundaryToken, 7);
  assert.deepEqual([...await s.read(0, 4)], [0, 1, 2, 20, 21, 22, 50, 51, 52, 70, 71, 72]);
  assert.deepEqual([...await s.read(2, 1)], [50, 51, 52]);
  assert.match(s.description, /4 sequences spread evenly over 10/);
});

Deno.test("evenlySpaced has its own fingerprint, returns the source when n covers it, refuses bad reads and n", async () => {
  const a = evenlySpaced(base, 4);
  assert.notEqual(a.fingerprint, base.fingerprint);
  assert.notEqual(a.fingerprint, evenlySpaced(base, 5).fingerprint);
  assert.equal(evenlySpaced(base, 10), base);
  assert.equal(evenlySpaced(base, 50), base);
  await assert.rejects(a.read(3, 2), RangeError);
  await assert.rejects(a.read(-1, 1), RangeError);
  assert.throws(() => evenlySpaced(base, 0), /n ≥ 1/);
});
