/** Files written by numpy itself (tests/fixtures/numpy/README.md says how), read back by sparsekd. */
import assert from "node:assert/strict";
import { npySource } from "../src/data/npy_source.ts";
import { npyTeacher } from "../src/teacher/npy.ts";
import { SparsekdError } from "../src/errors.ts";
import { withSeed } from "./_rng.ts";

const dir = new URL("./fixtures/numpy/", import.meta.url).pathname;

Deno.test("token ids saved by numpy (int32, uint32) read back as numpy wrote them", async () => {
  await withSeed("data_npy_source_test", async (rng) => {
    const i4 = await npySource(`${dir}ids_int32.npy`);
    assert.deepEqual([i4.sequences, i4.seqLen], [3, 4]);
    const row = Math.floor(rng.uniform() * 3);
    assert.deepEqual(Array.from(await i4.read(row, 1)), [0, 1, 2, 3].map((c) => row * 4 + c));
    const u4 = await npySource(`${dir}ids_uint32.npy`);
    assert.deepEqual(Array.from(await u4.read(0, 3)), Array.from({ length: 12 }, (_, i) => i * 1000));
  });
});

Deno.test("logits saved by numpy read back through the npy teacher", async () => {
  const t = await npyTeacher(`${dir}logits_float32.npy`);
  assert.deepEqual([t.vocabSize, t.seqLen], [5, 3]);
  const out = await t.forward(new Uint32Array(3), 1, 1, 3);
  assert.ok(out.kind === "cpu");
  assert.deepEqual(Array.from(out.array), Array.from({ length: 15 }, (_, i) => (15 + i) / 8));
});

Deno.test("numpy's Fortran-order and int64 arrays are refused in one line", async () => {
  await assert.rejects(
    npySource(`${dir}ids_fortran.npy`),
    (e: unknown) => e instanceof SparsekdError && /ids_fortran\.npy: Fortran/.test(e.message),
  );
  await assert.rejects(
    npySource(`${dir}ids_int64.npy`),
    (e: unknown) => e instanceof SparsekdError && /ids_int64\.npy: dtype '<i8'/.test(e.message),
  );
});
