import assert from "node:assert/strict";
import { npyBytes } from "../src/data/npy.ts";
import { npyTeacher } from "../src/teacher/npy.ts";
import { sha256Hex } from "../src/data/sha256.ts";
import { oneLine, withTempDir } from "./_helpers.ts";
import { withSeed } from "./_rng.ts";

Deno.test("npy teacher returns the rows of the logits file for the asked-for sequences", async () => {
  await withSeed("teacher_npy_test", async (rng) => {
    await withTempDir(async (dir) => {
      const S = 2 + Math.floor(rng.uniform() * 20),
        L = 1 + Math.floor(rng.uniform() * 9),
        V = 2 + Math.floor(rng.uniform() * 50);
      const logits = new Float32Array(S * L * V).map(() => rng.uniform() * 20 - 10);
      const bytes = npyBytes("<f4", [S, L, V], logits, 1 + Math.floor(rng.uniform() * 3));
      await Deno.writeFile(`${dir}/l.npy`, bytes);
      const t = await npyTeacher(`${dir}/l.npy`);
      assert.equal(t.vocabSize, V);
      assert.equal(t.seqLen, L);
      assert.equal(t.fingerprint, sha256Hex(bytes));
      assert.equal(t.description, `npy:${dir}/l.npy`);
      const start = Math.floor(rng.uniform() * S), count = 1 + Math.floor(rng.uniform() * (S - start));
      const out = await t.forward(new Uint32Array(count * L), start, count, L);
      assert.equal(out.kind, "cpu");
      if (out.kind === "cpu") {
        assert.deepEqual(out.array, logits.subarray(start * L * V, (start + count) * L * V));
      }
      await assert.rejects(
        t.forward(new Uint32Array(2 * L), S - 1, 2, L),
        oneLine(new RegExp(`logits for ${S} sequences`)),
      );
      await assert.rejects(
        t.forward(new Uint32Array(L + 1), 0, 1, L + 1),
        oneLine(new RegExp(`sequences of ${L} tokens, not ${L + 1}`)),
      );
      t.dispose();
    });
  });
});

Deno.test("bad logits files are one-line errors naming the file", async () => {
  await withTempDir(async (dir) => {
    const f = new Float32Array(24);
    const cases: [string, Uint8Array, RegExp][] = [
      [
        "i4",
        npyBytes("<i4", [2, 3, 4], new Int32Array(24)),
        /dtype '<i4' is not accepted for teacher logits/,
      ],
      ["f8", npyBytes("<f8", [2, 3, 2], new Float64Array(12)), /dtype '<f8'/],
      ["rank2", npyBytes("<f4", [6, 4], f), /2 dimensions, teacher logits \[S, L, V\] needs 3/],
      ["short", npyBytes("<f4", [2, 3, 4], f).subarray(0, 150), /truncated/],
      ["junk", new Uint8Array(200), /magic/],
    ];
    for (const [name, bytes, pattern] of cases) {
      await Deno.writeFile(`${dir}/${name}.npy`, bytes);
      await assert.rejects(
        npyTeacher(`${dir}/${name}.npy`),
        oneLine(new RegExp(`${name}\\.npy: .*${pattern.source}`)),
      );
    }
    await assert.rejects(npyTeacher(`${dir}/none.npy`), oneLine(/none\.npy: no such file/));
  });
});
