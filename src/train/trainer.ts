/**
 * The training loop: batches from a shuffled record stream, the student's forward pass, the loss
 * (cross-entropy on hard labels, or the sparse-KD op), AdamW with warm-up + cosine decay and global-norm
 * clipping, losses accumulated on the GPU and read back every few steps, held-out evaluation, checkpoints
 * and exact resume.
 * @module
 */
import * as tf from "../deps/tfjs_core.ts";
import "./gradients.ts";
import { SparsekdError } from "../errors.ts";
import { createProgress } from "../cli/progress.ts";
import type { Runtime } from "../gpu/runtime.ts";
import { checkpointDir, loadCheckpoint, saveCheckpoint, type TrainState } from "../model/checkpoint.ts";
import { throwIfGpuFailed } from "../gpu/gpu_errors.ts";
import { createGpt, type Gpt, type GptConfig, tuneTfjsForAdapter } from "../model/gpt.ts";
import type { ObjectStore } from "../store/store.ts";
import { createAdamW } from "./adamw.ts";
import { prefetchBatches, type RecordSource, shuffledRecords } from "./batches.ts";
import { crossEntropy, nextTokenTargets } from "./ce_loss.ts";
import { fullKdLoss } from "./full_kd_loss.ts";
import { type EvalResult, evaluate } from "./evaluate.ts";
import type { Divergence, SparseKdMode } from "../kernels/sparse_kd_reference.ts";
import type { SparseKdLossOp } from "./kd_loss_op.ts";
import { kdBatch, sampledBatch, type TrainMode, type TrainRecord } from "./records.ts";
import { alignMetrics, checkSettings, openCheckpoints } from "./resume.ts";
import { learningRate, parseValueSchedule, scheduleLabel, scheduleValue } from "./schedule.ts";

export type { TrainMode, TrainRecord } from "./records.ts";

/** Options of {@linkcode trainLoop}. */
export interface TrainLoopOptions {
  /** The runtime (tfjs must already run on it: see `useTfjsOnRuntime`). */
  rt: Runtime;
  /** The student's shape. */
  model: GptConfig;
  /** Seed of the initial weights and of the shuffling. */
  seed: number;
  /** Total optimizer steps. */
  steps: number;
  /** Sequences per step. */
  batchSize: number;
  /** Peak learning rate. */
  lr: number;
  /** Warm-up steps (default steps/20, rounded, at least 1; on resume: the checkpoint's). */
  warmup?: number;
  /** Final learning rate of the cosine (default lr/10). */
  minLr?: number;
  /** AdamW weight decay (default 0.1). */
  weightDecay?: number;
  /** Global-norm gradient clipping (default 1; 0 = off). */
  clipNorm?: number;
  /** The loss. */
  mode: TrainMode;
  /**
   * KD weight α in [0, 1] (KD modes; 1 − α weights the hard-label cross-entropy): a number or a schedule
   * `START:END[:linear|cosine]` over the steps (see `parseValueSchedule`).
   */
  alpha?: number | string;
  /** KD temperature T > 0: a number or a schedule, as `alpha`. */
  temperature?: number | string;
  /** The divergence of the sparse-KD loss (default `forward`; see `checkDivergence` of `src/loss/modes.ts`). */
  divergence?: Divergence;
  /** β of divergence `jsd` (default 0.5). */
  beta?: number;
  /** Top-k entries per position (KD modes). */
  k?: number;
  /** Mode `sampled`: the temperature t the records' samples were drawn at. */
  sampleTemperature?: number;
  /** The training records. */
  data: RecordSource<TrainRecord>;
  /** The held-out records (bounded: they are kept in memory). */
  heldout?: TrainRecord[];
  /**
   * Positions whose token is this id are masked (loss and gradient 0), in training and evaluation: their
   * target is the first token of the next document (text data). Undefined: only each sequence's last.
   */
  boundaryToken?: number;
  /** Shuffle window in records (default 1024). */
  shuffleWindow?: number;
  /** Where checkpoints and metrics.jsonl go (null: nowhere). */
  out: ObjectStore | null;
  /** A local folder for metrics.jsonl (default: the store's folder when it is local). */
  metricsPath?: string | null;
  /** Checkpoint every N steps (and at the end); 0 = only at the end. */
  checkpointEvery?: number;
  /** Evaluate every N steps (and at the end); 0 = only at the end. */
  evalEvery?: number;
  /** Read losses back every N steps (default 10). */
  logEvery?: number;
  /** Continue from the newest checkpoint in `out`. */
  resume?: boolean;
  /** The KD loss op (sparse KD modes). */
  kdLoss?: SparseKdLossOp;
  /**
   * Mode `full`: the teacher's logits `[count·L, V]` for a batch of tokens (a tensor the trainer disposes),
   * e.g. `Teacher.forwardTensor`.
   */
  teacher?: (tokens: Uint32Array, count: number, seqLen: number) => Promise<tf.Tensor2D>;
  /** Facts recorded in state.json and checked on resume (data fingerprint, …). */
  identity?: Record<string, unknown>;
  /** Where lines for the user go (default console.log). */
  log?: (line: string) => void;
  /** Show progress on stderr (default true). */
  progress?: boolean;
  /** Stop after this many steps of this invocation (tests of resume); the run is resumable. */
  stopAfter?: number;
  /** When it aborts: finish the current step, write a checkpoint and return with status `interrupted`. */
  signal?: AbortSignal;
}

/** What {@linkcode trainLoop} returns. */
export interface TrainLoopResult {
  /** How it ended: at the last step, by `stopAfter`, by `signal`, or resumed a finished run (nothing to do). */
  status: "finished" | "stopped" | "interrupted" | "nothing-to-do";
  /** The trained model (the caller disposes it). */
  model: Gpt;
  /** Loss of every step run in this invocation, by step number (1-based). */
  losses: Map<number, number>;
  /** The evaluations run. */
  evals: (EvalResult & { step: number })[];
  /** Mean wall time per step of this invocation, in ms (read-backs included; evaluations, checkpoints not). */
  msPerStep: number;
  /** Wall time per step between consecutive read-backs: `{ step, msPerStep }` at each read-back. */
  stepTimes: { step: number; msPerStep: number }[];
  /** The step reached. */
  step: number;
  /** The folder of the last checkpoint written or resumed from, or null. */
  checkpoint: string | null;
}

/**
 * Trains a student. Losses stay on the GPU and are read back every `logEvery` steps; a NaN loss stops the
 * run with a one-line error naming the step (checkpoints are written only after the losses before them
 * were checked, so the last one is good).
 *
 * @example
 * ```ts
 * const result = await trainLoop({ rt, model: config, seed: 1, steps: 100, batchSize: 8, lr: 3e-3,
 *   warmup: 10, mode: "ce", data: tokenRecords(source), out: null });
 * ```
 */
export async function trainLoop(o: TrainLoopOptions): Promise<TrainLoopResult> {
  const log = o.log ?? ((line: string) => console.log(line));
  const L = o.model.seqLen;
  const B = o.batchSize;
  const logEvery = Math.max(1, o.logEvery ?? 10);
  const kd = o.mode !== "ce";
  const sparse = kd && o.mode !== "full";
  if (sparse && !o.kdLoss) throw new Error("train: sparse KD modes need the kdLoss op");
  if (o.mode === "full" && !o.teacher) throw new Error("train: mode full needs the teacher");
  if (o.mode === "sampled" && !(o.sampleTemperature! > 0)) {
    throw new Error("train: mode sampled needs the samples' temperature (sampleTemperature)");
  }
  const alphaSchedule = parseValueSchedule("alpha", o.alpha ?? 1, (x) => x >= 0 && x <= 1, "in [0, 1]");
  const tSchedule = parseValueSchedule("temperature", o.temperature ?? 1, (x) => x > 0, "> 0");
  let warmup = o.warmup ?? Math.max(1, Math.round(o.steps / 20));
  let saved: TrainState | null = null;
  const model = createGpt(o.model, o.seed);
  const opt = createAdamW(model.weights, { weightDecay: o.weightDecay, clipNorm: o.clipNorm });
  let position = 0;
  let lastCheckpoint: string | null = null;
  const fail = (err: unknown): never => {
    opt.dispose();
    model.dispose();
    throw err;
  };
  if (o.out) {
    saved = await openCheckpoints(
      o.out,
      o.resume ?? false,
      log,
      (step) => loadCheckpoint(o.out!, step, model, opt.state),
    ).catch(fail);
    const w = (saved?.identity as { warmup?: unknown } | undefined)?.warmup;
    if (o.warmup === undefined && typeof w === "number") warmup = w;
  } else if (o.resume) fail(new SparsekdError("resume needs out", { option: "resume" }));
  const identity = {
    model: o.model,
    batchSize: B,
    lr: o.lr,
    warmup,
    minLr: o.minLr ?? null,
    steps: o.steps,
    mode: o.mode,
    alpha: kd ? scheduleLabel(alphaSchedule) : null,
    temperature: kd ? scheduleLabel(tSchedule) : null,
    // Recorded only when not forward KL, so that checkpoints made before divergences existed still resume.
    ...(o.divergence && o.divergence !== "forward" ? { divergence: o.divergence } : {}),
    ...(o.divergence === "jsd" ? { beta: o.beta ?? 0.5 } : {}),
    shuffleWindow: o.shuffleWindow ?? 1024,
    weightDecay: o.weightDecay ?? 0.1,
    clipNorm: o.clipNorm ?? 1,
    ...o.identity,
  };

  tuneTfjsForAdapter(o.rt);
  if (saved && o.out) {
    try {
      checkSettings(saved, { ...identity, seed: o.seed }, `${o.out.uri}/${checkpointDir(saved.step)}`);
    } catch (err) {
      fail(err);
    }
    opt.step = saved.step;
    position = saved.position;
    lastCheckpoint = checkpointDir(saved.step);
    if (saved.step >= o.steps) {
      log(`nothing to do: ${o.out.uri} finished at step ${saved.step}`);
      opt.dispose();
      return {
        status: "nothing-to-do",
        model,
        losses: new Map(),
        evals: [],
        msPerStep: 0,
        stepTimes: [],
        step: saved.step,
        checkpoint: lastCheckpoint,
      };
    }
    log(`resuming from ${o.out.uri}/${lastCheckpoint} (step ${saved.step} of ${o.steps})`);
  }
  if (o.metricsPath) await alignMetrics(o.metricsPath, saved?.step ?? null, log).catch(fail);

  const metricsLines: string[] = [];
  const metricsPath = o.metricsPath;
  const writeMetric = async (obj: Record<string, unknown>) => {
    const line = JSON.stringify(obj);
    if (metricsPath) {
      await Deno.writeTextFile(metricsPath, line + "\n", { append: true }).catch((err) => {
        throw new SparsekdError(`cannot write to ${metricsPath}: ${String(err).split("\n")[0]}`, {
          cause: err,
        });
      });
    } else metricsLines.push(line);
  };

  const vars = [...model.weights.values()];
  const names = [...model.weights.keys()];
  const schedule = { lr: o.lr, warmup, steps: o.steps, minLr: o.minLr };
  const records = shuffledRecords(o.data, { window: o.shuffleWindow ?? 1024, seed: o.seed, start: position });
  const nextBatch = prefetchBatches(records[Symbol.asyncIterator](), B, 2);
  type KdValues = { alpha: number; temperature: number } | null; // logged per step (KD modes)
  const pending: { step: number; loss: tf.Scalar; norm: tf.Scalar; lr: number; kdv: KdValues }[] = [];
  const losses = new Map<number, number>();
  const evals: (EvalResult & { step: number })[] = [];
  const progress = o.progress === false
    ? null
    : createProgress({ label: "train", total: o.steps, unit: "step" });
  let lastLoss = NaN;
  const startStep = opt.step;
  const t0 = performance.now();
  let tLast = t0, stepLast = startStep;
  let pausedMs = 0; // evaluations and checkpoints: not part of ms/step
  const stepTimes: { step: number; msPerStep: number }[] = [];

  const flush = async () => {
    if (pending.length === 0) return;
    const stacked = tf.tidy(() => tf.stack(pending.flatMap((p) => [p.loss, p.norm])));
    const values = (await stacked.data()) as Float32Array;
    stacked.dispose();
    const now = performance.now();
    const ms = (now - tLast) / Math.max(1, opt.step - stepLast);
    tLast = now;
    stepLast = opt.step;
    stepTimes.push({ step: opt.step, msPerStep: ms });
    for (let i = 0; i < pending.length; i++) {
      const p = pending[i];
      const loss = values[2 * i], norm = values[2 * i + 1];
      if (!Number.isFinite(loss)) {
        tf.dispose(pending.flatMap((q) => [q.loss, q.norm]));
        pending.length = 0;
        const kept = lastCheckpoint
          ? `the last good checkpoint ${o.out!.uri}/${lastCheckpoint} is kept`
          : "no checkpoint was written";
        throw new SparsekdError(`the loss is ${loss} at step ${p.step}: stopping (${kept})`, { exitCode: 3 });
      }
      losses.set(p.step, loss);
      const row = { kind: "train", step: p.step, loss, lr: p.lr, gradNorm: norm, msPerStep: ms, ...p.kdv };
      await writeMetric(row);
    }
    const last = pending[pending.length - 1];
    lastLoss = values[2 * (pending.length - 1)];
    log(`step ${last.step}/${o.steps}  loss ${lastLoss.toFixed(4)}  lr ${last.lr.toExponential(2)}`);
    tf.dispose(pending.flatMap((p) => [p.loss, p.norm]));
    pending.length = 0;
  };

  const runEval = async () => {
    if (!o.heldout || o.heldout.length === 0) return;
    const te = performance.now();
    const r = await evaluate(model, o.heldout, {
      batchSize: B,
      temperature: 1,
      boundaryToken: o.boundaryToken,
    });
    evals.push({ ...r, step: opt.step });
    await writeMetric({ kind: "eval", step: opt.step, ...r });
    const kdPart = r.kl !== null ? `  KL ${r.kl.toFixed(4)}  top-1 ${(100 * r.top1!).toFixed(1)}%` : "";
    log(
      `eval step ${opt.step}: held-out CE ${r.ce.toFixed(4)}  perplexity ${r.perplexity.toFixed(2)}${kdPart}`,
    );
    const now = performance.now();
    pausedMs += now - te;
    tLast = now;
  };

  const checkpoint = async () => {
    if (!o.out) return;
    await flush();
    if (lastCheckpoint === checkpointDir(opt.step)) return;
    const tc = performance.now();
    const state: TrainState = { step: opt.step, position, seed: o.seed, identity };
    // A GPU error recorded since the last op (flush() waited for the queue) must not become a checkpoint.
    if (o.rt.device) throwIfGpuFailed(o.rt.device);
    lastCheckpoint = await saveCheckpoint(o.out, model, opt.state, state);
    if (!metricsPath && metricsLines.length > 0) {
      await o.out.writeBytes(
        `${lastCheckpoint}/metrics.jsonl`,
        new TextEncoder().encode(metricsLines.join("\n") + "\n"),
      );
      metricsLines.length = 0;
    }
    tLast = performance.now();
    pausedMs += tLast - tc;
  };

  let status: TrainLoopResult["status"] = "finished";
  try {
    const limit = o.stopAfter !== undefined ? Math.min(o.steps, startStep + o.stopAfter) : o.steps;
    while (opt.step < limit) {
      const batch = await nextBatch();
      position += B;
      const step = opt.step + 1;
      const lr = learningRate(schedule, step - 1);
      const alpha = scheduleValue(alphaSchedule, step - 1, o.steps);
      const temperature = scheduleValue(tSchedule, step - 1, o.steps);
      const tokens = new Uint32Array(B * L);
      batch.forEach((r, i) => {
        if (r.tokens.length !== L) {
          throw new SparsekdError(`a sequence has ${r.tokens.length} tokens, the model ${L}`);
        }
        tokens.set(r.tokens, i * L);
      });
      for (let i = 0; i < tokens.length; i++) {
        if (tokens[i] >= o.model.vocabSize) {
          throw new SparsekdError(
            `token id ${tokens[i]} is outside the student's vocabulary (${o.model.vocabSize})`,
          );
        }
      }
      const { targets, mask } = nextTokenTargets(tokens, B, L, o.boundaryToken);
      const inputs = tf.tensor2d(new Int32Array(tokens.buffer), [B, L], "int32");
      let lossFn: () => tf.Scalar;
      const own: tf.Tensor[] = [inputs];
      if (!kd) {
        const t = tf.tensor1d(targets, "int32"), m = tf.tensor1d(mask, "float32");
        own.push(t, m);
        lossFn = () => crossEntropy(model.logits(inputs), t, m);
      } else if (o.mode === "full") {
        const z = await o.teacher!(tokens, B, L);
        const t = tf.tensor1d(targets, "int32"), m = tf.tensor1d(mask, "float32");
        own.push(z, t, m);
        lossFn = () => fullKdLoss(model.logits(inputs), z, { temperature, alpha, targets: t, mask: m });
      } else {
        const teacher = o.mode === "sampled"
          ? sampledBatch(batch, L, o.sampleTemperature!)
          : kdBatch(batch, o.k!, L, o.mode === "tail");
        const maskBytes = new Uint8Array(mask.length);
        for (let i = 0; i < mask.length; i++) maskBytes[i] = mask[i];
        lossFn = () =>
          o.kdLoss!(model.logits(inputs), teacher, {
            mode: o.mode as SparseKdMode,
            temperature,
            alpha,
            divergence: o.divergence,
            beta: o.divergence === "jsd" ? o.beta : undefined,
            labels: targets,
            mask: maskBytes,
          });
      }
      const { value, grads } = tf.variableGrads(lossFn, vars);
      const byName: Record<string, tf.Tensor> = {};
      names.forEach((n, i) => byName[n] = grads[vars[i].name]);
      const norm = opt.apply(byName, lr);
      tf.dispose([...own, ...Object.values(grads)]);
      pending.push({ step, loss: value, norm, lr, kdv: kd ? { alpha, temperature } : null });
      progress?.update(step, Number.isFinite(lastLoss) ? `loss ${lastLoss.toFixed(4)}` : "");
      if (pending.length >= logEvery) await flush();
      if (o.evalEvery && step % o.evalEvery === 0 && step < o.steps) {
        await flush();
        await runEval();
      }
      if (o.checkpointEvery && step % o.checkpointEvery === 0 && step < limit) await checkpoint();
      if (o.signal?.aborted && opt.step < limit) {
        status = "interrupted";
        break;
      }
    }
    if (status === "finished" && opt.step < o.steps) status = "stopped";
    await flush();
    if (opt.step >= o.steps) await runEval();
    await checkpoint();
    progress?.finish(Number.isFinite(lastLoss) ? `loss ${lastLoss.toFixed(4)}` : "");
  } catch (err) {
    tf.dispose(pending.flatMap((p) => [p.loss, p.norm]));
    opt.dispose();
    model.dispose();
    throw err;
  } finally {
    await records.return(undefined);
  }
  opt.dispose();
  const ran = opt.step - startStep;
  return {
    model,
    losses,
    evals,
    msPerStep: ran > 0 ? (performance.now() - t0 - pausedMs) / ran : 0,
    stepTimes,
    step: opt.step,
    status,
    checkpoint: lastCheckpoint,
  };
}
