/**
 * How concentrated a teacher's predictions are on held-out data: its mean probability mass in its top-K
 * tokens, its mean entropy, and its cross-entropy on the true next tokens, computed from its full logits
 * (the teacher is run; no shards needed). What `tools/teacher_mass.ts` prints and the models' READMEs quote.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { openSource } from "../data/open_source.ts";
import type { TokenSource } from "../data/source.ts";
import { createRuntime, type Runtime } from "../gpu/runtime.ts";
import { openTeacher } from "../teacher/open_teacher.ts";
import type { Teacher } from "../teacher/teacher.ts";

/** Options of {@linkcode teacherMass}. */
export interface TeacherMassOptions {
  /** The K of the top-K masses, ascending integers in [1, V] (default [1, 8, 64]). */
  ks?: number[];
  /** Use the first this many sequences of the source (default all). */
  sequences?: number;
  /** Sequences per teacher call (default 8). */
  batchSize?: number;
}

/** What {@linkcode teacherMass} measured. */
export interface TeacherMass {
  /** The K of each `mass` entry. */
  ks: number[];
  /** Mean over positions of the teacher's probability mass in its top-K tokens (T = 1), per K of `ks`. */
  mass: number[];
  /** Mean over positions of the entropy of the teacher's distribution, in nats. */
  entropy: number;
  /** Positions averaged in `mass` and `entropy`: every position of every sequence. */
  positions: number;
  /** Mean cross-entropy (nats) of the teacher on the true next token (every position but each sequence's last). */
  ce: number;
  /** exp(ce). */
  perplexity: number;
  /** Fraction of those positions where the teacher's top-1 token is the true next token. */
  top1Accuracy: number;
  /** Positions averaged in `ce` and `top1Accuracy`. */
  predicted: number;
  /** Sequences read. */
  sequences: number;
}

/** Per-row statistics of one logits row `z` (length V) with next token `next` (−1: none), added to `acc`. */
function addRow(
  z: Float32Array,
  next: number,
  ks: number[],
  sorted: Float64Array,
  acc: { mass: number[]; entropy: number; ce: number; hits: number },
): void {
  const V = z.length;
  let max = -Infinity, argmax = 0;
  for (let v = 0; v < V; v++) {
    if (z[v] > max) {
      max = z[v];
      argmax = v;
    }
  }
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(z[v] - max);
  const lse = max + Math.log(sum);
  let expectedZ = 0;
  for (let v = 0; v < V; v++) {
    const p = Math.exp(z[v] - lse);
    sorted[v] = p;
    expectedZ += p * z[v];
  }
  acc.entropy += lse - expectedZ;
  sorted.sort().reverse();
  let mass = 0;
  for (let j = 0, ki = 0; j < V && ki < ks.length; j++) {
    mass += sorted[j];
    while (ki < ks.length && ks[ki] === j + 1) acc.mass[ki++] += Math.min(1, mass);
  }
  if (next >= 0) {
    acc.ce += lse - z[next];
    if (argmax === next) acc.hits++;
  }
}

/**
 * Runs `teacher` over the first `sequences` sequences of `source` and measures how concentrated its
 * predictions are: per position, the probability mass (softmax at T = 1, in float64) of its K most probable
 * tokens for each K of `ks`, and its entropy, averaged over every position; and its cross-entropy and top-1
 * accuracy on the true next token. Memory: one batch of logits at a time.
 *
 * @example
 * ```ts
 * const rt = await createRuntime({ cpu: true });
 * const teacher = await openTeacher("builtin:tslib", rt);
 * const heldout = await openSource("builtin:tslib", { seqLen: 64, split: "heldout", maxSequences: 64 });
 * const m = await teacherMass(teacher, heldout); // m.mass = [top-1, top-8, top-64], m.entropy
 * ```
 */
export async function teacherMass(
  teacher: Teacher,
  source: TokenSource,
  options: TeacherMassOptions = {},
): Promise<TeacherMass> {
  const ks = options.ks ?? [1, 8, 64];
  const V = teacher.vocabSize;
  ks.forEach((k, i) => {
    if (!Number.isInteger(k) || k < 1 || k > V || (i > 0 && k <= ks[i - 1])) {
      throw new SparsekdError(
        `ks must be ascending integers from 1 to the vocabulary size ${V} (got ${JSON.stringify(ks)})`,
        { option: "ks" },
      );
    }
  });
  const S = options.sequences ?? source.sequences;
  if (!Number.isInteger(S) || S < 1 || S > source.sequences) {
    throw new SparsekdError(
      `sequences must be an integer from 1 to the ${source.sequences} of ${source.description} (got ${S})`,
      { option: "sequences" },
    );
  }
  const batch = options.batchSize ?? 8;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new SparsekdError(`batchSize must be an integer ≥ 1 (got ${batch})`, { option: "batchSize" });
  }
  const L = source.seqLen;
  const acc = { mass: ks.map(() => 0), entropy: 0, ce: 0, hits: 0 };
  const sorted = new Float64Array(V);
  for (let start = 0; start < S; start += batch) {
    const count = Math.min(batch, S - start);
    const tokens = await source.read(start, count);
    const logits = await rowsOf(teacher, tokens, start, count, L);
    if (logits.length !== count * L * V) {
      throw new SparsekdError(
        `${teacher.description} returned ${logits.length} logits for ${count}×${L}×${V}`,
      );
    }
    for (let r = 0; r < count * L; r++) {
      const next = r % L === L - 1 ? -1 : tokens[r + 1];
      addRow(logits.subarray(r * V, (r + 1) * V), next, ks, sorted, acc);
    }
  }
  const positions = S * L, predicted = S * (L - 1);
  const ce = acc.ce / Math.max(1, predicted);
  return {
    ks: [...ks],
    mass: acc.mass.map((m) => m / positions),
    entropy: acc.entropy / positions,
    positions,
    ce,
    perplexity: Math.exp(ce),
    top1Accuracy: acc.hits / Math.max(1, predicted),
    predicted,
    sequences: S,
  };
}

/** The teacher's logits of one batch in memory (tfjs teachers through their tensor, others on the CPU). */
async function rowsOf(
  teacher: Teacher,
  tokens: Uint32Array,
  start: number,
  count: number,
  L: number,
): Promise<Float32Array> {
  if (teacher.forwardTensor) {
    const y = await teacher.forwardTensor(tokens, start, count, L);
    try {
      return (await y.data()) as Float32Array;
    } finally {
      y.dispose();
    }
  }
  const out = await teacher.forward(tokens, start, count, L);
  if (out.kind !== "cpu") {
    out.release();
    throw new SparsekdError(`${teacher.description}: its logits stay on the GPU; run with --cpu`, {
      option: "teacher",
    });
  }
  return out.array;
}

/** Options of {@linkcode measureTeacherMass}: what `tools/teacher_mass.ts` passes. */
export interface MeasureTeacherMassOptions extends TeacherMassOptions {
  /** The `--teacher` spec, e.g. `builtin:tslib`. */
  teacher: string;
  /** The `--data` spec (default: the teacher's own corpus for a `builtin:` teacher). */
  data?: string;
  /** Split of a `builtin:` corpus (default `heldout`). */
  split?: "train" | "heldout";
  /** Tokens per sequence (default: the teacher's, else 64). */
  seqLen?: number;
  /** The runtime (default: a new one, WebGPU unless `cpu`). */
  rt?: Runtime;
  /** Run on tfjs-backend-cpu. */
  cpu?: boolean;
}

/**
 * Opens the teacher and the data a pair of specs name and runs {@linkcode teacherMass} on the first
 * `sequences` (default 64) sequences of the held-out split.
 *
 * @example
 * ```ts
 * const m = await measureTeacherMass({ teacher: "builtin:tslib", cpu: true });
 * console.log(m.mass, m.entropy);
 * ```
 */
export async function measureTeacherMass(
  o: MeasureTeacherMassOptions,
): Promise<TeacherMass & { data: string }> {
  const data = o.data ?? (o.teacher.startsWith("builtin:") ? o.teacher : undefined);
  if (data === undefined) {
    throw new SparsekdError(`data: give the data to measure ${o.teacher} on`, { option: "data" });
  }
  const rt = o.rt ?? await createRuntime({ cpu: o.cpu, quiet: true });
  const teacher = await openTeacher(o.teacher, rt);
  try {
    const isBuiltin = data.startsWith("builtin:");
    const source = await openSource(data, {
      seqLen: o.seqLen ?? teacher.seqLen ?? (isBuiltin ? 64 : undefined),
      split: isBuiltin ? o.split ?? "heldout" : o.split,
      vocabSize: teacher.vocabSize,
    });
    const sequences = o.sequences ?? Math.min(64, source.sequences);
    return { ...(await teacherMass(teacher, source, { ...o, sequences })), data: source.description };
  } finally {
    teacher.dispose();
    if (!o.rt) rt.destroy();
  }
}
