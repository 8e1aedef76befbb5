/**
 * runSaveTopK in-process (as the demo can call it): the same shards as the command, options named in
 * errors, and the summary file.
 */
import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import { readShards } from "../src/format/shard_reader.ts";
import { runSaveTopK } from "../src/save/run_save_topk.ts";
import { fixture, run, save } from "./_save_fixtures.ts";

Deno.test("runSaveTopK in-process writes the bytes the command writes, and returns the summary", async () => {
  const f = await fixture(7, 4, 90);
  const flags = { k: 5, sequencesPerShard: 3, batchSize: 2 };
  const s = await runSaveTopK({
    teacher: `npy:${f.dir}/logits.npy`,
    data: `npy:${f.dir}/ids.npy`,
    out: `${f.dir}/lib`,
    ...flags,
    summary: `${f.dir}/summary.json`,
    cpu: true,
    print: false,
  });
  assert.equal(s.shardsWritten, 3);
  assert.equal(s.tokens, 7 * 4);
  assert.equal(JSON.parse(await Deno.readTextFile(`${f.dir}/summary.json`)).shardsWritten, 3);
  const r = await run(
    save(f, `${f.dir}/cmd`, ["--k", "5", "--sequences-per-shard", "3", "--batch-size", "2", "--cpu"]),
  );
  assert.equal(r.code, 0, r.stderr);
  for (const j of [0, 1, 2]) {
    const name = `shards/s00000${j}.msgpack`;
    assert.deepEqual(
      await Deno.readFile(`${f.dir}/lib/${name}`),
      await Deno.readFile(`${f.dir}/cmd/${name}`),
    );
  }
  let n = 0;
  for await (const _ of readShards(`${f.dir}/lib`)) n++;
  assert.equal(n, 7);
});

Deno.test("runSaveTopK names options, not flags, in its errors", async () => {
  const f = await fixture(2, 4, 30);
  const base = {
    teacher: `npy:${f.dir}/logits.npy`,
    data: `npy:${f.dir}/ids.npy`,
    out: `${f.dir}/o`,
    cpu: true,
    k: 4,
  };
  const cases: [Record<string, unknown>, string][] = [
    [{ k: 31 }, "k"],
    [{ lseTemperatures: [1, -2] }, "lseTemperatures"],
    [{ batchSize: 0 }, "batchSize"],
    [{ sequencesPerShard: 1.5 }, "sequencesPerShard"],
    [{ host: { index: 1, count: 1 } }, "hostIndex"],
    [{ maxSequences: 0 }, "maxSequences"],
  ];
  for (const [edit, option] of cases) {
    await assert.rejects(runSaveTopK({ ...base, ...edit, print: false }), (err) => {
      assert.ok(err instanceof SparsekdError, String(err));
      assert.equal(err.option, option, err.message);
      assert.ok(err.message.startsWith(option + " "), err.message);
      assert.ok(!err.message.includes("--"), err.message);
      return true;
    });
  }
});
