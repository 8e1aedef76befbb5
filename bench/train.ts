/**
 * `deno task bench train`: the time of a training step of the default student with the sparse-KD loss
 * (`--kd-mode topk`, the WGSL kernel) against hard-label cross-entropy (`--ce-only`, tfjs ops), on the same
 * runtime, with synthetic teacher top-k in memory (so that shard reading is not timed). Goal: KD at most
 * 1.2× the CE step.
 * @module
 */
import { intFlag, parseFlags } from "../src/cli/flags.ts";
import { createRuntime } from "../src/gpu/runtime.ts";
import { useTfjsOnRuntime } from "../src/gpu/tfjs_backend.ts";
import { createRng } from "../src/model/rng.ts";
import type { RecordSource } from "../src/train/batches.ts";
import { createSparseKdLossOp } from "../src/train/kd_loss_op.ts";
import { DEFAULT_STUDENT } from "../src/train/train.ts";
import { trainLoop, type TrainMode, type TrainRecord } from "../src/train/trainer.ts";
import { fmt, formatTable, writeResults } from "./harness.ts";

/** Synthetic records: random tokens and random sorted teacher top-k. */
function syntheticRecords(sequences: number, L: number, V: number, k: number): RecordSource<TrainRecord> {
  const rng = createRng(7);
  const records: TrainRecord[] = [];
  for (let s = 0; s < sequences; s++) {
    const tokens = Uint32Array.from({ length: L }, () => rng.int(V));
    const idx = new Uint32Array(L * k);
    const val = new Float32Array(L * k);
    for (let t = 0; t < L; t++) {
      const seen = new Set<number>();
      for (let j = 0; j < k; j++) {
        let id = rng.int(V);
        while (seen.has(id)) id = (id + 1) % V;
        seen.add(id);
        idx[t * k + j] = id;
        val[t * k + j] = 5 - j * 0.1;
      }
    }
    records.push({ tokens, idx, val });
  }
  return {
    sequences,
    async *stream(from) {
      for (let i = from; i < sequences; i++) yield records[i];
    },
  };
}

/**
 * Runs the benchmark: `--steps N` timed steps per mode after `--warmup W` (defaults 10 and 3), `--batch-size`
 * (16), `--vocab` (2048), `--seq-len` (64), `--k` (64), `--cpu`.
 *
 * @example
 * ```ts
 * await benchTrain(["--steps", "5"]);
 * ```
 */
export async function benchTrain(args: string[]): Promise<void> {
  const { values: f } = parseFlags(args, {
    steps: { type: "string" },
    warmup: { type: "string" },
    "batch-size": { type: "string" },
    vocab: { type: "string" },
    "seq-len": { type: "string" },
    k: { type: "string" },
    cpu: { type: "boolean", default: false },
  });
  const steps = intFlag("steps", f.steps, 10, { min: 1 });
  const warmup = intFlag("warmup", f.warmup, 3, { min: 1 });
  const B = intFlag("batch-size", f["batch-size"], 16, { min: 1 });
  const V = intFlag("vocab", f.vocab, 2048, { min: 2 });
  const L = intFlag("seq-len", f["seq-len"], 64, { min: 2 });
  const k = intFlag("k", f.k, 64, { min: 1, max: V });
  const rt = await createRuntime({ cpu: f.cpu });
  await useTfjsOnRuntime(rt);
  const kdLoss = await createSparseKdLossOp(rt);
  const data = syntheticRecords(Math.max(64, B * 4), L, V, k);
  const model = { vocabSize: V, seqLen: L, ...DEFAULT_STUDENT, tiedEmbeddings: true };
  const results: { mode: TrainMode; msPerStep: number }[] = [];
  for (const mode of ["ce", "topk"] as TrainMode[]) {
    const r = await trainLoop({
      rt,
      model,
      seed: 1,
      steps: warmup + steps,
      batchSize: B,
      lr: 1e-3,
      warmup: 1,
      mode,
      k,
      data,
      out: null,
      kdLoss,
      logEvery: warmup,
      log: () => {},
      progress: false,
      ...(mode === "topk" ? { alpha: 1, temperature: 1 } : {}),
    });
    r.model.dispose();
    // the read-backs after warm-up cover the timed steps
    const timed = r.stepTimes.filter((t) => t.step > warmup);
    const total = timed.reduce(
      (a, t, i) => a + t.msPerStep * (t.step - (i === 0 ? warmup : timed[i - 1].step)),
      0,
    );
    results.push({ mode, msPerStep: total / steps });
  }
  const [ce, kd] = results;
  const ratio = kd.msPerStep / ce.msPerStep;
  console.log(
    `adapter: ${
      rt.adapter?.description ?? "cpu"
    }; student ${DEFAULT_STUDENT.layers}×${DEFAULT_STUDENT.width}×` +
      `${DEFAULT_STUDENT.heads}, batch ${B}×${L}, vocab ${V}, k ${k}`,
  );
  console.log(
    formatTable(
      ["mode", "ms/step"],
      results.map((r) => [r.mode === "ce" ? "--ce-only" : "--kd-mode topk", fmt(r.msPerStep)]),
    ),
  );
  console.log(`KD / CE step time: ${fmt(ratio)}× (goal ≤ 1.2×: ${ratio <= 1.2 ? "met" : "not met"})`);
  const path = await writeResults("train", {
    adapter: rt.adapter?.description ?? "cpu",
    student: model,
    batchSize: B,
    k,
    steps,
    warmup,
    results,
    ratio,
  });
  console.log(`results: ${path}`);
}
