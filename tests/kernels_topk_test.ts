/**
 * The WGSL top-k kernel against its CPU reference on fresh random inputs, and the argument and NaN errors.
 * GPU tests fail when no adapter is found, unless SPARSEKD_TEST_CPU_ONLY=1.
 */
import assert from "node:assert/strict";
import { createRuntime, type Runtime } from "../src/gpu/runtime.ts";
import { SparsekdError } from "../src/errors.ts";
import { withSeed } from "./_rng.ts";
import { assertSame, gpu, uploadLogits } from "./_topk_fixtures.ts";
import {
  NonFiniteLogitsError,
  submitTopKFromBuffer,
  topK,
  topKFromBuffer,
  topKReference,
} from "../src/kernels/topk.ts";
import { kernelHooks, poisonKernelScratch, resetKernelHooks } from "../src/kernels/test_hooks.ts";

type Kind = "normal" | "ties" | "neginf" | "huge" | "allsame" | "sorted";

function makeLogits(rand: () => number, rows: number, vocab: number, kind: Kind): Float32Array<ArrayBuffer> {
  const x = new Float32Array(rows * vocab);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  for (let i = 0; i < x.length; i++) {
    switch (kind) {
      case "normal":
        x[i] = gauss() * 3;
        break;
      case "ties": // few distinct values: ties at the k-th place and -0 beside +0
        x[i] = Math.floor(rand() * 5) - 2 || (rand() < 0.5 ? -0 : 0);
        break;
      case "neginf":
        x[i] = rand() < 0.6 ? -Infinity : gauss() * 5;
        break;
      case "huge":
        x[i] = (rand() < 0.5 ? -1 : 1) * 10 ** (rand() * 60 - 30);
        break;
      case "allsame":
        x[i] = 1.5;
        break;
      case "sorted":
        x[i] = (i % vocab) * 0.25;
        break;
    }
  }
  if (kind === "neginf" && rows > 1) { // a row of -Infinity but one finite value
    x.fill(-Infinity, 0, vocab);
    x[Math.floor(rand() * vocab)] = gauss();
  }
  if (kind === "huge") x[rand() * x.length | 0] = 1e30;
  return x;
}

/** Runs kernel and reference on one input (outputs poisoned first) and compares them. */
async function check(
  rt: Runtime,
  rand: () => number,
  rows: number,
  vocab: number,
  k: number,
  kind: Kind,
  temperatures?: number[],
): Promise<void> {
  const x = makeLogits(rand, rows, vocab, kind);
  const what = `rows=${rows} vocab=${vocab} k=${k} ${kind} T=${temperatures ?? "default"}`;
  poisonKernelScratch(rt.device!, 0x7fc00001);
  const got = await topK(rt, x, rows, vocab, k, { temperatures });
  assertSame(got, topKReference(x, rows, vocab, k, { temperatures }), what);
}

Deno.test("topK matches the reference on random shapes, k and temperatures", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("random shapes", async ({ uniform: rand }) => {
    const vocabs = [2, 3, 5, 31, 257, 1000, 2049, 4099, 32000];
    for (const vocab of vocabs) {
      const ks = [1, Math.min(vocab, 1024), 1 + Math.floor(rand() * Math.min(vocab, 1024))];
      for (const k of ks) {
        const rows = 1 + Math.floor(rand() * 6);
        const nt = 1 + Math.floor(rand() * 5);
        const temps = Array.from({ length: nt }, () => 0.05 + rand() * 4);
        await check(rt, rand, rows, vocab, k, "normal", temps);
      }
    }
  });
});

Deno.test("topK breaks ties by the lower token id, -0 equal to +0, also with k = vocab", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("ties", async ({ uniform: rand }) => {
    for (const [rows, vocab, k] of [[3, 7, 7], [4, 3000, 64], [2, 50000, 1000], [3, 2500, 1024]]) {
      await check(rt, rand, rows, vocab, k, "ties");
    }
    await check(rt, rand, 2, 5000, 100, "allsame", [1, 3]);
    await check(rt, rand, 3, 1024, 1024, "ties");
  });
});

Deno.test("topK handles -Infinity, rows with a single finite value and magnitudes up to 1e30", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("extremes", async ({ uniform: rand }) => {
    await check(rt, rand, 4, 1000, 700, "neginf", [1, 0.25]);
    await check(rt, rand, 3, 40000, 64, "neginf");
    await check(rt, rand, 3, 3000, 33, "huge", [1, 0.01, 10]);
    const x = makeLogits(rand, 2, 600, "normal");
    x[600 + 7] = -1e30;
    x[600 + 8] = 3e38;
    poisonKernelScratch(rt.device!, 0xffffffff);
    const got = await topK(rt, x, 2, 600, 10, { temperatures: [1, 2] });
    assertSame(got, topKReference(x, 2, 600, 10, { temperatures: [1, 2] }), "-1e30 and 3e38");
  });
});

Deno.test("rows with +Infinity or only -Infinity are refused like NaN, naming the row (GPU and CPU)", async () => {
  const rt = await gpu();
  const cpu = await createRuntime({ cpu: true, quiet: true });
  await withSeed("nonfinite", async ({ uniform: rand }) => {
    for (
      const [what, vocab] of [["+Infinity", 600], ["+Infinity, long row", 40000], [
        "-Infinity only",
        777,
      ]] as const
    ) {
      const rows = 5;
      const x = makeLogits(rand, rows, vocab, "normal");
      const bad = 1 + Math.floor(rand() * 3);
      if (what.startsWith("+")) x[bad * vocab + Math.floor(rand() * vocab)] = Infinity;
      else x.fill(-Infinity, bad * vocab, (bad + 1) * vocab);
      x[(rows - 1) * vocab] = NaN; // a later bad row: the first one is named
      for (const r of rt ? [rt, cpu] : [cpu]) {
        await assert.rejects(() => topK(r, x, rows, vocab, 5), (e: unknown) => {
          assert.ok(e instanceof NonFiniteLogitsError, `${what}: ${e}`);
          assert.equal(e.row, bad, what);
          assert.match(e.message, new RegExp(`row ${bad}\\b`));
          assert.ok(!e.message.includes("\n"));
          return true;
        });
      }
    }
  });
});

Deno.test("topK handles the largest vocabulary, adversarial layouts and one row", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("large", async ({ uniform: rand }) => {
    await check(rt, rand, 2, 262144, 1 + Math.floor(rand() * 1024), "normal", [1, 0.7]);
    await check(rt, rand, 1, 262144, 1024, "ties");
    await check(rt, rand, 1, 50257, 64, "normal");
    await check(rt, rand, 2, 100000, 300, "sorted"); // the largest values sit in a few threads
  });
});

Deno.test("topK on many rows, split into several dispatches", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("many rows", async ({ uniform: rand }) => {
    const rows = rt.device!.limits.maxComputeWorkgroupsPerDimension + 1 + Math.floor(rand() * 100);
    await check(rt, rand, rows, 2 + Math.floor(rand() * 3), 1, "normal");
    await check(rt, rand, 700, 300, 17, "normal", [1, 2]);
  });
});

Deno.test("topKFromBuffer and submitTopKFromBuffer read logits already on the GPU and equal topK", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("from buffer", async ({ uniform: rand }) => {
    const [rows, vocab, k] = [5, 3001, 50];
    const x = makeLogits(rand, rows, vocab, "normal");
    const buf = uploadLogits(rt, x);
    poisonKernelScratch(rt.device!, 0x12345678);
    const got = await topKFromBuffer(rt, buf, rows, vocab, k, { temperatures: [1, 1.5] });
    const want = topKReference(x, rows, vocab, k, { temperatures: [1, 1.5] });
    assertSame(got, want, "topKFromBuffer");
    // The benchmarks' entry point: the same dispatches three times in one submission, one read-back.
    poisonKernelScratch(rt.device!, 0x7f7f7f7f);
    kernelHooks.repeat = 3;
    let readBack;
    try {
      readBack = await submitTopKFromBuffer(rt, buf, rows, vocab, k, { temperatures: [1, 1.5] });
    } finally {
      resetKernelHooks();
    }
    assertSame(await readBack(), want, "submitTopKFromBuffer × 3");
    buf.destroy();
  });
});

Deno.test("a NaN in the logits throws NonFiniteLogitsError naming the first bad row (GPU and CPU)", async () => {
  const rt = await gpu();
  const cpu = await createRuntime({ cpu: true, quiet: true });
  await withSeed("nan", async ({ uniform: rand }) => {
    const rows = 6, vocab = 777;
    const x = makeLogits(rand, rows, vocab, "normal");
    const bad = 1 + Math.floor(rand() * 4);
    x[bad * vocab + Math.floor(rand() * vocab)] = NaN;
    x[(bad + 1) * vocab + 3] = NaN;
    for (const r of rt ? [rt, cpu] : [cpu]) {
      await assert.rejects(() => topK(r, x, rows, vocab, 5), (e: unknown) => {
        assert.ok(e instanceof NonFiniteLogitsError);
        assert.ok(e instanceof SparsekdError);
        assert.equal(e.row, bad);
        assert.match(e.message, new RegExp(`row ${bad}\\b`));
        return true;
      });
    }
  });
});

Deno.test("bad arguments are SparsekdErrors with one line (GPU and CPU)", async () => {
  const rt = await gpu();
  const cpu = await createRuntime({ cpu: true, quiet: true });
  const x = new Float32Array(20);
  const cases: [string, () => Promise<unknown>][] = [];
  for (const r of rt ? [rt, cpu] : [cpu]) {
    cases.push(
      ["k = 0", () => topK(r, x, 2, 10, 0)],
      ["k > vocab", () => topK(r, x, 2, 10, 11)],
      ["k > 1024", () => topK(r, new Float32Array(2 * 2000), 2, 2000, 1025)],
      ["k not an integer", () => topK(r, x, 2, 10, 1.5)],
      ["vocab < 2", () => topK(r, new Float32Array(2), 2, 1, 1)],
      ["vocab too large", () => topK(r, new Float32Array(262145), 1, 262145, 1)],
      ["wrong length", () => topK(r, x, 3, 10, 1)],
      ["negative rows", () => topK(r, x, -2, 10, 1)],
      ["temperature 0", () => topK(r, x, 2, 10, 1, { temperatures: [1, 0] })],
      ["temperature < 0", () => topK(r, x, 2, 10, 1, { temperatures: [-1] })],
      ["temperature NaN", () => topK(r, x, 2, 10, 1, { temperatures: [NaN] })],
      ["temperature Infinity", () => topK(r, x, 2, 10, 1, { temperatures: [Infinity] })],
      ["no temperatures", () => topK(r, x, 2, 10, 1, { temperatures: [] })],
    );
  }
  if (rt) {
    const small = rt.device!.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
    cases.push(["buffer too small", () => topKFromBuffer(rt, small, 2, 10, 1)]);
  }
  cases.push(["topKFromBuffer on the CPU", () => topKFromBuffer(cpu, {} as GPUBuffer, 1, 10, 1)]);
  for (const [name, run] of cases) {
    await assert.rejects(run, (e: unknown) => {
      assert.ok(e instanceof SparsekdError, `${name}: not a SparsekdError: ${e}`);
      assert.ok(!(e instanceof NonFiniteLogitsError), name);
      assert.ok(e.message.length > 0 && !e.message.includes("\n"), `${name}: not one line`);
      return true;
    }, name);
  }
});

Deno.test("topK with zero rows returns empty results", async () => {
  const rt = await gpu();
  for (const r of rt ? [rt] : []) {
    const got = await topK(r, new Float32Array(0), 0, 10, 3, { temperatures: [1, 2] });
    assert.equal(got.indices.length + got.values.length + got.logsumexp.length, 0);
  }
  const cpu = await createRuntime({ cpu: true, quiet: true });
  const got = await topK(cpu, new Float32Array(0), 0, 10, 3);
  assert.equal(got.indices.length, 0);
});
