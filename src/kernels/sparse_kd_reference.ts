/**
 * The sparse-KD loss in plain TypeScript, computed in float64: the oracle the WGSL kernel is tested
 * against, and the CPU path of {@linkcode sparseKdLoss}. The mathematics is in `docs/losses.md`.
 * @module
 */
import { SparsekdError } from "../errors.ts";

/** Which KD term: see `docs/losses.md`. */
export type SparseKdMode = "topk" | "renorm" | "tail" | "sampled";

/**
 * The divergence between the teacher's distribution P and the student's Q on a mode's support:
 * `forward` KL(P‖Q) (every mode), `reverse` KL(Q‖P) and `jsd` (the generalized Jensen–Shannon divergence
 * of TRL's GKD, weight `beta` on P) on the supports where the student is restricted like the teacher
 * (`renorm`, `tail`). See `docs/losses.md`.
 */
export type Divergence = "forward" | "reverse" | "jsd";

/** The divergences, in the order of their kernel ids (`params.divergence` of `shaders/sparse_kd.wgsl`). */
export const DIVERGENCES: readonly Divergence[] = ["forward", "reverse", "jsd"];

/** The modes on which a divergence other than `forward` is defined exactly. */
export const DIVERGENCE_MODES: readonly SparseKdMode[] = ["renorm", "tail"];

/** The default `beta` of `jsd` (TRL's GKD default): the symmetric Jensen–Shannon divergence. */
export const DEFAULT_JSD_BETA = 0.5;

/**
 * Reverse KL on the `tail` support floors the teacher's tail mass r at this value (2^−20 ≈ 9.5e−7): r is
 * known to about 1e−7 only (rounding of the stored float32 logsumexp and of the sums over S), and its log
 * enters the loss with weight Q_t, so smaller values are noise, and 0 would make the loss +∞
 * (docs/losses.md).
 */
export const REVERSE_TAIL_FLOOR = 2 ** -20;

/** The teacher's side of a batch of rows: top-K ids and raw logits, and optionally Lz(T) per row. */
export interface SparseKdTeacher {
  /** rows*k teacher token ids, row-major, distinct within a row. */
  indices: Uint32Array;
  /** rows*k raw teacher logits z (not divided by T), matching `indices`. */
  values: Float32Array;
  /** Ids per row. */
  k: number;
  /** One value per row: the teacher's logsumexp over the full vocabulary of z/T, at this temperature. */
  logsumexp?: Float32Array;
  /**
   * Mode `sampled`: rows*k draw counts, one per slot (the ids are the distinct ids drawn for the row, padded
   * with unused ids of count 0). A row's draws N are the sum of its counts.
   */
  hits?: Uint16Array | Uint32Array | Float32Array;
  /** Mode `sampled`: the temperature t the draws came from, softmax(z/t) (default: the training T). */
  sampleTemperature?: number;
  /** Mode `sampled`, t ≠ T: the teacher's logsumexp of z/t over the full vocabulary, one per row. */
  sampleLogsumexp?: Float32Array;
}

/** Options of the sparse-KD loss. */
export interface SparseKdOptions {
  /** The KD term. */
  mode: SparseKdMode;
  /** Temperature T > 0. */
  temperature: number;
  /** Weight of the KD term in [0, 1] (default 1: pure KD). */
  alpha?: number;
  /** The divergence (default `forward`); others need mode `renorm` or `tail`. */
  divergence?: Divergence;
  /**
   * `jsd` only: the weight β in [0, 1] of the teacher in the mixture M = βP + (1−β)Q (default 0.5);
   * β = 0 is exactly forward KL and β = 1 reverse KL (TRL's convention).
   */
  beta?: number;
  /** The hard label (next token) per row; needed when alpha < 1. Ignored on masked rows. */
  labels?: Int32Array;
  /** One byte per row: 0 means masked (no loss, zero gradient). Default: no row masked. */
  mask?: Uint8Array;
  /** Multiplies each row's loss and gradient: one number for all rows, or one per row (default 1). */
  scale?: number | Float32Array;
}

/** Per-row loss and the gradient of each row's loss with respect to its student logits. */
export interface SparseKdResult {
  /** One value per row: scale * (alpha*T^2*KD_T + (1-alpha)*CE); 0 on masked rows. */
  loss: Float32Array;
  /** rows*vocab: d loss[row] / d s[row, :]; zero on masked rows. */
  grad: Float32Array;
}

/** The checked, defaulted inputs shared by the reference and the kernel. */
export interface CheckedSparseKd {
  mode: SparseKdMode;
  temperature: number;
  alpha: number;
  /** The divergence computed: `jsd` with β = 0 or 1 is `forward` or `reverse` here. */
  divergence: Divergence;
  /** β of `jsd`, in (0, 1); 0 for the other divergences. */
  beta: number;
  k: number;
  /** Per-row multiplier, 0 on masked rows. */
  scale: Float32Array;
  /** Per-row activity (mask), 1 = active. */
  active: Uint8Array;
  /** Per-row label (0 where absent or masked). */
  labels: Int32Array;
  /** Per-row Lz(T) (0 where absent). */
  logsumexp: Float32Array;
  /**
   * Mode `sampled`: rows*k per-slot coefficients c_i = hits_i·w_i/N (what the kernel reads in place of the
   * teacher's logits), formed in float64 by {@linkcode sampledCoefficients}.
   */
  coef?: Float32Array;
  /** Mode `sampled`: per row, Σ c_i·log p_T(i) (float64; the teacher's part of the KL estimate). */
  teacherTerm?: Float64Array;
}

/**
 * Checks the inputs of the sparse-KD loss and fills in defaults; bad input is a one-line
 * {@linkcode SparsekdError}. `checkIds = false` skips the range and distinctness checks of the teacher's
 * ids (for ids that live on the GPU; their count is still checked).
 *
 * @example
 * ```ts
 * const c = checkSparseKd(new Float32Array(8), 2, 4, { indices: new Uint32Array([0, 1]), values: new Float32Array(2), k: 1 },
 *   { mode: "topk", temperature: 2 });
 * ```
 */
export function checkSparseKd(
  studentLogits: { length: number } | null,
  rows: number,
  vocab: number,
  teacher: SparseKdTeacher,
  options: SparseKdOptions,
  checkIds = true,
): CheckedSparseKd {
  const fail = (m: string): never => {
    throw new SparsekdError(`sparse-KD loss: ${m}`);
  };
  if (!Number.isInteger(rows) || rows < 0) fail(`rows must be a non-negative integer (got ${rows})`);
  if (!Number.isInteger(vocab) || vocab < 1) fail(`vocab must be a positive integer (got ${vocab})`);
  const mode = options.mode;
  if (mode !== "topk" && mode !== "renorm" && mode !== "tail" && mode !== "sampled") {
    fail(`mode must be topk, renorm, tail or sampled (got ${String(mode)})`);
  }
  const T = options.temperature;
  if (!(typeof T === "number" && Number.isFinite(T) && T > 0)) fail(`temperature must be > 0 (got ${T})`);
  const alpha = options.alpha ?? 1;
  if (!(typeof alpha === "number" && alpha >= 0 && alpha <= 1)) {
    fail(`alpha must be in [0, 1] (got ${alpha})`);
  }
  const asked = options.divergence ?? "forward";
  if (!DIVERGENCES.includes(asked)) {
    fail(`divergence must be ${DIVERGENCES.join(", ")} (got ${String(asked)})`);
  }
  if (asked !== "forward" && !DIVERGENCE_MODES.includes(mode)) {
    fail(
      `divergence ${asked} is defined on the ${DIVERGENCE_MODES.join(" and ")} supports only (mode ${mode} ` +
        `takes forward)`,
    );
  }
  if (options.beta !== undefined && asked !== "jsd") fail(`beta is for divergence jsd (got ${asked})`);
  const b = options.beta ?? DEFAULT_JSD_BETA;
  if (asked === "jsd" && !(typeof b === "number" && b >= 0 && b <= 1)) {
    fail(`beta must be in [0, 1] (got ${b})`);
  }
  if (asked === "jsd" && b > 0 && b < 1e-30) {
    fail(`beta must be 0 or at least 1e-30 (got ${b}: below float32's normal range on the GPU)`);
  }
  // TRL's convention: β = 0 is forward KL and β = 1 reverse KL exactly (the formula itself tends to 0 there).
  const divergence: Divergence = asked !== "jsd" ? asked : b === 0 ? "forward" : b === 1 ? "reverse" : "jsd";
  const beta = divergence === "jsd" ? b : 0;
  const k = teacher.k;
  if (!Number.isInteger(k) || k < 1 || k > vocab) fail(`k must be between 1 and vocab=${vocab} (got ${k})`);
  if (studentLogits && studentLogits.length !== rows * vocab) {
    fail(`student logits have ${studentLogits.length} values, expected rows*vocab = ${rows * vocab}`);
  }
  if (teacher.indices.length !== rows * k) {
    fail(
      `teacher indices have ${teacher.indices.length} values, expected rows*k = ${rows * k} (k mismatch?)`,
    );
  }
  if (teacher.values.length !== rows * k) {
    fail(`teacher values have ${teacher.values.length} values, expected rows*k = ${rows * k} (k mismatch?)`);
  }
  if (mode === "tail" && !teacher.logsumexp) {
    fail(
      "mode tail needs the teacher's logsumexp at this temperature in the shards (save with --lse-temperatures)",
    );
  }
  if (mode === "sampled") checkSampled(teacher, rows, k, T, options.mask, fail);
  if (teacher.logsumexp && teacher.logsumexp.length !== rows) {
    fail(`teacher logsumexp has ${teacher.logsumexp.length} values, expected one per row (${rows})`);
  }
  if (options.mask && options.mask.length !== rows) {
    fail(`mask has ${options.mask.length} values, expected one per row (${rows})`);
  }
  if (alpha < 1 && !options.labels) fail(`labels are needed when alpha < 1 (alpha = ${alpha})`);
  if (options.labels && options.labels.length !== rows) {
    fail(`labels have ${options.labels.length} values, expected one per row (${rows})`);
  }
  const sc = options.scale ?? 1;
  if (typeof sc !== "number" && sc.length !== rows) {
    fail(`scale has ${sc.length} values, expected one per row (${rows})`);
  }
  const active = new Uint8Array(rows);
  const scale = new Float32Array(rows);
  const labels = new Int32Array(rows);
  const seen = new Set<number>();
  for (let r = 0; r < rows; r++) {
    if (options.mask && options.mask[r] === 0) continue;
    active[r] = 1;
    scale[r] = typeof sc === "number" ? sc : sc[r];
    if (alpha < 1) {
      const y = options.labels![r];
      if (!(y >= 0 && y < vocab)) fail(`label ${y} at row ${r} is outside the vocabulary [0, ${vocab})`);
      labels[r] = y;
    }
    if (!checkIds) continue;
    seen.clear();
    for (let i = r * k; i < (r + 1) * k; i++) {
      const id = teacher.indices[i];
      if (id >= vocab) fail(`teacher index ${id} at row ${r} is outside the vocabulary [0, ${vocab})`);
      if (seen.has(id)) fail(`teacher index ${id} appears twice in row ${r}`);
      seen.add(id);
    }
  }
  const logsumexp = teacher.logsumexp ? Float32Array.from(teacher.logsumexp) : new Float32Array(rows);
  const out: CheckedSparseKd = {
    mode,
    temperature: T,
    alpha,
    divergence,
    beta,
    k,
    scale,
    active,
    labels,
    logsumexp,
  };
  if (mode === "sampled") {
    const s = sampledCoefficients(teacher, rows, T, active);
    for (let r = 0; r < rows; r++) {
      if (active[r] && !Number.isFinite(s.teacherTerm[r])) {
        fail(`row ${r}: the importance weights are not finite (teacher logits or logsumexps out of range)`);
      }
    }
    out.coef = Float32Array.from(s.coef);
    out.teacherTerm = s.teacherTerm;
  }
  return out;
}

function checkSampled(
  teacher: SparseKdTeacher,
  rows: number,
  k: number,
  T: number,
  mask: Uint8Array | undefined,
  fail: (m: string) => never,
) {
  const t = teacher.sampleTemperature ?? T;
  if (!(typeof t === "number" && Number.isFinite(t) && t > 0)) {
    fail(`the sampling temperature must be > 0 (got ${t})`);
  }
  if (!teacher.hits) fail("mode sampled needs the draw counts of the sampled ids (hits)");
  if (teacher.hits!.length !== rows * k) {
    fail(`teacher hits have ${teacher.hits!.length} values, expected rows*k = ${rows * k} (k mismatch?)`);
  }
  if (!teacher.logsumexp) {
    fail(`mode sampled needs the teacher's logsumexp at the training temperature ${T} in the shards`);
  }
  if (t !== T && !teacher.sampleLogsumexp) {
    fail(`mode sampled needs the teacher's logsumexp at the sampling temperature ${t} in the shards`);
  }
  if (teacher.sampleLogsumexp && teacher.sampleLogsumexp.length !== rows) {
    fail(
      `teacher sampleLogsumexp has ${teacher.sampleLogsumexp.length} values, expected one per row (${rows})`,
    );
  }
  for (let r = 0; r < rows; r++) {
    let n = 0;
    for (let i = r * k; i < (r + 1) * k; i++) {
      const h = teacher.hits![i];
      if (!(Number.isInteger(h) && h >= 0)) {
        fail(`row ${r}: a draw count is not a non-negative integer (${h})`);
      }
      n += h;
    }
    if (n === 0 && !(mask && mask[r] === 0)) fail(`row ${r} has no draws (its counts sum to 0)`);
  }
}

/**
 * The importance-sampling coefficients of mode `sampled`, in float64: for slot i of row r with draw count
 * h_i out of N = Σ h, `coef = h_i·w_i/N` with w_i = p_T(i)/p_t(i) = exp((z_i/T − Lz(T)) − (z_i/t − Lz(t)))
 * (exactly 1 when t = T), and per row `teacherTerm = Σ coef·log p_T(i)`. Rows where `active` is 0 get 0.
 * The inputs are assumed checked (see {@linkcode checkSparseKd}). `docs/losses.md` derives the estimator.
 *
 * @example
 * ```ts
 * const { coef, teacherTerm } = sampledCoefficients(
 *   { indices: new Uint32Array([3, 1]), values: new Float32Array([2, 1]), k: 2,
 *     hits: new Uint16Array([3, 1]), logsumexp: new Float32Array([2.5]) }, 1, 1);
 * // coef = [0.75, 0.25]
 * ```
 */
export function sampledCoefficients(
  teacher: SparseKdTeacher,
  rows: number,
  temperature: number,
  active?: Uint8Array,
): { coef: Float64Array; teacherTerm: Float64Array } {
  const T = temperature, t = teacher.sampleTemperature ?? T, k = teacher.k;
  const coef = new Float64Array(rows * k);
  const teacherTerm = new Float64Array(rows);
  const hits = teacher.hits!, lzT = teacher.logsumexp!;
  for (let r = 0; r < rows; r++) {
    if (active && !active[r]) continue;
    let n = 0;
    for (let i = r * k; i < (r + 1) * k; i++) n += hits[i];
    const lzt = t === T ? lzT[r] : teacher.sampleLogsumexp![r];
    let term = 0;
    for (let i = r * k; i < (r + 1) * k; i++) {
      if (hits[i] === 0) continue;
      const z = teacher.values[i];
      const lpT = z / T - lzT[r];
      const w = t === T ? 1 : Math.exp(lpT - (z / t - lzt));
      coef[i] = (hits[i] * w) / n;
      term += coef[i] * lpT;
    }
    teacherTerm[r] = term;
  }
  return { coef, teacherTerm };
}

/** log((1 − a) + a·e^x) for a in (0, 1) and x in [−∞, ∞]. */
function logMix(x: number, a: number): number {
  const y = a * Math.expm1(x);
  if (Number.isFinite(y)) return Math.log1p(y);
  const p = Math.log1p(-a), q = Math.log(a) + x; // x → +∞: a logaddexp
  return Math.max(p, q) + Math.log1p(Math.exp(-Math.abs(p - q)));
}

/**
 * Reverse KL or JSD of one row on the `renorm` or `tail` support (docs/losses.md): returns the divergence
 * and writes its gradient with respect to u = s/T into `g`. Buckets: each id of S, plus in mode `tail` the
 * tail bucket (when k < vocab).
 */
function divergenceRow(
  c: CheckedSparseKd,
  r: number,
  k: number,
  vocab: number,
  ids: Uint32Array,
  zT: number[],
  u: Float64Array,
  uS: number[],
  inS: Uint8Array,
  lseAll: number,
  lseS: number,
  lseZS: number,
  g: Float64Array,
): number {
  const tail = c.mode === "tail";
  const lp: number[] = [], lq: number[] = [];
  for (let i = 0; i < k; i++) {
    lp.push(tail ? zT[i] - c.logsumexp[r] : zT[i] - lseZS);
    lq.push(tail ? uS[i] - lseAll : uS[i] - lseS);
  }
  let lseNot = -Infinity;
  if (tail && k < vocab) {
    const uNot: number[] = [];
    for (let j = 0; j < vocab; j++) if (!inS[j]) uNot.push(u[j]);
    lseNot = logSumExp(uNot);
    let rTail = Math.max(0, -Math.expm1(lseZS - c.logsumexp[r]));
    if (c.divergence === "reverse") rTail = Math.max(rTail, REVERSE_TAIL_FLOOR);
    lp.push(Math.log(rTail)); // −∞ when r = 0 (jsd only)
    lq.push(lseNot - lseAll);
  }
  const beta = c.beta;
  const lam = new Float64Array(lp.length);
  let kd = 0, kl = 0; // the divergence, and Σ_b Q_b λ_b
  for (let b = 0; b < lp.length; b++) {
    const P = Math.exp(lp[b]), Q = Math.exp(lq[b]);
    if (c.divergence === "reverse") {
      // Σ_b [Q log(Q/P) − Q + P]: KL(Q‖P) when both sum to 1 (P differs from 1 only by the tail floor).
      kd += (Q > 0 ? Q * (lq[b] - lp[b]) - Q : 0) + P;
      lam[b] = Q > 0 ? lq[b] - lp[b] : 0;
    } else {
      // log(P/M) = −log(β + (1 − β)e^d) and log(Q/M) = −log((1 − β) + βe^−d), d = log(Q/P): formed without
      // subtracting log M from log P or log Q, so that they keep their digits when β is near 0 or 1.
      const d = lq[b] - lp[b];
      if (P > 0) kd += beta * P * -logMix(d, 1 - beta);
      lam[b] = Q > 0 ? -logMix(-d, beta) : 0;
      if (Q > 0) kd += (1 - beta) * Q * lam[b];
    }
    kl += Q * lam[b];
  }
  // ∂D/∂u_j = c·Q̃_j·(λ_b(j) − Σ_b Q_b λ_b), c = 1 (reverse) or 1 − β (jsd).
  const cf = c.divergence === "reverse" ? 1 : 1 - beta;
  if (tail) {
    const lamT = k < vocab && Math.exp(lq[k]) > 0 ? lam[k] - kl : 0;
    for (let j = 0; j < vocab; j++) if (!inS[j]) g[j] = cf * Math.exp(u[j] - lseAll) * lamT;
  }
  for (let i = 0; i < k; i++) g[ids[i]] = cf * Math.exp(lq[i]) * (lam[i] - kl);
  return kd;
}

function logSumExp(xs: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < xs.length; i++) if (xs[i] > m) m = xs[i];
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += Math.exp(xs[i] - m);
  return m + Math.log(s);
}

/**
 * The sparse-KD loss and its gradient, computed row by row in float64 (results rounded to float32).
 * Same contract as {@linkcode sparseKdLoss}; see `docs/losses.md` for the formulas.
 *
 * @example
 * ```ts
 * const { loss, grad } = sparseKdLossReference(new Float32Array([1, 2, 3, 4]), 1, 4,
 *   { indices: new Uint32Array([3, 2]), values: new Float32Array([5, 4]), k: 2 },
 *   { mode: "topk", temperature: 2 });
 * ```
 */
export function sparseKdLossReference(
  studentLogits: Float32Array,
  rows: number,
  vocab: number,
  teacher: SparseKdTeacher,
  options: SparseKdOptions,
): SparseKdResult {
  const r = sparseKdLossReference64(studentLogits, rows, vocab, teacher, options);
  return { loss: Float32Array.from(r.loss), grad: Float32Array.from(r.grad) };
}

/**
 * {@linkcode sparseKdLossReference} in float64 throughout, student logits included (for finite-difference
 * checks of the gradient).
 *
 * @example
 * ```ts
 * const { loss, grad } = sparseKdLossReference64(new Float64Array([1, 2, 3, 4]), 1, 4,
 *   { indices: new Uint32Array([3, 2]), values: new Float32Array([5, 4]), k: 2 },
 *   { mode: "renorm", temperature: 1 });
 * ```
 */
export function sparseKdLossReference64(
  studentLogits: Float32Array | Float64Array,
  rows: number,
  vocab: number,
  teacher: SparseKdTeacher,
  options: SparseKdOptions,
): { loss: Float64Array; grad: Float64Array } {
  const c = checkSparseKd(studentLogits, rows, vocab, teacher, options);
  const { mode, temperature: T, alpha, k } = c;
  const { coef, teacherTerm } = mode === "sampled"
    ? sampledCoefficients(teacher, rows, T, c.active)
    : { coef: null, teacherTerm: null };
  const loss = new Float64Array(rows);
  const grad = new Float64Array(rows * vocab);
  const u = new Float64Array(vocab); // s / T
  const inS = new Uint8Array(vocab);
  const g = new Float64Array(vocab);
  for (let r = 0; r < rows; r++) {
    if (!c.active[r]) continue;
    const s = studentLogits.subarray(r * vocab, (r + 1) * vocab);
    const ids = teacher.indices.subarray(r * k, (r + 1) * k);
    const zT = Array.from(teacher.values.subarray(r * k, (r + 1) * k), (z) => z / T);
    for (let j = 0; j < vocab; j++) u[j] = s[j] / T;
    inS.fill(0);
    for (const id of ids) inS[id] = 1;
    const uS = Array.from(ids, (id) => u[id]);
    const lseAll = logSumExp(u);
    const lseS = logSumExp(uS);
    const lseZS = logSumExp(zT);
    g.fill(0);
    let kd = 0;
    if (c.divergence !== "forward") {
      kd = divergenceRow(c, r, k, vocab, ids, zT, u, uS, inS, lseAll, lseS, lseZS, g);
    } else if (mode === "topk") {
      // KL(p̂ ‖ q): p̂ = softmax_S(z/T), q = softmax_V(s/T).
      for (let j = 0; j < vocab; j++) g[j] = Math.exp(u[j] - lseAll);
      for (let i = 0; i < k; i++) {
        const lp = zT[i] - lseZS;
        const p = Math.exp(lp);
        kd += p * (lp - (uS[i] - lseAll));
        g[ids[i]] -= p;
      }
    } else if (mode === "renorm") {
      // KL(p̂ ‖ q̂), q̂ = softmax_S(s/T).
      for (let i = 0; i < k; i++) {
        const lp = zT[i] - lseZS;
        const p = Math.exp(lp);
        const lq = uS[i] - lseS;
        kd += p * (lp - lq);
        g[ids[i]] = Math.exp(lq) - p;
      }
    } else if (mode === "sampled") {
      // Unbiased importance-sampling estimate of KL(p_T ‖ q): Σ c_i (log p_T(i) − log q_i), c_i = h_i w_i / N.
      // Gradient in u: Σ c_i (q − e_i) = C·q − c, C = Σ c_i.
      let C = 0;
      for (let i = 0; i < k; i++) {
        const ci = coef![r * k + i];
        C += ci;
        kd -= ci * (uS[i] - lseAll);
      }
      kd += teacherTerm![r];
      for (let j = 0; j < vocab; j++) g[j] = C * Math.exp(u[j] - lseAll);
      for (let i = 0; i < k; i++) g[ids[i]] -= coef![r * k + i];
    } else {
      // KL between the (K+1)-bucket coarsenings: p_i = exp(z_i/T - Lz) on S, tail r = 1 - Σ_S p_i.
      const lz = c.logsumexp[r];
      const uNot: number[] = [];
      for (let j = 0; j < vocab; j++) if (!inS[j]) uNot.push(u[j]);
      const lseNot = logSumExp(uNot); // log Σ_{j∉S} exp(s_j/T)
      // Clamped: rounding may push Σ_S p_i above 1. With k = vocab the tail bucket is empty by definition
      // (whatever rounding left in r), so its term is dropped.
      const rTail = k === vocab ? 0 : Math.max(0, -Math.expm1(lseZS - lz));
      for (let i = 0; i < k; i++) {
        const lp = zT[i] - lz;
        const p = Math.exp(lp);
        kd += p * (lp - (uS[i] - lseAll));
      }
      if (rTail > 0) kd += rTail * (Math.log(rTail) - (lseNot - lseAll));
      for (let j = 0; j < vocab; j++) {
        const q = Math.exp(u[j] - lseAll);
        g[j] = inS[j] ? q : q - rTail * Math.exp(u[j] - lseNot);
      }
      for (let i = 0; i < k; i++) g[ids[i]] -= Math.exp(zT[i] - lz);
    }
    const sc = c.scale[r];
    let rowLoss = alpha * T * T * kd;
    for (let j = 0; j < vocab; j++) g[j] *= alpha * T; // α·T²·(1/T)·∂KD/∂u
    if (alpha < 1) {
      const lse1 = logSumExp(s);
      const y = c.labels[r];
      rowLoss += (1 - alpha) * (lse1 - s[y]);
      for (let j = 0; j < vocab; j++) g[j] += (1 - alpha) * Math.exp(s[j] - lse1);
      g[y] -= 1 - alpha;
    }
    loss[r] = sc * rowLoss;
    for (let j = 0; j < vocab; j++) grad[r * vocab + j] = sc * g[j];
  }
  return { loss, grad };
}
