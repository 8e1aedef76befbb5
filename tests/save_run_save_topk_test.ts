/**
 * runSaveTopK in-process (as the demo and the tests call it): shards equal to the CPU reference, a rerun
 * that changes nothing, a restart with another host count, the backend recorded in run.json, gs:// through
 * injected faults, the same shards as the command, options named in errors, and the summary file.
 */
import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import { readShards } from "../src/format/shard_reader.ts";
import { runSaveTopK } from "../src/save/run_save_topk.ts";
import { startEmulator } from "../testing/gcs_emulator/server.ts";
import {
  assertSameFiles,
  checkAgainstReference,
  fixture,
  readAll,
  run,
  save,
  saveInProcess,
  snapshot,
} from "./_save_fixtures.ts";

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

Deno.test("runSaveTopK writes shards whose records equal the reference top-k, with run.json and a manifest", async () => {
  const f = await fixture(21, 8, 700);
  const out = `${f.dir}/out`;
  const s = await saveInProcess(f, out, {
    k: 12,
    sequencesPerShard: 5,
    batchSize: 3,
    lseTemperatures: [1, 2],
  });
  assert.equal(s.shardsWritten, 5);
  assert.equal(s.tokens, 21 * 8);
  assert.ok(s.bytesPerToken > 0 && s.bytesPerToken < s.fullLogitsBytesPerToken, `${s.bytesPerToken}`);
  const run0 = JSON.parse(await Deno.readTextFile(`${out}/run.json`));
  assert.equal(run0.k, 12);
  assert.equal(run0.sequences, 21);
  assert.deepEqual(run0.lseTemperatures, [1, 2]);
  const manifest = JSON.parse(await Deno.readTextFile(`${out}/manifests/h00000.json`));
  assert.deepEqual(manifest.shards.map((m: { shard: number }) => m.shard), [0, 1, 2, 3, 4]);
  await checkAgainstReference(f, out, 12, [1, 2]);
});

Deno.test("runSaveTopK run again on a finished OUT changes nothing", async () => {
  const f = await fixture(10, 4, 300);
  const out = `${f.dir}/out`;
  await saveInProcess(f, out, { k: 4, sequencesPerShard: 3 });
  const before = await snapshot(out);
  const again = await saveInProcess(f, out, { k: 4, sequencesPerShard: 3 });
  assert.equal(again.shardsWritten, 0);
  assert.equal(again.shardsSkipped, 4);
  assertSameFiles(before, await snapshot(out));
});

Deno.test("runSaveTopK restarted with another host count (1 → 2, 1 → 3; 3 → 1) leaves a set the reader accepts", async () => {
  const f = await fixture(18, 4, 80);
  const options = { k: 4, sequencesPerShard: 3, batchSize: 2 };
  for (const count of [2, 3]) {
    const out = `${f.dir}/out${count}`;
    // host 0 of 1 wrote every shard; then the job is restarted with `count` hosts
    await saveInProcess(f, out, options);
    for (let h = count - 1; h >= 0; h--) {
      const s = await saveInProcess(f, out, { ...options, host: { index: h, count } });
      assert.equal(s.shardsWritten, 0, `host ${h} of ${count}`);
    }
    assert.equal(await readAll(f, out), 18, `host count ${count}`);
  }
  // A half-done set (only host 1 of 3 ran) is finished by one host restarted with host count 1.
  const out = `${f.dir}/half`;
  await saveInProcess(f, out, { ...options, host: { index: 1, count: 3 } });
  const fin = await saveInProcess(f, out, options);
  assert.equal(fin.shardsWritten, 4);
  assert.equal(fin.shardsSkipped, 2);
  await checkAgainstReference(f, out, 4);
});

Deno.test("runSaveTopK on the CPU records backend cpu in run.json and a CPU resume rewrites a missing shard", async () => {
  const f = await fixture(8, 4, 60);
  const out = `${f.dir}/out`;
  const options = { k: 4, sequencesPerShard: 3, batchSize: 2, cpu: true };
  await saveInProcess(f, out, options);
  assert.equal(JSON.parse(await Deno.readTextFile(`${out}/run.json`)).backend, "cpu");
  const s1 = `${out}/shards/s000001.msgpack`;
  const good = await Deno.readFile(s1);
  await Deno.remove(s1);
  const again = await saveInProcess(f, out, options);
  assert.equal(again.shardsWritten, 1);
  assert.equal(again.shardsSkipped, 2);
  assert.deepEqual(await Deno.readFile(s1), good);
  assert.equal(await readAll(f, out), 8);
});

Deno.test("runSaveTopK to gs:// writes the same shards as to a local folder, through injected upload faults", async () => {
  const emu = await startEmulator({ buckets: ["kd-bucket"] });
  try {
    const f = await fixture(12, 32, 3000);
    const options = { k: 64, sequencesPerShard: 4, batchSize: 2 };
    await saveInProcess(f, `${f.dir}/local`, options);
    // Every shard upload meets a fault: 503s, a 408, and connections cut in the middle of the body.
    emu.faults.add({ method: "PUT", path: "upload_id", status: 503, count: 2 });
    emu.faults.add({ method: "PUT", path: "upload_id", status: 408, skip: 1, count: 1 });
    emu.faults.add({
      method: "PUT",
      path: "upload_id",
      kind: "reset",
      afterBytes: 10_000,
      skip: 2,
      count: 2,
    });
    await saveInProcess(f, "gs://kd-bucket/runs/a", { ...options, gcsEndpoint: emu.url });
    assert.ok(emu.faults.hits.length >= 3, `faults were injected (${emu.faults.hits.length})`);
    for (const j of [0, 1, 2]) {
      const path = `shards/s${String(j).padStart(6, "0")}.msgpack`;
      const want = await Deno.readFile(`${f.dir}/local/${path}`);
      const got = emu.state.object("kd-bucket", `runs/a/${path}`);
      assert.deepEqual(got.data, want, `${path} has the local bytes`);
    }
    const again = await saveInProcess(f, "gs://kd-bucket/runs/a", { ...options, gcsEndpoint: emu.url });
    assert.equal(again.shardsWritten, 0);
    assert.equal(again.shardsSkipped, 3);
  } finally {
    await emu.close();
  }
});
