/**
 * The runtime's CPU fallback: createRuntime({ cpu: true }) has no device, and topK then runs the reference.
 * The GPU runtime test fails when no adapter is found, unless SPARSEKD_TEST_CPU_ONLY=1. The GPU error
 * tracking (uncaptured errors, error scopes, forced over-limit dispatches) and the stderr of a task.
 */
import assert from "node:assert/strict";
import { COMPILING_LINE, createRuntime } from "../src/gpu/runtime.ts";
import { gpuFailure, noteKernel, withErrorScopes } from "../src/gpu/gpu_errors.ts";
import { readBack } from "../src/gpu/readback.ts";
import { kernelHooks, resetKernelHooks } from "../src/kernels/test_hooks.ts";
import { fixture, run, save } from "./_save_fixtures.ts";
import { SparsekdError } from "../src/errors.ts";
import { topK, topKFromBuffer, topKReference } from "../src/kernels/topk.ts";
import { withSeed } from "./_rng.ts";

function randomLogits(n: number): Float32Array {
  return new Float32Array(n).map(() => (Math.random() - 0.5) * 20);
}

Deno.test("createRuntime({ cpu: true }) gives a CPU runtime whose pipeline() rejects", async () => {
  const rt = await createRuntime({ cpu: true, quiet: true });
  assert.equal(rt.device, null);
  assert.equal(rt.adapter, null);
  await assert.rejects(() => rt.pipeline("x", "topk.wgsl"));
  rt.destroy();
});

Deno.test("topK on the CPU runtime runs the reference, with any temperatures", async () => {
  await withSeed("gpu_runtime_test", async (rng) => {
    const rt = await createRuntime({ cpu: true, quiet: true });
    const [rows, vocab, k] = [1 + Math.floor(rng.uniform() * 5), 2 + Math.floor(rng.uniform() * 3000), 1];
    const kk = Math.min(vocab, k + Math.floor(rng.uniform() * 100));
    const x = randomLogits(rows * vocab);
    const temperatures = [1, 0.5 + rng.uniform()];
    const got = await topK(rt, x, rows, vocab, kk, { temperatures });
    const want = topKReference(x, rows, vocab, kk, { temperatures });
    assert.deepEqual(got, want);
    // Independent check of the first row against a direct computation.
    const row = Array.from(x.subarray(0, vocab));
    const max = Math.max(...row);
    assert.equal(got.values[0], max);
    assert.equal(got.indices[0], row.indexOf(max));
    const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
    assert.ok(Math.abs(got.logsumexp[0] - lse) <= 1e-5 * Math.max(1, Math.abs(lse)));
    for (let j = 1; j < kk; j++) assert.ok(got.values[j] <= got.values[j - 1]);
  });
});

Deno.test("topKFromBuffer on the CPU runtime is a SparsekdError", async () => {
  const rt = await createRuntime({ cpu: true, quiet: true });
  await assert.rejects(() => topKFromBuffer(rt, {} as GPUBuffer, 1, 4, 1), SparsekdError);
});

Deno.test("createRuntime() finds a WebGPU adapter and topK runs on it", async () => {
  const rt = await createRuntime({ quiet: true });
  if (!rt.device) {
    if (Deno.env.get("SPARSEKD_TEST_CPU_ONLY") === "1") return;
    assert.fail("no WebGPU adapter found (set SPARSEKD_TEST_CPU_ONLY=1 to skip the GPU tests)");
  }
  assert.ok(rt.adapter && rt.adapter.description.length > 0);
  const x = randomLogits(3 * 500);
  const got = await topK(rt, x, 3, 500, 10);
  const want = topKReference(x, 3, 500, 10);
  assert.deepEqual(got.indices, want.indices);
  assert.deepEqual(got.values, want.values);
  want.logsumexp.forEach((w, i) => {
    assert.ok(Math.abs(got.logsumexp[i] - w) <= Math.max(1e-5, 1e-6 * Math.abs(w)), `logsumexp ${i}`);
  });
  rt.destroy();
});

const gpuRt = await createRuntime({ quiet: true });
const noGpu = gpuRt.device === null;

/** A validation error nobody captures: a bind group layout with the same binding twice. */
function makeUncapturedError(device: GPUDevice) {
  const entry = { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: "storage" as const } };
  device.createBindGroupLayout({ entries: [entry, entry] });
}

Deno.test({
  name:
    "an uncaptured GPU error is recorded and the next read-back or kernel call throws it, naming the kernel",
  ignore: noGpu,
  fn: async () => {
    const rt = await createRuntime({ quiet: true }); // its own device: this one is not trusted afterwards
    const device = rt.device!;
    const buf = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    assert.equal((await readBack(device, [{ buffer: buf, size: 16 }]))[0].byteLength, 16);
    noteKernel(device, "test kernel");
    makeUncapturedError(device);
    await new Promise((r) => setTimeout(r, 50)); // the event is dispatched asynchronously
    assert.equal(gpuFailure(device)?.kernel, "test kernel");
    const oneLine = (e: unknown) => {
      assert.ok(e instanceof SparsekdError, String(e));
      assert.match(e.message, /^GPU error in kernel test kernel \(validation\): \S/);
      assert.ok(!e.message.includes("\n"));
      return true;
    };
    await assert.rejects(() => readBack(device, [{ buffer: buf, size: 16 }]), oneLine);
    await assert.rejects(() => topK(rt, randomLogits(2 * 100), 2, 100, 3), oneLine);
    rt.destroy();
  },
});

Deno.test({
  name: "a validation error inside error scopes is a one-line SparsekdError, and the device stays usable",
  ignore: noGpu,
  fn: async () => {
    const device = gpuRt.device!;
    await assert.rejects(
      () => withErrorScopes(device, "scoped kernel", () => makeUncapturedError(device)),
      /^SparsekdError: GPU error in kernel scoped kernel \(validation\)/,
    );
    assert.equal(gpuFailure(device), null);
    const x = randomLogits(3 * 300);
    const got = await topK(gpuRt, x, 3, 300, 4);
    assert.deepEqual(got.indices, topKReference(x, 3, 300, 4).indices);
  },
});

Deno.test({
  name: "a forced over-limit top-k dispatch raises a GPU error, not stale output",
  ignore: noGpu,
  fn: async () => {
    const device = gpuRt.device!;
    const vocab = 50_000;
    const rows = Math.floor(device.limits.maxStorageBufferBindingSize / (vocab * 4)) + 2;
    const buf = device.createBuffer({ size: rows * vocab * 4, usage: GPUBufferUsage.STORAGE });
    kernelHooks.ignoreBindingLimit = true;
    try {
      await assert.rejects(() => topKFromBuffer(gpuRt, buf, rows, vocab, 8), (e: unknown) => {
        assert.ok(e instanceof SparsekdError, String(e));
        assert.match(e.message, /^GPU error in kernel topk \(validation\): /);
        return true;
      });
    } finally {
      resetKernelHooks();
      buf.destroy();
    }
  },
});

Deno.test({
  name: "a task's first stderr line is the adapter line; the compiling line comes once; no loader noise",
  ignore: noGpu,
  fn: async () => {
    const f = await fixture(2, 3, 50);
    const env: Record<string, string> = {};
    const r = await run(save(f, `${f.dir}/out`, ["--k", "4"], env));
    const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
    assert.equal(r.code, 0, r.stderr);
    assert.match(lines[0], /^sparsekd: WebGPU adapter: /, r.stderr);
    assert.equal(lines.filter((l) => l === COMPILING_LINE).length, 1, r.stderr);
    assert.ok(lines.indexOf(COMPILING_LINE) < lines.findIndex((l) => l.includes("100.0%")), r.stderr);
    assert.ok(!/XDG_RUNTIME_DIR|TensorFlow\.js in Node/.test(r.stderr), r.stderr);
    await Deno.remove(f.dir, { recursive: true });
  },
});

Deno.test({
  name: "save-topk refuses +Infinity and all -Infinity teacher rows with one error line and writes no shard",
  ignore: noGpu,
  fn: async () => {
    for (
      const [what, edit] of [
        ["+Infinity", (x: Float32Array, V: number) => (x[(1 * 3 + 2) * V + 7] = Infinity)],
        [
          "only -Infinity",
          (x: Float32Array, V: number) => x.fill(-Infinity, (1 * 3 + 2) * V, (1 * 3 + 3) * V),
        ],
      ] as const
    ) {
      const f = await fixture(2, 3, 50, (f) => void edit(f.logits, f.V));
      const out = `${f.dir}/out`;
      const r = await run(save(f, out, ["--k", "4"]));
      const lines = r.stderr.trim().split("\n");
      assert.notEqual(r.code, 0, `${what}: exit 0`);
      assert.match(lines.at(-1)!, /^error: .*not finite.* sequence 1, position 2$/, `${what}: ${r.stderr}`);
      const shards: string[] = [];
      try {
        for await (const e of Deno.readDir(`${out}/shards`)) if (!e.name.startsWith(".")) shards.push(e.name);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
      assert.deepEqual(shards, [], `${what}: shards were written`);
      await Deno.remove(f.dir, { recursive: true });
    }
  },
});
