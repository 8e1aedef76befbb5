/**
 * The tfjs teacher: a tiny LayersModel (embedding → dense) and a tiny GraphModel (bigram table + bias)
 * saved to disk by the test, loaded from a path and over HTTP, on the CPU runtime and on the GPU.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import { createRuntime, type Runtime } from "../src/gpu/runtime.ts";
import { readBack } from "../src/gpu/readback.ts";
import { tfjsTeacher } from "../src/teacher/tfjs_model.ts";
import type { Teacher, TeacherLogits } from "../src/teacher/teacher.ts";
import { oneLine, withTempDir } from "./_helpers.ts";

/** A fixture model on disk with the plain-TS oracle of its logits. */
interface Fixture {
  path: string;
  V: number;
  L?: number;
  oracle(tokens: Uint32Array, count: number, L: number): Float32Array;
}

async function writeModel(dir: string, modelJson: unknown, weights: Uint8Array) {
  await Deno.writeTextFile(`${dir}/model.json`, JSON.stringify(modelJson));
  await Deno.writeFile(`${dir}/group1-shard1of1.bin`, weights);
}

/** Embedding [V, d] → dense [d, V] + bias, fixed sequence length L; saved through a custom IOHandler. */
async function layersFixture(dir: string): Promise<Fixture> {
  await tf.setBackend("cpu");
  const V = 5 + Math.floor(Math.random() * 20),
    d = 2 + Math.floor(Math.random() * 6),
    L = 3 + Math.floor(Math.random() * 5);
  const model = tfl.sequential({
    layers: [
      tfl.layers.embedding({
        inputDim: V,
        outputDim: d,
        inputLength: L,
        embeddingsInitializer: "randomNormal",
      }),
      tfl.layers.dense({ units: V, biasInitializer: "randomNormal" }),
    ],
  });
  const [E, W, b] = await Promise.all(model.getWeights().map((w) => w.data() as Promise<Float32Array>));
  await model.save({
    save: async (artifacts) => {
      const data = tf.io.CompositeArrayBuffer.join(artifacts.weightData!);
      await writeModel(dir, {
        format: "layers-model",
        generatedBy: "sparsekd test",
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: ["group1-shard1of1.bin"], weights: artifacts.weightSpecs }],
      }, new Uint8Array(data));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } };
    },
  });
  model.dispose();
  return {
    path: `${dir}/model.json`,
    V,
    L,
    oracle(tokens, count, Lq) {
      const out = new Float32Array(count * Lq * V);
      for (let r = 0; r < count * Lq; r++) {
        for (let v = 0; v < V; v++) {
          let s = b[v];
          for (let k = 0; k < d; k++) s += E[tokens[r] * d + k] * W[k * V + v];
          out[r * V + v] = s;
        }
      }
      return out;
    },
  };
}

/** A hand-written TF graph: logits = GatherV2(table [V, V], ids, axis 0) + bias [V]; any sequence length. */
async function graphFixture(dir: string): Promise<Fixture> {
  const V = 4 + Math.floor(Math.random() * 30);
  const table = new Float32Array(V * V).map(() => Math.random() * 4 - 2);
  const bias = new Float32Array(V).map(() => Math.random() - 0.5);
  const dims = (...n: number[]) => ({ dim: n.map((size) => ({ size: String(size) })) });
  const constNode = (name: string, type: string, shape: number[]) => ({
    name,
    op: "Const",
    attr: { dtype: { type }, value: { tensor: { dtype: type, tensorShape: dims(...shape) } } },
  });
  const modelJson = {
    format: "graph-model",
    generatedBy: "sparsekd test",
    convertedBy: "hand-written",
    modelTopology: {
      node: [
        {
          name: "ids",
          op: "Placeholder",
          attr: { dtype: { type: "DT_INT32" }, shape: { shape: dims(-1, -1) } },
        },
        constNode("table", "DT_FLOAT", [V, V]),
        constNode("axis", "DT_INT32", []),
        constNode("bias", "DT_FLOAT", [V]),
        {
          name: "gather",
          op: "GatherV2",
          input: ["table", "ids", "axis"],
          attr: {
            Tparams: { type: "DT_FLOAT" },
            Tindices: { type: "DT_INT32" },
            Taxis: { type: "DT_INT32" },
            batch_dims: { i: "0" },
          },
        },
        { name: "logits", op: "AddV2", input: ["gather", "bias"], attr: { T: { type: "DT_FLOAT" } } },
      ],
      library: {},
      versions: { producer: 1 },
    },
    weightsManifest: [{
      paths: ["group1-shard1of1.bin"],
      weights: [
        { name: "table", shape: [V, V], dtype: "float32" },
        { name: "axis", shape: [], dtype: "int32" },
        { name: "bias", shape: [V], dtype: "float32" },
      ],
    }],
  };
  const weights = new Uint8Array((V * V + 1 + V) * 4);
  new Float32Array(weights.buffer, 0, V * V).set(table);
  new Int32Array(weights.buffer, V * V * 4, 1)[0] = 0;
  new Float32Array(weights.buffer, (V * V + 1) * 4, V).set(bias);
  await writeModel(dir, modelJson, weights);
  return {
    path: `${dir}/model.json`,
    V,
    oracle(tokens, count, L) {
      const out = new Float32Array(count * L * V);
      for (let r = 0; r < count * L; r++) {
        for (let v = 0; v < V; v++) out[r * V + v] = table[tokens[r] * V + v] + bias[v];
      }
      return out;
    },
  };
}

async function logitsArray(rt: Runtime, out: TeacherLogits, n: number): Promise<Float32Array> {
  if (out.kind === "cpu") return out.array.slice(0, n);
  const [bytes] = await readBack(rt.device!, [{ buffer: out.buffer, size: n * 4 }]);
  out.release();
  return new Float32Array(bytes);
}

async function checkTeacher(rt: Runtime, teacher: Teacher, fx: Fixture, expectKind: "cpu" | "gpu") {
  assert.equal(teacher.vocabSize, fx.V);
  assert.equal(teacher.seqLen, fx.L);
  assert.match(teacher.fingerprint, /^[0-9a-f]{64}$/);
  const L = fx.L ?? 2 + Math.floor(Math.random() * 9), count = 1 + Math.floor(Math.random() * 4);
  const tokens = new Uint32Array(count * L).map(() => Math.floor(Math.random() * fx.V));
  const out = await teacher.forward(tokens, 0, count, L);
  assert.equal(out.kind, expectKind);
  const got = await logitsArray(rt, out, count * L * fx.V);
  const want = fx.oracle(tokens, count, L);
  for (let i = 0; i < want.length; i++) {
    assert.ok(
      Math.abs(got[i] - want[i]) <= 1e-4 * (1 + Math.abs(want[i])),
      `logit ${i}: ${got[i]} vs ${want[i]}`,
    );
  }
  const bad = tokens.slice();
  bad[bad.length - 1] = fx.V;
  await assert.rejects(
    teacher.forward(bad, 7, count, L),
    oneLine(new RegExp(`token id ${fx.V} at sequence ${7 + count - 1}`)),
  );
}

for (const [name, make] of [["LayersModel", layersFixture], ["GraphModel", graphFixture]] as const) {
  Deno.test(`tfjs ${name} teacher on the CPU runtime matches a plain-TS oracle`, async () => {
    await withTempDir(async (dir) => {
      const fx = await make(dir);
      const rt = await createRuntime({ cpu: true, quiet: true });
      const teacher = await tfjsTeacher(rt, fx.path);
      await checkTeacher(rt, teacher, fx, "cpu");
      if (fx.L !== undefined) {
        await assert.rejects(
          teacher.forward(new Uint32Array(fx.L + 1), 0, 1, fx.L + 1),
          oneLine(/sequences of/),
        );
      }
      teacher.dispose();
    });
  });

  Deno.test(`tfjs ${name} teacher on the GPU runtime hands logits over as a GPU buffer`, async () => {
    const rt = await createRuntime({ quiet: true });
    if (!rt.device) {
      if (Deno.env.get("SPARSEKD_TEST_CPU_ONLY") === "1") return;
      assert.fail("no WebGPU adapter found (set SPARSEKD_TEST_CPU_ONLY=1 to skip the GPU tests)");
    }
    await withTempDir(async (dir) => {
      const fx = await make(dir);
      const teacher = await tfjsTeacher(rt, fx.path);
      await checkTeacher(rt, teacher, fx, "gpu");
      teacher.dispose();
    });
    await tf.setBackend("cpu");
    rt.destroy();
  });
}

Deno.test("a tfjs teacher loads over http and its fingerprint covers model.json and weights", async () => {
  await withTempDir(async (dir) => {
    const fx = await graphFixture(dir);
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
      const name = new URL(req.url).pathname.slice(1);
      try {
        return new Response(await Deno.readFile(`${dir}/${name}`));
      } catch {
        return new Response("missing", { status: 404 });
      }
    });
    try {
      const rt = await createRuntime({ cpu: true, quiet: true });
      const url = `http://127.0.0.1:${server.addr.port}/model.json`;
      const remote = await tfjsTeacher(rt, url);
      const local = await tfjsTeacher(rt, fx.path);
      await checkTeacher(rt, remote, fx, "cpu");
      assert.equal(remote.fingerprint, local.fingerprint);
      assert.equal(remote.description, `tfjs:${url}`);
      remote.dispose();
      local.dispose();
      // Another weight file is another teacher.
      const w = await Deno.readFile(`${dir}/group1-shard1of1.bin`);
      w[0] ^= 1;
      await Deno.writeFile(`${dir}/group1-shard1of1.bin`, w);
      const changed = await tfjsTeacher(rt, fx.path);
      assert.notEqual(changed.fingerprint, remote.fingerprint);
      changed.dispose();
      await assert.rejects(
        tfjsTeacher(rt, `http://127.0.0.1:${server.addr.port}/nope/model.json`),
        oneLine(/cannot read model\.json .*HTTP 404/),
      );
    } finally {
      await server.shutdown();
    }
  });
});

Deno.test("broken tfjs models are one-line errors", async () => {
  await withTempDir(async (dir) => {
    const rt = await createRuntime({ cpu: true, quiet: true });
    await assert.rejects(
      tfjsTeacher(rt, `${dir}/missing/model.json`),
      oneLine(
        /cannot read model\.json file:\/\/.*\/missing\/model\.json \(.*\/missing\/model\.json does not exist\)$/,
      ),
    );
    await Deno.writeTextFile(`${dir}/model.json`, "{ not json");
    await assert.rejects(tfjsTeacher(rt, `${dir}/model.json`), oneLine(/not valid JSON/));
    await Deno.writeTextFile(`${dir}/model.json`, '{"hello": 1}');
    await assert.rejects(tfjsTeacher(rt, `${dir}/model.json`), oneLine(/no modelTopology/));
    const fx = await graphFixture(dir);
    const w = await Deno.readFile(`${dir}/group1-shard1of1.bin`);
    await Deno.writeFile(`${dir}/group1-shard1of1.bin`, w.subarray(0, w.length - 4));
    await assert.rejects(
      tfjsTeacher(rt, fx.path),
      oneLine(/weight files hold \d+ bytes, the manifest needs \d+/),
    );
    await Deno.remove(`${dir}/group1-shard1of1.bin`);
    await assert.rejects(tfjsTeacher(rt, fx.path), oneLine(/cannot read weight file/));
    await assert.rejects(
      tfjsTeacher(rt, "s3://bucket/model.json"),
      oneLine(/s3:\/\/bucket\/: unsupported store/),
    );
  });
});

Deno.test("a tfjs teacher loads from gs:// through the store registry, also under read faults", async () => {
  const { startEmulator } = await import("../testing/gcs_emulator/server.ts");
  await withTempDir(async (dir) => {
    const fx = await graphFixture(dir);
    const emu = await startEmulator({ port: 0, buckets: ["bkt"] });
    try {
      for (const name of ["model.json", "group1-shard1of1.bin"]) {
        const bytes = await Deno.readFile(`${dir}/${name}`);
        emu.state.putObject("bkt", `teachers/t1/${name}`, bytes, "application/octet-stream", {});
      }
      emu.faults.add([
        { method: "GET", path: "alt=media", status: 503 },
        { kind: "reset", method: "GET", path: "alt=media", afterResponseBytes: 10 },
      ]);
      const rt = await createRuntime({ cpu: true, quiet: true });
      const uri = "gs://bkt/teachers/t1/model.json";
      const remote = await tfjsTeacher(rt, uri, { endpoint: { gs: emu.url } });
      const local = await tfjsTeacher(rt, fx.path);
      assert.deepEqual(emu.faults.pending(), []);
      await checkTeacher(rt, remote, fx, "cpu");
      assert.equal(remote.fingerprint, local.fingerprint);
      assert.equal(remote.description, `tfjs:${uri}`);
      remote.dispose();
      local.dispose();
      await assert.rejects(
        tfjsTeacher(rt, "gs://bkt/teachers/none/model.json", { endpoint: emu.url }),
        oneLine(/^cannot read model\.json gs:\/\/bkt\/teachers\/none\/model\.json \(.* does not exist\)$/),
      );
    } finally {
      await emu.close();
    }
  });
});
