// Mode `sampled` (docs/losses.md): the WGSL kernel against the float64 reference, the reference's gradient
// against finite differences, and the estimator's unbiasedness: over many sampling seeds the mean of its
// gradient (and loss) is the full-KD gradient (loss) within a bound computed from the per-seed spread.
import assert from "node:assert/strict";
import { createRuntime } from "../src/gpu/runtime.ts";
import { sparseKdLoss } from "../src/kernels/sparse_kd.ts";
import {
  sampledCoefficients,
  sparseKdLossReference,
  sparseKdLossReference64,
  type SparseKdOptions,
  type SparseKdTeacher,
} from "../src/kernels/sparse_kd_reference.ts";
import { SparsekdError } from "../src/errors.ts";
import { makeRng, withSeed } from "./_rng.ts";

const rt = await createRuntime({ quiet: true });
const noGpu = rt.device === null;

function lse(xs: ArrayLike<number>, T = 1): number {
  let m = -Infinity;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, xs[i] / T);
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += Math.exp(xs[i] / T - m);
  return m + Math.log(s);
}

/** N draws with replacement from softmax(z/t), by inverse CDF: the distinct ids (ascending) and their counts. */
function draw(uniform: () => number, z: ArrayLike<number>, t: number, n: number): Map<number, number> {
  const l = lse(z, t);
  const cdf = new Float64Array(z.length);
  let acc = 0;
  for (let i = 0; i < z.length; i++) cdf[i] = acc += Math.exp(z[i] / t - l);
  const hits = new Map<number, number>();
  for (let d = 0; d < n; d++) {
    const u = uniform() * acc;
    let lo = 0, hi = z.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] > u) hi = mid;
      else lo = mid + 1;
    }
    hits.set(lo, (hits.get(lo) ?? 0) + 1);
  }
  return new Map([...hits].sort((a, b) => a[0] - b[0]));
}

/**
 * The sampled teacher of a batch: for row r, `n` draws from softmax(z_r/t), padded to `slots` (at least
 * the largest number of distinct ids) with unused ids of count 0, plus Lz(T) and Lz(t) in float32.
 */
function sampledTeacher(
  uniform: () => number,
  full: Float32Array[],
  T: number,
  t: number,
  n: number,
  slots?: number,
): SparseKdTeacher {
  const rows = full.length;
  const drawn = full.map((z) => draw(uniform, z, t, n));
  const k = Math.max(slots ?? 0, ...drawn.map((d) => d.size));
  const indices = new Uint32Array(rows * k), values = new Float32Array(rows * k);
  const hits = new Uint16Array(rows * k);
  drawn.forEach((d, r) => {
    let i = r * k;
    for (const [id, h] of d) {
      indices[i] = id;
      values[i] = full[r][id];
      hits[i++] = h;
    }
    for (let id = 0; i < (r + 1) * k; id++) if (!d.has(id)) indices[i++] = id;
  });
  return {
    indices,
    values,
    k,
    hits,
    logsumexp: Float32Array.from(full, (z) => lse(z, T)),
    sampleTemperature: t,
    sampleLogsumexp: Float32Array.from(full, (z) => lse(z, t)),
  };
}

function randomRows(normal: () => number, rows: number, vocab: number, spread: number): Float32Array[] {
  return Array.from({ length: rows }, () => Float32Array.from({ length: vocab }, () => spread * normal()));
}

Deno.test({
  name: "sampled-mode kernel matches the float64 reference (loss and gradient) at t = T and t ≠ T",
  ignore: noGpu,
  fn: () =>
    withSeed("sampled kernel vs reference", async (rng) => {
      for (let trial = 0; trial < 8; trial++) {
        const vocab = trial % 2 === 0 ? 4 * (2 + rng.int(500)) : 3 + 2 * rng.int(900);
        const rows = 1 + rng.int(10);
        const T = 0.5 + 3 * rng.uniform();
        const t = trial < 3 ? T : 0.5 + 2 * rng.uniform();
        const n = 1 + rng.int(trial === 7 ? 300 : 64);
        const full = randomRows(rng.normal, rows, vocab, 3);
        const teacher = sampledTeacher(
          rng.uniform,
          full,
          T,
          t,
          n,
          rng.int(3) === 0 ? Math.min(80, vocab) : undefined,
        );
        const s = Float32Array.from({ length: rows * vocab }, () => 4 * rng.normal());
        const pick = rng.uniform();
        const options: SparseKdOptions = {
          mode: "sampled",
          temperature: T,
          alpha: pick < 0.4 ? 1 : pick < 0.5 ? 0 : rng.uniform(),
          labels: Int32Array.from({ length: rows }, () => rng.int(vocab)),
          mask: Uint8Array.from({ length: rows }, () => (rng.uniform() < 0.2 ? 0 : 1)),
          scale: 0.5 + rng.uniform(),
        };
        const got = await sparseKdLoss(rt, s, rows, vocab, teacher, options);
        const { coef } = sampledCoefficients(teacher, rows, T);
        const want = sparseKdLossReference(s, rows, vocab, teacher, options);
        const what = `rows=${rows} V=${vocab} N=${n} k=${teacher.k} T=${T.toFixed(3)} t=${t.toFixed(3)} ` +
          `alpha=${options.alpha}`;
        for (let r = 0; r < rows; r++) {
          // The loss is an estimate Σ c (log p_T − log q) that may be near 0 while its terms are not: the
          // tolerance is relative to the sums the kernel forms in float32, the cross-entropy estimate
          // Σ c·(−log q) and, with α < 1, the hard-label CE.
          const sr = s.subarray(r * vocab, (r + 1) * vocab);
          const lseU = lse(sr, T), lse1 = lse(sr);
          let ceEst = 0;
          for (let i = r * teacher.k; i < (r + 1) * teacher.k; i++) {
            ceEst += coef[i] * (lseU - sr[teacher.indices[i]] / T);
          }
          const a = options.alpha!, sc = options.scale as number;
          const size = sc * (a * T * T * ceEst + (1 - a) * (lse1 - sr[options.labels![r]]));
          const err = Math.abs(got.loss[r] - want.loss[r]);
          assert.ok(
            err <= 1e-6 * size + 1e-5 * Math.abs(want.loss[r]) + 1e-7,
            `${what}: loss row ${r} err ${err}`,
          );
          let max = 0;
          for (let j = 0; j < vocab; j++) max = Math.max(max, Math.abs(want.grad[r * vocab + j]));
          for (let j = 0; j < vocab; j++) {
            const i = r * vocab + j;
            assert.ok(
              Math.abs(got.grad[i] - want.grad[i]) <= 1e-4 * max + 2 ** -24,
              `${what}: row ${r} id ${j}: got ${got.grad[i]}, want ${want.grad[i]}`,
            );
          }
        }
      }
    }),
});

Deno.test("sampled-mode reference gradient matches central finite differences of its loss", () =>
  withSeed("sampled finite differences", (rng) => {
    for (const [T, t] of [[1, 1], [2, 1], [0.7, 1.6]]) {
      const rows = 3, vocab = 17;
      const full = randomRows(rng.normal, rows, vocab, 2);
      const teacher = sampledTeacher(rng.uniform, full, T, t, 12);
      const s = Float64Array.from({ length: rows * vocab }, () => 2 * rng.normal());
      const options: SparseKdOptions = {
        mode: "sampled",
        temperature: T,
        alpha: 0.7,
        labels: Int32Array.from({ length: rows }, () => rng.int(vocab)),
      };
      const { grad } = sparseKdLossReference64(s, rows, vocab, teacher, options);
      const h = 1e-5;
      for (let i = 0; i < rows * vocab; i++) {
        const r = Math.floor(i / vocab);
        const plus = Float64Array.from(s), minus = Float64Array.from(s);
        plus[i] += h;
        minus[i] -= h;
        const fd = (sparseKdLossReference64(plus, rows, vocab, teacher, options).loss[r] -
          sparseKdLossReference64(minus, rows, vocab, teacher, options).loss[r]) / (2 * h);
        assert.ok(
          Math.abs(fd - grad[i]) <= 1e-7 + 1e-6 * Math.abs(fd),
          `T=${T} t=${t} entry ${i}: ${fd} vs ${grad[i]}`,
        );
      }
    }
  }));

/**
 * Over `seeds` sampling seeds, the per-coordinate mean and standard deviation of the sampled estimate
 * (each row's gradient entries, then its loss) at α = 1.
 */
function sampledMoments(
  full: Float32Array[],
  s: Float32Array,
  T: number,
  t: number,
  n: number,
  seeds: number,
  seed0: number,
  assumedT = t,
) {
  const rows = full.length, vocab = full[0].length, m = rows * vocab + rows;
  const sum = new Float64Array(m), sum2 = new Float64Array(m);
  for (let k = 0; k < seeds; k++) {
    const rng = makeRng(seed0 + k);
    const teacher = { ...sampledTeacher(rng.uniform, full, T, t, n), sampleTemperature: assumedT };
    const { loss, grad } = sparseKdLossReference64(s, rows, vocab, teacher, {
      mode: "sampled",
      temperature: T,
    });
    for (let i = 0; i < m; i++) {
      const x = i < rows * vocab ? grad[i] : loss[i - rows * vocab];
      sum[i] += x;
      sum2[i] += x * x;
    }
  }
  const mean = sum.map((x) => x / seeds);
  const sd = sum2.map((x, i) => Math.sqrt(Math.max(0, (x - seeds * mean[i] ** 2) / (seeds - 1))));
  return { mean, sd };
}

/** The full-KD target: KL(p_T ‖ q) and its gradient, the topk reference at K = V. */
function fullKd(full: Float32Array[], s: Float32Array, T: number) {
  const rows = full.length, vocab = full[0].length;
  const indices = new Uint32Array(rows * vocab).map((_, i) => i % vocab);
  const values = new Float32Array(rows * vocab);
  full.forEach((z, r) => values.set(z, r * vocab));
  const { loss, grad } = sparseKdLossReference64(s, rows, vocab, { indices, values, k: vocab }, {
    mode: "topk",
    temperature: T,
  });
  return Float64Array.from([...grad, ...loss]);
}

/**
 * Coordinates where |mean − target| exceeds z·sd/√S: z = √(2 ln(2m/δ)) bounds the two-sided Gaussian tail of
 * each of the m coordinates by δ/m (P(|Z| > z) ≤ exp(−z²/2)), so a true null fails with probability < δ.
 * A small absolute allowance covers ids too rare to be drawn in any seed (their bias is below it).
 */
function outsideBound(
  mean: Float64Array,
  sd: Float64Array,
  target: Float64Array,
  seeds: number,
  delta = 1e-6,
) {
  const z = Math.sqrt(2 * Math.log((2 * mean.length) / delta));
  const bad: string[] = [];
  for (let i = 0; i < mean.length; i++) {
    const bound = z * sd[i] / Math.sqrt(seeds) + 1e-9;
    if (!(Math.abs(mean[i] - target[i]) <= bound)) {
      bad.push(
        `#${i}: mean ${mean[i].toExponential(4)} target ${target[i].toExponential(4)} bound ${
          bound.toExponential(2)
        }`,
      );
    }
  }
  return bad;
}

Deno.test("sampled loss and gradient are unbiased: their mean over sampling seeds is full KD, at t = T and t ≠ T", () =>
  withSeed("sampled unbiasedness", (rng, seed) => {
    const rows = 2, vocab = 24, n = 8, seeds = 3000;
    // Teacher logits of moderate spread: every id has p_t ≥ ~1e-3, so each is drawn many times in 24,000 draws.
    const full = randomRows(rng.normal, rows, vocab, 1.2);
    const s = Float32Array.from({ length: rows * vocab }, () => 1.5 * rng.normal());
    for (const [T, t] of [[1, 1], [2, 2], [2, 1], [1, 1.5]]) {
      const target = fullKd(full, s, T);
      const { mean, sd } = sampledMoments(full, s, T, t, n, seeds, seed * 7 + 1);
      const bad = outsideBound(mean, sd, target, seeds);
      assert.deepEqual(bad, [], `T=${T} t=${t}: ${bad.length} coordinates outside the bound`);
    }
  }));

Deno.test("the unbiasedness bound detects a biased estimate: samples drawn at t ≠ T used without importance weights", () =>
  withSeed("sampled bias detected", (rng, seed) => {
    const rows = 2, vocab = 24, n = 8, seeds = 3000, T = 2, t = 1;
    const full = randomRows(rng.normal, rows, vocab, 1.2);
    const s = Float32Array.from({ length: rows * vocab }, () => 1.5 * rng.normal());
    // Claiming the samples came from T makes every weight 1: the estimate is then of KL(p_t ‖ q), not KL(p_T ‖ q).
    const { mean, sd } = sampledMoments(full, s, T, t, n, seeds, seed * 7 + 1, T);
    assert.ok(outsideBound(mean, sd, fullKd(full, s, T), seeds).length > 0, "the bias went undetected");
  }));

Deno.test("the importance weights are exactly 1 when t = T and p_T/p_t otherwise", () => {
  const z = new Float32Array([3, 1, -2, 0.5]);
  const T = 2, t = 0.8;
  const base = {
    indices: new Uint32Array([0, 2]),
    values: new Float32Array([z[0], z[2]]),
    k: 2,
    hits: new Uint16Array([3, 1]),
    logsumexp: new Float32Array([lse(z, T)]),
  };
  const same = sampledCoefficients(base, 1, T);
  assert.deepEqual([...same.coef], [0.75, 0.25]);
  const other = sampledCoefficients(
    { ...base, sampleTemperature: t, sampleLogsumexp: new Float32Array([lse(z, t)]) },
    1,
    T,
  );
  for (const [slot, id] of [[0, 0], [1, 2]]) {
    const pT = Math.exp(z[id] / T - base.logsumexp[0]), pt = Math.exp(z[id] / t - lse(z, t));
    const want = (base.hits[slot] / 4) * (pT / pt);
    assert.ok(
      Math.abs(other.coef[slot] - want) <= 1e-6 * want,
      `slot ${slot}: ${other.coef[slot]} vs ${want}`,
    );
  }
});

Deno.test("bad sampled-mode input is a one-line SparsekdError", () => {
  const s = new Float32Array(8);
  const teacher: SparseKdTeacher = {
    indices: new Uint32Array([0, 1, 2, 3]),
    values: new Float32Array(4),
    k: 2,
    hits: new Uint16Array([1, 1, 2, 0]),
    logsumexp: new Float32Array(2),
  };
  const o: SparseKdOptions = { mode: "sampled", temperature: 1 };
  const rejects = (t: SparseKdTeacher, opts: SparseKdOptions, re: RegExp) =>
    assert.throws(() => sparseKdLossReference(s, 2, 4, t, opts), (e: Error) => {
      assert.ok(e instanceof SparsekdError, String(e));
      assert.ok(!e.message.includes("\n"));
      assert.match(e.message, re);
      return true;
    });
  rejects({ ...teacher, hits: undefined }, o, /mode sampled needs the draw counts/);
  rejects({ ...teacher, hits: new Uint16Array(3) }, o, /teacher hits have 3 values, expected rows\*k = 4/);
  rejects({ ...teacher, logsumexp: undefined }, o, /logsumexp at the training temperature 1/);
  rejects({ ...teacher, sampleTemperature: 2 }, o, /logsumexp at the sampling temperature 2/);
  rejects({ ...teacher, sampleTemperature: 0 }, o, /sampling temperature must be > 0/);
  rejects({ ...teacher, hits: new Uint16Array([1, 1, 0, 0]) }, o, /row 1 has no draws/);
  rejects({ ...teacher, hits: new Float32Array([1, 0.5, 1, 0]) }, o, /not a non-negative integer/);
  rejects({ ...teacher, indices: new Uint32Array([0, 0, 2, 3]) }, o, /appears twice in row 0/);
  // A masked row may hold no draws.
  const ok = sparseKdLossReference(s, 2, 4, { ...teacher, hits: new Uint16Array([1, 1, 0, 0]) }, {
    ...o,
    mask: new Uint8Array([1, 0]),
  });
  assert.equal(ok.loss[1], 0);
});
