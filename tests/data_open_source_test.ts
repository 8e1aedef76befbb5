import assert from "node:assert/strict";
import { openSource } from "../src/data/open_source.ts";
import { npyBytes } from "../src/data/npy.ts";
import { demoSource } from "../src/data/demo.ts";
import { oneLine } from "./_helpers.ts";
import { withSeed } from "./_rng.ts";

Deno.test("--data specs open the demo, npy and token sources; bad specs are one-line errors", async () => {
  await withSeed("data_open_source_test", async (rng) => {
    const seqLen = 8 + Math.floor(rng.uniform() * 100);
    const demo = await openSource("builtin:demo", { seqLen, maxSequences: 50 });
    const direct = await demoSource({ seqLen, maxSequences: 50 });
    assert.equal(demo.fingerprint, direct.fingerprint);
    assert.deepEqual(await demo.read(3, 2), await direct.read(3, 2));
    const held = await openSource("builtin:demo", { seqLen, split: "heldout" });
    assert.match(held.description, /heldout/);
    await assert.rejects(openSource("builtin:demo"), oneLine(/sequence length/));
    await assert.rejects(
      openSource("builtin:wiki", { seqLen }),
      oneLine(/built-in data are builtin:demo and builtin:tslib/),
    );
    await assert.rejects(
      openSource("csv:x.csv"),
      oneLine(/expected builtin:demo, builtin:tslib, npy:<path>, tokens:<path> or text:<path>/),
    );
    await assert.rejects(openSource("npy:"), oneLine(/needs a path/));

    const dir = await Deno.makeTempDir();
    try {
      const S = 10, L = 6;
      const data = new Uint32Array(S * L).map(() => Math.floor(rng.uniform() * 1000));
      await Deno.writeFile(`${dir}/a.npy`, npyBytes("<u4", [S, L], data));
      const all = await openSource(`npy:${dir}/a.npy`);
      const first = await openSource(`npy:${dir}/a.npy`, { maxSequences: 4 });
      assert.equal(first.sequences, 4);
      assert.notEqual(first.fingerprint, all.fingerprint);
      assert.match(first.fingerprint, /^[0-9a-f]{64}$/);
      assert.deepEqual(await first.read(1, 3), await all.read(1, 3));
      await assert.rejects(first.read(3, 2), RangeError);
      await assert.rejects(openSource(`npy:${dir}/a.npy`, { seqLen: 7 }), oneLine(/6 tokens long, not 7/));
      await assert.rejects(openSource(`npy:${dir}/a.npy`, { split: "heldout" }), oneLine(/no heldout split/));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
