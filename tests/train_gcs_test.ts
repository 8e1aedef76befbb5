import assert from "node:assert/strict";
import { startEmulator } from "../testing/gcs_emulator/server.ts";
import { openStore } from "../src/store/open_store.ts";
import { trainCommand } from "../src/cli/train_flags.ts";
import { withSeed, writePatternShards } from "./_train_fixtures.ts";

Deno.test("checkpoints and metrics go to gs://, and a run resumes from them exactly", async () => {
  const emu = await startEmulator({ port: 0, buckets: ["bkt"] });
  const dir = await Deno.makeTempDir();
  const log = console.log;
  try {
    await withSeed(async (seed) => {
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
        "--layers",
        "1",
        "--width",
        "8",
        "--heads",
        "2",
        "--batch-size",
        "2",
        "--heldout-sequences",
        "4",
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
