/**
 * The host-side rules of the radix top-k kernel (`./topk_radix.ts`): its options, the tuning plan of a call
 * and the checks that refuse bad options, and the refusal of rows with non-finite logits.
 * @module
 */
import type { Runtime } from "../gpu/runtime.ts";
import { SparsekdError } from "../errors.ts";
import { NonFiniteLogitsError, type TopKOptions } from "./topk_reference.ts";

/** Options of {@linkcode topKRadix}: the temperatures, and tuning knobs (defaults suit real GPUs). */
export interface TopKRadixOptions extends TopKOptions {
  /** Workgroups per row (1 to 64, at most the workgroup size); default {@linkcode radixSplit}. */
  split?: number;
  /** Rows below which the default split uses several workgroups per row (default 1024). */
  splitBelowRows?: number;
  /** Threads per workgroup: 64, 128 or 256 (default 256). */
  workgroupSize?: number;
  /** Independent vec4 loads per thread and step, 1 to 8 (default 4). */
  loads?: number;
  /**
   * Candidate buffer entries in workgroup memory, more than k (default: what the device allows, ≤ 4096;
   * ≤ 2048 on a software adapter).
   */
  capacity?: number;
}

/** Why a row is refused: the kind of non-finite logits it holds. */
export type NonFiniteKind = "NaN" | "+Infinity" | "only -Infinity";

/**
 * A row holds NaN or +Infinity, or nothing but -Infinity. `row` is the first such row (0-based).
 *
 * @example
 * ```ts
 * try {
 *   await topKRadix(rt, logits, rows, vocab, k);
 * } catch (e) {
 *   if (e instanceof NonFiniteRowError) console.error(`row ${e.row}: ${e.kind}`);
 * }
 * ```
 */
export class NonFiniteRowError extends NonFiniteLogitsError {
  /** What the row holds. */
  readonly kind: NonFiniteKind;
  /**
   * @param row the first bad row (0-based)
   * @param kind what it holds
   */
  constructor(row: number, kind: NonFiniteKind) {
    super(row);
    this.name = "NonFiniteRowError";
    this.kind = kind;
    this.message = kind === "only -Infinity"
      ? `the logits of row ${row} are all -Infinity: the teacher produced non-finite output`
      : `the logits hold ${kind} in row ${row}: the teacher produced non-finite output`;
  }
}

/** The default candidate buffer capacity on a software adapter (at most). */
export const SOFTWARE_CAP = 2048;
/** Most workgroups per row. */
export const MAX_SPLIT = 64;
/** Workgroup memory besides the candidate buffer, per thread and fixed (bytes; see the shader). */
const WG_BYTES_PER_THREAD = 4; // xch (the reductions' f32 and the scan's u32)
const WG_BYTES_FIXED = 1024 + 4 + 4 + 64 + 16 + 20 + 4 + 64; // hist, counters, red16, sh_u, sel, sh_f, slack

/**
 * Workgroups per row: 1 on a software adapter or with `splitBelowRows` rows or more; otherwise enough to
 * give the GPU about `splitBelowRows` workgroups (8 per SM on a 132-SM H200), at most 64 and each reading
 * at least 16,384 values.
 *
 * @example
 * ```ts
 * radixSplit(4, 262_144, false); // 16
 * radixSplit(4096, 32_000, false); // 1
 * ```
 */
export function radixSplit(rows: number, vocab: number, software: boolean, splitBelowRows = 1024): number {
  if (software || rows >= splitBelowRows || rows === 0) return 1;
  const want = Math.ceil(splitBelowRows / rows);
  return Math.max(1, Math.min(want, MAX_SPLIT, Math.floor(vocab / 16_384)));
}

/** The resolved tuning of one call. */
export interface Plan {
  /** Temperatures of the call; the pipeline is compiled for `ntBucket` >= nt. */
  ntBucket: number;
  wg: number;
  loads: number;
  cap: number;
  split: number;
  nt: number;
  k: number;
  vocab: number;
}

function fail(option: string, msg: string): never {
  throw new SparsekdError(`${option} ${msg}`, { option });
}

/**
 * The tuning of one call: `o`'s knobs checked against the device's limits (a bad one is a
 * `SparsekdError` naming the option), the rest defaulted.
 *
 * @example
 * ```ts
 * const plan = planOf(rt, rows, vocab, k, temps.length, { loads: 2 });
 * ```
 */
export function planOf(
  rt: Runtime,
  rows: number,
  vocab: number,
  k: number,
  nt: number,
  o: TopKRadixOptions,
): Plan {
  const limits = rt.device!.limits;
  const wg = o.workgroupSize ?? 256;
  if (![64, 128, 256].includes(wg) || wg > limits.maxComputeInvocationsPerWorkgroup) {
    fail("workgroupSize", `must be 64, 128 or 256 and within the device's limit (got ${wg})`);
  }
  const loads = o.loads ?? 4;
  if (!Number.isInteger(loads) || loads < 1 || loads > 8) fail("loads", `must be 1 to 8 (got ${loads})`);
  const room = limits.maxComputeWorkgroupStorageSize - WG_BYTES_FIXED - WG_BYTES_PER_THREAD * wg;
  const maxCap = Math.min(4096, Math.floor(room / 8 / 4) * 4);
  // On a software adapter the default stays at 2,048: Mesa's OpenGL path (llvmpipe) compiles the kernel in
  // a time that grows with the square of its workgroup memory (naga zero-initializes it element by element
  // there; see shaders/topk_radix.wgsl), about 5 minutes at 3,816 entries against 1 at 2,048.
  const cap = o.capacity ?? (rt.adapter?.software ? Math.min(maxCap, SOFTWARE_CAP) : maxCap);
  if (!Number.isInteger(cap) || cap <= k || cap > maxCap) {
    fail("capacity", `must be an integer above k = ${k} and at most ${maxCap} on this device (got ${cap})`);
  }
  const splitBelowRows = o.splitBelowRows ?? 1024;
  if (!Number.isInteger(splitBelowRows) || splitBelowRows < 1) {
    fail("splitBelowRows", `must be a whole number >= 1 (got ${splitBelowRows})`);
  }
  const split = o.split ?? radixSplit(rows, vocab, rt.adapter?.software ?? false, splitBelowRows);
  if (!Number.isInteger(split) || split < 1 || split > Math.min(MAX_SPLIT, wg)) {
    fail("split", `must be a whole number from 1 to ${Math.min(MAX_SPLIT, wg)} (got ${split})`);
  }
  return { wg, loads, cap, split, nt, ntBucket: nt <= 4 ? 4 : 32, k, vocab };
}

/** The kind of a refused row from its flags (1: NaN, 2: +Infinity, 4: a finite value). */
export function kindOf(flags: number): NonFiniteKind {
  return flags & 1 ? "NaN" : flags & 2 ? "+Infinity" : "only -Infinity";
}

/**
 * The first row holding NaN or +Infinity or nothing but -Infinity, as the error to throw; null if none.
 *
 * @example
 * ```ts
 * const bad = firstBadRow(logits, rows, vocab);
 * if (bad) throw bad;
 * ```
 */
export function firstBadRow(logits: Float32Array, rows: number, vocab: number): NonFiniteRowError | null {
  for (let r = 0; r < rows; r++) {
    let flags = 0;
    for (let i = r * vocab; i < (r + 1) * vocab; i++) {
      const x = logits[i];
      if (Number.isNaN(x)) flags |= 1;
      else if (x === Infinity) flags |= 2;
      else if (x !== -Infinity) flags |= 4;
    }
    if (flags !== 4) return new NonFiniteRowError(r, kindOf(flags));
  }
  return null;
}
