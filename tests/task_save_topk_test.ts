/**
 * The save-topk task as a command (a child process): resume after a kill gives the bytes of an uninterrupted
 * run, hosts in parallel (flag or BATCH_TASK_INDEX) make one complete set, and bad input ends in one line and
 * a non-zero exit. What needs no process of its own is in save_run_save_topk_test.ts, in-process.
 */
import assert from "node:assert/strict";
import {
  assertSameFiles,
  checkAgainstReference,
  expectOneLineError,
  fixture,
  run,
  save,
  saveInProcess,
  snapshot,
} from "./_save_fixtures.ts";

Deno.test("save-topk killed at random moments and restarted ends with the bytes of an uninterrupted run", async () => {
  const f = await fixture(96, 16, 2000);
  const flags = ["--k", "32", "--sequences-per-shard", "4", "--batch-size", "2", "--value-dtype", "f16"];
  const shards = 96 / 4;
  const whole = `${f.dir}/whole`;
  await saveInProcess(f, whole, { k: 32, sequencesPerShard: 4, batchSize: 2, valueDtype: "f16" });
  const expected = await snapshot(whole, true);

  // Each attempt is killed once a random number of shards exist, after a further random delay (so the kill
  // lands anywhere: between shards, inside a shard's write, before run.json, during the manifest).
  const out = `${f.dir}/killed`;
  const countShards = async () => {
    try {
      let n = 0;
      for await (const e of Deno.readDir(`${out}/shards`)) {
        if (e.name.endsWith(".msgpack") && !e.name.startsWith(".")) n++;
      }
      return n;
    } catch {
      return 0;
    }
  };
  let kills = 0;
  for (let attempt = 0; attempt < 4; attempt++) {
    const child = save(f, out, flags).spawn();
    const target = Math.min(shards - 2, (await countShards()) + Math.floor(Math.random() * 8));
    const exited = child.status.then(() => true);
    const killer = (async () => {
      while (!(await Promise.race([exited, new Promise<false>((r) => setTimeout(() => r(false), 10))]))) {
        if ((await countShards()) >= target) {
          await new Promise((r) => setTimeout(r, Math.random() * 150));
          try {
            child.kill("SIGKILL");
          } catch { /* it finished in the meantime */ }
          return;
        }
      }
    })();
    const status = await child.output();
    await killer;
    if (status.signal === "SIGKILL") kills++;
    if (status.success) break;
  }
  const last = await run(save(f, out, flags));
  assert.equal(last.code, 0, last.stderr);
  assert.ok(kills >= 1, "at least one run was killed");
  assertSameFiles(expected, await snapshot(out, true));
});

Deno.test("save-topk: two hosts in parallel (--host-index and BATCH_TASK_INDEX) make one complete set", async () => {
  const f = await fixture(30, 8, 500);
  const flags = ["--k", "8", "--sequences-per-shard", "3", "--batch-size", "2", "--host-count", "2"];
  const out = `${f.dir}/out`;
  const [a, b] = await Promise.all([
    run(save(f, out, [...flags, "--host-index", "0"])),
    run(save(f, out, flags, { BATCH_TASK_INDEX: "1" })),
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const m0 = JSON.parse(await Deno.readTextFile(`${out}/manifests/h00000.json`));
  const m1 = JSON.parse(await Deno.readTextFile(`${out}/manifests/h00001.json`));
  assert.deepEqual(m0.shards.map((s: { shard: number }) => s.shard), [0, 2, 4, 6, 8]);
  assert.deepEqual(m1.shards.map((s: { shard: number }) => s.shard), [1, 3, 5, 7, 9]);
  await checkAgainstReference(f, out, 8);
});

Deno.test("save-topk bad input: unknown flag, k out of range, bad kernel name, bad npy, token id ≥ vocab", async () => {
  const f = await fixture(4, 4, 50);
  const out = `${f.dir}/out`;
  await expectOneLineError(save(f, out, ["--bogus"]), /bogus/);
  await expectOneLineError(save(f, out, ["--k", "0"]), /--k/);
  await expectOneLineError(save(f, out, ["--k", "51"]), /--k .*50/);
  await expectOneLineError(
    save(f, out, ["--topk-kernel", "fast"]),
    /--topk-kernel must be auto, wg or radix/,
  );
  await Deno.writeTextFile(`${f.dir}/bad.npy`, "not an npy file at all");
  await expectOneLineError(
    save(f, out, ["--teacher", `npy:${f.dir}/bad.npy`]),
    /bad\.npy/,
  );
  await expectOneLineError(
    save(f, out, ["--teacher", `npy:${f.dir}/missing.npy`]),
    /missing\.npy/,
  );
  const g = await fixture(4, 4, 50, (x) => (x.ids[2 * 4 + 3] = 50));
  await expectOneLineError(save(g, `${g.dir}/out`, ["--k", "4"]), /token id 50 at sequence 2, position 3/);
});

Deno.test("save-topk bad input: NaN logits name sequence and position, and leave no half-written shard", async () => {
  const f = await fixture(6, 4, 60, (x) => (x.logits[(3 * 4 + 2) * 60 + 17] = NaN));
  const out = `${f.dir}/out`;
  await expectOneLineError(
    save(f, out, ["--k", "5", "--sequences-per-shard", "2", "--batch-size", "1"]),
    /sequence 3, position 2/,
  );
  const files = [...(await snapshot(out, true)).keys()].sort();
  // Shard 0 (sequences 0–1) is complete; shard 1 (2–3) failed and must not exist, even partly.
  assert.deepEqual(files.filter((p) => p.startsWith("shards/")), ["shards/s000000.msgpack"]);
  for await (const e of Deno.readDir(`${out}/shards`)) {
    assert.ok(!e.name.includes(".tmp"), `leftover ${e.name}`);
  }
});

Deno.test("save-topk bad input: an OUT with another run.json, and an OUT that cannot be written", async () => {
  const f = await fixture(4, 4, 50);
  const out = `${f.dir}/out`;
  await saveInProcess(f, out, { k: 4 });
  const before = await snapshot(out, true);
  await expectOneLineError(save(f, out, ["--k", "5"]), /\bk\b/);
  const other = await fixture(4, 4, 50);
  await expectOneLineError(
    save(f, out, ["--teacher", `npy:${other.dir}/logits.npy`, "--k", "4"]),
    /fingerprint/,
  );
  assertSameFiles(before, await snapshot(out, true));
  await Deno.writeTextFile(`${f.dir}/file`, "x");
  await expectOneLineError(save(f, `${f.dir}/file/out`, ["--k", "4"]), /file\/out/);
});
