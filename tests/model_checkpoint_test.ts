import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import {
  checkpointDir,
  incompleteCheckpoints,
  latestCheckpoint,
  loadCheckpoint,
  loadModel,
  saveCheckpoint,
  saveModel,
} from "../src/model/checkpoint.ts";
import { createGpt, type GptConfig } from "../src/model/gpt.ts";
import { createAdamW } from "../src/train/adamw.ts";
import { openStore } from "../src/store/open_store.ts";
import { withSeed } from "./_rng.ts";
import { testRuntime } from "./_train_fixtures.ts";

const config: GptConfig = { vocabSize: 29, seqLen: 8, layers: 1, width: 8, heads: 2, tiedEmbeddings: false };

Deno.test("a saved model loads back with the same float32 weights", async () => {
  await testRuntime();
  await withSeed("model_checkpoint_test", async (_rng, seed) => {
    const dir = await Deno.makeTempDir();
    const store = await openStore(dir);
    const m = createGpt(config, seed);
    await saveModel(store, "m", m);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/m/model.json`));
    assert.equal(json.weightsManifest[0].paths[0], "model.weights.bin");
    const back = await loadModel(store, "m");
    assert.deepEqual(back.config, config);
    for (const [name, v] of m.weights) {
      assert.deepEqual(await back.weights.get(name)!.data(), await v.data(), name);
    }
    m.dispose();
    back.dispose();
    await Deno.remove(dir, { recursive: true });
  });
});

Deno.test("float16 storage halves the weights file and keeps weights within f16 rounding", async () => {
  await testRuntime();
  await withSeed("model_checkpoint_test", async (_rng, seed) => {
    const dir = await Deno.makeTempDir();
    const store = await openStore(dir);
    const m = createGpt(config, seed);
    await saveModel(store, "h", m, { storage: "float16" });
    await saveModel(store, "f", m);
    const half = (await Deno.stat(`${dir}/h/model.weights.bin`)).size;
    const full = (await Deno.stat(`${dir}/f/model.weights.bin`)).size;
    assert.equal(half * 2, full);
    const back = await loadModel(store, "h");
    for (const [name, v] of m.weights) {
      const a = await v.data(), b = await back.weights.get(name)!.data();
      for (let i = 0; i < a.length; i++) {
        assert.ok(Math.abs(a[i] - b[i]) <= Math.abs(a[i]) * 1e-3 + 1e-7, name);
      }
    }
    m.dispose();
    back.dispose();
    await Deno.remove(dir, { recursive: true });
  });
});

Deno.test("a truncated weights file is a one-line error naming the file", async () => {
  await testRuntime();
  const dir = await Deno.makeTempDir();
  const store = await openStore(dir);
  const m = createGpt(config, 3);
  await saveModel(store, "m", m);
  const path = `${dir}/m/model.weights.bin`;
  const bytes = await Deno.readFile(path);
  await Deno.writeFile(path, bytes.subarray(0, bytes.length - 10));
  await assert.rejects(
    () => loadModel(store, "m"),
    (e: Error) => e instanceof SparsekdError && /model\.weights\.bin is truncated/.test(e.message),
  );
  m.dispose();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a checkpoint restores weights, optimizer moments and state; incomplete ones are ignored", async () => {
  await testRuntime();
  await withSeed("model_checkpoint_test", async (rng, seed) => {
    const dir = await Deno.makeTempDir();
    const store = await openStore(dir);
    const m = createGpt(config, seed);
    const opt = createAdamW(m.weights);
    const step = 1 + rng.int(1000);
    await saveCheckpoint(store, m, opt.state, { step, position: 17, seed });
    await Deno.mkdir(`${dir}/${checkpointDir(step + 5)}`); // an interrupted, newer one
    await Deno.writeTextFile(`${dir}/${checkpointDir(step + 5)}/model.json`, "{}");
    assert.equal(await latestCheckpoint(store), step);
    const m2 = createGpt(config, seed + 1);
    const opt2 = createAdamW(m2.weights);
    const state = await loadCheckpoint(store, step, m2, opt2.state);
    assert.deepEqual([state.step, state.position, state.seed], [step, 17, seed]);
    for (const [name, v] of m.weights) {
      assert.deepEqual(await m2.weights.get(name)!.data(), await v.data(), name);
    }
    const other = createGpt({ ...config, width: 4 }, 1);
    await assert.rejects(
      () => loadCheckpoint(store, step, other, createAdamW(other.weights).state),
      SparsekdError,
    );
    [m, m2, other].forEach((x) => x.dispose());
    await Deno.remove(dir, { recursive: true });
  });
});

Deno.test("a checkpoint folder without state.json is incomplete: ignored, then rewritten by the next save", async () => {
  await testRuntime();
  await withSeed("model_checkpoint_test", async (_rng, seed) => {
    const dir = await Deno.makeTempDir();
    const store = await openStore(dir);
    const m = createGpt(config, seed);
    const opt = createAdamW(m.weights);
    const state = { step: 4, position: 8, seed, identity: {} };
    await saveCheckpoint(store, m, opt.state, { ...state, step: 2 });
    await saveCheckpoint(store, m, opt.state, state);
    // A crash inside the write of step 4: state.json (written last) and the optimizer state never appeared.
    await Deno.remove(`${dir}/${checkpointDir(4)}/state.json`);
    await Deno.remove(`${dir}/${checkpointDir(4)}/optimizer.json`);
    assert.equal(await latestCheckpoint(store), 2);
    assert.deepEqual(await incompleteCheckpoints(store), [4]);
    await saveCheckpoint(store, m, opt.state, state);
    assert.equal(await latestCheckpoint(store), 4);
    assert.deepEqual(await incompleteCheckpoints(store), []);
    await assert.rejects(
      () => saveCheckpoint(store, m, opt.state, state),
      SparsekdError,
      "a complete one is kept",
    );
    opt.dispose();
    m.dispose();
    await Deno.remove(dir, { recursive: true });
  });
});
