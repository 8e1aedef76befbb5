/**
 * The study (`deno task study`): on the demo task, at equal student size, steps, data and seed, a CE-only
 * student; online KD against the demo teacher's full logits (the teacher run in the training process: the
 * upper reference); and offline KD from the top-k shards in the modes `topk`, `renorm` and `tail` at each K
 * asked for. The shards are saved once at the largest K; a smaller K trains on the first K entries of each
 * stored row, which are the teacher's top-K (rows are stored in decreasing order of logit, and the
 * logsumexp that `tail` needs does not depend on K). Every student is scored on the corpus's held-out split
 * against the teacher over the full vocabulary. Writes `<dir>/study.md`, `<dir>/study.json` and an HTML
 * report; every stage resumes.
 * @module
 */
import { writeReport } from "../report/write_report.ts";
import { topKMass } from "../report/topk_mass.ts";
import { openLocalStore } from "../store/local.ts";
import { SparsekdError } from "../errors.ts";
import type { ReportInput } from "../report/types.ts";
import { createRuntime } from "../gpu/runtime.ts";
import { builtinTeacherName, checkRunOptions, evaluateOnHeldout, saveDemoShards, stage } from "./stages.ts";
import { stopped, type StudentSpec, trainStudents } from "./students.ts";

/** Options of {@linkcode runStudy}. */
export interface StudyOptions {
  /** Aborted (e.g. by Ctrl-C): the student in training stops after its step with a checkpoint. */
  signal?: AbortSignal;
  /** The run folder (default `runs/study`). */
  dir?: string;
  /** Sequences of the demo corpus's train split given to save-topk (default 512). */
  sequences?: number;
  /** Optimizer steps of each student (default 100). */
  steps?: number;
  /** Sequences per step (default 16). */
  batchSize?: number;
  /** The K of the offline runs (default [8, 64]); the shards hold the largest. */
  ks?: number[];
  /** Weight of the KD term of every KD student, online and offline (default 1: distillation alone). */
  alpha?: number;
  /** Held-out sequences of the final evaluation (default 64). */
  heldoutSequences?: number;
  /**
   * Seeds (weights and shuffling) of every student (default [1]); the table gives means over them. Students of
   * seed 1 live in `<dir>/students/<name>`, the others in `<name>-s<seed>`.
   */
  seeds?: number[];
  /** Run on the CPU. */
  cpu?: boolean;
  /**
   * The built-in teacher, `builtin:demo` (default: flat distributions) or `builtin:tslib` (peaked); the data
   * are its corpus (`builtin:<name>`: shards from its train split, scores on its held-out split).
   */
  teacher?: string;
}

/** One row of the study's table. */
export interface StudyRow {
  /** The student's folder name under `<dir>/students/`. */
  name: string;
  /** How it was trained. */
  method: "ce-only" | "online full KD" | "offline topk" | "offline renorm" | "offline tail";
  /** K of an offline run (null otherwise). */
  k: number | null;
  /** Held-out perplexity (mean over the seeds, as are KL, top-1 and ECE). */
  ppl: number;
  /** KL(teacher ‖ student) over the full vocabulary, nats per token. */
  kl: number;
  /** Top-1 agreement with the teacher. */
  top1: number;
  /** Expected calibration error of the top-1 prediction. */
  ece: number;
  /** Held-out perplexity of each seed, in the order of the seeds. */
  pplPerSeed: number[];
  /** Share of the CE-only → online perplexity gap closed: (ppl_CE − ppl) / (ppl_CE − ppl_online); null when online does not beat CE-only. */
  gapClosed: number | null;
  /** Mean wall time per training step, ms. */
  msPerStep: number;
}

/**
 * The teacher's mean probability mass (at T = 1) in its top-K entries, for each K of `ks`, over every position
 * of the shards in `dir/topk`: exp(lse of the first K stored logits − the stored full logsumexp), streamed
 * shard by shard ({@linkcode topKMass}). It says how much of the teacher's distribution an offline top-K run
 * sees at all.
 *
 * @example
 * ```ts
 * const mass = await teacherTopKMass("runs/study", [8, 64]); // e.g. [0.31, 0.55]
 * ```
 */
export async function teacherTopKMass(dir: string, ks: number[]): Promise<number[]> {
  return await topKMass(await openLocalStore(`${dir}/topk`), ks);
}

/** What {@linkcode runStudy} returns. */
export interface StudyResult {
  /** One row per student, in the order trained. */
  rows: StudyRow[];
  /** The teacher's held-out perplexity. */
  teacherPpl: number;
  /** The teacher's mean probability mass in its top-K, for each K of the study (ascending). */
  topKMass: number[];
  /** The table and its reading, as Markdown (also written to `<dir>/study.md`). */
  markdown: string;
  /** The HTML report's path. */
  report: string;
}

/**
 * Runs the study and returns its table.
 *
 * @example
 * ```ts
 * const { markdown } = await runStudy({ dir: "runs/study" });
 * console.log(markdown);
 * ```
 */
export async function runStudy(options: StudyOptions = {}): Promise<StudyResult> {
  const dir = options.dir ?? "runs/study";
  const S = options.sequences ?? 512;
  const steps = options.steps ?? 100;
  const batch = options.batchSize ?? 16;
  const ks = [...new Set(options.ks ?? [8, 64])].sort((a, b) => a - b);
  const alpha = options.alpha ?? 1;
  const seeds = [...new Set(options.seeds ?? [1])];
  const maxK = ks[ks.length - 1];
  const teacher = builtinTeacherName(options.teacher);
  checkRunOptions({ sequences: S, steps, batchSize: batch, heldoutSequences: options.heldoutSequences });
  if (ks.length === 0) throw new SparsekdError("ks needs at least one K", { option: "ks" });
  for (const k of ks) checkRunOptions({ ks: k });
  for (const seed of seeds) {
    if (!Number.isSafeInteger(seed)) {
      throw new SparsekdError(`seeds must be integers (got ${seed})`, { option: "seeds" });
    }
  }
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new SparsekdError(`alpha must be in [0, 1] (got ${alpha})`, { option: "alpha" });
  }
  const students: (StudentSpec & { method: StudyRow["method"]; k: number | null })[] = [
    {
      name: "ce-only",
      description: "hard labels only",
      method: "ce-only",
      k: null,
      options: { ceOnly: true },
    },
    {
      name: "online-full",
      description: `online KD from the teacher's full logits, α=${alpha}`,
      method: "online full KD",
      k: null,
      options: { onlineTeacher: `builtin:${teacher}`, alpha },
    },
  ];
  for (const k of ks) {
    for (const mode of ["topk", "renorm", "tail"] as const) {
      students.push({
        name: `${mode}-k${k}`,
        description: `offline --kd-mode ${mode}, K=${k}, α=${alpha}`,
        method: `offline ${mode}`,
        k,
        options: { kdMode: mode, k, alpha },
      });
    }
  }
  const total = students.length * seeds.length + 2;
  await Deno.mkdir(dir, { recursive: true });
  const t0 = performance.now();
  const rt = await createRuntime({ cpu: options.cpu });

  stage(
    "study",
    `1/${total} save-topk: ${teacher} teacher over ${S} sequences of builtin:${teacher}, K=${maxK} → ${dir}/topk`,
  );
  const saved = await saveDemoShards(dir, { sequences: S, k: maxK, rt, teacher });

  const folder = (name: string, seed: number) => (seed === 1 ? name : `${name}-s${seed}`);
  for (const [j, seed] of seeds.entries()) {
    await trainStudents("study", dir, students.map((s) => ({ ...s, name: folder(s.name, seed) })), {
      steps,
      batchSize: batch,
      rt,
      seed,
      signal: options.signal,
      first: 2 + j * students.length,
      total,
    });
  }

  stage("study", `${total}/${total} evaluate every student on the held-out split against the teacher`);
  if (options.signal?.aborted) throw stopped("study", "before the final evaluation");
  // evaluated[i][j]: student i, seed j.
  const { students: flat, described, heldoutSequences } = await evaluateOnHeldout({
    rt,
    heldoutSequences: options.heldoutSequences,
    dir,
    saved,
    batchSize: batch,
    teacher,
    students: students.flatMap((s) =>
      seeds.map((seed) => {
        const name = folder(s.name, seed);
        const description = seeds.length > 1 ? `${s.description}, seed ${seed}` : s.description;
        return { name, description, out: `${dir}/students/${name}` };
      })
    ),
  });
  const evaluated = students.map((_, i) => flat.slice(i * seeds.length, (i + 1) * seeds.length));
  const { teacher: teacherPart, save, run } = described;
  const teacherPpl = teacherPart.heldoutPpl ?? NaN;

  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rows: StudyRow[] = students.map((s, i) => {
    const f = evaluated[i].map((e) => e.final);
    return {
      name: s.name,
      method: s.method,
      k: s.k,
      ppl: mean(f.map((x) => x.ppl)),
      kl: mean(f.map((x) => x.kl)),
      top1: mean(f.map((x) => x.top1)),
      ece: mean(f.map((x) => x.ece)),
      pplPerSeed: f.map((x) => x.ppl),
      gapClosed: null,
      msPerStep: mean(evaluated[i].map((e) => 1000 / e.stepsPerSecond)),
    };
  });
  const gap = rows[0].ppl - rows[1].ppl;
  for (const r of rows) r.gapClosed = gap > 0 ? (rows[0].ppl - r.ppl) / gap : null;
  const settings = {
    teacher: `builtin:${teacher}`,
    sequences: S,
    trainSequences: run.sequences - Math.min(64, Math.floor(run.sequences / 2)),
    steps,
    batchSize: batch,
    ks,
    alpha,
    seeds,
    heldoutSequences: heldoutSequences,
    adapter: rt.adapter ? rt.adapter.description : "CPU (no WebGPU)",
  };
  const topKMass = await teacherTopKMass(dir, ks);
  const markdown = studyMarkdown(rows, teacherPpl, { ...settings, topKMass });
  await Deno.writeTextFile(`${dir}/study.md`, markdown);
  await Deno.writeTextFile(
    `${dir}/study.json`,
    JSON.stringify(
      { createdAt: new Date().toISOString(), settings, teacherPpl, topKMass, rows },
      null,
      1,
    ) +
      "\n",
  );
  const input: ReportInput = {
    title: "sparsekd study: CE-only, online full KD and offline top-k KD",
    createdAt: new Date().toISOString(),
    teacher: teacherPart,
    save,
    students: evaluated.map((perSeed) => perSeed[0]),
    notes: [
      (seeds.length > 1
        ? `The charts and tables show seed ${seeds[0]}; study.md has the means over all seeds. `
        : "") +
      `Every student has the same shape, seed, data (${settings.trainSequences} sequences of the shards) and ` +
      `${steps} steps of batch ${batch}; the final metrics are on ${heldoutSequences} sequences of the ` +
      "corpus's held-out split, with KL(teacher ‖ student) over the full vocabulary.",
      `Adapter: ${settings.adapter}; study wall time ${
        ((performance.now() - t0) / 1000).toFixed(0)
      } s for this ` +
      "invocation.",
    ],
  };
  await Deno.writeTextFile(`${dir}/report_input.json`, JSON.stringify(input, null, 1) + "\n");
  const report = await writeReport(dir);
  return { rows, teacherPpl, topKMass, markdown, report };
}

/**
 * The study's table as Markdown, with one plain sentence on the goal (the best offline mode at the largest K
 * closing at least 80 % of the CE-only → online perplexity gap).
 *
 * @example
 * ```ts
 * const md = studyMarkdown(rows, 308.7, { steps: 100, batchSize: 16, ks: [8, 64], alpha: 1 });
 * ```
 */
export function studyMarkdown(
  rows: StudyRow[],
  teacherPpl: number,
  settings: {
    steps: number;
    batchSize: number;
    ks: number[];
    alpha: number;
    seeds?: number[];
    topKMass?: number[];
  },
): string {
  const pct = (x: number | null) => (x === null ? "n/a" : `${(100 * x).toFixed(0)} %`);
  const seeds = settings.seeds ?? [1];
  const many = seeds.length > 1;
  const lines = [
    `| student | method | K | held-out ppl${many ? " (mean) | ppl per seed" : ""} | KL(teacher‖student) | ` +
    "top-1 agreement | ECE | gap closed | ms/step |",
    `| --- | --- | --: | --: |${many ? " --: |" : ""} --: | --: | --: | --: | --: |`,
    ...rows.map((r) =>
      [
        r.name,
        r.method,
        r.k ?? "—",
        r.ppl.toFixed(1),
        ...(many ? [r.pplPerSeed.map((p) => p.toFixed(1)).join(" / ")] : []),
        r.kl.toFixed(4),
        `${(100 * r.top1).toFixed(1)} %`,
        r.ece.toFixed(4),
        r.name === "ce-only" ? "0 %" : pct(r.gapClosed),
        r.msPerStep.toFixed(0),
      ].join(" | ")
    ).map((l) => `| ${l} |`),
  ];
  const maxK = Math.max(...settings.ks);
  const offline = rows.filter((r) => r.k === maxK);
  const best = offline.reduce((b, r) => (r.ppl < b.ppl ? r : b), offline[0]);
  const verdict = best === undefined
    ? ""
    : best.gapClosed === null
    ? `Online full KD did not beat CE-only on held-out perplexity here, so "gap closed" is undefined; the best ` +
      `offline mode at K=${maxK} is ${best.method} (perplexity ${best.ppl.toFixed(1)}).`
    : `Best offline mode at K=${maxK}: ${best.method}, closing ${
      pct(best.gapClosed)
    } of the CE-only → online ` +
      `perplexity gap: the 80 % goal is ${best.gapClosed >= 0.8 ? "met" : "NOT met"}.`;
  return [
    `Teacher held-out perplexity: ${teacherPpl.toFixed(1)}. ${settings.steps} steps of batch ` +
    `${settings.batchSize}, α=${settings.alpha} for every KD student` +
    `${many ? `, seeds ${seeds.join(", ")} (means over the seeds)` : ""}. ` +
    `"gap closed" = (ppl_CE − ppl) / (ppl_CE − ppl_online).` +
    (settings.topKMass
      ? ` The teacher's top-K hold on average ${
        settings.ks.map((k, i) => `${(100 * settings.topKMass![i]).toFixed(1)} % (K=${k})`).join(", ")
      } of its probability mass.`
      : ""),
    "",
    ...lines,
    "",
    verdict,
    "",
  ].join("\n");
}
