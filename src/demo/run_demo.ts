/**
 * The whole job on the embedded default: save-topk with the demo teacher over the demo corpus, a student
 * trained with offline KD from those shards, a CE-only student of the same size for the same steps and data,
 * a final evaluation of both on the held-out split, and the report. Every stage resumes: a second run
 * skips what is finished.
 * @module
 */
import { SparsekdError } from "../cli/errors.ts";
import { createRuntime } from "../gpu/runtime.ts";
import { useTfjsOnRuntime } from "../gpu/tfjs_backend.ts";
import { demoSource } from "../data/demo.ts";
import { openLocalStore } from "../store/local.ts";
import { checkpointDir, latestCheckpoint, loadModel } from "../model/checkpoint.ts";
import { DEMO_TEACHER_URL } from "../teacher/builtin.ts";
import { readManifests } from "../format/manifest.ts";
import { readRunJson } from "../format/run_json.ts";
import { writeReport } from "../report/write_report.ts";
import type { EvalPoint, ReportInput, ReportStudent, TrainPoint } from "../report/types.ts";
import { finalEvaluation } from "./final_eval.ts";
import { fileURLToPath } from "node:url";

/** Options of {@linkcode runDemo}. */
export interface DemoOptions {
  /** The run folder (default `runs/demo`). */
  dir?: string;
  /** Sequences of the demo corpus's train split given to save-topk (default 512). */
  sequences?: number;
  /** Optimizer steps of each student (default 100). */
  steps?: number;
  /** Sequences per step (default 16). */
  batchSize?: number;
  /** Top-k kept per position (default 64). */
  k?: number;
  /** Held-out sequences of the final evaluation (default 64). */
  heldoutSequences?: number;
  /** Run on the CPU. */
  cpu?: boolean;
}

/** One student of the demo: its name, what it is, and the extra train flags that make it. */
const STUDENTS = [
  {
    name: "kd-topk",
    description: "offline KD, teacher renormalized over its top-k (--kd-mode topk, α=1)",
    flags: [],
  },
  {
    name: "kd-tail",
    description: "offline KD with the exact tail mass from the stored logsumexp, plus hard labels " +
      "(--kd-mode tail, α=0.5)",
    flags: ["--kd-mode", "tail", "--alpha", "0.5"],
  },
  { name: "ce-only", description: "hard labels only (--ce-only), same data and steps", flags: ["--ce-only"] },
];

const TASKS = new URL("../../tasks/", import.meta.url);

/**
 * Runs the demo and returns the path of the report.
 *
 * @example
 * ```ts
 * const report = await runDemo({ dir: "runs/demo" });
 * ```
 */
export async function runDemo(options: DemoOptions = {}): Promise<string> {
  const dir = options.dir ?? "runs/demo";
  const S = options.sequences ?? 512;
  const steps = options.steps ?? 100;
  const batch = options.batchSize ?? 16;
  const k = options.k ?? 64;
  const cpu = options.cpu ? ["--cpu"] : [];
  await Deno.mkdir(dir, { recursive: true });
  const t0 = performance.now();

  // 1. save-topk (resumes by itself; the summary of the run that computed the shards is kept).
  stage(
    `1/${STUDENTS.length + 2} save-topk: demo teacher over ${S} sequences of the demo corpus → ${dir}/topk`,
  );
  const savedPath = `${dir}/save_summary.json`;
  const lastSave = `${dir}/save_summary.last.json`;
  const saveArgs = [
    "--out",
    `${dir}/topk`,
    "--k",
    String(k),
    "--max-sequences",
    String(S),
    "--summary",
    lastSave,
  ];
  await task("save_topk.ts", [...saveArgs, ...cpu]);
  // Keep the summary of the run that computed shards (a resumed run that skipped everything measured nothing).
  const justRan = JSON.parse(await Deno.readTextFile(lastSave)) as SaveNumbers;
  if (justRan.tokens > 0) await Deno.rename(lastSave, savedPath);

  // 2–3. the two students, same size, steps, data and seed.
  for (const [i, s] of STUDENTS.entries()) {
    const out = `${dir}/students/${s.name}`;
    stage(`${i + 2}/${STUDENTS.length + 2} train ${s.name}: ${s.description}`);
    const store = await openLocalStore(out, { create: true });
    const last = await latestCheckpoint(store);
    if (last !== null && last >= steps) {
      console.error(`demo: ${out} is finished (step ${last}): skipped`);
      continue;
    }
    await task("train.ts", [
      "--shards",
      `${dir}/topk`,
      "--out",
      out,
      "--steps",
      String(steps),
      "--batch-size",
      String(batch),
      "--eval-every",
      String(Math.max(10, Math.round(steps / 10))),
      "--checkpoint-every",
      String(Math.max(10, Math.round(steps / 5))),
      "--seed",
      "1",
      ...(last !== null ? ["--resume"] : []),
      ...s.flags,
      ...cpu,
    ]);
  }

  // 4. final evaluation on the held-out split, with the teacher run in this process, and the report.
  stage(
    `${STUDENTS.length + 2}/${
      STUDENTS.length + 2
    } evaluate the students on the held-out split against the teacher; write the report`,
  );
  const rt = await createRuntime({ cpu: options.cpu, quiet: true });
  await useTfjsOnRuntime(rt);
  const teacher = await loadModel(await openLocalStore(fileURLToPath(DEMO_TEACHER_URL)), "");
  const heldout = await demoSource({
    split: "heldout",
    seqLen: teacher.config.seqLen,
    maxSequences: options.heldoutSequences ?? 64,
  });
  const students: ReportStudent[] = [];
  for (const s of STUDENTS) {
    const out = `${dir}/students/${s.name}`;
    const store = await openLocalStore(out);
    const last = await latestCheckpoint(store);
    if (last === null) throw new SparsekdError(`${out} has no checkpoint: the training stage did not finish`);
    const model = await loadModel(store, checkpointDir(last));
    const final = await finalEvaluation(model, teacher, heldout);
    const metrics = await readMetrics(`${out}/metrics.jsonl`);
    const ms = metrics.train.map((t) => t.msPerStep).filter((x) => x > 0);
    const msPerStep = ms.length ? ms.reduce((a, b) => a + b, 0) / ms.length : NaN;
    students.push({
      name: s.name,
      description: s.description,
      params: model.parameterCount(),
      steps: last,
      train: metrics.train.map((t) => ({ step: t.step, loss: t.loss })),
      eval: metrics.eval,
      final,
      stepsPerSecond: 1000 / msPerStep,
      tokensPerSecond: (1000 / msPerStep) * batch * teacher.config.seqLen,
    });
    console.error(
      `demo: ${s.name}: held-out perplexity ${final.ppl.toFixed(2)}, KL to the teacher ${
        final.kl.toFixed(4)
      }, ` +
        `top-1 agreement ${(final.top1 * 100).toFixed(1)}%, ECE ${final.ece.toFixed(4)}`,
    );
    model.dispose();
  }
  const teacherEval = await finalEvaluation(teacher, teacher, heldout);
  const topkStore = await openLocalStore(`${dir}/topk`);
  const run = await readRunJson(topkStore);
  const manifests = await readManifests(topkStore);
  let bytes = 0, tokens = 0;
  for (const e of manifests.values()) {
    bytes += e.bytes;
    tokens += e.tokens;
  }
  const saved = JSON.parse(await Deno.readTextFile(savedPath).catch(() => "null")) as SaveNumbers | null;
  const input: ReportInput = {
    title: "sparsekd demo: offline top-k distillation against hard labels",
    createdAt: new Date().toISOString(),
    teacher: {
      description: `builtin:demo (${teacher.config.layers} layers × width ${teacher.config.width}, ` +
        `${teacher.config.heads} heads, context ${teacher.config.seqLen}, vocabulary ${teacher.config.vocabSize})`,
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
    students,
    notes: [
      `The students have the same shape, seed, data (${
        run.sequences - 64
      } sequences of the shards; the last 64 ` +
      `are the in-training evaluation set) and ${steps} steps of batch ${batch}.`,
      "The training curves' perplexity is on the last 64 sequences of the shards; the tables' final metrics are " +
      `on ${heldout.sequences} sequences of the corpus's held-out split, which save-topk never saw, with the ` +
      "teacher run in the same process: KL(teacher ‖ student) there is over the full vocabulary.",
      `Adapter: ${rt.adapter ? rt.adapter.description : "CPU (no WebGPU)"}; demo wall time ${
        ((performance.now() - t0) / 1000).toFixed(0)
      } s for this invocation.`,
    ],
  };
  teacher.dispose();
  await Deno.writeTextFile(`${dir}/report_input.json`, JSON.stringify(input, null, 1) + "\n");
  return await writeReport(dir);
}

function stage(text: string) {
  console.error(`\ndemo: ${text}`);
}

/** Runs a task of this toolkit as a child process, its output going straight through. */
async function task(file: string, args: string[]): Promise<void> {
  const status = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", fileURLToPath(new URL(file, TASKS)), ...args],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (!status.success) {
    throw new SparsekdError(`the demo stopped: ${file} ${args.join(" ")} failed (exit ${status.code})`);
  }
}

/** The numbers of save-topk's `--summary` file that the report uses. */
interface SaveNumbers {
  tokens: number;
  wallSeconds: number;
  tokensPerSecond: number;
  gpuWaitSeconds: number;
}

/** The training and evaluation lines of a metrics.jsonl (the last line per step wins, after a resume). */
async function readMetrics(path: string) {
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
