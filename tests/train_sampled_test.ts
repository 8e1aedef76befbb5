// Mode `sampled` in training: the CLI's one-line errors on shards without samples, the shard record →
// training record mapping of the sampled targets, the padded batch, the tfjs op against the reference, and a
// short training run from sampled targets whose loss and held-out KL fall.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { makeRunJson } from "../src/format/run_json.ts";
import type { RunJson } from "../src/format/types.ts";
import { createSparseKdLossOp } from "../src/train/kd_loss_op.ts";
import { sampledBatch, type TrainRecord } from "../src/train/records.ts";
import { shardRecord, type ShardRow } from "../src/train/shard_records.ts";
import { trainLoop } from "../src/train/trainer.ts";
import { sparseKdLossReference64 } from "../src/kernels/sparse_kd_reference.ts";
import { SparsekdError } from "../src/errors.ts";
import { runTask } from "./_helpers.ts";
import { withSeed } from "./_rng.ts";
import {
  patternSource,
  testRuntime,
  TINY_MODEL,
  trainRejects,
  writePatternShards,
} from "./_train_fixtures.ts";

const small = [...TINY_MODEL, "--batch-size", "2", "--quiet"];

async function withShards(body: (dir: string) => Promise<void>, lseTemperatures = [1]) {
  await withSeed("train_sampled_test", async (_rng, seed) => {
    const dir = await Deno.makeTempDir();
    try {
      await writePatternShards(`${dir}/topk`, {
        seed,
        sequences: 16,
        seqLen: 8,
        vocab: 24,
        k: 4,
        lseTemperatures,
      });
      await body(dir);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

/** Adds a `sample` entry to the run.json of `dir` (the records keep none: what an inconsistent run looks like). */
async function declareSamples(dir: string, temperature: number) {
  const path = `${dir}/run.json`;
  const run = JSON.parse(await Deno.readTextFile(path));
  run.sample = { n: 4, temperature, seed: 1 };
  await Deno.writeTextFile(path, JSON.stringify(run));
}

Deno.test("train --kd-mode sampled on shards without samples prints one error line and exits non-zero", async () => {
  await withShards(async (dir) => {
    const r = await runTask(
      "train",
      "--shards",
      `${dir}/topk`,
      "--out",
      `${dir}/out`,
      "--kd-mode",
      "sampled",
      "--steps",
      "1",
      ...small,
    );
    assert.notEqual(r.code, 0);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0],
      /^error: --kd-mode sampled needs sampled targets; .*topk has none: re-run save-topk with --sample N$/,
    );
  });
});

Deno.test("train --kd-mode sampled refuses --k, a missing logsumexp at t, and records without samples", async () => {
  await withShards(async (dir) => {
    const args = ["--shards", `${dir}/topk`, "--out", `${dir}/out`, "--kd-mode", "sampled", ...small];
    await declareSamples(`${dir}/topk`, 2);
    await trainRejects(
      args,
      /^error: --kd-mode sampled needs the teacher's logsumexp at the sampling temperature 2; .* has it at 1 only$/,
    );
    await declareSamples(`${dir}/topk`, 1);
    await trainRejects([...args, "--k", "2"], /^error: --k selects top-k entries: --kd-mode sampled trains/);
    await trainRejects(
      [...args, "--temperature", "2"],
      /^error: --kd-mode sampled needs the teacher's logsumexp at temperature 2; .* has it at 1 only/,
    );
    // A record without samples: the reader refuses the shard whose header disagrees with run.json, or (a
    // reader that does not compare them) the record mapping finds no samples. One line either way.
    await trainRejects(
      args,
      /^error: (--kd-mode sampled: a shard record has no sampled targets|corrupt shard .* header sample null differs from run\.json's .*)$/,
    );
    await trainRejects(
      [...args, "--temperature", "1:2"],
      /^error: --temperature: a schedule cannot be used with --kd-mode sampled/,
    );
  });
});

function runOf(o: { vocab: number; k: number; seqLen: number; temps: number[] }): RunJson {
  return {
    ...makeRunJson({
      vocabSize: o.vocab,
      k: Math.max(1, o.k),
      seqLen: o.seqLen,
      valueDtype: "f32",
      lseTemperatures: o.temps,
      sequences: 1,
      sequencesPerShard: 1,
      teacher: { fingerprint: "t" },
      data: { fingerprint: "d" },
    }),
    k: o.k,
    sample: { n: 4, temperature: o.temps[1], seed: 0 },
  };
}

Deno.test("a shard record's sampled targets become the training record's, with both logsumexps", () => {
  const run = runOf({ vocab: 10, k: 0, seqLen: 2, temps: [2, 1] });
  const row: ShardRow = {
    tokens: new Uint32Array([1, 2]),
    idx: new Uint16Array(0),
    val: new Float32Array(0),
    lse: new Float32Array([5, 6, 7, 8]), // position 0: (T=2) 5, (t=1) 6; position 1: 7, 8
    sampleLen: new Uint16Array([2, 1]),
    sampleIdx: new Uint16Array([3, 9, 4]),
    sampleHits: new Uint16Array([3, 1, 4]),
    sampleVal: new Float32Array([1.5, -1, 2]),
  };
  const rec = shardRecord(row, run, 0, 10, 0, 2, "error", 1);
  assert.equal(rec.idx, undefined, "samples-only shards give no top-k");
  assert.deepEqual([...rec.lse!], [5, 7]);
  assert.deepEqual([...rec.lseSample!], [6, 8]);
  assert.deepEqual([...rec.sampleIdx!], [3, 9, 4]);
  assert.deepEqual([...rec.sampleHits!], [3, 1, 4]);
  // A student vocabulary of 9: id 9 is refused, or dropped with its draws.
  assert.throws(
    () => shardRecord(row, run, 0, 9, 0, 2, "error", 1),
    (e: Error) =>
      e instanceof SparsekdError &&
      /sampled teacher id 9 is outside the student's vocabulary/.test(e.message),
  );
  const dropped = shardRecord(row, run, 0, 9, 0, 2, "drop", 1);
  assert.deepEqual([...dropped.sampleLen!], [1, 1]);
  assert.deepEqual([...dropped.sampleIdx!], [3, 4]);
  assert.deepEqual([...dropped.sampleHits!], [3, 4]);
  assert.deepEqual([...dropped.sampleVal!], [1.5, 2]);
  // Lengths that do not add up are refused (untrusted data).
  assert.throws(
    () => shardRecord({ ...row, sampleLen: new Uint16Array([2, 2]) }, run, 0, 10, 0, 2, "error", 1),
    (e: Error) => e instanceof SparsekdError && /sampled targets are inconsistent/.test(e.message),
  );
  assert.throws(
    () => shardRecord({ ...row, sampleHits: new Uint16Array([3, 1]) }, run, 0, 10, 0, 2, "error", 1),
    (e: Error) => e instanceof SparsekdError && /inconsistent/.test(e.message),
  );
});

Deno.test("sampledBatch pads each position to the batch's most distinct ids with unused ids of count 0", () => {
  const rec = (len: number[], idx: number[], hits: number[]): TrainRecord => ({
    tokens: new Uint32Array(2),
    lse: new Float32Array([1, 2]),
    lseSample: new Float32Array([3, 4]),
    sampleLen: Uint16Array.from(len),
    sampleIdx: Uint16Array.from(idx),
    sampleHits: Uint16Array.from(hits),
    sampleVal: Float32Array.from(idx, (i) => i / 10),
  });
  const b = sampledBatch(
    [rec([3, 1], [0, 1, 3, 2], [1, 1, 2, 4]), rec([1, 2], [0, 2, 5], [4, 3, 1])],
    2,
    1.5,
  );
  assert.equal(b.k, 3);
  assert.deepEqual([...b.indices], [0, 1, 3, 2, 0, 1, 0, 1, 2, 2, 5, 0]);
  assert.deepEqual([...b.hits], [1, 1, 2, 4, 0, 0, 4, 0, 0, 3, 1, 0]);
  assert.deepEqual([...b.values].map((v) => Math.round(v * 10)), [0, 1, 3, 2, 0, 0, 0, 0, 0, 2, 5, 0]);
  assert.deepEqual([...b.logsumexp], [1, 2, 1, 2]);
  assert.deepEqual([...b.sampleLogsumexp], [3, 4, 3, 4]);
  assert.equal(b.sampleTemperature, 1.5);
});

function lse(z: ArrayLike<number>, T: number): number {
  let m = -Infinity;
  for (let i = 0; i < z.length; i++) m = Math.max(m, z[i] / T);
  let s = 0;
  for (let i = 0; i < z.length; i++) s += Math.exp(z[i] / T - m);
  return m + Math.log(s);
}

/**
 * Training records of the pattern data with samples drawn from a teacher that puts most of its mass on the
 * pattern's next token: N draws at t per position, and Lz at T and t.
 */
function sampledRecords(
  rand: () => number,
  tokens: Uint32Array,
  L: number,
  V: number,
  T: number,
  t: number,
  n: number,
) {
  const records: (TrainRecord & { full: Float32Array })[] = [];
  for (let s = 0; s < tokens.length / L; s++) {
    const full = new Float32Array(L * V);
    const len = new Uint16Array(L), lseT = new Float32Array(L), lset = new Float32Array(L);
    const idx: number[] = [], hits: number[] = [], val: number[] = [];
    for (let p = 0; p < L; p++) {
      const z = full.subarray(p * V, (p + 1) * V);
      for (let v = 0; v < V; v++) z[v] = Math.fround(rand() * 2);
      z[(5 * tokens[s * L + p] + 3) % V] += 4;
      lseT[p] = lse(z, T);
      lset[p] = lse(z, t);
      const count = new Map<number, number>();
      for (let d = 0; d < n; d++) {
        let u = rand(), id = 0;
        for (; id < V - 1; id++) if ((u -= Math.exp(z[id] / t - lset[p])) < 0) break;
        count.set(id, (count.get(id) ?? 0) + 1);
      }
      const ids = [...count.keys()].sort((a, b) => a - b);
      len[p] = ids.length;
      for (const id of ids) idx.push(id), hits.push(count.get(id)!), val.push(z[id]);
    }
    records.push({
      tokens: tokens.slice(s * L, (s + 1) * L),
      lse: lseT,
      lseSample: lset,
      sampleLen: len,
      sampleIdx: Uint16Array.from(idx),
      sampleHits: Uint16Array.from(hits),
      sampleVal: Float32Array.from(val),
      full,
    });
  }
  return records;
}

Deno.test("the sparse-KD op in mode sampled gives the reference's loss and gradient (GPU kernel or CPU)", async () => {
  const rt = await testRuntime();
  await withSeed("sampled op", async (rng) => {
    const kdLoss = await createSparseKdLossOp(rt);
    const L = 6, V = 40, T = 2, t = 1;
    const recs = sampledRecords(
      rng.uniform,
      Uint32Array.from({ length: 2 * L }, () => rng.int(V)),
      L,
      V,
      T,
      t,
      16,
    );
    const teacher = sampledBatch(recs, L, t);
    const rows = 2 * L;
    const s = Float32Array.from({ length: rows * V }, () => 2 * rng.normal());
    const mask = Uint8Array.from({ length: rows }, (_, r) => (r % L === L - 1 ? 0 : 1));
    const labels = Int32Array.from({ length: rows }, () => rng.int(V));
    const x = tf.variable(tf.tensor2d(s, [rows, V]));
    const { value, grads } = tf.variableGrads(() =>
      kdLoss(x as unknown as tf.Tensor2D, teacher, {
        mode: "sampled",
        temperature: T,
        alpha: 0.8,
        labels,
        mask,
      })
    );
    const got = await value.data(), g = await grads[x.name].data();
    const active = mask.reduce((a, m) => a + m, 0);
    const want = sparseKdLossReference64(s, rows, V, teacher, {
      mode: "sampled",
      temperature: T,
      alpha: 0.8,
      labels,
      mask,
      scale: 1 / active,
    });
    const wantLoss = want.loss.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(got[0] - wantLoss) <= 1e-5 * Math.abs(wantLoss) + 1e-6, `${got[0]} vs ${wantLoss}`);
    for (let i = 0; i < g.length; i++) assert.ok(Math.abs(g[i] - want.grad[i]) <= 1e-6, `grad ${i}`);
    tf.dispose([x, value, ...Object.values(grads)]);
  });
});

Deno.test("training from sampled targets at t ≠ T lowers the loss and the held-out KL to the teacher", async () => {
  const rt = await testRuntime();
  await withSeed("sampled training", async (rng, seed) => {
    const L = 16, V = 32, T = 2, t = 1, n = 16;
    const src = patternSource(seed, { sequences: 72, seqLen: L, vocab: V });
    const recs = sampledRecords(rng.uniform, await src.read(0, 72), L, V, T, t, n);
    const train = recs.slice(0, 64), held = recs.slice(64);
    // Held-out KL against the teacher's full distribution: its top-V, for the evaluation's KL at T.
    const heldout = held.map((r) => ({
      tokens: r.tokens,
      idx: Uint32Array.from({ length: L * V }, (_, i) => i % V),
      val: r.full,
    }));
    const lines: string[] = [];
    const result = await trainLoop({
      rt,
      model: { vocabSize: V, seqLen: L, layers: 1, width: 16, heads: 2, tiedEmbeddings: true },
      seed,
      steps: 40,
      batchSize: 8,
      lr: 1e-2,
      mode: "sampled",
      temperature: T,
      sampleTemperature: t,
      data: {
        sequences: train.length,
        stream: async function* (from) {
          yield* train.slice(from);
        },
      },
      heldout,
      out: null,
      evalEvery: 20,
      logEvery: 10,
      kdLoss: await createSparseKdLossOp(rt),
      log: (l) => lines.push(l),
      progress: false,
    });
    const losses = [...result.losses.values()];
    const head = losses.slice(0, 5).reduce((a, b) => a + b) / 5;
    const tail = losses.slice(-5).reduce((a, b) => a + b) / 5;
    assert.ok(tail < head * 0.8, `loss ${head} → ${tail}`);
    assert.equal(result.evals.length, 2);
    assert.ok(
      result.evals[1].kl! < result.evals[0].kl!,
      `held-out KL ${result.evals[0].kl} → ${result.evals[1].kl}`,
    );
    result.model.dispose();
  });
});
