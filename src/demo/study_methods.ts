/**
 * The study's methods: what each student of `deno task study` is (its folder name, the shards it trains
 * from, the options of `train` that make it) and how many bytes per position its targets cost. One list,
 * built from the study's settings, that the runner, the tables and the chart all read.
 * @module
 */
import type { StudentOptions } from "./students.ts";

/** One method of the study, for one α. */
export interface StudyMethod {
  /** The method's id, without α or seed (`ce-only`, `online-full`, `tail-k64`, `sampled-n16`, `jsd-tail-k64`). */
  id: string;
  /** What the table calls it (`offline tail`, `sampled`, `JSD (β=0.5) on tail`, …). */
  method: string;
  /** The support's K (top-k methods), or null. */
  k: number | null;
  /** Draws per position (sampled methods), or null. */
  n: number | null;
  /** What the stored targets are: none (ce-only, online), the top-k shards or the sample shards with N draws. */
  targets: "none" | "topk" | `sample${number}`;
  /** Whether α matters (false for CE-only, which one folder per seed serves for every α). */
  usesAlpha: boolean;
  /** The options of `train` that make it, given α. */
  options: (alpha: number) => StudentOptions;
}

/** The settings the method list depends on. */
export interface StudyMethodSettings {
  /** The teacher spec (`builtin:demo`), for the online student. */
  teacher: string;
  /** The K of the offline top-k students (the shards hold the largest). */
  ks: number[];
  /** The N of the sampled students (one sample folder per N). */
  samples: number[];
  /** β of the JSD student. */
  beta: number;
  /** The support of the reverse-KL and JSD students: `tail` or `renorm`, at the largest K. */
  divergenceSupport: "tail" | "renorm";
}

/**
 * Every method of the study, in table order: CE-only, online full KD, `topk`/`renorm`/`tail` at each K,
 * `sampled` at each N, then reverse KL and JSD on `divergenceSupport` at the largest K.
 *
 * @example
 * ```ts
 * const methods = studyMethods({ teacher: "builtin:demo", ks: [8, 64], samples: [16, 64], beta: 0.5,
 *   divergenceSupport: "tail" });
 * methods.map((m) => m.id); // ["ce-only", "online-full", "topk-k8", …, "jsd-tail-k64"]
 * ```
 */
export function studyMethods(s: StudyMethodSettings): StudyMethod[] {
  const maxK = Math.max(...s.ks);
  const out: StudyMethod[] = [
    {
      id: "ce-only",
      method: "ce-only",
      k: null,
      n: null,
      targets: "none",
      usesAlpha: false,
      options: () => ({ ceOnly: true }),
    },
    {
      id: "online-full",
      method: "online full KD",
      k: null,
      n: null,
      targets: "none",
      usesAlpha: true,
      options: (alpha) => ({ onlineTeacher: s.teacher, alpha }),
    },
  ];
  for (const k of s.ks) {
    for (const mode of ["topk", "renorm", "tail"] as const) {
      out.push({
        id: `${mode}-k${k}`,
        method: `offline ${mode}`,
        k,
        n: null,
        targets: "topk",
        usesAlpha: true,
        options: (alpha) => ({ kdMode: mode, k, alpha }),
      });
    }
  }
  for (const n of s.samples) {
    out.push({
      id: `sampled-n${n}`,
      method: "offline sampled",
      k: null,
      n,
      targets: `sample${n}`,
      usesAlpha: true,
      options: (alpha) => ({ kdMode: "sampled", alpha }),
    });
  }
  const sup = s.divergenceSupport;
  out.push({
    id: `reverse-${sup}-k${maxK}`,
    method: `reverse KL on ${sup}`,
    k: maxK,
    n: null,
    targets: "topk",
    usesAlpha: true,
    options: (alpha) => ({ kdMode: sup, k: maxK, alpha, divergence: "reverse" }),
  }, {
    id: `jsd-${sup}-k${maxK}`,
    method: `JSD (β=${s.beta}) on ${sup}`,
    k: maxK,
    n: null,
    targets: "topk",
    usesAlpha: true,
    options: (alpha) => ({ kdMode: sup, k: maxK, alpha, divergence: "jsd", beta: s.beta }),
  });
  return out;
}

/**
 * The folder name of a method's student for one α and seed: `<id>-a<α>-s<seed>`, or `ce-only-s<seed>`.
 *
 * @example
 * ```ts
 * studentFolder({ id: "tail-k64", usesAlpha: true }, 0.5, 2); // "tail-k64-a0.5-s2"
 * ```
 */
export function studentFolder(m: Pick<StudyMethod, "id" | "usesAlpha">, alpha: number, seed: number): string {
  return m.usesAlpha ? `${m.id}-a${alpha}-s${seed}` : `${m.id}-s${seed}`;
}

/**
 * The bytes per position a top-K method's targets take, from the measured bytes per position of the shards
 * saved at `savedK`: each of the K entries costs one id and one value (`entryBytes`), the rest (tokens,
 * logsumexps, framing) is what the saved shards hold besides their entries. Exact up to MessagePack's
 * length prefixes (a byte or two per array per record).
 *
 * @example
 * ```ts
 * topKBytesPerPosition(392.6, 64, 8, 4); // 168.6
 * ```
 */
export function topKBytesPerPosition(
  measured: number,
  savedK: number,
  k: number,
  entryBytes: number,
): number {
  return measured - (savedK - k) * entryBytes;
}
