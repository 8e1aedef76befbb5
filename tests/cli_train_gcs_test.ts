import assert from "node:assert/strict";
import { startEmulator } from "../testing/gcs_emulator/server.ts";
import { openStore } from "../src/store/open_store.ts";
import { trainCommand } from "../src/cli/train_flags.ts";
import { withSeed } from "./_rng.ts";
import { TINY_MODEL, writePatternShards } from "./_train_fixtures.ts";

Deno.test("checkpoints and metrics go to gs://, and a run resumes from them exactly", async () => {
  const emu = await startEmulator({ port: 0, buckets: ["bkt"] });
  const dir = await Deno.makeTempDir();
  const log = console.log;
  try {
    await withSeed("cli_train_gcs_test", async (_rng, seed) => {
      await writePatternShards(`${dir}/topk`, { seed, sequences: 24, seqLen: 8, vocab: 24, k: 4 });
      const args = [
        "--shards",
        `${dir}/topk`,
        "--out",
        "gs://bkt/run",
        "--gcs-endpoint",
        emu.url,
        "--steps",
        "4",
        "--checkpoint-every",
        "2",
        "--eval-every",
        "0",
        "--log-every",
        "1",
        ...TINY_MODEL,
        "--batch-size",
        "2",
        "--seed",
        String(seed),
        "--quiet",
      ];
      console.log = () => {};
      await trainCommand(args);
      const store = await openStore("gs://bkt/run", { endpoint: emu.url });
      const listed = await store.list("");
      for (
        const f of [
          "model.json",
          "model.weights.bin",
          "optimizer.json",
          "optimizer.weights.bin",
          "state.json",
        ]
      ) {
        assert.ok(listed.includes(`ckpt-00000002/${f}`), f);
      }
      const read = async (p: string) =>
        new TextDecoder().decode(await store.readBytes(p)).trim().split("\n").map((l) => JSON.parse(l));
      const before = (await read("ckpt-00000004/metrics.jsonl")).filter((l) => l.kind === "train");
      assert.deepEqual(before.map((l) => l.step), [3, 4]);
      for (const p of listed.filter((p) => p.startsWith("ckpt-00000004/"))) await store.delete(p);
      await trainCommand([...args, "--resume"]);
      const after = (await read("ckpt-00000004/metrics.jsonl")).filter((l) => l.kind === "train");
      assert.deepEqual(after.map((l) => l.loss), before.map((l) => l.loss));
    });
  } finally {
    console.log = log;
    await emu.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("training from gs:// shards survives 503, 429 and dropped downloads of run.json and the shards", async () => {
  const emu = await startEmulator({ port: 0, buckets: ["bkt"] });
  const dir = await Deno.makeTempDir();
  const log = console.log;
  try {
    await withSeed("cli_train_gcs_test", async (_rng, seed) => {
      await writePatternShards(`${dir}/topk`, { seed, sequences: 16, seqLen: 8, vocab: 16, k: 4 });
      const local = await openStore(`${dir}/topk`);
      for (const path of await local.list("")) {
        emu.state.putObject(
          "bkt",
          `topk/${path}`,
          await local.readBytes(path),
          "application/octet-stream",
          {},
        );
      }
      const args = (shards: string, out: string) => [
        ...["--shards", shards, "--out", out, "--gcs-endpoint", emu.url, "--steps", "2", "--eval-every", "0"],
        ...["--log-every", "1", "--layers", "1", "--width", "8", "--heads", "2", "--batch-size", "2"],
        ...["--heldout-sequences", "4", "--seed", String(seed), "--quiet"],
      ];
      console.log = () => {};
      await trainCommand(args(`${dir}/topk`, `${dir}/from-local`));
      emu.faults.add([
        { method: "GET", path: "run.json?alt=media", status: 503 },
        { method: "GET", path: "run.json?alt=media", status: 429 },
        { method: "GET", path: "s000000.msgpack?alt=media", status: 503 },
        { kind: "reset", method: "GET", path: "s000000.msgpack?alt=media", afterResponseBytes: 100 },
        { kind: "reset", method: "GET", path: "s000001.msgpack?alt=media" },
      ]);
      await trainCommand(args("gs://bkt/topk", `${dir}/from-gcs`));
      assert.deepEqual(emu.faults.pending(), [], "every fault was hit");
      const losses = async (out: string) =>
        (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n").map((l) => JSON.parse(l))
          .filter((l) => l.kind === "train").map((l) => l.loss);
      const expected = await losses(`${dir}/from-local`);
      assert.equal(expected.length, 2);
      assert.deepEqual(await losses(`${dir}/from-gcs`), expected);
    });
  } finally {
    console.log = log;
    await emu.close();
    await Deno.remove(dir, { recursive: true });
  }
});
