/**
 * save-topk (the command) to gs:// against the emulator: the endpoint from STORAGE_EMULATOR_HOST, and a
 * missing bucket is one line and a non-zero exit. Uploads through injected faults are tested in-process in
 * save_run_save_topk_test.ts.
 */
import assert from "node:assert/strict";
import { startEmulator } from "../testing/gcs_emulator/server.ts";
import { expectOneLineError, fixture, run, save, saveInProcess } from "./_save_fixtures.ts";

Deno.test("save-topk to gs:// takes its endpoint from STORAGE_EMULATOR_HOST: a rerun finds every shard there", async () => {
  const emu = await startEmulator({ buckets: ["kd-bucket"] });
  try {
    const f = await fixture(6, 4, 100);
    await saveInProcess(f, "gs://kd-bucket/runs/a", { k: 4, sequencesPerShard: 2, gcsEndpoint: emu.url });
    const flags = ["--k", "4", "--sequences-per-shard", "2"];
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
    await expectOneLineError(save(f, "gs://nope/x", ["--k", "4", "--gcs-endpoint", emu.url]), /nope/);
  } finally {
    await emu.close();
  }
});
