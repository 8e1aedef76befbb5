// The random sparse-KD batches of the kernel tests (a file without `_test`, so it is not run itself).
import type { SparseKdTeacher } from "../src/kernels/sparse_kd_reference.ts";

/** log Σ exp(xs), in float64. */
export function lse(xs: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, xs[i]);
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += Math.exp(xs[i] - m);
  return m + Math.log(s);
}

/** A random batch of the sparse-KD tests. */
export interface Case {
  rows: number;
  vocab: number;
  s: Float32Array;
  teacher: SparseKdTeacher;
  teacherFull: Float64Array[];
}

/** A random batch: student logits, a full teacher row per position, its top-k (shuffled) and Lz(T). */
export function randomCase(
  rand: () => number,
  rows: number,
  vocab: number,
  k: number,
  T: number,
  spread = 8,
): Case {
  const s = Float32Array.from({ length: rows * vocab }, () => (rand() - 0.5) * spread);
  const indices = new Uint32Array(rows * k);
  const values = new Float32Array(rows * k);
  const logsumexp = new Float32Array(rows);
  const teacherFull: Float64Array[] = [];
  for (let r = 0; r < rows; r++) {
    const z = Float64Array.from({ length: vocab }, () => Math.fround((rand() - 0.5) * spread * 1.5));
    teacherFull.push(z);
    const top = Array.from(z, (v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, k);
    for (let i = top.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [top[i], top[j]] = [top[j], top[i]];
    }
    top.forEach(([v, id], i) => {
      indices[r * k + i] = id;
      values[r * k + i] = v;
    });
    logsumexp[r] = lse(Array.from(z, (v) => v / T));
  }
  return { rows, vocab, s, teacher: { indices, values, k, logsumexp }, teacherFull };
}
