/**
 * The stages that the demo and the study share: running a task of this toolkit as a child process,
 * save-topk over the demo corpus, training one student (skipped when finished, resumed when half done), the
 * final evaluation of a student against the teacher, and reading a student's metrics.jsonl.
 * @module
 */
import { fileURLToPath } from "node:url";
import { SparsekdError } from "../errors.ts";
import type { TokenSource } from "../data/source.ts";
import { checkpointDir, latestCheckpoint, loadModel } from "../model/checkpoint.ts";
import type { Gpt } from "../model/gpt.ts";
import type { RunJson } from "../format/types.ts";
import { readManifests } from "../format/manifest.ts";
import { readRunJson } from "../format/run_json.ts";
import type { EvalPoint, ReportInput, ReportStudent, TrainPoint } from "../report/types.ts";
import { openLocalStore } from "../store/local.ts";
import { finalEvaluation } from "./final_eval.ts";
import { demoSource } from "../data/demo.ts";
import { createRuntime, type Runtime } from "../gpu/runtime.ts";
import { useTfjsOnRuntime } from "../gpu/tfjs_backend.ts";
import { DEMO_TEACHER_URL } from "../teacher/builtin.ts";

const TASKS = new URL("../../tasks/", import.meta.url);

/**
 * Prints the heading of a stage on stderr.
 *
 * @example
 * ```ts
 * stage("demo", "1/4 save-topk");
 * ```
 */
export function stage(who: string, text: string): void {
  console.error(`\n${who}: ${text}`);
}

/**
 * Runs a task of this toolkit (a file of `tasks/`) as a child process, its output going straight through;
 * a failure becomes a one-line error naming `who` stopped.
 *
 * @example
 * ```ts
 * await runTask("demo", "train.ts", ["--ce-only", "--data", "builtin:demo", "--steps", "10"]);
 * ```
 */
export async function runTask(who: string, file: string, args: string[]): Promise<void> {
  const status = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", fileURLToPath(new URL(file, TASKS)), ...args],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) {
    throw new SparsekdError(`the ${who} stopped: ${file} ${args.join(" ")} failed (exit ${status.code})`);
  }
}

/** The numbers of save-topk's `--summary` file that the report uses. */
export interface SaveNumbers {
  /** Tokens computed by the run (0 when it resumed and skipped everything). */
  tokens: number;
  /** Wall time in seconds. */
  wallSeconds: number;
  /** Tokens per second. */
  tokensPerSecond: number;
  /** Seconds the GPU waited for encoding and upload. */
  gpuWaitSeconds: number;
}

/**
 * save-topk with the demo teacher over the first `sequences` of the demo corpus into `<dir>/topk`. It
 * resumes by itself; the summary of the run that computed the shards is kept in `<dir>/save_summary.json`
 * (a resumed run that skipped everything measured nothing) and returned.
 *
 * @example
 * ```ts
 * const saved = await saveDemoShards("demo", "runs/demo", { sequences: 512, k: 64 });
 * ```
 */
export async function saveDemoShards(
  who: string,
  dir: string,
  options: { sequences: number; k: number; cpu?: boolean },
): Promise<SaveNumbers | null> {
  const savedPath = `${dir}/save_summary.json`;
  const lastSave = `${dir}/save_summary.last.json`;
  await runTask(who, "save_topk.ts", [
    "--out",
    `${dir}/topk`,
    "--k",
    String(options.k),
    "--max-sequences",
    String(options.sequences),
    "--summary",
    lastSave,
    ...(options.cpu ? ["--cpu"] : []),
  ]);
  const justRan = JSON.parse(await Deno.readTextFile(lastSave)) as SaveNumbers;
  if (justRan.tokens > 0) await Deno.rename(lastSave, savedPath);
  return JSON.parse(await Deno.readTextFile(savedPath).catch(() => "null")) as SaveNumbers | null;
}

/** Options of {@linkcode trainStudent}. */
export interface StudentRun {
  /** The shards (their tokens are the training data of every student). */
  shards: string;
  /** The student's folder (checkpoints, metrics.jsonl). */
  out: string;
  /** Optimizer steps. */
  steps: number;
  /** Sequences per step. */
  batchSize: number;
  /** The flags that make this student (`--ce-only`, `--kd-mode tail`, …). */
  flags: string[];
  /** Seed of the weights and the shuffling (default 1). */
  seed?: number;
  /** Run on the CPU. */
  cpu?: boolean;
}

/**
 * Trains one student with `deno task train` (seed 1 unless given, ten evaluations and five checkpoints over the run):
 * skipped when its folder already holds the last step's checkpoint, resumed when it holds an earlier one.
 *
 * @example
 * ```ts
 * await trainStudent("demo", { shards: "runs/demo/topk", out: "runs/demo/students/ce-only", steps: 100,
 *   batchSize: 16, flags: ["--ce-only"] });
 * ```
 */
export async function trainStudent(who: string, s: StudentRun): Promise<void> {
  const store = await openLocalStore(s.out, { create: true });
  const last = await latestCheckpoint(store);
  if (last !== null && last >= s.steps) {
    console.error(`${who}: ${s.out} is finished (step ${last}): skipped`);
    return;
  }
  await runTask(who, "train.ts", [
    "--shards",
    s.shards,
    "--out",
    s.out,
    "--steps",
    String(s.steps),
    "--batch-size",
    String(s.batchSize),
    "--eval-every",
    String(Math.max(10, Math.round(s.steps / 10))),
    "--checkpoint-every",
    String(Math.max(10, Math.round(s.steps / 5))),
    "--seed",
    String(s.seed ?? 1),
    ...(last !== null ? ["--resume"] : []),
    ...s.flags,
    ...(s.cpu ? ["--cpu"] : []),
  ]);
}

/**
 * Trains `students` one after the other from `<dir>/topk` into `<dir>/students/<name>` (see
 * {@linkcode trainStudent}) with seed `o.seed` (default 1), each announced as stage `first + i` of `total`.
 *
 * @example
 * ```ts
 * await trainStudents("demo", "runs/demo", [{ name: "ce-only", description: "hard labels", flags: ["--ce-only"] }],
 *   { steps: 100, batchSize: 16, first: 2, total: 3 });
 * ```
 */
export async function trainStudents(
  who: string,
  dir: string,
  students: { name: string; description: string; flags: string[] }[],
  o: { steps: number; batchSize: number; cpu?: boolean; seed?: number; first: number; total: number },
): Promise<void> {
  for (const [i, s] of students.entries()) {
    stage(who, `${o.first + i}/${o.total} train ${s.name}: ${s.description}`);
    await trainStudent(who, {
      shards: `${dir}/topk`,
      out: `${dir}/students/${s.name}`,
      steps: o.steps,
      batchSize: o.batchSize,
      flags: s.flags,
      seed: o.seed,
      cpu: o.cpu,
    });
  }
}

/**
 * What the final evaluation needs: the runtime with tfjs on it, the demo teacher as a model and the first
 * `heldoutSequences` (default 64) sequences of the demo corpus's held-out split.
 *
 * @example
 * ```ts
 * const { rt, teacher, heldout } = await openDemoEvaluation({ heldoutSequences: 64 });
 * ```
 */
export async function openDemoEvaluation(
  o: { cpu?: boolean; heldoutSequences?: number },
): Promise<{ rt: Runtime; teacher: Gpt; heldout: TokenSource }> {
  const rt = await createRuntime({ cpu: o.cpu, quiet: true });
  await useTfjsOnRuntime(rt);
  const teacher = await loadModel(await openLocalStore(fileURLToPath(DEMO_TEACHER_URL)), "");
  const heldout = await demoSource({
    split: "heldout",
    seqLen: teacher.config.seqLen,
    maxSequences: o.heldoutSequences ?? 64,
  });
  return { rt, teacher, heldout };
}

/**
 * Loads a trained student's last checkpoint, evaluates it against `teacher` on `heldout` (full-vocabulary
 * KL, perplexity, top-1 agreement, calibration) and gathers what the report shows of it.
 *
 * @example
 * ```ts
 * const s = await evaluateStudent({ name: "ce-only", description: "hard labels", out }, teacher, heldout, 16);
 * ```
 */
export async function evaluateStudent(
  student: { name: string; description: string; out: string },
  teacher: Gpt,
  heldout: TokenSource,
  batchSize: number,
): Promise<ReportStudent> {
  const store = await openLocalStore(student.out);
  const last = await latestCheckpoint(store);
  if (last === null) {
    throw new SparsekdError(`${student.out} has no checkpoint: the training stage did not finish`);
  }
  const model = await loadModel(store, checkpointDir(last));
  try {
    const final = await finalEvaluation(model, teacher, heldout);
    const metrics = await readMetrics(`${student.out}/metrics.jsonl`);
    const ms = metrics.train.map((t) => t.msPerStep).filter((x) => x > 0);
    const msPerStep = ms.length ? ms.reduce((a, b) => a + b, 0) / ms.length : NaN;
    return {
      name: student.name,
      description: student.description,
      params: model.parameterCount(),
      steps: last,
      train: metrics.train.map((t) => ({ step: t.step, loss: t.loss })),
      eval: metrics.eval,
      final,
      stepsPerSecond: 1000 / msPerStep,
      tokensPerSecond: (1000 / msPerStep) * batchSize * teacher.config.seqLen,
    };
  } finally {
    model.dispose();
  }
}

/**
 * The training and evaluation lines of a metrics.jsonl (the last line per step wins, after a resume).
 *
 * @example
 * ```ts
 * const { train, eval: evals } = await readMetrics("runs/demo/students/ce-only/metrics.jsonl");
 * ```
 */
export async function readMetrics(
  path: string,
): Promise<{ train: (TrainPoint & { msPerStep: number })[]; eval: EvalPoint[] }> {
  const train = new Map<number, TrainPoint & { msPerStep: number }>();
  const evals = new Map<number, EvalPoint>();
  for (const line of (await Deno.readTextFile(path)).split("\n")) {
    if (!line.trim()) continue;
    const m = JSON.parse(line);
    if (m.kind === "train") train.set(m.step, { step: m.step, loss: m.loss, msPerStep: m.msPerStep });
    if (m.kind === "eval") {
      evals.set(m.step, {
        step: m.step,
        ce: m.ce,
        ppl: m.perplexity,
        kl: m.kl ?? undefined,
        top1: m.top1 ?? undefined,
      });
    }
  }
  const byStep = <T extends { step: number }>(m: Map<number, T>) =>
    [...m.values()].sort((a, b) => a.step - b.step);
  return { train: byStep(train), eval: byStep(evals) };
}

/**
 * The report's teacher and storage sections: the teacher's shape and held-out perplexity (evaluated here),
 * and the shards' bytes per token (from the host manifests) against full float32 logits, with save-topk's
 * throughput from `saved`.
 *
 * @example
 * ```ts
 * const { teacher: t, save, run } = await describeTeacherAndShards("runs/demo", teacher, heldout, saved);
 * ```
 */
export async function describeTeacherAndShards(
  dir: string,
  teacher: Gpt,
  heldout: TokenSource,
  saved: SaveNumbers | null,
): Promise<{ teacher: ReportInput["teacher"]; save: ReportInput["save"]; run: RunJson }> {
  const teacherEval = await finalEvaluation(teacher, teacher, heldout);
  const topkStore = await openLocalStore(`${dir}/topk`);
  const run = await readRunJson(topkStore);
  const manifests = await readManifests(topkStore);
  let bytes = 0, tokens = 0;
  for (const e of manifests.values()) {
    bytes += e.bytes;
    tokens += e.tokens;
  }
  const c = teacher.config;
  return {
    teacher: {
      description:
        `builtin:demo (${c.layers} layers × width ${c.width}, ${c.heads} heads, context ${c.seqLen}, ` +
        `vocabulary ${c.vocabSize})`,
      params: teacher.parameterCount(),
      heldoutPpl: teacherEval.ppl,
    },
    save: {
      tokens,
      bytes,
      bytesPerToken: tokens ? bytes / tokens : NaN,
      fullLogitsBytesPerToken: 4 * run.vocabSize,
      k: run.k,
      vocabSize: run.vocabSize,
      valueDtype: run.valueDtype,
      indexDtype: run.indexDtype,
      tokensPerSecond: saved?.tokensPerSecond ?? NaN,
      wallSeconds: saved?.wallSeconds ?? NaN,
      gpuWaitSeconds: saved?.gpuWaitSeconds ?? NaN,
    },
    run,
  };
}
