/**
 * `train --export`: the student as a tfjs GraphModel. A student trained a few steps is exported, loaded by
 * plain tfjs in a child process (tfjs-core + tfjs-converter + the cpu backend, over HTTP) and checked against
 * the trained student's logits; it then teaches a smaller student through `save-topk --teacher tfjs:`. The
 * graph is checked against `Gpt.logits` for random shapes (float32 and float16 weights) and on the test
 * runtime's backend (WebGPU when there is an adapter); the tokenizer note and its bad inputs.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import * as tfc from "@tensorflow/tfjs-converter";
import { npyBytes } from "../src/data/npy.ts";
import { f16ToF32, f32ToF16 } from "../src/format/f16.ts";
import { readShard } from "../src/format/shard_reader.ts";
import { createRuntime } from "../src/gpu/runtime.ts";
import { readBack } from "../src/gpu/readback.ts";
import { useTfjsOnRuntime } from "../src/gpu/tfjs_backend.ts";
import { loadModel } from "../src/model/checkpoint.ts";
import { readTokenizerFile, TOKENIZER_NOTE, writeTokenizerNote } from "../src/model/export_tokenizer.ts";
import { createGpt, type Gpt, type GptConfig } from "../src/model/gpt.ts";
import { exportGraphModel, graphModelArtifacts } from "../src/model/graph_export.ts";
import { runSaveTopK } from "../src/save/run_save_topk.ts";
import { openStore } from "../src/store/open_store.ts";
import { tfjsTeacher } from "../src/teacher/tfjs_model.ts";
import { train, validateTrainOptions } from "../src/train/train.ts";
import { parseTrainFlags } from "../src/cli/train_flags.ts";
import demoTokenizer from "../src/data/assets/demo_tokenizer.json" with { type: "json" };
import { oneLine, withTempDir } from "./_helpers.ts";
import { type TestRng, withSeed } from "./_rng.ts";
import { patternSource, quietly, testRuntime, trainRejects, writePatternShards } from "./_train_fixtures.ts";

/** Serves a folder over HTTP on 127.0.0.1 (GET of a file; 404 otherwise). */
function serveFolder(dir: string) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const name = decodeURIComponent(new URL(req.url).pathname.slice(1));
    if (name.includes("..") || name.includes("/")) return new Response("no", { status: 404 });
    try {
      return new Response(await Deno.readFile(`${dir}/${name}`));
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, close: () => server.shutdown() };
}

/** Runs tests/_plain_tfjs_logits.ts: logits of `ids` [B, L] from plain tfjs in a process of its own. */
async function plainTfjsLogits(modelUrl: string, ids: Int32Array, B: number, L: number, dir: string) {
  const out = `${dir}/plain_logits.bin`;
  const script = new URL("./_plain_tfjs_logits.ts", import.meta.url).pathname;
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script, modelUrl, String(B), String(L), Array.from(ids).join(","), out],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(r.stderr);
  assert.equal(r.code, 0, stderr);
  const info = JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").at(-1)!);
  return { info, logits: new Float32Array((await Deno.readFile(out)).buffer) };
}

/** The largest |a − b| and the largest |b|. */
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; scale: number } {
  assert.equal(a.length, b.length, "lengths");
  let diff = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { diff, scale };
}

/** Gpt.logits of `ids` [B, L] as [B·L·V] float32. */
async function gptLogits(model: Gpt, ids: Int32Array, B: number, L: number): Promise<Float32Array> {
  const x = tf.tensor2d(ids, [B, L], "int32");
  const y = model.logits(x);
  const out = (await y.data()) as Float32Array;
  x.dispose();
  y.dispose();
  return out;
}

/** Loads a model's graph export in-process through tfjs's own loader (tf.io.fromMemory). */
async function loadExport(model: Gpt, storage?: "float16") {
  const { json, bytes } = await graphModelArtifacts(model, { storage });
  const manifest = json.weightsManifest as tf.io.WeightsManifestConfig;
  return await tfc.loadGraphModel(tf.io.fromMemory({
    modelTopology: json.modelTopology as tf.io.ModelJSON["modelTopology"],
    weightSpecs: manifest[0].weights,
    weightData: bytes.buffer,
    signature: json.signature as tf.io.ModelJSON["signature"],
    format: "graph-model",
  }));
}

/** A random config and weights (biases and LayerNorm parameters away from their initial values). */
function randomModel(rng: TestRng): Gpt {
  const heads = 1 + rng.int(3);
  const config: GptConfig = {
    vocabSize: 5 + rng.int(60),
    seqLen: 2 + rng.int(12),
    layers: 1 + rng.int(2),
    width: heads * (2 + rng.int(5)),
    heads,
    tiedEmbeddings: rng.uniform() < 0.5,
  };
  const model = createGpt(config, rng.int(1000));
  for (const [name, v] of model.weights) {
    const values = new Float32Array(v.size);
    for (let i = 0; i < values.length; i++) values[i] = (name.endsWith(".g") ? 1 : 0) + 0.3 * rng.normal();
    const t = tf.tensor(values, v.shape);
    v.assign(t);
    t.dispose();
  }
  return model;
}

function randomIds(rng: TestRng, n: number, V: number): Int32Array {
  return Int32Array.from({ length: n }, () => rng.int(V));
}

Deno.test("an exported student loads in plain tfjs with the trained student's logits, and teaches a smaller student through save-topk --teacher tfjs:", async () => {
  const rt = await createRuntime({ quiet: true, cpu: true });
  await withSeed("model_export_test", async (_rng, seed) => {
    await withTempDir(async (dir) => {
      const S = 24, L = 8, V = 24;
      await writePatternShards(`${dir}/topk`, { seed, sequences: S, seqLen: L, vocab: V, k: 4 });
      const r = await quietly(() =>
        train({
          rt,
          shards: `${dir}/topk`,
          out: `${dir}/out`,
          steps: 3,
          batchSize: 4,
          layers: 1,
          width: 8,
          heads: 2,
          heldoutSequences: 4,
          seed,
          quiet: true,
          log: () => {},
          export: `${dir}/student`,
        })
      );
      assert.equal(r.status, "finished");
      assert.equal(r.exported, `${dir}/student/model.json`);
      const json = JSON.parse(await Deno.readTextFile(`${dir}/student/model.json`));
      assert.equal(json.format, "graph-model");
      assert.equal(json.userDefinedMetadata.sparsekd.maxSeqLen, L);
      const note = JSON.parse(await Deno.readTextFile(`${dir}/student/${TOKENIZER_NOTE}`));
      assert.equal(note.data.description, "synthetic pattern");
      assert.equal(note.shards, `${dir}/topk`);
      assert.equal(note.tokenizer, null, "the pattern data has no tokenizer");

      // The trained student: the final checkpoint, run by gpt.ts on the cpu backend.
      await useTfjsOnRuntime(rt);
      const student = await loadModel(await openStore(`${dir}/out`), r.checkpoint!);
      const source = patternSource(seed, { sequences: S, seqLen: L, vocab: V });
      const B = 3;
      const ids = Int32Array.from(await source.read(0, B));
      const want = await gptLogits(student, ids, B, L);

      // Plain tfjs in a process of its own, loading over HTTP like a browser.
      const server = serveFolder(`${dir}/student`);
      let plain;
      try {
        plain = await plainTfjsLogits(`${server.url}/model.json`, ids, B, L, dir);
        // A shorter sequence (the first 5 tokens of one row): the graph takes any L up to the context.
        const short = await plainTfjsLogits(`${server.url}/model.json`, ids.slice(0, 5), 1, 5, dir);
        const wantShort = await gptLogits(student, ids.slice(0, 5), 1, 5);
        const s = maxDiff(short.logits, wantShort);
        assert.ok(s.diff <= 1e-6 * (1 + s.scale), `short: max |Δ| ${s.diff}`);
      } finally {
        await server.close();
      }
      assert.deepEqual(plain.info.shape, [B, L, V]);
      assert.deepEqual(plain.info.inputs, [{ name: "tokens", shape: [-1, -1], dtype: "int32" }]);
      // Same backend, same ops in the same order: float32 rounding at most (measured: bit-identical).
      const d = maxDiff(plain.logits, want);
      assert.ok(d.diff <= 1e-6 * (1 + d.scale), `max |Δ| ${d.diff} (logits up to ${d.scale})`);
      assert.ok(d.scale > 0.01, "the logits are not all zero");

      // The export as a teacher: its shards hold the student's top-k and logsumexp.
      const all = await source.read(0, S);
      await Deno.writeFile(`${dir}/ids.npy`, npyBytes("<i4", [S, L], Int32Array.from(all)));
      await runSaveTopK({
        teacher: `tfjs:${dir}/student/model.json`,
        data: `npy:${dir}/ids.npy`,
        out: `${dir}/topk2`,
        k: 4,
        batchSize: 4,
        sequencesPerShard: 8,
        rt,
        print: false,
      });
      const run = JSON.parse(await Deno.readTextFile(`${dir}/topk2/run.json`));
      assert.equal(run.vocabSize, V);
      assert.equal(run.seqLen, L);
      assert.match(run.teacher.description, /^tfjs:/);
      let checked = 0;
      for await (const rec of readShard(await openStore(`${dir}/topk2`), 0)) {
        if (rec.seq >= B) continue;
        for (let t = 0; t < L; t++) {
          const row = want.subarray((rec.seq * L + t) * V, (rec.seq * L + t + 1) * V);
          let best = 0, lse = 0;
          for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
          for (let v = 0; v < V; v++) lse += Math.exp(row[v] - row[best]);
          lse = row[best] + Math.log(lse);
          assert.equal(rec.idx[t * 4], best, `seq ${rec.seq} t ${t}: top-1 id`);
          assert.ok(Math.abs(rec.val[t * 4] - row[best]) <= 1e-6 * (1 + Math.abs(row[best])));
          assert.ok(Math.abs(rec.lse[t] - lse) <= 1e-5 * (1 + Math.abs(lse)), `lse ${rec.lse[t]} vs ${lse}`);
          checked++;
        }
      }
      assert.equal(checked, B * L);
      student.dispose();

      // A smaller student learns from the exported student's shards and is exported in turn, with a
      // tokenizer file copied beside it; one whose ids exceed the vocabulary is refused before training.
      const vocab = Object.fromEntries(Array.from({ length: V }, (_, i) => [`t${i}`, i]));
      const hf = JSON.stringify({ model: { type: "BPE", vocab, merges: [] }, added_tokens: [] });
      await Deno.writeTextFile(`${dir}/tokenizer.json`, hf);
      await Deno.writeTextFile(`${dir}/big.json`, JSON.stringify({ model: { vocab: { ...vocab, x: V } } }));
      await assert.rejects(
        train({
          rt,
          shards: `${dir}/topk2`,
          out: `${dir}/out3`,
          export: `${dir}/x`,
          exportTokenizer: `${dir}/big.json`,
        }),
        oneLine(
          new RegExp(
            `^exportTokenizer .*big\\.json: its token ids go up to ${V}, beyond the student's vocabulary of ${V}$`,
          ),
        ),
      );
      const r2 = await quietly(() =>
        train({
          rt,
          shards: `${dir}/topk2`,
          out: `${dir}/out2`,
          steps: 2,
          batchSize: 4,
          layers: 1,
          width: 4,
          heads: 1,
          heldoutSequences: 4,
          seed,
          quiet: true,
          log: () => {},
          export: `${dir}/small`,
          exportDtype: "f16",
          exportTokenizer: `${dir}/tokenizer.json`,
        })
      );
      assert.equal(await Deno.readTextFile(`${dir}/small/tokenizer.json`), hf);
      assert.equal(r2.status, "finished");
      assert.ok(r2.parameters < r.parameters, "the second student is smaller");
      assert.ok(Number.isFinite(r2.final!.kl!), "KL to the exported teacher's distribution");
      const note2 = JSON.parse(await Deno.readTextFile(`${dir}/small/${TOKENIZER_NOTE}`));
      assert.match(note2.teacher.description, /^tfjs:.*student\/model\.json$/);
      assert.equal(note2.tokenizer.kind, "huggingface");
      assert.equal(note2.tokenizer.maxId, V - 1);
      const small = await tfjsTeacher(rt, `${dir}/small/model.json`);
      try {
        assert.equal(small.vocabSize, V);
        assert.equal(small.seqLen, L);
      } finally {
        small.dispose();
      }
    });
  });
});

Deno.test("the graph gives Gpt.logits for random shapes: float32 weights to rounding, float16 weights as the rounded model", async () => {
  await tf.setBackend("cpu");
  await withSeed("model_export_test shapes", async (rng) => {
    for (let trial = 0; trial < 4; trial++) {
      const model = randomModel(rng);
      const { vocabSize: V, seqLen } = model.config;
      const graph = await loadExport(model);
      for (const [B, L] of [[1 + rng.int(3), seqLen], [2, 1 + rng.int(seqLen)], [1, 1]]) {
        const ids = randomIds(rng, B * L, V);
        const want = await gptLogits(model, ids, B, L);
        const y = graph.execute(tf.tensor2d(ids, [B, L], "int32")) as tf.Tensor;
        assert.deepEqual(y.shape, [B, L, V]);
        const d = maxDiff((await y.data()) as Float32Array, want);
        assert.ok(d.diff <= 1e-6 * (1 + d.scale), `${JSON.stringify(model.config)} [${B}, ${L}]: ${d.diff}`);
        y.dispose();
      }
      graph.dispose();

      // float16 storage: the logits of the model whose weights are rounded to float16, to float32 rounding.
      const half = await loadExport(model, "float16");
      for (const v of model.weights.values()) {
        const t = tf.tensor(f16ToF32(f32ToF16((await v.data()) as Float32Array)), v.shape);
        v.assign(t);
        t.dispose();
      }
      const ids = randomIds(rng, 2 * seqLen, V);
      const y = half.execute(tf.tensor2d(ids, [2, seqLen], "int32")) as tf.Tensor;
      const d = maxDiff((await y.data()) as Float32Array, await gptLogits(model, ids, 2, seqLen));
      assert.ok(d.diff <= 1e-6 * (1 + d.scale), `float16: ${d.diff}`);
      y.dispose();
      half.dispose();
      model.dispose();
    }
  });
});

Deno.test("causal: a later token leaves the export's earlier logits unchanged", async () => {
  await tf.setBackend("cpu");
  await withSeed("model_export_test causal", async (rng) => {
    const model = randomModel(rng);
    const { vocabSize: V, seqLen: L } = model.config;
    const graph = await loadExport(model);
    const a = randomIds(rng, L, V), b = a.slice();
    b[L - 1] = (a[L - 1] + 1) % V;
    const ya = (await (graph.execute(tf.tensor2d(a, [1, L], "int32")) as tf.Tensor).data()) as Float32Array;
    const yb = (await (graph.execute(tf.tensor2d(b, [1, L], "int32")) as tf.Tensor).data()) as Float32Array;
    assert.deepEqual(ya.subarray(0, (L - 1) * V), yb.subarray(0, (L - 1) * V));
    assert.notDeepEqual(ya.subarray((L - 1) * V), yb.subarray((L - 1) * V));
    graph.dispose();
    model.dispose();
  });
});

Deno.test("on the test runtime's backend (WebGPU with an adapter) the export and the tfjs: teacher give Gpt.logits", async () => {
  const rt = await testRuntime();
  await useTfjsOnRuntime(rt);
  await withSeed("model_export_test backend", async (rng) => {
    await withTempDir(async (dir) => {
      const model = randomModel(rng);
      const { vocabSize: V, seqLen: L } = model.config;
      const ids = randomIds(rng, 2 * L, V);
      const want = await gptLogits(model, ids, 2, L);
      const graph = await loadExport(model);
      const y = graph.execute(tf.tensor2d(ids, [2, L], "int32")) as tf.Tensor;
      // Another backend's kernels may sum in another order: float32 rounding over a few hundred terms
      // (measured on lavapipe: ≤ 1.5e-6 at logits up to 3, a few ulps; the bound leaves ~30× of margin).
      const d = maxDiff((await y.data()) as Float32Array, want);
      assert.ok(d.diff <= 1e-5 * (1 + d.scale), `${tf.getBackend()}: max |Δ| ${d.diff}`);
      y.dispose();
      graph.dispose();

      await exportGraphModel(await openStore(dir, { create: true }), "m", model);
      const teacher = await tfjsTeacher(rt, `${dir}/m/model.json`);
      try {
        assert.equal(teacher.seqLen, L);
        const out = await teacher.forward(Uint32Array.from(ids), 0, 2, L);
        const got = out.kind === "cpu" ? out.array : new Float32Array(
          (await readBack(rt.device!, [{ buffer: out.buffer, size: 2 * L * V * 4 }]))[0],
        );
        if (out.kind === "gpu") out.release();
        const e = maxDiff(got, want);
        assert.ok(e.diff <= 1e-5 * (1 + e.scale), `teacher: max |Δ| ${e.diff}`);
        await assert.rejects(
          teacher.forward(new Uint32Array(L + 1), 0, 1, L + 1),
          oneLine(new RegExp(`at most ${L} tokens \\(its context\\), not ${L + 1}`)),
        );
      } finally {
        teacher.dispose();
        model.dispose();
      }
    });
  });
});

Deno.test("save-topk with data longer than the exported student's context is one line", async () => {
  const rt = await createRuntime({ quiet: true, cpu: true });
  await useTfjsOnRuntime(rt);
  await withTempDir(async (dir) => {
    const model = createGpt(
      { vocabSize: 16, seqLen: 6, layers: 1, width: 4, heads: 1, tiedEmbeddings: true },
      1,
    );
    await exportGraphModel(await openStore(dir, { create: true }), "m", model);
    model.dispose();
    await Deno.writeFile(`${dir}/ids.npy`, npyBytes("<i4", [2, 9], new Int32Array(18)));
    await assert.rejects(
      runSaveTopK({
        teacher: `tfjs:${dir}/m/model.json`,
        data: `npy:${dir}/ids.npy`,
        out: `${dir}/o`,
        rt,
        print: false,
      }),
      oneLine(/6.*9|9.*6/),
    );
  });
});

Deno.test("the tokenizer note: builtin:demo data copies the demo BPE beside the export", async () => {
  await withTempDir(async (dir) => {
    const store = await openStore(dir, { create: true });
    const note = await writeTokenizerNote(store, "e", {
      identity: {
        shards: "runs/demo/topk",
        teacher: { fingerprint: "t" },
        data: { description: "builtin:demo (x)", fingerprint: "ab" },
      },
    });
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/e/demo_tokenizer.json`)), demoTokenizer);
    const written = JSON.parse(await Deno.readTextFile(`${dir}/e/${TOKENIZER_NOTE}`));
    assert.equal(written.tokenizer.file, "demo_tokenizer.json");
    assert.equal(written.tokenizer.maxId, 2047);
    assert.deepEqual(written.data, { description: "builtin:demo (x)", fingerprint: "ab" });
    assert.equal(written.shards, "runs/demo/topk");
    assert.deepEqual(written, note);
  });
});

Deno.test("--export-tokenizer copies a Hugging Face tokenizer.json verbatim and records its hash", async () => {
  await withTempDir(async (dir) => {
    const hf = JSON.stringify({
      version: "1.0",
      added_tokens: [{ id: 9, content: "<|endoftext|>", special: true }],
      model: { type: "BPE", vocab: { a: 0, b: 1, ab: 2 }, merges: ["a b"] },
    });
    await Deno.writeTextFile(`${dir}/tokenizer.json`, hf);
    const tok = await readTokenizerFile(`${dir}/tokenizer.json`, 10);
    assert.equal(tok.kind, "huggingface");
    assert.equal(tok.maxId, 9);
    const store = await openStore(`${dir}/out`, { create: true });
    const note = await writeTokenizerNote(store, "", {
      identity: { data: "tokens:x", fingerprint: "f" },
      tokenizer: tok,
    });
    assert.equal(await Deno.readTextFile(`${dir}/out/tokenizer.json`), hf);
    const t = note.tokenizer as { sha256: string; kind: string };
    assert.equal(t.kind, "huggingface");
    const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(hf)));
    assert.equal(t.sha256, Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join(""));
    assert.deepEqual(note.data, { description: "tokens:x", fingerprint: "f" });
  });
});

Deno.test("bad --export-tokenizer input is one line naming the option", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/notjson.json`, "{");
    await Deno.writeTextFile(`${dir}/other.json`, JSON.stringify({ hello: 1 }));
    await Deno.writeTextFile(`${dir}/big.json`, JSON.stringify({ model: { vocab: { a: 0, z: 4096 } } }));
    const cases: [string, RegExp][] = [
      [`${dir}/missing.json`, /missing\.json: no such file/],
      [dir, /not a file/],
      [`${dir}/notjson.json`, /not valid JSON/],
      [
        `${dir}/other.json`,
        /neither a Hugging Face tokenizer\.json \(no model\.vocab\) nor a sparsekd BPE file/,
      ],
      [`${dir}/big.json`, /token ids go up to 4096, beyond the student's vocabulary of 2048/],
    ];
    for (const [path, pattern] of cases) {
      await assert.rejects(readTokenizerFile(path, 2048), (e: Error) => {
        oneLine(pattern)(e);
        assert.equal((e as { option?: string }).option, "exportTokenizer");
        return true;
      });
    }
  });
  assert.throws(() => validateTrainOptions({ exportTokenizer: "t.json" }), oneLine(/give export too/));
  assert.deepEqual(parseTrainFlags(["--export", "d", "--export-tokenizer", "t.json"]), {
    export: "d",
    exportTokenizer: "t.json",
  });
  await trainRejects(
    ["--export-tokenizer", "t.json"],
    /^error: --export-tokenizer is copied beside the export: give export too$/,
  );
});

Deno.test("sparsekd reads its own export back (loadModel) with the same weights; another GraphModel is one line", async () => {
  await tf.setBackend("cpu");
  await withSeed("model_export_test reload", async (rng) => {
    await withTempDir(async (dir) => {
      const model = randomModel(rng);
      const store = await openStore(dir, { create: true });
      await exportGraphModel(store, "e", model);
      const back = await loadModel(store, "e");
      assert.deepEqual(back.config, model.config);
      for (const [name, v] of model.weights) {
        assert.deepEqual(await back.weights.get(name)!.data(), await v.data(), name);
      }
      back.dispose();
      model.dispose();
      const json = JSON.parse(await Deno.readTextFile(`${dir}/e/model.json`));
      delete json.userDefinedMetadata;
      await Deno.writeTextFile(`${dir}/e/model.json`, JSON.stringify(json));
      await assert.rejects(loadModel(store, "e"), oneLine(/is a tfjs GraphModel but not a sparsekd export/));
    });
  });
});
