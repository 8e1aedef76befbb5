/**
 * The students of the demo and the study: one student trained with {@linkcode train} in this process (skipped
 * when finished, resumed when started), a list of them one after the other, and how a stopped run says where.
 * @module
 */
import * as tf from "../deps/tfjs_core.ts";
import { SparsekdError } from "../errors.ts";
import { latestCheckpoint } from "../model/checkpoint.ts";
import { openLocalStore } from "../store/local.ts";
import type { Runtime } from "../gpu/runtime.ts";
import { useTfjsOnRuntime } from "../gpu/tfjs_backend.ts";
import { train, type TrainOptions } from "../train/train.ts";
import { stage } from "./stages.ts";

/**
 * What makes one student, as options of {@linkcode train} (`{ ceOnly: true }`, `{ kdMode: "tail", alpha:
 * 0.5 }`, `{ onlineTeacher: "builtin:demo" }`); the shared settings (shards, out, steps, batch, seed,
 * evaluation and checkpoint cadence, resume, runtime) are the stage's.
 */
export type StudentOptions = Omit<
  TrainOptions,
  | "shards"
  | "data"
  | "out"
  | "steps"
  | "batchSize"
  | "seed"
  | "resume"
  | "rt"
  | "cpu"
  | "evalEvery"
  | "checkpointEvery"
  | "signal"
>;

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
  /** What makes this student (`{ ceOnly: true }`, `{ kdMode: "tail", alpha: 0.5 }`, …). */
  options: StudentOptions;
  /** Seed of the weights and the shuffling (default 1). */
  seed?: number;
  /** The runtime every stage shares. */
  rt: Runtime;
  /** Aborted: the student stops after its current step with a checkpoint, and an error says how to go on. */
  signal?: AbortSignal;
}

/** How {@linkcode trainStudent} found and left a student. */
export type StudentStatus = "skipped" | "trained" | "resumed";

/**
 * Trains one student with {@linkcode train} in this process (seed 1 unless given, ten evaluations and five
 * checkpoints over the run): skipped when its folder already holds the last step's checkpoint, resumed when
 * it holds an earlier one. Everything it allocates (model, optimizer, teacher, tensors) is disposed before
 * it returns.
 *
 * @example
 * ```ts
 * await trainStudent("demo", { shards: "runs/demo/topk", out: "runs/demo/students/ce-only", steps: 100,
 *   batchSize: 16, options: { ceOnly: true }, rt });
 * ```
 */
export async function trainStudent(who: string, s: StudentRun): Promise<StudentStatus> {
  const store = await openLocalStore(s.out, { create: true });
  const last = await latestCheckpoint(store);
  if (last !== null && last >= s.steps) {
    console.error(`${who}: ${s.out} is finished (step ${last}): skipped`);
    return "skipped";
  }
  await useTfjsOnRuntime(s.rt);
  const tensors = tf.memory().numTensors;
  const r = await train({
    ...s.options,
    signal: s.signal,
    shards: s.shards,
    out: s.out,
    steps: s.steps,
    batchSize: s.batchSize,
    evalEvery: Math.max(10, Math.round(s.steps / 10)),
    checkpointEvery: Math.max(10, Math.round(s.steps / 5)),
    seed: s.seed ?? 1,
    resume: last !== null,
    rt: s.rt,
    command: `${who}: train ${s.out}`,
  });
  const left = tf.memory().numTensors - tensors;
  if (left > 0) console.error(`${who}: warning: training ${s.out} left ${left} tfjs tensors allocated`);
  if (r.status === "interrupted") throw stopped(who, `${s.out} at step ${r.step} (checkpoint written)`);
  return last !== null ? "resumed" : "trained";
}

/** One student of a run: its folder name under `<dir>/students/`, what it is, and the options that make it. */
export interface StudentSpec {
  /** Folder name under `<dir>/students/`. */
  name: string;
  /** What it is (shown in the report). */
  description: string;
  /** The options of {@linkcode train} that make it. */
  options: StudentOptions;
  /** The shards folder under `<dir>` it trains from (default `topk`; e.g. `sample64` for sampled targets). */
  shards?: string;
}

/**
 * Trains `students` one after the other from `<dir>/<shards>` (default `<dir>/topk`) into `<dir>/students/<name>` (see
 * {@linkcode trainStudent}) with seed `o.seed` (default 1), each announced as stage `first + i` of `total`.
 * Returns what happened to each.
 *
 * @example
 * ```ts
 * await trainStudents("demo", "runs/demo", [{ name: "ce-only", description: "hard labels",
 *   options: { ceOnly: true } }], { steps: 100, batchSize: 16, rt, first: 2, total: 3 });
 * ```
 */
export async function trainStudents(
  who: string,
  dir: string,
  students: StudentSpec[],
  o: {
    steps: number;
    batchSize: number;
    rt: Runtime;
    seed?: number;
    first: number;
    total: number;
    signal?: AbortSignal;
  },
): Promise<StudentStatus[]> {
  const done: StudentStatus[] = [];
  for (const [i, s] of students.entries()) {
    if (o.signal?.aborted) throw stopped(who, `before ${s.name}`);
    stage(who, `${o.first + i}/${o.total} train ${s.name}: ${s.description}`);
    done.push(
      await trainStudent(who, {
        shards: `${dir}/${s.shards ?? "topk"}`,
        out: `${dir}/students/${s.name}`,
        steps: o.steps,
        batchSize: o.batchSize,
        options: s.options,
        seed: o.seed,
        rt: o.rt,
        signal: o.signal,
      }),
    );
  }
  return done;
}

/**
 * The error a run that was asked to stop ends with: where it stopped, and that the same command resumes it
 * (exit 130, as after Ctrl-C).
 *
 * @example
 * ```ts
 * const err = stopped("demo", "runs/demo/students/ce-only at step 40");
 * console.assert(err.exitCode === 130);
 * ```
 */
export function stopped(who: string, where: string): SparsekdError {
  return new SparsekdError(`${who} stopped: ${where}; run the same command again to go on from there`, {
    exitCode: 130,
  });
}
