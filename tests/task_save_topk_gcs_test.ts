/**
 * save-topk to gs:// through the official client against the emulator: the shards equal those of a local
 * run, uploads survive injected faults, and a missing bucket is one line and a non-zero exit.
 */
import assert from "node:assert/strict";
import { startEmulator } from "../testing/gcs_emulator/server.ts";
import { fixture, run, save } from "./_save_fixtures.ts";

Deno.test("save-topk to gs:// writes the same shards as to a local folder, through injected upload faults", async () => {
  const emu = await startEmulator({ buckets: ["kd-bucket"] });
  try {
    const f = await fixture(12, 32, 3000);
    const flags = ["--k", "64", "--sequences-per-shard", "4", "--batch-size", "2"];
    const local = await run(save(f, `${f.dir}/local`, flags));
    assert.equal(local.code, 0, local.stderr);
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
    const remote = await run(save(f, "gs://kd-bucket/runs/a", [...flags, "--gcs-endpoint", emu.url]));
    assert.equal(remote.code, 0, remote.stderr);
    assert.ok(emu.faults.hits.length >= 3, `faults were injected (${emu.faults.hits.length})`);
    for (const j of [0, 1, 2]) {
      const path = `shards/s${String(j).padStart(6, "0")}.msgpack`;
      const want = await Deno.readFile(`${f.dir}/local/${path}`);
      const got = emu.state.object("kd-bucket", `runs/a/${path}`);
      assert.deepEqual(got.data, want, `${path} has the local bytes`);
    }
    const again = await run(save(f, "gs://kd-bucket/runs/a", flags, { STORAGE_EMULATOR_HOST: emu.url }));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /0 shards written, 3 already there/);
  } finally {
    await emu.close();
  }
});

Deno.test("save-topk to a gs:// bucket that does not exist is one line and a non-zero exit", async () => {
  const emu = await startEmulator({ buckets: ["kd-bucket"] });
  try {
    const f = await fixture(2, 4, 100);
    const r = await run(save(f, "gs://nope/x", ["--k", "4", "--gcs-endpoint", emu.url]));
    assert.notEqual(r.code, 0);
    const errs = r.stderr.split("\n").filter((l) =>
      l.startsWith("error: ") && !l.includes("XDG_RUNTIME_DIR")
    );
    assert.equal(errs.length, 1, r.stderr);
    assert.match(errs[0], /nope/);
    assert.ok(!/\n\s+at /.test(r.stderr), r.stderr);
  } finally {
    await emu.close();
  }
});
