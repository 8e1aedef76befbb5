/**
 * Sampled targets on the CPU: N draws with replacement per row from softmax(z/t) over the full vocabulary,
 * the test oracle of `shaders/sample.wgsl` and the CPU path of {@linkcode sampleTokens}. Both sides compute
 * exactly the same integers, so they draw exactly the same ids (docs/format.md, "Sampled targets"):
 *
 * - the randomness is Philox-4x32-10 keyed by the run seed, its counter holding the global position and
 *   the draw index (so a draw does not depend on the batch, the host count or a restart);
 * - each logit becomes an integer weight q_i = ⌊w_i · 2^34⌋ with w_i = exp((z_i − max z)·(1/t)), where
 *   exp is a fixed polynomial evaluated in float32 with one rounding per operation (no fused multiply-add:
 *   the kernel passes every product through an opaque bit operation), so that GPU and CPU get the same
 *   bits; ids with w_i < 2^-34 (a probability below 2^-34 of the top id's) are never drawn;
 * - the cumulative sums of the q_i are exact integers (below 2^53), whatever the order of summation;
 * - draw d picks U_d = ⌊r_d · Q / 2^64⌋ (r_d the 64 random bits, Q = Σ q_i) and the id i with
 *   C_{i−1} ≤ U_d < C_i (C the cumulative sums): P(i) = q_i / Q up to 2^-64.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { MAX_SAMPLE_N } from "../format/types.ts";

/** The most draws per position (hit counts are stored as Uint16). */
export const MAX_SAMPLE = MAX_SAMPLE_N;
/** Fraction bits of the integer weights q_i = ⌊w_i · 2^FRAC_BITS⌋ (Q = Σ q_i < 2^52 for V ≤ 2^18). */
export const SAMPLE_FRAC_BITS = 34;
/** Scaled logits (z − max)/t below this give weight 0 without evaluating exp (e^-24 < 2^-34). */
export const SAMPLE_X_MIN = -24;
/** Philox counter word 3 of the sampler (a domain constant: "samp"). */
export const SAMPLE_DOMAIN = 0x73616d70;

/** Options of a sampling call. */
export interface SampleOptions {
  /** Draws per row N (1..{@linkcode MAX_SAMPLE}). */
  n: number;
  /** Temperature t > 0 of softmax(z/t). */
  temperature: number;
  /** The run seed (a safe non-negative integer). */
  seed: number;
  /** Global position of row 0 (rows are consecutive positions: position = sequence · L + t). */
  position0: number;
}

/**
 * Sampled targets of `rows` rows, packed: row r holds `len[r]` distinct ids, ascending, at `[o_r, o_r +
 * len[r])` of `idx`, `hits` and `val`, with o_r = Σ len[0..r). `hits` sum to N per row; `val` holds the
 * rows' raw logits at those ids.
 */
export interface SampleResult {
  /** Distinct ids per row. */
  len: Uint16Array;
  /** The distinct ids, ascending within a row. */
  idx: Uint32Array;
  /** Draws per id. */
  hits: Uint16Array;
  /** Raw logits of the ids. */
  val: Float32Array;
}

const f = Math.fround;
const bitsToF32 = (u: number) => new Float32Array(new Uint32Array([u]).buffer)[0];
/** The exp constants as float32 bit patterns (the kernel's prelude gets the same bits). */
export const SAMPLE_EXP_BITS = {
  LOG2E: 0x3fb8aa3b,
  LN2_HI: 0x3f317200, // 0.693145751953125: n · LN2_HI is exact for |n| < 2^8
  LN2_LO: 0x35bfbe8e,
  C: [1, 1, 1 / 2, 1 / 6, 1 / 24, 1 / 120, 1 / 720, 1 / 5040].map((c) =>
    new Uint32Array(new Float32Array([c]).buffer)[0]
  ),
};
const LOG2E = bitsToF32(SAMPLE_EXP_BITS.LOG2E);
const LN2_HI = bitsToF32(SAMPLE_EXP_BITS.LN2_HI);
const LN2_LO = bitsToF32(SAMPLE_EXP_BITS.LN2_LO);
const C = SAMPLE_EXP_BITS.C.map(bitsToF32);

/**
 * exp(x) for x in [SAMPLE_X_MIN, 0], in float32 with one rounding per operation: the same bits as the
 * kernel's `exp_det`. (Cody–Waite reduction x = n·ln 2 + r, |r| ≤ ln 2 / 2, then a degree-7 Taylor
 * polynomial: relative error below 2·10^-7.)
 *
 * @example
 * ```ts
 * expDeterministic(0); // 1
 * ```
 */
export function expDeterministic(x: number): number {
  const n = Math.floor(f(f(x * LOG2E) + 0.5));
  let r = f(x - f(n * LN2_HI));
  r = f(r - f(n * LN2_LO));
  let p = C[7];
  for (let c = 6; c >= 0; c--) p = f(f(p * r) + C[c]);
  return f(p * 2 ** n);
}

/**
 * The integer weight of a logit: ⌊exp((z − m)·invT) · 2^34⌋, 0 below {@linkcode SAMPLE_X_MIN} (and for
 * −Infinity). `invT` must be a float32 value (Math.fround(1 / t)).
 *
 * @example
 * ```ts
 * sampleWeight(3, 3, Math.fround(1)); // 2^34
 * ```
 */
export function sampleWeight(z: number, m: number, invT: number): number {
  const x = f(f(z - m) * invT);
  if (!(x >= SAMPLE_X_MIN)) return 0;
  return Math.floor(expDeterministic(x) * 2 ** SAMPLE_FRAC_BITS);
}

/** High and low 32 bits of a·b for unsigned 32-bit a, b, by 16-bit halves (as the kernel does). */
function mulWide(a: number, b: number): [number, number] {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  const lo = ((p00 & 0xffff) | (mid << 16)) >>> 0;
  const hi = (p11 + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16)) >>> 0;
  return [hi, lo];
}

/**
 * Philox-4x32-10 (Salmon et al., SC 2011): four random 32-bit words of counter `c` under key `k`.
 *
 * @example
 * ```ts
 * philox4x32([0, 0, 0, 0], [0, 0]); // [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
 * ```
 */
export function philox4x32(c: readonly number[], k: readonly number[]): number[] {
  let [c0, c1, c2, c3] = c.map((x) => x >>> 0);
  let [k0, k1] = k.map((x) => x >>> 0);
  for (let round = 0; round < 10; round++) {
    const [hi0, lo0] = mulWide(0xd2511f53, c0);
    const [hi1, lo1] = mulWide(0xcd9e8d57, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + 0x9e3779b9) >>> 0;
    k1 = (k1 + 0xbb67ae85) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/**
 * The 64 random bits of draw `d` at global position `pos` under `seed`, as a BigInt: Philox counter
 * (⌊d/2⌋, pos mod 2^32, ⌊pos/2^32⌋, {@linkcode SAMPLE_DOMAIN}), key (seed mod 2^32, ⌊seed/2^32⌋); even
 * draws take words (0, 1), odd ones (2, 3), the second word being the high half.
 *
 * @example
 * ```ts
 * const r = drawBits(7, 1234, 0);
 * ```
 */
export function drawBits(seed: number, pos: number, d: number): bigint {
  const words = philox4x32(
    [Math.floor(d / 2), pos % 2 ** 32, Math.floor(pos / 2 ** 32), SAMPLE_DOMAIN],
    [seed % 2 ** 32, Math.floor(seed / 2 ** 32)],
  );
  const lo = words[2 * (d % 2)], hi = words[2 * (d % 2) + 1];
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/**
 * Checks a sampling call's options (one-line {@linkcode SparsekdError}s naming the option).
 *
 * @example
 * ```ts
 * checkSampleOptions({ n: 16, temperature: 1, seed: 0, position0: 0 });
 * ```
 */
export function checkSampleOptions(o: SampleOptions): void {
  const bad = (option: string, what: string): never => {
    throw new SparsekdError(`${option} ${what}`, { option });
  };
  if (!Number.isSafeInteger(o.n) || o.n < 1 || o.n > MAX_SAMPLE) {
    bad("sample", `must be an integer from 1 to ${MAX_SAMPLE} draws per position (got ${o.n})`);
  }
  if (typeof o.temperature !== "number" || !Number.isFinite(o.temperature) || !(o.temperature > 0)) {
    bad("sampleTemperature", `must be a finite number > 0 (got ${o.temperature})`);
  }
  if (!Number.isSafeInteger(o.seed) || o.seed < 0) {
    bad("seed", `must be an integer from 0 to 2^53 - 1 (got ${o.seed})`);
  }
  if (!Number.isSafeInteger(o.position0) || o.position0 < 0) {
    bad("position0", `must be a non-negative integer (got ${o.position0})`);
  }
}

/**
 * Packs per-row sorted draw ids into a {@linkcode SampleResult} (distinct ids, counts, logits).
 *
 * @example
 * ```ts
 * const r = packDraws([[1, 1, 5]], (row, id) => logits[row * V + id]);
 * ```
 */
export function packDraws(
  rowsIds: ArrayLike<number>[],
  valueOf: (row: number, id: number) => number,
): SampleResult {
  const len = new Uint16Array(rowsIds.length);
  let total = 0;
  rowsIds.forEach((ids, r) => {
    let distinct = 0;
    for (let s = 0; s < ids.length; s++) if (s === 0 || ids[s] !== ids[s - 1]) distinct++;
    len[r] = distinct;
    total += distinct;
  });
  const idx = new Uint32Array(total), hits = new Uint16Array(total), val = new Float32Array(total);
  let o = 0;
  rowsIds.forEach((ids, r) => {
    for (let s = 0; s < ids.length; s++) {
      if (s > 0 && ids[s] === ids[s - 1]) {
        hits[o - 1]++;
        continue;
      }
      idx[o] = ids[s];
      hits[o] = 1;
      val[o] = valueOf(r, ids[s]);
      o++;
    }
  });
  return { len, idx, hits, val };
}

/**
 * The sorted ids of row `row`'s N draws (exact integer arithmetic; see the module comment).
 *
 * @example
 * ```ts
 * const ids = sampleRowIds(logits, 0, vocab, { n: 8, temperature: 1, seed: 1, position0: 0 });
 * ```
 */
export function sampleRowIds(
  logits: Float32Array,
  row: number,
  vocab: number,
  o: SampleOptions,
): Uint32Array {
  const base = row * vocab;
  let m = -Infinity;
  for (let i = 0; i < vocab; i++) {
    const z = logits[base + i];
    if (z > m && z !== Infinity) m = z;
  }
  const invT = f(1 / o.temperature);
  const q = new Float64Array(vocab);
  let Q = 0;
  for (let i = 0; i < vocab; i++) Q += q[i] = sampleWeight(logits[base + i], m, invT);
  const bigQ = BigInt(Q);
  const pos = o.position0 + row;
  const u: number[] = [];
  for (let d = 0; d < o.n; d++) u.push(Number((drawBits(o.seed, pos, d) * bigQ) >> 64n));
  u.sort((a, b) => a - b);
  const ids = new Uint32Array(o.n);
  let cum = 0, s = 0;
  for (let i = 0; i < vocab && s < o.n; i++) {
    cum += q[i];
    while (s < o.n && u[s] < cum) ids[s++] = i;
  }
  return ids;
}

/**
 * N draws with replacement per row from softmax(logits/t), on the CPU: the oracle of the WGSL sampler,
 * which draws exactly the same ids. `rows` rows of `vocab` float32 logits (finite, or −Infinity);
 * row r is global position `position0 + r`.
 *
 * @example
 * ```ts
 * const s = sampleReference(logits, 2, 5, { n: 16, temperature: 1, seed: 42, position0: 0 });
 * // s.len[0] distinct ids for row 0 in s.idx[0 .. s.len[0]), their counts in s.hits
 * ```
 */
export function sampleReference(
  logits: Float32Array,
  rows: number,
  vocab: number,
  o: SampleOptions,
): SampleResult {
  checkSampleOptions(o);
  if (logits.length < rows * vocab) {
    throw new SparsekdError(`sample: ${logits.length} logits given, rows * vocab = ${rows * vocab}`);
  }
  const all: Uint32Array[] = [];
  for (let r = 0; r < rows; r++) all.push(sampleRowIds(logits, r, vocab, o));
  return packDraws(all, (r, id) => logits[r * vocab + id]);
}
