/**
 * A synthetic but realistic {@linkcode ReportInput} for the report tests, drawn from a seeded generator so that
 * a failing run can be replayed from its seed.
 * @module
 */
import type { ReportInput, ReportStudent } from "../src/report/types.ts";
import { makeRng } from "./_rng.ts";

/**
 * Builds a report input like the demo's: 2–4 students trained for a few hundred to a few thousand steps with
 * decaying, noisy losses, evaluations every so often, a teacher with a known perplexity and a top-k save. One
 * student's name and some descriptions contain characters that must be escaped.
 *
 * @example
 * ```ts
 * const input = syntheticReportInput(freshSeed());
 * ```
 */
export function syntheticReportInput(seed: number): ReportInput {
  const r = makeRng(seed).uniform;
  const between = (lo: number, hi: number) => lo + (hi - lo) * r();
  const int = (lo: number, hi: number) => Math.floor(between(lo, hi + 1));
  const vocabSize = [4096, 8192, 16384, 50257][int(0, 3)];
  const k = [8, 16, 32, 64, 128][int(0, 4)];
  const valueBytes = r() < 0.5 ? 2 : 4;
  const indexBytes = vocabSize <= 65536 ? 2 : 4;
  const tokens = int(20_000, 2_000_000);
  const bytesPerToken = k * (valueBytes + indexBytes) + 4 + between(0, 0.5);
  const wallSeconds = between(5, 900);
  const teacherCe = between(2.8, 4.2);
  const names = ["ce-only", `kd <top-${k}> & "friends"`, "kd-full-logits", "kd-top8-T2"];
  const nStudents = int(2, 4);
  const students: ReportStudent[] = [];
  for (let i = 0; i < nStudents; i++) {
    const steps = int(200, 3000);
    const logEvery = int(1, 10);
    const evalEvery = Math.max(logEvery, Math.floor(steps / int(4, 20)));
    const start = between(8, 9.5);
    const floor = teacherCe + between(0.1, 1.2);
    const tau = steps * between(0.1, 0.4);
    const train = [];
    for (let s = logEvery; s <= steps; s += logEvery) {
      train.push({ step: s, loss: floor + (start - floor) * Math.exp(-s / tau) + (r() - 0.5) * 0.3 });
    }
    const evals = [];
    for (let s = 0; s <= steps; s += evalEvery) {
      const ce = floor + 0.05 + (start - floor) * Math.exp(-s / tau);
      evals.push({
        step: s,
        ce,
        ppl: Math.exp(ce),
        kl: (ce - teacherCe) * between(0.6, 0.9),
        top1: Math.min(0.99, 0.05 + 0.8 * (1 - Math.exp(-s / tau))),
      });
    }
    const last = evals[evals.length - 1];
    students.push({
      name: names[i],
      description: i === 0
        ? "cross-entropy on the true tokens only"
        : `sparse KD, k=${k}, α=${between(0, 1).toFixed(2)}`,
      params: int(100_000, 20_000_000),
      steps,
      train,
      eval: evals,
      final: {
        ppl: last.ppl,
        ce: last.ce,
        kl: last.kl,
        top1: last.top1,
        ece: between(0.005, 0.2),
        // 15 bins, the low-confidence ones often empty (null is how JSON writes their NaN means)
        reliability: Array.from({ length: 15 }, (_, b) => {
          const count = b < 2 && r() < 0.6 ? 0 : int(1, 5000);
          const confidence = (b + r()) / 15;
          return count === 0 ? { confidence: NaN, accuracy: NaN, count } : {
            confidence,
            accuracy: Math.min(1, Math.max(0, confidence + (r() - 0.6) * 0.2)),
            count,
          };
        }),
      },
      stepsPerSecond: between(0.5, 60),
      tokensPerSecond: between(500, 200_000),
    });
  }
  return {
    title: `sparsekd demo <seed ${seed}>`,
    createdAt: new Date().toISOString(),
    teacher: {
      description: "builtin GPT teacher, 4 layers & 256 wide",
      params: int(1e6, 5e7),
      heldoutPpl: Math.exp(teacherCe),
    },
    save: {
      tokens,
      bytes: Math.round(bytesPerToken * tokens),
      bytesPerToken,
      fullLogitsBytesPerToken: 4 * vocabSize,
      k,
      vocabSize,
      valueDtype: valueBytes === 2 ? "f16" : "f32",
      indexDtype: indexBytes === 2 ? "u16" : "u32",
      tokensPerSecond: tokens / wallSeconds,
      wallSeconds,
      gpuWaitSeconds: wallSeconds * between(0.2, 0.9),
    },
    students,
    notes: ["Synthetic numbers <for tests> & nothing else.", `seed ${seed}`],
  };
}
