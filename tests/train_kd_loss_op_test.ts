import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { createRuntime, type Runtime } from "../src/gpu/runtime.ts";
import { tensorGpuBuffer, tfjsGpuBackend, useTfjsOnRuntime } from "../src/gpu/tfjs_backend.ts";
import { readBack } from "../src/gpu/readback.ts";
import { rowsPerBinding } from "../src/kernels/sparse_kd.ts";
import { kernelHooks, resetKernelHooks } from "../src/kernels/test_hooks.ts";
import { createSparseKdLossOp, type KdOpOptions } from "../src/train/kd_loss_op.ts";
import { makeRng, withSeed } from "./_rng.ts";
import { sparseKdLossReference64, type SparseKdMode } from "../src/kernels/sparse_kd_reference.ts";

const gpuRt = await createRuntime({ quiet: true });

/** `rows` teacher rows of `k` distinct random ids with values in [4, 12) and logsumexps in [lseMin, lseMin + 1). */
function randomTeacherRows(rand: () => number, rows: number, vocab: number, k: number, lseMin: number) {
  const indices = new Uint32Array(rows * k), values = new Float32Array(rows * k);
  const lse = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const ids = new Set<number>();
    while (ids.size < k) ids.add(Math.floor(rand() * vocab));
    [...ids].forEach((id, i) => {
      indices[r * k + i] = id;
      values[r * k + i] = 4 + rand() * 8;
    });
    lse[r] = lseMin + rand();
  }
  return { indices, values, lse };
}
const cpuRt = await createRuntime({ cpu: true, quiet: true });

/**
 * A tiny model (logits = x·W) trained one step through the op; its gradient with respect to W must equal
 * xᵀ·G with G the float64 reference's gradient of the mean loss at the same logits.
 */
async function checkModelGradient(
  rt: Runtime,
  mode: SparseKdMode,
  seed: number,
  countReads: boolean,
  teacherAsTensors = false,
) {
  const rand = makeRng(seed).uniform;
  await useTfjsOnRuntime(rt);
  const kdLoss = await createSparseKdLossOp(rt);
  const rows = 3 + Math.floor(rand() * 6), d = 5, vocab = 200 + Math.floor(rand() * 900);
  const k = 1 + Math.floor(rand() * 40);
  const T = 0.5 + rand() * 3;
  const xs = Float32Array.from({ length: rows * d }, () => rand() - 0.5);
  const ws = Float32Array.from({ length: d * vocab }, () => (rand() - 0.5) * 6);
  const x = tf.tensor2d(xs, [rows, d]);
  const w = tf.variable(tf.tensor2d(ws, [d, vocab]), true, `w_${mode}_${seed}`);
  const indices = new Uint32Array(rows * k),
    values = new Float32Array(rows * k),
    lse = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    const ids = new Set<number>();
    while (ids.size < k) ids.add(Math.floor(rand() * vocab));
    [...ids].forEach((id, i) => {
      indices[r * k + i] = id;
      values[r * k + i] = (rand() - 0.2) * 8;
    });
    let m = -Infinity;
    for (let i = 0; i < k; i++) m = Math.max(m, values[r * k + i] / T);
    let s = 0;
    for (let i = 0; i < k; i++) s += Math.exp(values[r * k + i] / T - m);
    lse[r] = m + Math.log(s) + 0.05 + rand(); // a full-vocabulary lse is above the top-k's
  }
  const teacher = { indices, values, k, logsumexp: lse };
  const mask = Uint8Array.from({ length: rows }, (_, r) => (r === 1 ? 0 : 1));
  const options: KdOpOptions = {
    mode,
    temperature: T,
    alpha: rand() < 0.5 ? 1 : rand(),
    labels: Int32Array.from({ length: rows }, () => Math.floor(rand() * vocab)),
    mask,
  };

  const backend = rt.device ? tfjsGpuBackend(rt.device) : null;
  let reads = 0;
  const orig = backend ? { read: backend.read, readSync: backend.readSync } : null;
  if (backend && countReads) {
    backend.read = (id: object) => (reads++, orig!.read.call(backend, id));
    backend.readSync = (id: object) => (reads++, orig!.readSync.call(backend, id));
  }
  const before = tf.memory().numTensors;
  let value: tf.Scalar, grads: tf.NamedTensorMap;
  try {
    const given = teacherAsTensors
      ? {
        ...teacher,
        indices: tf.tensor2d(new Int32Array(indices.buffer), [rows, k], "int32"),
        values: tf.tensor2d(values, [rows, k]),
      }
      : teacher;
    ({ value, grads } = tf.variableGrads(() => kdLoss(tf.matMul(x, w) as tf.Tensor2D, given, options)));
    if (given !== teacher) tf.dispose([given.indices as tf.Tensor, given.values as tf.Tensor]);
  } finally {
    if (backend && orig) Object.assign(backend, orig);
  }
  if (countReads) assert.equal(reads, 0, "the training step read tensors back to the CPU");
  const gw = await grads[w.name].data();
  const lossValue = (await value.data())[0];
  assert.equal(tf.memory().numTensors, before + 2, "only the loss and the gradient outlive the step");

  const logits = tf.matMul(x, w);
  const s = await logits.data() as Float32Array;
  logits.dispose();
  const active = mask.reduce((a, m) => a + m, 0);
  const ref = sparseKdLossReference64(s, rows, vocab, teacher, { ...options, scale: 1 / active });
  const wantLoss = ref.loss.reduce((a, b) => a + b, 0);
  assert.ok(
    Math.abs(lossValue - wantLoss) <= 1e-5 * Math.abs(wantLoss) + 1e-7,
    `loss ${lossValue} vs ${wantLoss}`,
  );
  let max = 0;
  const want = new Float64Array(d * vocab);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < vocab; j++) {
      let acc = 0;
      for (let r = 0; r < rows; r++) acc += xs[r * d + i] * ref.grad[r * vocab + j];
      want[i * vocab + j] = acc;
      max = Math.max(max, Math.abs(acc));
    }
  }
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(gw[i] - want[i]) <= 1e-4 * max, `dW[${i}] = ${gw[i]}, want ${want[i]} (max ${max})`);
  }
  tf.dispose([value, grads[w.name], x, w]);
}

for (const mode of ["topk", "renorm", "tail"] as SparseKdMode[]) {
  Deno.test({
    name:
      `a tiny tfjs model's gradient through the GPU op equals the reference's (${mode}), with no read-back`,
    ignore: gpuRt.device === null,
    fn: async () => {
      await withSeed("train_kd_loss_op_test", async (_rng, seed) => {
        await checkModelGradient(gpuRt, mode, seed, true);
      });
    },
  });
}

Deno.test({
  name: "the GPU op takes the teacher's ids and logits as tfjs tensors too",
  ignore: gpuRt.device === null,
  fn: async () => {
    await withSeed("train_kd_loss_op_test", async (_rng, seed) => {
      for (const mode of ["topk", "tail"] as SparseKdMode[]) {
        await checkModelGradient(gpuRt, mode, seed, true, true);
      }
    });
  },
});

Deno.test("the op falls back to the reference on the tfjs cpu backend with the same gradient", async () => {
  await withSeed("train_kd_loss_op_test", async (_rng, seed) => {
    for (const mode of ["topk", "tail"] as SparseKdMode[]) await checkModelGradient(cpuRt, mode, seed, false);
  });
});

Deno.test({
  name: "the GPU op splits rows into chunks that fit a (lowered) binding limit, with the same gradient",
  ignore: gpuRt.device === null,
  fn: async () => {
    await withSeed("train_kd_loss_op_test", async (_rng, seed) => {
      // Room for 2 rows of the largest vocabulary checkModelGradient draws (1,099) beside the alignment slack:
      // the forward kernel runs in several dispatches with offset bindings, the backward scale kernel too.
      kernelHooks.maxBindingBytes = 1280 + 2 * 1100 * 4;
      try {
        for (const mode of ["topk", "tail"] as SparseKdMode[]) {
          await checkModelGradient(gpuRt, mode, seed, true);
        }
      } finally {
        resetKernelHooks();
      }
    });
  },
});

Deno.test({
  name: "the GPU op on logits larger than the largest binding gives the reference's loss and gradient",
  ignore: gpuRt.device === null,
  fn: async () => {
    await withSeed("train_kd_loss_op_test", async (_rng, seed) => {
      const rand = makeRng(seed).uniform;
      const rt = gpuRt, device = rt.device!;
      await useTfjsOnRuntime(rt);
      const backend = tfjsGpuBackend(device)!;
      const kdLoss = await createSparseKdLossOp(rt);
      const vocab = 32768 + 4 * Math.floor(rand() * 16), k = 16, T = 2;
      const rows = Math.floor(device.limits.maxStorageBufferBindingSize / (vocab * 4)) + 3 +
        Math.floor(rand() * 8);
      const s = new Float32Array(rows * vocab);
      for (let i = 0; i < s.length; i++) s[i] = (rand() - 0.5) * 8;
      // lse above the top-k's own (at most 6 + log 16 ≈ 8.8 at T = 2)
      const { indices, values, lse } = randomTeacherRows(rand, rows, vocab, k, 14);
      // Only the sampled rows are active (reduction "sum"), so the loss is the sum of their reference losses;
      // they sit in the first chunk, on both sides of the chunk edge and in the last chunk.
      const edge = rowsPerBinding(device, vocab, k);
      const sample = [...new Set([0, edge - 1, edge, rows - 1, 1 + Math.floor(rand() * (rows - 2))])];
      const masked = sample.includes(rows - 2) ? 2 : rows - 2; // a masked row: its gradient must be 0
      const mask = new Uint8Array(rows);
      for (const r of sample) mask[r] = 1;
      const labels = Int32Array.from({ length: rows }, () => Math.floor(rand() * vocab));
      const mode = (["topk", "renorm", "tail"] as SparseKdMode[])[Math.floor(rand() * 3)];
      const options: KdOpOptions = { mode, temperature: T, alpha: 0.5, labels, mask, reduction: "sum" };
      const x = tf.tensor2d(s, [rows, vocab]);
      const { value, grad } = tf.valueAndGrad((l: tf.Tensor) =>
        kdLoss(l as tf.Tensor2D, { indices, values, k, logsumexp: lse }, options)
      )(x);
      try {
        const got = (await value.data())[0];
        const regions = [...sample, masked].map((r) => ({
          buffer: tensorGpuBuffer(backend, grad),
          offset: r * vocab * 4,
          size: vocab * 4,
        }));
        const rowsBack = (await readBack(device, regions)).map((b) => new Float32Array(b));
        let want = 0;
        sample.forEach((r, i) => {
          const one = {
            indices: indices.slice(r * k, (r + 1) * k),
            values: values.slice(r * k, (r + 1) * k),
            k,
            logsumexp: lse.slice(r, r + 1),
          };
          const ref = sparseKdLossReference64(s.slice(r * vocab, (r + 1) * vocab), 1, vocab, one, {
            mode,
            temperature: T,
            alpha: 0.5,
            labels: labels.slice(r, r + 1),
          });
          want += ref.loss[0];
          let max = 0;
          for (let j = 0; j < vocab; j++) max = Math.max(max, Math.abs(ref.grad[j]));
          for (let j = 0; j < vocab; j++) {
            const err = Math.abs(rowsBack[i][j] - ref.grad[j]);
            if (!(err <= 1e-4 * max)) {
              assert.fail(`${mode} row ${r} id ${j}: ${rowsBack[i][j]} vs ${ref.grad[j]}`);
            }
          }
        });
        assert.ok(
          Math.abs(got - want) <= 1e-5 * Math.abs(want),
          `${mode} loss ${got} vs ${want} (seed ${seed})`,
        );
        assert.ok(rowsBack[sample.length].every((g) => g === 0), "a masked row's gradient is not 0");
      } finally {
        tf.dispose([x, value, grad]);
      }
    });
  },
});

Deno.test({
  name: "teacher ids given as a tensor are checked on the GPU: a repeated or out-of-range id gives a NaN row",
  ignore: gpuRt.device === null,
  fn: async () => {
    await useTfjsOnRuntime(gpuRt);
    const kdLoss = await createSparseKdLossOp(gpuRt);
    const rows = 3, vocab = 40, k = 4;
    const ids = Int32Array.from([0, 1, 2, 3, 5, 6, 5, 7, 8, 9, 10, 40]); // row 1 repeats 5, row 2 has 40 ≥ vocab
    const logits = tf.tensor2d(Float32Array.from({ length: rows * vocab }, (_, i) => Math.sin(i)), [
      rows,
      vocab,
    ]);
    const indices = tf.tensor2d(ids, [rows, k], "int32");
    const values = tf.tensor2d(Float32Array.from({ length: rows * k }, (_, i) => 3 - i % k), [rows, k]);
    const logsumexp = new Float32Array(rows).fill(5); // (mode tail; above the top-k's own lse at T = 2)
    // Mode tail checks its ids once they are sorted in workgroup memory (a repeat is next to its twin); the
    // other modes compare every pair.
    for (const mode of ["topk", "tail"] as SparseKdMode[]) {
      for (
        const [name, mask] of [
          ["all rows", [1, 1, 1]],
          ["rows 0, 1 (a repeat)", [1, 1, 0]],
          ["rows 0, 2 (an id ≥ vocab)", [1, 0, 1]],
          ["row 0 only", [1, 0, 0]],
        ] as const
      ) {
        const loss = kdLoss(logits, { indices, values, k, logsumexp }, {
          mode,
          temperature: 2,
          mask: Uint8Array.from(mask),
          reduction: "sum",
        });
        const v = (await loss.data())[0];
        loss.dispose();
        if (name !== "row 0 only") assert.ok(Number.isNaN(v), `${mode} ${name}: loss ${v} should be NaN`);
        else assert.ok(Number.isFinite(v) && v > 0, `${mode} ${name}: loss ${v}`);
      }
    }
    tf.dispose([logits, indices, values]);
  },
});

Deno.test({
  name:
    "the GPU op in mode tail with 1,024 teacher ids (as tensors) over 131,072 logits equals the reference",
  ignore: gpuRt.device === null,
  fn: async () => {
    await withSeed("train_kd_loss_op_test", async (_rng, seed) => {
      // The shape whose loss was silently wrong on llvmpipe before mode tail sorted its ids (then refused).
      const rand = makeRng(seed).uniform;
      await useTfjsOnRuntime(gpuRt);
      const kdLoss = await createSparseKdLossOp(gpuRt);
      const rows = 2, vocab = 131_072, k = 1024, T = 0.5 + rand() * 2;
      const s = Float32Array.from({ length: rows * vocab }, () => (rand() - 0.5) * 8);
      // lse above the top-k's own
      const { indices, values, lse } = randomTeacherRows(rand, rows, vocab, k, 12 / T + Math.log(vocab));
      const labels = Int32Array.from({ length: rows }, () => Math.floor(rand() * vocab));
      labels[0] = indices[3]; // the label in S
      const options: KdOpOptions = { mode: "tail", temperature: T, alpha: 0.5, labels, reduction: "sum" };
      const x = tf.tensor2d(s, [rows, vocab]);
      const idT = tf.tensor2d(new Int32Array(indices.buffer), [rows, k], "int32");
      const valT = tf.tensor2d(values, [rows, k]);
      const { value, grad } = tf.valueAndGrad((l: tf.Tensor) =>
        kdLoss(l as tf.Tensor2D, { indices: idT, values: valT, k, logsumexp: lse }, options)
      )(x);
      try {
        const got = (await value.data())[0];
        const g = await grad.data();
        const ref = sparseKdLossReference64(s, rows, vocab, { indices, values, k, logsumexp: lse }, options);
        const want = ref.loss.reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(got - want) <= 1e-5 * Math.abs(want), `loss ${got} vs ${want} (seed ${seed})`);
        for (let r = 0; r < rows; r++) {
          let max = 0;
          for (let j = 0; j < vocab; j++) max = Math.max(max, Math.abs(ref.grad[r * vocab + j]));
          for (let j = 0; j < vocab; j++) {
            const i = r * vocab + j;
            if (!(Math.abs(g[i] - ref.grad[i]) <= 1e-4 * max)) {
              assert.fail(`row ${r} id ${j}: ${g[i]} vs ${ref.grad[i]} (seed ${seed})`);
            }
          }
        }
      } finally {
        tf.dispose([x, idT, valT, value, grad]);
      }
    });
  },
});
