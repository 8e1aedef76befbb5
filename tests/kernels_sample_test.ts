/**
 * The WGSL sampler (`shaders/sample.wgsl`) against its CPU reference: the same draws bit for bit, frequencies
 * that match softmax(z/t) (a chi-square bound computed here), Philox known-answer vectors, the deterministic
 * exp, chunked dispatches, and the argument errors. GPU tests fail when no adapter is found, unless
 * SPARSEKD_TEST_CPU_ONLY=1.
 */
import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import { parseWgslStruct } from "../src/gpu/uniforms.ts";
import { SAMPLE_PARAMS, sampleTokens, sampleTokensFromBuffer } from "../src/kernels/sample.ts";
import {
  drawBits,
  expDeterministic,
  MAX_SAMPLE,
  philox4x32,
  type SampleOptions,
  sampleReference,
  type SampleResult,
  sampleWeight,
} from "../src/kernels/sample_reference.ts";
import { kernelHooks, resetKernelHooks } from "../src/kernels/test_hooks.ts";
import { createRuntime } from "../src/gpu/runtime.ts";
import { type TestRng, withSeed } from "./_rng.ts";
import { gpu, uploadLogits } from "./_topk_fixtures.ts";

function assertSameSample(got: SampleResult, want: SampleResult, what: string): void {
  assert.deepEqual([...got.len], [...want.len], `${what}: distinct counts`);
  assert.deepEqual([...got.idx], [...want.idx], `${what}: ids`);
  assert.deepEqual([...got.hits], [...want.hits], `${what}: hits`);
  assert.deepEqual(
    [...new Uint32Array(got.val.buffer, got.val.byteOffset, got.val.length)],
    [...new Uint32Array(want.val.buffer, want.val.byteOffset, want.val.length)],
    `${what}: logits (bits)`,
  );
}

type Kind = "normal" | "neginf" | "peaked" | "flat" | "wide";
function makeLogits(rng: TestRng, rows: number, vocab: number, kind: Kind): Float32Array<ArrayBuffer> {
  const x = new Float32Array(rows * vocab);
  for (let i = 0; i < x.length; i++) {
    switch (kind) {
      case "normal":
        x[i] = rng.normal() * 3;
        break;
      case "neginf":
        x[i] = rng.uniform() < 0.7 ? -Infinity : rng.normal() * 3;
        break;
      case "peaked": // one id holds nearly all the mass, the rest sit near the 2^-34 cut
        x[i] = -20 - rng.uniform() * 10;
        break;
      case "flat":
        x[i] = 1.25;
        break;
      case "wide": // magnitudes far beyond the cut: most weights are 0
        x[i] = rng.normal() * 1e4;
        break;
    }
  }
  if (kind === "peaked") { for (let r = 0; r < rows; r++) x[r * vocab + rng.int(vocab)] = 5; }
  if (kind === "neginf") { for (let r = 0; r < rows; r++) x[r * vocab + rng.int(vocab)] = 0; // one finite per row
   }
  return x;
}

Deno.test("Philox-4x32-10 gives the Random123 known-answer vectors", () => {
  const hex = (a: number[]) => a.map((x) => x.toString(16).padStart(8, "0"));
  assert.deepEqual(hex(philox4x32([0, 0, 0, 0], [0, 0])), ["6627e8d5", "e169c58d", "bc57ac4c", "9b00dbd8"]);
  assert.deepEqual(
    hex(philox4x32([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])),
    ["408f276d", "41c83b0e", "a20bc7c6", "6d5451fd"],
  );
  assert.deepEqual(
    hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])),
    ["d16cfe09", "94fdcceb", "5001e420", "24126ea1"],
  );
  // draws of one position differ, and the same (seed, position, draw) gives the same bits
  assert.notEqual(drawBits(1, 5, 0), drawBits(1, 5, 1));
  assert.notEqual(drawBits(1, 5, 0), drawBits(1, 6, 0));
  assert.notEqual(drawBits(1, 5, 0), drawBits(2, 5, 0));
  assert.equal(drawBits(2 ** 40 + 3, 2 ** 33 + 1, 7), drawBits(2 ** 40 + 3, 2 ** 33 + 1, 7));
});

Deno.test("the deterministic exp is within 2e-7 of Math.exp on [-24, 0] and gives 1 at 0", () =>
  withSeed("exp", (rng) => {
    assert.equal(expDeterministic(0), 1);
    let worst = 0;
    for (let i = 0; i < 20000; i++) {
      const x = Math.fround(-24 * rng.uniform());
      worst = Math.max(worst, Math.abs(expDeterministic(x) / Math.exp(x) - 1));
    }
    assert.ok(worst < 2e-7, `worst relative error ${worst}`);
    assert.equal(sampleWeight(3, 3, 1), 2 ** 34);
    assert.equal(sampleWeight(-Infinity, 3, 1), 0);
    assert.equal(sampleWeight(-30, 0, 1), 0);
  }));

Deno.test("the sampler's uniforms match struct Params of shaders/sample.wgsl", async () => {
  const source = await Deno.readTextFile(new URL("../shaders/sample.wgsl", import.meta.url));
  const fields = parseWgslStruct(source, "Params");
  assert.deepEqual(fields, SAMPLE_PARAMS.fields.map((f) => ({ name: f.name, type: f.type })));
});

Deno.test("the WGSL sampler draws exactly the reference's ids, hits and logits", () =>
  withSeed("sample gpu vs cpu", async (rng) => {
    const rt = await gpu();
    if (!rt) return;
    const cases: [number, number, Kind, number, number][] = [
      // rows, vocab, kind, N, temperature
      [9, 5, "normal", 16, 1],
      [33, 2048, "normal", 64, 0.7],
      [7, 1000, "neginf", 7, 2.5],
      [6, 3000, "peaked", 1024, 1],
      [5, 300, "flat", 100, 1],
      [5, 4096, "wide", 32, 3],
      [3, 70000, "normal", 256, 1],
      [1, 262144, "normal", 12, 1.5],
      [2, 1, "normal", 3, 1],
    ];
    for (const [rows, vocab, kind, n, temperature] of cases) {
      const x = makeLogits(rng, rows, vocab, kind);
      // positions across the 2^32 boundary, a seed above 2^32
      const o: SampleOptions = { n, temperature, seed: 2 ** 35 + rng.int(1000), position0: 2 ** 32 - 2 };
      const what = `${kind} rows ${rows} V ${vocab} N ${n} t ${temperature}`;
      const want = sampleReference(x, rows, vocab, o);
      assertSameSample(await sampleTokens(rt, x, rows, vocab, o), want, what);
      const buf = uploadLogits(rt, x);
      try {
        assertSameSample(
          await sampleTokensFromBuffer(rt, buf, rows, vocab, o),
          want,
          `${what} (from a buffer)`,
        );
      } finally {
        buf.destroy();
      }
    }
  }));

Deno.test("the WGSL sampler split into many dispatches by a small binding limit draws the same ids", () =>
  withSeed("sample chunks", async (rng) => {
    const rt = await gpu();
    if (!rt) return;
    const rows = 40, vocab = 500;
    const x = makeLogits(rng, rows, vocab, "normal");
    const o: SampleOptions = { n: 24, temperature: 1, seed: 3, position0: 1000 };
    kernelHooks.maxBindingBytes = 4096; // two rows per dispatch
    try {
      assertSameSample(
        await sampleTokens(rt, x, rows, vocab, o),
        sampleReference(x, rows, vocab, o),
        "chunked",
      );
    } finally {
      resetKernelHooks();
    }
  }));

/** The chi-square quantile of `df` degrees of freedom at upper tail z standard deviations (Wilson–Hilferty). */
function chiSquareQuantile(df: number, z: number): number {
  const a = 2 / (9 * df);
  return df * (1 - a + z * Math.sqrt(a)) ** 3;
}

Deno.test("the GPU sampler's frequencies match softmax(z/t): chi-square below its 1e-6 quantile", () =>
  withSeed("sample chi-square", async (rng) => {
    const rt = await gpu() ?? await createRuntime({ cpu: true });
    const vocab = 24, rows = 300, n = 512;
    const row = Float32Array.from({ length: vocab }, () => rng.normal() * 1.5);
    const x = new Float32Array(rows * vocab);
    for (let r = 0; r < rows; r++) x.set(row, r * vocab);
    for (const temperature of [1, 0.6, 2]) {
      const s = await sampleTokens(rt, x, rows, vocab, {
        n,
        temperature,
        seed: rng.u32(),
        position0: rng.int(1e6),
      });
      const counts = new Float64Array(vocab);
      for (let i = 0; i < s.idx.length; i++) counts[s.idx[i]] += s.hits[i];
      const m = Math.max(...row);
      const w = [...row].map((z) => Math.exp((z - m) / temperature));
      const total = w.reduce((a, b) => a + b, 0);
      // bins with an expected count below 5 are pooled into one
      let chi = 0, bins = 0, poolE = 0, poolO = 0;
      for (let i = 0; i < vocab; i++) {
        const e = (rows * n * w[i]) / total;
        if (e < 5) (poolE += e, poolO += counts[i]);
        else (chi += (counts[i] - e) ** 2 / e, bins++);
      }
      if (poolE > 0) (chi += (poolO - poolE) ** 2 / poolE, bins++);
      const bound = chiSquareQuantile(bins - 1, 4.753); // P(χ² > bound) ≈ 1e-6
      assert.ok(
        chi < bound,
        `t ${temperature}: chi-square ${chi.toFixed(1)} ≥ ${bound.toFixed(1)} (${bins - 1} df)`,
      );
      assert.equal(counts.reduce((a, b) => a + b, 0), rows * n);
    }
  }));

Deno.test("sampling refuses bad arguments with one line naming the option", async () => {
  const rt = await createRuntime({ cpu: true });
  const x = new Float32Array(8);
  const ok: SampleOptions = { n: 4, temperature: 1, seed: 0, position0: 0 };
  const cases: [Partial<SampleOptions>, RegExp][] = [
    [{ n: 0 }, /^sample must be an integer from 1 to 1024 draws per position \(got 0\)$/],
    [{ n: MAX_SAMPLE + 1 }, /^sample must be an integer from 1 to 1024/],
    [{ n: 2.5 }, /^sample must be an integer/],
    [{ temperature: 0 }, /^sampleTemperature must be a finite number > 0 \(got 0\)$/],
    [{ temperature: -1 }, /^sampleTemperature must be a finite number > 0/],
    [{ temperature: NaN }, /^sampleTemperature must be a finite number > 0/],
    [{ seed: -1 }, /^seed must be an integer/],
    [{ position0: -1 }, /^position0 must be a non-negative integer/],
  ];
  for (const [patch, re] of cases) {
    await assert.rejects(sampleTokens(rt, x, 2, 4, { ...ok, ...patch }), (err) => {
      assert.ok(err instanceof SparsekdError);
      assert.match(err.message, re);
      return true;
    });
  }
  await assert.rejects(sampleTokens(rt, x, 3, 4, ok), /8 logits given, rows \* vocab = 12/);
});
