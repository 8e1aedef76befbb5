// Reverse KL and the generalized JSD of the sparse-KD loss (modes renorm and tail): the float64 reference
// against the definitions and finite differences, TRL's β convention at the ends, the WGSL kernel against
// the reference (random, extreme, close and edge-case inputs, row chunks), the tfjs op, and bad input.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { createRuntime } from "../src/gpu/runtime.ts";
import { useTfjsOnRuntime } from "../src/gpu/tfjs_backend.ts";
import { sparseKdLoss } from "../src/kernels/sparse_kd.ts";
import { kernelHooks, resetKernelHooks } from "../src/kernels/test_hooks.ts";
import {
  checkSparseKd,
  type Divergence,
  DIVERGENCES,
  REVERSE_TAIL_FLOOR,
  sparseKdLossReference,
  sparseKdLossReference64,
  type SparseKdMode,
  type SparseKdOptions,
  type SparseKdTeacher,
} from "../src/kernels/sparse_kd_reference.ts";
import { kernelModeIds, LOSS_MODES } from "../src/loss/modes.ts";
import { createSparseKdLossOp } from "../src/train/kd_loss_op.ts";
import { SparsekdError } from "../src/errors.ts";
import { withSeed } from "./_rng.ts";
import { type Case, lse, randomCase } from "./_sparse_kd_fixtures.ts";

const rt = await createRuntime({ quiet: true });
const noGpu = rt.device === null;
const SUPPORTS: SparseKdMode[] = ["renorm", "tail"];
const DIVS: Divergence[] = ["reverse", "jsd"];

/** β: mostly uniform in (0, 1), sometimes close to either end. */
function randomBeta(rand: () => number): number {
  const pick = rand();
  return pick < 0.15 ? 0.01 * rand() + 1e-4 : pick < 0.3 ? 1 - 0.01 * rand() - 1e-4 : 0.05 + 0.9 * rand();
}

function randomOptions(
  rand: () => number,
  c: Case,
  mode: SparseKdMode,
  divergence: Divergence,
  T: number,
): SparseKdOptions {
  const pick = rand();
  const alpha = pick < 0.25 ? 1 : pick < 0.4 ? 0 : rand();
  return {
    mode,
    divergence,
    beta: divergence === "jsd" ? randomBeta(rand) : undefined,
    temperature: T,
    alpha,
    labels: Int32Array.from({ length: c.rows }, () => Math.floor(rand() * c.vocab)),
    mask: Uint8Array.from({ length: c.rows }, () => (rand() < 0.2 ? 0 : 1)),
    scale: rand() < 0.5 ? 0.5 + rand() : Float32Array.from({ length: c.rows }, () => rand()),
  };
}

/**
 * Gradients equal within `relTol` (default 1e-4) of each row's largest entry, plus float32's 2^-24 and the
 * row's `slack` (see {@linkcode tailSlack}).
 */
function assertClose(
  got: Float32Array,
  want: Float32Array,
  rows: number,
  vocab: number,
  what: string,
  relTol = 1e-4,
  slack?: Slack,
) {
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let j = 0; j < vocab; j++) max = Math.max(max, Math.abs(want[r * vocab + j]));
    for (let j = 0; j < vocab; j++) {
      const i = r * vocab + j;
      const err = Math.abs(got[i] - want[i]);
      if (!(err <= Math.max(1e-4, relTol) * max + 2 ** -24 + (slack?.grad[r] ?? 0))) {
        assert.fail(`${what}: row ${r} id ${j}: got ${got[i]}, want ${want[i]} (row max ${max})`);
      }
    }
  }
}

function assertLossClose(
  got: Float32Array,
  want: Float32Array,
  what: string,
  rel = 1e-5,
  abs = 1e-7,
  slack?: Slack,
) {
  for (let r = 0; r < want.length; r++) {
    const err = Math.abs(got[r] - want[r]);
    if (!(err <= rel * Math.abs(want[r]) + abs + (slack?.loss[r] ?? 0))) {
      assert.fail(`${what}: row ${r}: loss ${got[r]}, want ${want[r]} (rel err ${err / Math.abs(want[r])})`);
    }
  }
}

/** Extra absolute tolerance per row, for the loss and for each gradient entry. */
interface Slack {
  loss: number[];
  grad: number[];
}

/**
 * On the tail support the kernel forms r = 1 − Σ_S p_i from float32 sums over S, so r carries an absolute
 * error δr of up to about 2^-24·(K + 8) (K terms summed), which reverse KL and JSD feel more than forward KL:
 * ∂D/∂r is Q_t/max(r, 2^-20) for reverse KL (log r weighted by Q_t) and β·|log(r/M_t)| for JSD. The loss
 * moves by α·T²·scale·δr times that; a gradient entry c·q_j·(λ_b − Σ Q λ) by at most 2·α·T·scale·Q_t·δλ_t,
 * with δλ_t = δr/max(r, 2^-20) (reverse) or β·δr/M_t (JSD). Zero for other modes and for forward KL.
 */
function tailSlack(c: Case, opts: SparseKdOptions): Slack {
  const out: Slack = { loss: [], grad: [] };
  const k = c.teacher.k, T = opts.temperature, alpha = opts.alpha ?? 1, beta = opts.beta ?? 0.5;
  for (let r = 0; r < c.rows; r++) {
    const sc = opts.mask?.[r] === 0 ? 0 : typeof opts.scale === "number" ? opts.scale : opts.scale?.[r] ?? 1;
    const div = opts.divergence ?? "forward";
    if (opts.mode !== "tail" || div === "forward" || k === c.vocab || sc === 0) {
      out.loss.push(0);
      out.grad.push(0);
      continue;
    }
    const zS = Array.from(c.teacher.values.subarray(r * k, (r + 1) * k), (z) => z / T);
    const rTail = Math.max(0, -Math.expm1(lse(zS) - c.teacher.logsumexp![r]));
    const { Q } = naiveBuckets(c, r, "tail", T);
    const dr = 2 ** -24 * (k + 8);
    let dLoss: number, dLam: number;
    if (div === "reverse") {
      dLoss = Q[k] * dr / Math.max(rTail, REVERSE_TAIL_FLOOR);
      dLam = dr / Math.max(rTail, REVERSE_TAIL_FLOOR);
    } else {
      const M = beta * rTail + (1 - beta) * Q[k];
      dLoss = beta * Math.abs(Math.log(Math.max(rTail, dr) / M)) * dr;
      dLam = beta * dr / M;
    }
    out.loss.push(sc * alpha * T * T * dLoss);
    out.grad.push(2 * sc * alpha * T * Q[k] * dLam);
  }
  return out;
}

/** The teacher's and student's bucket distributions of row r, naively from full-vocabulary softmaxes. */
function naiveBuckets(c: Case, r: number, mode: SparseKdMode, T: number): { P: number[]; Q: number[] } {
  const { vocab } = c, k = c.teacher.k;
  const s = Array.from(c.s.subarray(r * vocab, (r + 1) * vocab));
  const ls = lse(s.map((x) => x / T));
  const q = s.map((x) => Math.exp(x / T - ls)); // softmax(s/T) over V
  const ids = Array.from(c.teacher.indices.subarray(r * k, (r + 1) * k));
  if (mode === "renorm") {
    const zS = ids.map((id) => c.teacherFull[r][id] / T);
    const QS = ids.reduce((a, id) => a + q[id], 0);
    return { P: zS.map((z) => Math.exp(z - lse(zS))), Q: ids.map((id) => q[id] / QS) };
  }
  const lz = c.teacher.logsumexp![r]; // as stored (float32)
  const P = ids.map((id) => Math.exp(c.teacherFull[r][id] / T - lz));
  const Q = ids.map((id) => q[id]);
  if (k < vocab) {
    P.push(1 - P.reduce((a, x) => a + x, 0));
    Q.push(1 - Q.reduce((a, x) => a + x, 0));
  }
  return { P, Q };
}

/** KL(Q‖P) or JSD_β(P‖Q) = β KL(P‖M) + (1−β) KL(Q‖M), M = βP + (1−β)Q, by their definitions. */
function naiveDivergence(P: number[], Q: number[], divergence: Divergence, beta: number): number {
  let d = 0;
  for (let b = 0; b < P.length; b++) {
    if (divergence === "reverse") {
      // Σ_b [Q log(Q/P) − Q + P]: KL(Q‖P) when P sums to 1, which in mode tail with k = V it does only up to
      // the rounding of the stored float32 logsumexp.
      if (Q[b] > 0) d += Q[b] * Math.log(Q[b] / P[b]);
      d += P[b] - Q[b];
    } else {
      const M = beta * P[b] + (1 - beta) * Q[b];
      if (P[b] > 0) d += beta * P[b] * Math.log(P[b] / M);
      if (Q[b] > 0) d += (1 - beta) * Q[b] * Math.log(Q[b] / M);
    }
  }
  return d;
}

Deno.test("the reference's reverse KL and JSD equal their definitions on the renorm and tail buckets", () =>
  withSeed("divergence naive", ({ uniform: rand }) => {
    for (const mode of SUPPORTS) {
      for (const divergence of DIVS) {
        for (let trial = 0; trial < 3; trial++) {
          const vocab = 50 + Math.floor(rand() * 200);
          const k = trial === 2 ? vocab : 1 + Math.floor(rand() * 40);
          const T = 0.5 + rand() * 3;
          const c = randomCase(rand, 4, vocab, k, T);
          const alpha = rand(), beta = 0.05 + 0.9 * rand();
          const labels = Int32Array.from({ length: 4 }, () => Math.floor(rand() * vocab));
          const got = sparseKdLossReference64(c.s, 4, vocab, c.teacher, {
            mode,
            divergence,
            beta: divergence === "jsd" ? beta : undefined,
            temperature: T,
            alpha,
            labels,
          });
          for (let r = 0; r < 4; r++) {
            const { P, Q } = naiveBuckets(c, r, mode, T);
            const kd = naiveDivergence(P, Q, divergence, beta);
            const s = Array.from(c.s.subarray(r * vocab, (r + 1) * vocab));
            const want = alpha * T * T * kd + (1 - alpha) * (lse(s) - s[labels[r]]);
            assert.ok(
              Math.abs(got.loss[r] - want) <= 1e-9 * Math.max(1, Math.abs(want)),
              `${mode} ${divergence} k=${k} V=${vocab}: ${got.loss[r]} vs ${want}`,
            );
            assert.ok(kd >= 0);
          }
        }
      }
    }
  }));

Deno.test("JSD at β = 0 and β = 1 is exactly forward and reverse KL, and JSD_β/β, JSD_β/(1−β) tend to them", () =>
  withSeed("divergence ends", ({ uniform: rand }) => {
    for (const mode of SUPPORTS) {
      // Log-ratios of P and Q within ±10 (logits over ±2 and ±3, T ≥ 1), so that the next order of the limits
      // below, relative β·max P/Q and (1−β)·max Q/P, is at most 1e-10·e^10 ≈ 2e-6.
      const vocab = 40 + Math.floor(rand() * 100), k = 2 + Math.floor(rand() * 19), T = 1 + 2 * rand();
      const c = randomCase(rand, 3, vocab, k, T, 4);
      const run = (divergence: Divergence, beta?: number) =>
        sparseKdLossReference64(c.s, 3, vocab, c.teacher, { mode, divergence, beta, temperature: T });
      const fwd = run("forward"), rev = run("reverse");
      // TRL's convention: exactly the KLs at the ends (bit for bit: the same computation).
      assert.deepEqual(run("jsd", 0), fwd);
      assert.deepEqual(run("jsd", 1), rev);
      // The formula itself vanishes at both ends, like β·KL(P‖Q) near 0 and (1−β)·KL(Q‖P) near 1.
      for (const [eps, near, scale] of [[1e-10, fwd, 1e-10], [1 - 1e-10, rev, 1 - (1 - 1e-10)]] as const) {
        const j = run("jsd", eps);
        for (let r = 0; r < 3; r++) {
          const ratio = j.loss[r] / scale;
          assert.ok(Math.abs(ratio - near.loss[r]) <= 1e-4 * near.loss[r], `${mode} β=${eps}: ${ratio}`);
        }
        let max = 0;
        for (const g of near.grad) max = Math.max(max, Math.abs(g));
        for (let i = 0; i < j.grad.length; i++) {
          assert.ok(
            Math.abs(j.grad[i] / scale - near.grad[i]) <= 1e-4 * max,
            `${mode} β=${eps} grad ${i}: ${j.grad[i] / scale} vs ${
              near.grad[i]
            } (max ${max}, k=${k}, V=${vocab})`,
          );
        }
      }
      // ... and β in between is neither (the comparison can fail).
      assert.notDeepEqual(run("jsd", 0.5).loss, fwd.loss);
    }
  }));

Deno.test("the reference gradient of reverse KL and JSD matches central finite differences", () =>
  withSeed("divergence fd", ({ uniform: rand }) => {
    for (const mode of SUPPORTS) {
      for (const divergence of DIVS) {
        for (const full of [false, true]) {
          const vocab = 20 + Math.floor(rand() * 40);
          const k = full ? vocab : 1 + Math.floor(rand() * 10);
          const T = 0.5 + rand() * 3;
          const c = randomCase(rand, 2, vocab, k, T, 4);
          const opts: SparseKdOptions = {
            mode,
            divergence,
            beta: divergence === "jsd" ? 0.05 + 0.9 * rand() : undefined,
            temperature: T,
            alpha: rand(),
            labels: Int32Array.from([Math.floor(rand() * vocab), c.teacher.indices[k]]), // row 1: label in S
            scale: Float32Array.from([0.75, 1.5]),
          };
          const s = Float64Array.from(c.s);
          const { grad } = sparseKdLossReference64(s, 2, vocab, c.teacher, opts);
          const h = 1e-5;
          for (let i = 0; i < s.length; i++) {
            const row = Math.floor(i / vocab);
            const x = s[i];
            s[i] = x + h;
            const up = sparseKdLossReference64(s, 2, vocab, c.teacher, opts).loss[row];
            s[i] = x - h;
            const down = sparseKdLossReference64(s, 2, vocab, c.teacher, opts).loss[row];
            s[i] = x;
            const fd = (up - down) / (2 * h);
            assert.ok(
              Math.abs(fd - grad[i]) <= 1e-6 + 1e-5 * Math.abs(fd),
              `${mode} ${divergence} k=${k} i=${i}: fd ${fd} vs grad ${grad[i]}`,
            );
          }
        }
      }
    }
  }));

Deno.test({
  name: "the kernel's reverse KL and JSD match the float64 reference across random inputs and both layouts",
  ignore: noGpu,
  fn: () =>
    withSeed("divergence kernel vs reference", async ({ uniform: rand }) => {
      for (const mode of SUPPORTS) {
        for (const divergence of DIVS) {
          for (let trial = 0; trial < 4; trial++) {
            // Even trials: vocab a multiple of 4 (vec4 rows); odd: odd vocab (scalar); trial 3: k up to 400
            // (past the kernel's 256 cached ids).
            const vocab = trial % 2 === 0
              ? 4 * (1 + Math.floor(rand() * 750))
              : 1 + 2 * Math.floor(rand() * 1500);
            const k = 1 + Math.floor(rand() * Math.min(vocab, trial === 3 ? 400 : 80));
            const rows = 1 + Math.floor(rand() * 12);
            const T = 0.5 + rand() * 3.5;
            const c = randomCase(rand, rows, vocab, k, T);
            const opts = randomOptions(rand, c, mode, divergence, T);
            const got = await sparseKdLoss(rt, c.s, rows, vocab, c.teacher, opts);
            const want = sparseKdLossReference(c.s, rows, vocab, c.teacher, opts);
            const what = `${mode} ${divergence} β=${opts.beta} rows=${rows} V=${vocab} k=${k} T=${
              T.toFixed(3)
            } α=${opts.alpha}`;
            const slack = tailSlack(c, opts);
            assertLossClose(got.loss, want.loss, what, 1e-5, 1e-7, slack);
            assertClose(got.grad, want.grad, rows, vocab, what, 1e-4, slack);
          }
        }
      }
    }),
});

Deno.test({
  name: "the kernel's reverse KL and JSD handle k = vocab (an empty tail bucket)",
  ignore: noGpu,
  fn: () =>
    withSeed("divergence k = vocab", async ({ uniform: rand }) => {
      for (const mode of SUPPORTS) {
        for (const divergence of DIVS) {
          const vocab = 1 + Math.floor(rand() * 300);
          const T = 0.5 + rand() * 2;
          const c = randomCase(rand, 3, vocab, vocab, T);
          const opts = randomOptions(rand, c, mode, divergence, T);
          const got = await sparseKdLoss(rt, c.s, 3, vocab, c.teacher, opts);
          const want = sparseKdLossReference(c.s, 3, vocab, c.teacher, opts);
          assertLossClose(got.loss, want.loss, `${mode} ${divergence} k=V=${vocab}`);
          assertClose(got.grad, want.grad, 3, vocab, `${mode} ${divergence} k=V=${vocab}`);
        }
      }
    }),
});

Deno.test({
  name: "the kernel's reverse KL and JSD stay finite and accurate with large logits and extreme temperatures",
  ignore: noGpu,
  fn: () =>
    withSeed("divergence extremes", async ({ uniform: rand }) => {
      for (const mode of SUPPORTS) {
        for (const divergence of DIVS) {
          for (const T of [0.05, 0.3, 20]) {
            const vocab = 2 * (200 + Math.floor(rand() * 800));
            const k = 1 + Math.floor(rand() * 64);
            const c = randomCase(rand, 4, vocab, k, T, 120); // logits spread over ±60 (±90 for the teacher)
            const opts = randomOptions(rand, c, mode, divergence, T);
            const got = await sparseKdLoss(rt, c.s, 4, vocab, c.teacher, opts);
            const want = sparseKdLossReference(c.s, 4, vocab, c.teacher, opts);
            const what = `${mode} ${divergence} β=${opts.beta} V=${vocab} k=${k} T=${T} α=${opts.alpha}`;
            assert.ok(
              got.loss.every(Number.isFinite) && got.grad.every(Number.isFinite),
              `${what}: not finite`,
            );
            // float32's rounding of the largest |z/T| a few times over (see kernels_sparse_kd_test.ts): each
            // log(Q_b/P_b) carries an absolute error of that size. The divergence averages them (weights summing
            // to 1), so its error is α·T²·scale times that bound; each gradient entry q_j·(λ_b − Σ Q λ) is off by
            // α·T·scale times it, which matters where a one-hot student makes the whole row's gradient tiny.
            let zMax = 0;
            for (const x of c.s) zMax = Math.max(zMax, Math.abs(x / T));
            for (const x of c.teacher.values) zMax = Math.max(zMax, Math.abs(x / T));
            const bound = 8 * zMax * 2 ** -24, alpha = opts.alpha!;
            const slack = tailSlack(c, opts);
            for (let r = 0; r < 4; r++) {
              const sc = typeof opts.scale === "number" ? opts.scale : opts.scale![r];
              slack.loss[r] += alpha * T * T * sc * bound;
              slack.grad[r] += alpha * T * sc * bound;
            }
            assertLossClose(got.loss, want.loss, what, 1e-5, 1e-7, slack);
            assertClose(got.grad, want.grad, 4, vocab, what, bound, slack);
          }
        }
      }
    }),
});

Deno.test({
  name:
    "when student and teacher nearly agree, the kernel's small reverse KL and JSD keep their relative accuracy",
  ignore: noGpu,
  fn: () =>
    withSeed("divergence close", async ({ uniform: rand }) => {
      for (const mode of SUPPORTS) {
        for (const divergence of DIVS) {
          // K = 2, T = 20 is the hard case of the forward renorm form; in mode tail its tail bucket holds
          // 99.6 % of both distributions, and the float32 normalizers of that bucket bound the accuracy.
          for (const [k, T] of mode === "renorm" ? [[2, 20], [16, 1], [64, 2]] : [[16, 1], [64, 2]]) {
            const vocab = 4 * (50 + Math.floor(rand() * 200)), rows = 4;
            const c = randomCase(rand, rows, vocab, k, T);
            // The student is the teacher up to noise of 1e-3·T in its logits: divergences (KD) of ~1e-10..1e-6.
            for (let r = 0; r < rows; r++) {
              for (let j = 0; j < vocab; j++) {
                c.s[r * vocab + j] = Math.fround(c.teacherFull[r][j] + (rand() - 0.5) * 2e-3 * T);
              }
            }
            const opts: SparseKdOptions = {
              mode,
              divergence,
              beta: divergence === "jsd" ? 0.2 + 0.6 * rand() : undefined,
              temperature: T,
            };
            const got = await sparseKdLoss(rt, c.s, rows, vocab, c.teacher, opts);
            const want = sparseKdLossReference(c.s, rows, vocab, c.teacher, opts);
            const what = `${mode} ${divergence} k=${k} T=${T}`;
            for (let r = 0; r < rows; r++) {
              assert.ok(want.loss[r] > 0 && want.loss[r] < 1e-3, `${what}: ${want.loss[r]}`);
            }
            // Relative to the divergence itself, not to 1 (observed: renorm within 1e-5 but for rows whose KD
            // nearly vanishes, tail within 1.2e-3); plus 1e-3 of the batch's largest loss for such rows.
            const top = Math.max(...want.loss);
            assertLossClose(got.loss, want.loss, what, 3e-3, 1e-3 * top);
            assertClose(got.grad, want.grad, rows, vocab, what, 3e-3);
          }
        }
      }
    }),
});

Deno.test({
  name:
    "tail: a vanishing or rounded-away tail mass and a student tail below float32 give finite, exact losses",
  ignore: noGpu,
  fn: () =>
    withSeed("divergence tail edges", async ({ uniform: rand }) => {
      const vocab = 1024, k = 32, rows = 4, T = 1;
      for (const divergence of DIVS) {
        const beta = divergence === "jsd" ? 0.1 + 0.8 * rand() : undefined;
        // (a) The top-k hold all but ~1e-9 of both distributions (r below the reverse floor 2^-24).
        const a = randomCase(rand, rows, vocab, k, T, 1);
        for (let r = 0; r < rows; r++) {
          for (let i = 0; i < k; i++) {
            const id = a.teacher.indices[r * k + i];
            a.s[r * vocab + id] += 25 + rand() * 2;
            a.teacherFull[r][id] += 25 + rand() * 2;
            a.teacher.values[r * k + i] = a.teacherFull[r][id];
          }
          a.teacher.logsumexp![r] = lse(Array.from(a.teacherFull[r], (v) => v / T));
        }
        // (b) Rounding makes Σ_S p_i exceed 1: r clamps to 0 (reverse: floored; JSD: P_t = 0).
        const b = randomCase(rand, rows, vocab, k, T);
        for (let r = 0; r < rows; r++) {
          b.teacher.logsumexp![r] = lse(Array.from(b.teacher.values.subarray(r * k, (r + 1) * k), (v) =>
            v / T)) -
            1e-6;
        }
        // (c) The student's complement is e^-100 below S: Q_t underflows float32 (counts as 0).
        const cc = randomCase(rand, rows, vocab, k, T);
        for (let r = 0; r < rows; r++) {
          for (let i = 0; i < k; i++) cc.s[r * vocab + cc.teacher.indices[r * k + i]] += 100;
        }
        for (const [name, c] of [["r ~ 1e-9", a], ["r rounded to 0", b], ["Q_t underflows", cc]] as const) {
          const opts: SparseKdOptions = { mode: "tail", divergence, beta, temperature: T, alpha: 0.5 };
          opts.labels = Int32Array.from({ length: rows }, () => Math.floor(rand() * vocab));
          const got = await sparseKdLoss(rt, c.s, rows, vocab, c.teacher, opts);
          const want = sparseKdLossReference(c.s, rows, vocab, c.teacher, opts);
          const what = `${divergence} ${name}`;
          assert.ok(
            got.loss.every(Number.isFinite) && got.grad.every(Number.isFinite),
            `${what}: not finite`,
          );
          assert.ok(want.loss.every(Number.isFinite), `${what}: reference not finite`);
          const slack = tailSlack(c, opts);
          assertLossClose(got.loss, want.loss, what, 1e-5, 1e-6, slack);
          assertClose(got.grad, want.grad, rows, vocab, what, 1e-4, slack);
        }
      }
    }),
});

Deno.test("reverse KL on the tail support floors the teacher's tail mass at 2^-24, not at 0", () =>
  withSeed("reverse floor", ({ uniform: rand }) => {
    const vocab = 64, k = 8, T = 1;
    const c = randomCase(rand, 1, vocab, k, T);
    // The stored logsumexp puts Σ_S p_i just above 1: no tail mass, while the student keeps some outside S.
    c.teacher.logsumexp![0] = lse(Array.from(c.teacher.values, (v) => v / T)) - 1e-6;
    const opts: SparseKdOptions = { mode: "tail", divergence: "reverse", temperature: T };
    const rev = sparseKdLossReference64(c.s, 1, vocab, c.teacher, opts);
    const { P, Q } = naiveBuckets(c, 0, "tail", T);
    assert.ok(P[k] < 0 && Q[k] > 0.01);
    P[k] = REVERSE_TAIL_FLOOR; // the floored tail bucket
    const want = naiveDivergence(P, Q, "reverse", 0);
    assert.ok(Number.isFinite(rev.loss[0]), `${rev.loss[0]}`);
    assert.ok(Math.abs(rev.loss[0] - want) <= 1e-9 * want, `${rev.loss[0]} vs ${want}`);
  }));

Deno.test({
  name: "reverse KL and JSD split a batch larger than a binding into row chunks with the same results",
  ignore: noGpu,
  fn: () =>
    withSeed("divergence chunks", async ({ uniform: rand }) => {
      const rows = 5 + Math.floor(rand() * 8), vocab = 4 * (20 + Math.floor(rand() * 200)), T = 1.5;
      for (const mode of SUPPORTS) {
        for (const divergence of DIVS) {
          const c = randomCase(rand, rows, vocab, 8, T);
          const opts = randomOptions(rand, c, mode, divergence, T);
          const chunkRows = 1 + Math.floor(rand() * 4);
          kernelHooks.maxBindingBytes = chunkRows * vocab * 4 + 1280;
          let got;
          try {
            got = await sparseKdLoss(rt, c.s, rows, vocab, c.teacher, opts);
          } finally {
            resetKernelHooks();
          }
          const want = sparseKdLossReference(c.s, rows, vocab, c.teacher, opts);
          const what = `${mode} ${divergence} chunks of ${chunkRows} rows`, slack = tailSlack(c, opts);
          assertLossClose(got.loss, want.loss, what, 1e-5, 1e-7, slack);
          assertClose(got.grad, want.grad, rows, vocab, what, 1e-4, slack);
        }
      }
    }),
});

Deno.test({
  name: "the kernel: forward is the default, and JSD at β = 0 and 1 gives forward and reverse bit for bit",
  ignore: noGpu,
  fn: () =>
    withSeed("divergence defaults", async ({ uniform: rand }) => {
      for (const mode of SUPPORTS) {
        const vocab = 300, T = 1.3;
        const c = randomCase(rand, 3, vocab, 12, T);
        const base = { mode, temperature: T, alpha: 0.6, labels: Int32Array.from([1, 2, 3]) };
        const run = (o: Partial<SparseKdOptions>) =>
          sparseKdLoss(rt, c.s, 3, vocab, c.teacher, { ...base, ...o });
        const plain = await run({});
        assert.deepEqual(await run({ divergence: "forward" }), plain);
        assert.deepEqual(await run({ divergence: "jsd", beta: 0 }), plain);
        const rev = await run({ divergence: "reverse" });
        assert.deepEqual(await run({ divergence: "jsd", beta: 1 }), rev);
        assert.notDeepEqual(rev.loss, plain.loss);
      }
    }),
});

Deno.test({
  name: "the kernel's JSD with β within 1e-9 of either end (1 − β passed separately) matches the reference",
  ignore: noGpu,
  fn: () =>
    withSeed("divergence beta ends", async ({ uniform: rand }) => {
      for (const mode of SUPPORTS) {
        for (const beta of [1e-9, 1e-30, 1 - 1e-9]) {
          const vocab = 4 * (20 + Math.floor(rand() * 100)), T = 0.5 + 2 * rand();
          const c = randomCase(rand, 3, vocab, 2 + Math.floor(rand() * 30), T); // (k = 1 in renorm: D = 0)
          const opts: SparseKdOptions = { mode, divergence: "jsd", beta, temperature: T };
          const got = await sparseKdLoss(rt, c.s, 3, vocab, c.teacher, opts);
          const want = sparseKdLossReference(c.s, 3, vocab, c.teacher, opts);
          const what = `${mode} β=${beta}`;
          assert.ok(want.loss.every((l) => l > 0), what);
          const slack = tailSlack(c, opts);
          assertLossClose(got.loss, want.loss, what, 1e-5, 0, slack);
          assertClose(got.grad, want.grad, 3, vocab, what, 1e-4, slack);
        }
      }
    }),
});

Deno.test("the tfjs op trains with reverse KL and JSD: its loss and gradient equal the reference's mean", async () => {
  await withSeed("divergence op", async ({ uniform: rand }) => {
    for (const cpu of noGpu ? [true] : [false, true]) {
      const opRt = cpu ? await createRuntime({ cpu: true, quiet: true }) : rt;
      await useTfjsOnRuntime(opRt);
      const kdLoss = await createSparseKdLossOp(opRt);
      for (const mode of SUPPORTS) {
        for (const divergence of DIVS) {
          const rows = 5, vocab = 4 * (30 + Math.floor(rand() * 100)), T = 0.5 + 2 * rand();
          const c = randomCase(rand, rows, vocab, 1 + Math.floor(rand() * 30), T);
          const mask = Uint8Array.from([1, 1, 0, 1, 1]);
          const labels = Int32Array.from({ length: rows }, () => Math.floor(rand() * vocab));
          const beta = divergence === "jsd" ? 0.05 + 0.9 * rand() : undefined;
          const opts = { mode, divergence, beta, temperature: T, alpha: 0.7, labels, mask };
          const x = tf.tensor2d(c.s, [rows, vocab]);
          const { value, grad } = tf.valueAndGrad((l: tf.Tensor) =>
            kdLoss(l as tf.Tensor2D, c.teacher, opts)
          )(x);
          const loss = (await value.data())[0], g = (await grad.data()) as Float32Array;
          tf.dispose([x, value, grad]);
          const want = sparseKdLossReference64(c.s, rows, vocab, c.teacher, { ...opts, scale: 1 / 4 });
          const wantLoss = want.loss.reduce((a, b) => a + b, 0);
          const what = `${cpu ? "cpu" : "gpu"} ${mode} ${divergence}`;
          const slack = tailSlack(c, { ...opts, scale: 1 / 4 });
          assert.ok(
            Math.abs(loss - wantLoss) <=
              1e-5 * Math.abs(wantLoss) + 1e-6 + slack.loss.reduce((a, b) => a + b, 0),
            `${what}: ${loss} vs ${wantLoss}`,
          );
          assertClose(g, Float32Array.from(want.grad), rows, vocab, what, 1e-4, slack);
        }
      }
    }
    if (!noGpu) await useTfjsOnRuntime(rt);
  });
});

Deno.test("the registry's divergences per mode are exactly those the kernel accepts", () => {
  const t: SparseKdTeacher = { indices: Uint32Array.from([0, 1]), values: new Float32Array(2), k: 2 };
  t.logsumexp = new Float32Array(1);
  for (const mode of Object.keys(kernelModeIds()) as SparseKdMode[]) {
    const listed = LOSS_MODES[mode].divergences ?? ["forward"];
    for (const divergence of DIVERGENCES.filter((d) => d !== "forward")) {
      const check = () => checkSparseKd(null, 1, 4, t, { mode, temperature: 1, divergence });
      if (listed.includes(divergence)) check();
      else assert.throws(check, (e) => e instanceof SparsekdError && /divergence/.test(e.message), mode);
    }
  }
  assert.equal(LOSS_MODES.full.divergences, undefined); // online full KD: forward only
});

Deno.test("bad divergence options to the sparse-KD loss are one-line SparsekdErrors", async () => {
  const vocab = 10, rows = 2, k = 2;
  const s = new Float32Array(rows * vocab);
  const t: SparseKdTeacher = {
    indices: Uint32Array.from([1, 2, 3, 4]),
    values: new Float32Array(rows * k),
    k,
    logsumexp: new Float32Array(rows),
  };
  const cases: [string, SparseKdOptions, RegExp][] = [
    [
      "reverse on topk",
      { mode: "topk", divergence: "reverse", temperature: 1 },
      /renorm and tail supports only/,
    ],
    ["jsd on topk", { mode: "topk", divergence: "jsd", temperature: 1 }, /divergence jsd .*mode topk/],
    ["unknown", { mode: "tail", divergence: "kl" as Divergence, temperature: 1 }, /forward, reverse, jsd/],
    ["β > 1", { mode: "renorm", divergence: "jsd", beta: 1.5, temperature: 1 }, /beta must be in \[0, 1\]/],
    ["β < 0", { mode: "renorm", divergence: "jsd", beta: -0.1, temperature: 1 }, /beta must be in \[0, 1\]/],
    ["β NaN", { mode: "tail", divergence: "jsd", beta: NaN, temperature: 1 }, /beta must be in \[0, 1\]/],
    ["β subnormal", { mode: "tail", divergence: "jsd", beta: 1e-40, temperature: 1 }, /at least 1e-30/],
    ["β with reverse", { mode: "renorm", divergence: "reverse", beta: 0.5, temperature: 1 }, /beta is for/],
    ["β without divergence", { mode: "renorm", beta: 0.5, temperature: 1 }, /beta is for divergence jsd/],
  ];
  for (const [name, opts, pattern] of cases) {
    await assert.rejects(() => sparseKdLoss(rt, s, rows, vocab, t, opts), (e: unknown) => {
      assert.ok(e instanceof SparsekdError, `${name}: not a SparsekdError: ${e}`);
      assert.match(e.message, pattern, name);
      assert.ok(!e.message.includes("\n"), `${name}: message is not one line`);
      return true;
    });
  }
});
