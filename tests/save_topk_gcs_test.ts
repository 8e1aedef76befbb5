/**
 * save-topk to gs:// through the official client against the emulator: the shards equal those of a local
 * run, uploads survive injected faults, and a missing bucket is one line and a non-zero exit.
 */
import assert from "node:assert/strict";
import { npyBytes } from "../src/data/npy.ts";
import { startEmulator } from "../src/gcs_emulator/server.ts";

const TASK = new URL("../tasks/save_topk.ts", import.meta.url).pathname;

async function fixture(S: number, L: number, V: number) {
  const dir = await Deno.makeTempDir({ prefix: "sparsekd-save-gcs-" });
  const logits = new Float32Array(S * L * V).map(() => (Math.random() - 0.5) * 30);
  const ids = new Int32Array(S * L).map(() => Math.floor(Math.random() * V));
  await Deno.writeFile(`${dir}/logits.npy`, npyBytes("<f4", [S, L, V], logits));
  await Deno.writeFile(`${dir}/ids.npy`, npyBytes("<i4", [S, L], ids));
  return dir;
}

async function save(dir: string, out: string, extra: string[], env: Record<string, string> = {}) {
  const o = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      TASK,
      "--teacher",
      `npy:${dir}/logits.npy`,
      "--data",
      `npy:${dir}/ids.npy`,
      "--out",
      out,
      ...extra,
    ],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: o.code,
    stdout: new TextDecoder().decode(o.stdout),
    stderr: new TextDecoder().decode(o.stderr),
  };
}

Deno.test("save-topk to gs:// writes the same shards as to a local folder, through injected upload faults", async () => {
  const emu = await startEmulator({ buckets: ["kd-bucket"] });
  try {
    const dir = await fixture(12, 32, 3000);
    const flags = ["--k", "64", "--sequences-per-shard", "4", "--batch-size", "2"];
    const local = await save(dir, `${dir}/local`, flags);
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
    const remote = await save(dir, "gs://kd-bucket/runs/a", [...flags, "--gcs-endpoint", emu.url]);
    assert.equal(remote.code, 0, remote.stderr);
    assert.ok(emu.faults.hits.length >= 3, `faults were injected (${emu.faults.hits.length})`);
    for (const j of [0, 1, 2]) {
      const path = `shards/s${String(j).padStart(6, "0")}.msgpack`;
      const want = await Deno.readFile(`${dir}/local/${path}`);
      const got = emu.state.object("kd-bucket", `runs/a/${path}`);
      assert.deepEqual(got.data, want, `${path} has the local bytes`);
    }
    const again = await save(dir, "gs://kd-bucket/runs/a", flags, { STORAGE_EMULATOR_HOST: emu.url });
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /0 shards written, 3 already there/);
  } finally {
    await emu.close();
  }
});

Deno.test("save-topk to a gs:// bucket that does not exist is one line and a non-zero exit", async () => {
  const emu = await startEmulator({ buckets: ["kd-bucket"] });
  try {
    const dir = await fixture(2, 4, 100);
    const r = await save(dir, "gs://nope/x", ["--k", "4", "--gcs-endpoint", emu.url]);
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
