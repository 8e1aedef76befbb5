/**
 * The whole job on the embedded default: save-topk with the demo teacher over the demo corpus, a student
 * trained with offline KD from those shards, a CE-only student of the same size for the same steps and data,
 * a final evaluation of both on the held-out split, and the report. Every stage resumes: a second run
 * skips what is finished.
 * @module
 */
import { writeReport } from "../report/write_report.ts";
import type { ReportInput } from "../report/types.ts";
import { createRuntime } from "../gpu/runtime.ts";
import { checkRunOptions, evaluateOnHeldout, saveDemoShards, stage } from "./stages.ts";
import { stopped, type StudentSpec, trainStudents } from "./students.ts";

/** Options of {@linkcode runDemo}. */
export interface DemoOptions {
  /** Aborted (e.g. by Ctrl-C): the student in training stops after its step with a checkpoint. */
  signal?: AbortSignal;
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

/** The students of the demo: their names, what they are, and the options of `train()` that make them. */
const STUDENTS: StudentSpec[] = [
  {
    name: "kd-topk",
    description: "offline KD, teacher renormalized over its top-k (--kd-mode topk, α=1)",
    options: { kdMode: "topk" },
  },
  {
    name: "kd-tail",
    description: "offline KD with the exact tail mass from the stored logsumexp, plus hard labels " +
      "(--kd-mode tail, α=0.5)",
    options: { kdMode: "tail", alpha: 0.5 },
  },
  {
    name: "ce-only",
    description: "hard labels only (--ce-only), same data and steps",
    options: { ceOnly: true },
  },
];

/**
 * Runs the demo in this process, every stage on one runtime, and returns the path of the report.
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
  checkRunOptions({ sequences: S, steps, batchSize: batch, k, heldoutSequences: options.heldoutSequences });
  await Deno.mkdir(dir, { recursive: true });
  const t0 = performance.now();
  const rt = await createRuntime({ cpu: options.cpu });

  // 1. save-topk (resumes by itself).
  stage(
    "demo",
    `1/${STUDENTS.length + 2} save-topk: demo teacher over ${S} sequences of the demo corpus → ${dir}/topk`,
  );
  const saved = await saveDemoShards(dir, { sequences: S, k, rt });

  // 2–4. the students, same size, steps, data and seed.
  await trainStudents("demo", dir, STUDENTS, {
    steps,
    batchSize: batch,
    rt,
    signal: options.signal,
    first: 2,
    total: STUDENTS.length + 2,
  });

  // 5. final evaluation on the held-out split, with the teacher run in this process, and the report.
  stage(
    "demo",
    `${STUDENTS.length + 2}/${
      STUDENTS.length + 2
    } evaluate the students on the held-out split against the teacher; write the report`,
  );
  if (options.signal?.aborted) throw stopped("demo", "before the final evaluation");
  const { students, described, heldoutSequences } = await evaluateOnHeldout({
    rt,
    heldoutSequences: options.heldoutSequences,
    dir,
    saved,
    batchSize: batch,
    students: STUDENTS.map((s) => ({ ...s, out: `${dir}/students/${s.name}` })),
    onStudent: ({ name, final }) =>
      console.error(
        `demo: ${name}: held-out perplexity ${final.ppl.toFixed(2)}, KL to the teacher ${
          final.kl.toFixed(4)
        }, ` +
          `top-1 agreement ${(final.top1 * 100).toFixed(1)}%, ECE ${final.ece.toFixed(4)}`,
      ),
  });
  const { teacher: teacherPart, save, run } = described;
  const input: ReportInput = {
    title: "sparsekd demo: offline top-k distillation against hard labels",
    createdAt: new Date().toISOString(),
    teacher: teacherPart,
    save,
    students,
    notes: [
      `The students have the same shape, seed, data (${
        run.sequences - 64
      } sequences of the shards; the last 64 ` +
      `are the in-training evaluation set) and ${steps} steps of batch ${batch}.`,
      "The training curves' perplexity is on the last 64 sequences of the shards; the tables' final metrics are " +
      `on ${heldoutSequences} sequences of the corpus's held-out split, which save-topk never saw, with the ` +
      "teacher run in the same process: KL(teacher ‖ student) there is over the full vocabulary.",
      `Adapter: ${rt.adapter ? rt.adapter.description : "CPU (no WebGPU)"}; demo wall time ${
        ((performance.now() - t0) / 1000).toFixed(0)
      } s for this invocation.`,
    ],
  };
  await Deno.writeTextFile(`${dir}/report_input.json`, JSON.stringify(input, null, 1) + "\n");
  return await writeReport(dir);
}
