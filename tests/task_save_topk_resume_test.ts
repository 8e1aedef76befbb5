/**
 * save-topk on resume and with several hosts, through the real task: damaged shards are not skipped (and
 * named in one line), two processes with the same host index make one good set, a
 * failed run does not block its rerun, and options (and --summary) are checked before anything is written.
 */
import assert from "node:assert/strict";
import { expectOneLineError, fixture, readAll, run, save, saveInProcess } from "./_save_fixtures.ts";

const FLAGS = ["--k", "4", "--sequences-per-shard", "3", "--batch-size", "2"];

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("save-topk resumed over a truncated or bit-flipped shard names it and says to delete it", async () => {
  const f = await fixture(9, 4, 80);
  const out = `${f.dir}/out`;
  await saveInProcess(f, out, { k: 4, sequencesPerShard: 3, batchSize: 2 });
  const s1 = `${out}/shards/s000001.msgpack`, s2 = `${out}/shards/s000002.msgpack`;
  const good1 = await Deno.readFile(s1), good2 = await Deno.readFile(s2);

  // a bit of the last lse flipped: only the manifest's CRC32C tells
  const flipped = good1.slice();
  flipped[flipped.length - 30] ^= 0x04; // inside the last lse, before the 23-byte trailer
  await Deno.writeFile(s1, flipped);
  const e1 = await expectOneLineError(save(f, out, FLAGS), /s000001\.msgpack .*CRC32C/);
  assert.match(e1, /delete .*s000001\.msgpack and run again/);
  await Deno.writeFile(s1, good1);

  // truncated
  await Deno.writeFile(s2, good2.subarray(0, good2.length - 30));
  const e2 = await expectOneLineError(save(f, out, FLAGS), /truncated shard .*s000002\.msgpack/);
  assert.match(e2, /delete .*s000002\.msgpack and run again/);

  // a flipped token byte in a shard that no manifest lists yet (killed before its manifest)
  await Deno.remove(`${out}/manifests/h00000.json`);
  await Deno.writeFile(s2, good2);
  const tokensAt = good1.indexOf(0xc4, 120) + 2;
  const badTokens = good1.slice();
  badTokens[tokensAt] ^= 0x01;
  await Deno.writeFile(s1, badTokens);
  await expectOneLineError(save(f, out, FLAGS), /s000001\.msgpack.*the data has/);

  // deleted as told, the rerun rewrites it and the set is whole again
  await Deno.remove(s1);
  const again = await run(save(f, out, FLAGS));
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /1 shards written, 2 already there/);
  assert.deepEqual(await Deno.readFile(s1), good1);
  assert.equal(await readAll(f, out), 9);
});

Deno.test("save-topk: two processes with the same host index make one complete, readable set", async () => {
  const f = await fixture(24, 4, 80);
  const out = `${f.dir}/out`;
  const flags = ["--k", "4", "--sequences-per-shard", "1", "--batch-size", "1"];
  const [a, b] = await Promise.all([run(save(f, out, flags)), run(save(f, out, flags))]);
  for (const r of [a, b]) {
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!/ObjectExistsError|\n\s+at /.test(r.stderr), r.stderr);
  }
  assert.equal(await readAll(f, out), 24);
});

Deno.test("save-topk failing on its first shard leaves OUT unclaimed; a later failure's rerun is told how to start over", async () => {
  const f = await fixture(6, 4, 60, (x) => (x.logits[(0 * 4 + 1) * 60 + 7] = NaN));
  const out = `${f.dir}/out`;
  await expectOneLineError(save(f, out, FLAGS), /not finite .* at sequence 0, position 1/);
  assert.ok(!(await exists(`${out}/run.json`)), "no run.json after a failure on the first shard");
  // the fixed teacher runs into the same OUT
  const fixed = await fixture(6, 4, 60, (x) => x.ids.set(f.ids));
  const ok = await run(save(f, out, [...FLAGS, "--teacher", `npy:${fixed.dir}/logits.npy`]));
  assert.equal(ok.code, 0, ok.stderr);

  // a failure in a later shard leaves run.json; a rerun with other inputs says how to start over
  const g = await fixture(9, 4, 60, (x) => (x.logits[(7 * 4 + 2) * 60 + 3] = NaN));
  const out2 = `${g.dir}/out`;
  await expectOneLineError(save(g, out2, FLAGS), /not finite .* at sequence 7/);
  assert.ok(await exists(`${out2}/run.json`));
  const h = await fixture(9, 4, 60, (x) => x.ids.set(g.ids));
  const line = await expectOneLineError(
    save(g, out2, [...FLAGS, "--teacher", `npy:${h.dir}/logits.npy`]),
    /belongs to another run: teacher\.fingerprint/,
  );
  assert.match(line, /to start over, delete .*out/);
});

Deno.test("save-topk checks every option and --summary before writing anything", async () => {
  const f = await fixture(4, 4, 50);
  const out = `${f.dir}/out`;
  const temps = Array.from({ length: 33 }, (_, i) => `${i + 1}`).join(",");
  await expectOneLineError(
    save(f, out, ["--k", "4", "--lse-temperatures", temps]),
    /^error: --lse-temperatures/,
  );
  await expectOneLineError(save(f, out, ["--k", "4", "--batch-size", "0"]), /^error: --batch-size/);
  await expectOneLineError(
    save(f, out, ["--k", "4", "--host-index", "2", "--host-count", "2"]),
    /--host-index/,
  );
  await expectOneLineError(
    save(f, out, ["--k", "4", "--summary", `${f.dir}/no/such/dir/summary.json`]),
    /^error: --summary .*summary\.json cannot be written/,
  );
  assert.ok(!(await exists(out)), "nothing was written");
  const ok = await run(save(f, out, ["--k", "4", "--summary", `${f.dir}/summary.json`]));
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(await Deno.readTextFile(`${f.dir}/summary.json`)).tokens, 16);
});
