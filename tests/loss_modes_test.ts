import assert from "node:assert/strict";
import { errorLine } from "../src/cli/run_main.ts";
import { SparsekdError } from "../src/errors.ts";
import { createRuntime } from "../src/gpu/runtime.ts";
import { sparseKdLoss } from "../src/kernels/sparse_kd.ts";
import {
  kernelModeIds,
  LOSS_MODES,
  type LossMode,
  lseIndexFor,
  sampleLseIndexFor,
  SHARD_MODES,
  shardMode,
} from "../src/loss/modes.ts";
import { withSeed } from "./_rng.ts";

const rt = await createRuntime({ quiet: true });
const modes = Object.values(LOSS_MODES) as LossMode[];

Deno.test("kernel mode ids are distinct and every shard mode runs on the kernel", () => {
  const ids = modes.map((m) => m.kernelId).filter((id) => id !== null);
  assert.equal(new Set(ids).size, ids.length);
  for (const m of modes) assert.equal(m.kernelId !== null, m.source === "shards", m.name);
  assert.deepEqual(Object.keys(kernelModeIds()).sort(), [...SHARD_MODES].sort());
});

Deno.test({
  name: "each registered kernel mode's WGSL output matches the mode's float64 reference",
  ignore: rt.device === null,
  fn: () =>
    withSeed("loss_modes_test", async (rng) => {
      for (const m of modes.filter((m) => m.kernelId !== null)) {
        const rows = 3, vocab = 37, k = 5, T = 0.5 + 2 * rng.uniform();
        const s = Float32Array.from({ length: rows * vocab }, () => 3 * rng.normal());
        const indices = new Uint32Array(rows * k), values = new Float32Array(rows * k);
        const logsumexp = new Float32Array(rows);
        for (let r = 0; r < rows; r++) {
          const full = Array.from({ length: vocab }, () => 4 * rng.normal());
          const order = [...full.keys()].sort((a, b) => full[b] - full[a]).slice(0, k);
          order.forEach((id, j) => {
            indices[r * k + j] = id;
            values[r * k + j] = full[id];
          });
          const mx = Math.max(...full.map((z) => z / T));
          logsumexp[r] = mx + Math.log(full.reduce((a, z) => a + Math.exp(z / T - mx), 0));
        }
        // Draw counts per slot: mode sampled reads them (as samples drawn at T); the others ignore them.
        const hits = Uint16Array.from({ length: rows * k }, () => 1 + rng.int(3));
        const teacher = { indices, values, k, logsumexp, hits };
        const labels = Int32Array.from({ length: rows }, () => rng.int(vocab));
        const options = { temperature: T, alpha: 0.6, labels };
        const got = await sparseKdLoss(rt, s, rows, vocab, teacher, { ...options, mode: m.name as "topk" });
        const want = m.reference(s, rows, vocab, teacher, options);
        for (let r = 0; r < rows; r++) {
          assert.ok(
            Math.abs(got.loss[r] - want.loss[r]) <= 1e-4 * Math.abs(want.loss[r]) + 1e-5,
            `${m.name} row ${r}`,
          );
        }
        for (let i = 0; i < got.grad.length; i++) {
          assert.ok(Math.abs(got.grad[i] - want.grad[i]) <= 1e-5, `${m.name} grad ${i}`);
        }
      }
    }),
});

Deno.test("kdMode accepts the shard modes only, and the error lists them", () => {
  for (const name of SHARD_MODES) assert.equal(shardMode(name).name, name);
  assert.throws(
    () => shardMode("full"),
    /^SparsekdError: kdMode must be topk, renorm, tail or sampled \(got "full"\) \(full is online/,
  );
  assert.throws(() => shardMode("nope"), /kdMode must be topk, renorm, tail or sampled \(got "nope"\)$/);
});

Deno.test("a mode that needs the logsumexp at T names the temperatures to re-run save-topk with", () => {
  assert.equal(lseIndexFor(LOSS_MODES.tail, 2, [1, 2], "s"), 1);
  assert.equal(lseIndexFor(LOSS_MODES.topk, 2, [1], "s"), -1);
  try {
    lseIndexFor(LOSS_MODES.tail, 2, [1], "runs/demo/topk");
    assert.fail("no error");
  } catch (e) {
    assert.ok(e instanceof SparsekdError);
    assert.equal(
      errorLine(e, { kdMode: "--kd-mode" }),
      "error: --kd-mode tail needs the teacher's logsumexp at temperature 2; runs/demo/topk has it at 1 only: " +
        "re-run save-topk with --lse-temperatures 1,2",
    );
  }
});

Deno.test("mode sampled needs shards with samples and the logsumexp at their sampling temperature", () => {
  const sample = { n: 16, temperature: 1.5, seed: 3 };
  assert.equal(sampleLseIndexFor(LOSS_MODES.sampled, sample, [1, 1.5], "s"), 1);
  assert.equal(sampleLseIndexFor(LOSS_MODES.topk, undefined, [1], "s"), -1);
  const line = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof SparsekdError);
      return errorLine(e, { kdMode: "--kd-mode" });
    }
    assert.fail("no error");
  };
  assert.equal(
    line(() => sampleLseIndexFor(LOSS_MODES.sampled, undefined, [1], "runs/demo/topk")),
    "error: --kd-mode sampled needs sampled targets; runs/demo/topk has none: re-run save-topk with --sample N",
  );
  assert.equal(
    line(() => sampleLseIndexFor(LOSS_MODES.sampled, sample, [1, 2], "runs/demo/topk")),
    "error: --kd-mode sampled needs the teacher's logsumexp at the sampling temperature 1.5; runs/demo/topk " +
      "has it at 1,2 only",
  );
});
