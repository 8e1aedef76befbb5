/**
 * The study (`deno task study`, docs/study.md): for each built-in teacher (the flat `builtin:demo` and the
 * peaked `builtin:tslib`), at equal student size, steps, data and seeds, a CE-only student; online KD against
 * the teacher's full logits (the teacher run in the training process: the upper reference); offline students
 * from the top-K shards (`topk`, `renorm`, `tail` at each K), from sampled targets (`sampled` at each N) and
 * with reverse KL and JSD on one support; each at every α and seed. Every student is scored on its corpus's
 * held-out split against the teacher over the full vocabulary; the tables give mean ± standard error over
 * the seeds and the share of the CE-only → online gap each method closes, with its uncertainty.
 *
 * Everything resumes student by student: shards and students are skipped when finished, and each student is
 * scored on the held-out split as soon as it is trained, the scores kept beside it (`heldout.json`, keyed by
 * the settings that shape students). A student with kept scores counts as finished even when its checkpoints
 * are gone, so committing the `heldout.json` files carries a study from one session to the next; `tableOnly`
 * writes the tables from whatever is finished. Writes `<dir>/study.md`, `<dir>/study.json`
 * and one HTML report per teacher with the gap chart.
 * @module
 */
import { writeReport } from "../report/write_report.ts";
import { openLocalStore } from "../store/local.ts";
import { SparsekdError } from "../errors.ts";
import type { GapPoint, ReportInput, ReportStudent } from "../report/types.ts";
import { createRuntime, type Runtime } from "../gpu/runtime.ts";
import { readManifests } from "../format/manifest.ts";
import { readRunJson } from "../format/run_json.ts";
import { readShards } from "../format/shard_reader.ts";
import { dtypeBytes } from "../format/types.ts";
import { runSaveTopK } from "../save/run_save_topk.ts";
import { latestCheckpoint } from "../model/checkpoint.ts";
import { topKMass } from "../report/topk_mass.ts";
import {
  builtinTeacherName,
  checkRunOptions,
  describeTeacherAndShards,
  evaluateStudent,
  openDemoEvaluation,
  readSaveSummary,
  saveDemoShards,
  type SaveNumbers,
  stage,
} from "./stages.ts";
import { stopped, trainStudent } from "./students.ts";
import { gapClosed, type MeanSe, meanSe } from "./study_stats.ts";
import { studentFolder, type StudyMethod, studyMethods, topKBytesPerPosition } from "./study_methods.ts";
import { studyMarkdown } from "./study_markdown.ts";

export { studyMarkdown };

/**
 * The teacher's mean probability mass (at T = 1) in its top-K entries, for each K of `ks`, over every position
 * of the shards in `dir/topk`: exp(lse of the first K stored logits − the stored full logsumexp), streamed
 * shard by shard. It says how much of the teacher's distribution an offline top-K run sees at all.
 *
 * @example
 * ```ts
 * const mass = await teacherTopKMass("runs/study/demo", [8, 64]); // e.g. [0.24, 0.52]
 * ```
 */
export async function teacherTopKMass(dir: string, ks: number[]): Promise<number[]> {
  return await topKMass(await openLocalStore(`${dir}/topk`), ks);
}

/** Options of {@linkcode runStudy}. */
export interface StudyOptions {
  /** Aborted (e.g. by Ctrl-C): the student in training stops after its step with a checkpoint. */
  signal?: AbortSignal;
  /** The run folder (default `runs/study`); teacher `builtin:<t>` works in `<dir>/<t>/`. */
  dir?: string;
  /** The built-in teachers (default `builtin:demo` and `builtin:tslib`); each brings its own corpus. */
  teachers?: string[];
  /** Sequences of each corpus's train split given to save-topk (default 512). */
  sequences?: number;
  /** Optimizer steps of each student (default 100). */
  steps?: number;
  /** Sequences per step (default 16). */
  batchSize?: number;
  /** The K of the offline top-K students (default [8, 64]); the shards hold the largest. */
  ks?: number[];
  /** The N of the sampled students (default [16, 64]). */
  samples?: number[];
  /** The weights α of the KD term (default [1, 0.5]). */
  alphas?: number[];
  /** Seeds (weights and shuffling) of every student (default [1, 2, 3]). */
  seeds?: number[];
  /** β of the JSD students (default 0.5). */
  beta?: number;
  /** The support of the reverse-KL and JSD students, at the largest K (default `tail`). */
  divergenceSupport?: "tail" | "renorm";
  /**
   * Held-out sequences of the final evaluation, spread evenly over the corpus's held-out split (default 512:
   * the first 64, v1's choice, are one or two documents, and gave the tslib teacher's students a
   * different ranking from the whole split's).
   */
  heldoutSequences?: number;
  /** Train only these methods (ids such as `ce-only`, `tail-k64`, `sampled-n16`); default all. */
  methods?: string[];
  /** Train nothing: write the tables from the students already finished. */
  tableOnly?: boolean;
  /** Run on the CPU. */
  cpu?: boolean;
}

/** One row of the study's tables: one method, teacher and α, over the seeds finished. */
export interface StudyRow {
  /** The teacher spec. */
  teacher: string;
  /** α of the KD term (CE-only rows repeat under each α). */
  alpha: number;
  /** The method's id (`tail-k64`). */
  id: string;
  /** What the method is (`offline tail`). */
  method: string;
  /** K of a top-K method, else null. */
  k: number | null;
  /** N of a sampled method, else null. */
  n: number | null;
  /** Stored bytes per token position of its targets (null: CE-only and online, which store none). */
  bytesPerPosition: number | null;
  /** Mean distinct ids per position of a sampled method's shards, else null. */
  distinctPerPosition: number | null;
  /** The seeds whose students are finished and scored. */
  seeds: number[];
  /** Held-out perplexity. */
  ppl: MeanSe;
  /** KL(teacher ‖ student) over the full vocabulary, nats per token. */
  kl: MeanSe;
  /** Top-1 agreement with the teacher. */
  top1: MeanSe;
  /** Expected calibration error of the top-1 prediction (15 bins). */
  ece: MeanSe;
  /** Share of the CE-only → online perplexity gap closed, ± its standard error; null when undefined. */
  gapClosed: { mean: number; se: number } | null;
  /** Mean wall time per training step, ms. */
  msPerStep: number;
}

/** A teacher of the study: its held-out perplexity and how concentrated its distributions are. */
export interface StudyTeacher {
  /** The spec, `builtin:demo`. */
  spec: string;
  /** Held-out perplexity. */
  heldoutPpl: number;
  /** The K of `topKMass`. */
  ks: number[];
  /** Mean probability mass of its top-K (T = 1) over the positions of the top-K shards, per K. */
  topKMass: number[];
}

/** What {@linkcode runStudy} returns. */
export interface StudyResult {
  /** One row per teacher, α and method. */
  rows: StudyRow[];
  /** The teachers. */
  teachers: StudyTeacher[];
  /** Students trained (or resumed) by this call, and students still to train. */
  trained: number;
  /** Students not finished (only with `tableOnly` or `methods`). */
  missing: number;
  /** The tables and their reading, as Markdown (also written to `<dir>/study.md`). */
  markdown: string;
  /** The HTML reports' paths, one per teacher. */
  reports: string[];
}

/** The finished student's held-out scores, kept beside it in `heldout.json`. */
interface HeldoutScores {
  key: ScoreKey;
  student: ReportStudent;
}

/**
 * Runs (or resumes) the study and returns its tables.
 *
 * @example
 * ```ts
 * const { markdown } = await runStudy({ dir: "runs/study", seeds: [1] });
 * console.log(markdown);
 * ```
 */
export async function runStudy(options: StudyOptions = {}): Promise<StudyResult> {
  const dir = options.dir ?? "runs/study";
  const S = options.sequences ?? 512;
  const steps = options.steps ?? 100;
  const batch = options.batchSize ?? 16;
  const ks = [...new Set(options.ks ?? [8, 64])].sort((a, b) => a - b);
  const samples = [...new Set(options.samples ?? [16, 64])].sort((a, b) => a - b);
  const alphas = [...new Set(options.alphas ?? [1, 0.5])];
  const seeds = [...new Set(options.seeds ?? [1, 2, 3])];
  const beta = options.beta ?? 0.5;
  const support = options.divergenceSupport ?? "tail";
  const teachers = [...new Set(options.teachers ?? ["builtin:demo", "builtin:tslib"])].map((t) =>
    builtinTeacherName(t)
  );
  const heldoutSequences = options.heldoutSequences ?? 512;
  checkRunOptions({ sequences: S, steps, batchSize: batch, heldoutSequences });
  if (ks.length === 0) throw new SparsekdError("ks needs at least one K", { option: "ks" });
  for (const k of ks) checkRunOptions({ ks: k });
  for (const n of samples) {
    if (!(Number.isSafeInteger(n) && n >= 1 && n <= 1024)) {
      throw new SparsekdError(`samples must be integers from 1 to 1024 (got ${n})`, { option: "samples" });
    }
  }
  for (const seed of seeds) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new SparsekdError(`seeds must be integers ≥ 0 (got ${seed})`, { option: "seeds" });
    }
  }
  for (const a of [...alphas, beta]) {
    if (!(a >= 0 && a <= 1)) {
      throw new SparsekdError(`alphas and beta must be in [0, 1] (got ${a})`, {
        option: a === beta ? "beta" : "alphas",
      });
    }
  }
  if (alphas.length === 0 || seeds.length === 0 || teachers.length === 0) {
    throw new SparsekdError("alphas, seeds and teachers need at least one value each", { option: "alphas" });
  }
  const methodsOf = (t: string) =>
    studyMethods({ teacher: `builtin:${t}`, ks, samples, beta, divergenceSupport: support });
  const allIds = methodsOf(teachers[0]).map((m) => m.id);
  for (const id of options.methods ?? []) {
    if (!allIds.includes(id)) {
      throw new SparsekdError(`methods: unknown method "${id}" (the study's are ${allIds.join(", ")})`, {
        option: "methods",
      });
    }
  }
  const wanted = (m: StudyMethod) => !options.methods || options.methods.includes(m.id);
  const maxK = ks[ks.length - 1];

  const key: ScoreKey = { steps, heldoutSequences, heldout: "spread", sequences: S, batchSize: batch };
  await Deno.mkdir(dir, { recursive: true });
  const rt = await createRuntime({ cpu: options.cpu });
  const tdir = (t: string) => `${dir}/${t}`;

  // Plan: every (teacher, seed, α, method) student, seed-major so that a partial study has whole seeds.
  const plan: { t: string; seed: number; alpha: number; m: StudyMethod; out: string }[] = [];
  for (const seed of seeds) {
    for (const t of teachers) {
      const done = new Set<string>();
      for (const alpha of alphas) {
        for (const m of methodsOf(t)) {
          const name = studentFolder(m, alpha, seed);
          if (done.has(name)) continue;
          done.add(name);
          plan.push({ t, seed, alpha, m, out: `${tdir(t)}/students/${name}` });
        }
      }
    }
  }

  let trained = 0;
  if (!options.tableOnly) {
    const todo = plan.filter((p) => wanted(p.m));
    const saves = teachers.flatMap((t) => [
      { t, sub: "topk", k: maxK, sample: undefined as number | undefined },
      ...samples.map((n) => ({ t, sub: `sample${n}`, k: 0, sample: n as number | undefined })),
    ]).filter((s) => todo.some((p) => p.t === s.t && (p.m.targets === s.sub || p.m.targets === "none")));
    const total = saves.length + todo.length;
    let i = 0;
    for (const s of saves) {
      stage(
        "study",
        `${++i}/${total} save-topk ${s.sub}: builtin:${s.t} over ${S} sequences → ${tdir(s.t)}/${s.sub}`,
      );
      if (options.signal?.aborted) throw stopped("study", `before ${tdir(s.t)}/${s.sub}`);
      if (s.sub === "topk") await saveDemoShards(tdir(s.t), { sequences: S, k: maxK, rt, teacher: s.t });
      else await saveSampleShards(tdir(s.t), s.sub, { sequences: S, n: s.sample!, rt, teacher: s.t });
    }
    // Each student is scored as soon as it is trained: its held-out scores (heldout.json) are what the tables
    // need, so a study spread over several sessions keeps them even when the checkpoints are gone.
    const evaluations = new Map<string, Awaited<ReturnType<typeof openDemoEvaluation>>>();
    try {
      for (const p of todo) {
        if (options.signal?.aborted) throw stopped("study", `before ${p.out}`);
        stage("study", `${++i}/${total} train ${p.out}`);
        if (await keptScores(p.out, key)) {
          console.error(`study: ${p.out} is finished and scored (heldout.json): skipped`);
          continue;
        }
        const status = await trainStudent("study", {
          shards: `${tdir(p.t)}/${p.m.targets === "none" ? "topk" : p.m.targets}`,
          out: p.out,
          steps,
          batchSize: batch,
          options: p.m.options(p.alpha),
          seed: p.seed,
          rt,
          signal: options.signal,
        });
        if (status !== "skipped") trained++;
        if (!evaluations.has(p.t)) {
          evaluations.set(
            p.t,
            await openDemoEvaluation({ rt, heldoutSequences, spread: true, teacher: p.t }),
          );
        }
        const { teacher, heldout } = evaluations.get(p.t)!;
        await scoreStudent(p, key, () => evaluateStudent(describeStudent(p), teacher, heldout, batch));
      }
    } finally {
      for (const e of evaluations.values()) e.teacher.dispose();
    }
  }

  // Score every finished student (cached), then tabulate.
  const rows: StudyRow[] = [];
  const studyTeachers: StudyTeacher[] = [];
  const reportStudents = new Map<string, ReportStudent[]>();
  let missing = 0;
  for (const t of teachers) {
    if (options.signal?.aborted) throw stopped("study", "before the final evaluation");
    const finished: { p: (typeof plan)[number]; kept: ReportStudent | null }[] = [];
    for (const p of plan.filter((p) => p.t === t)) {
      const kept = await keptScores(p.out, key);
      const last = kept ? null : await latestCheckpoint(await openLocalStore(p.out, { create: true }));
      if (kept || (last !== null && last >= steps)) finished.push({ p, kept });
      else missing++;
    }
    if (!(await exists(`${tdir(t)}/topk/run.json`))) continue;
    stage("study", `evaluate ${finished.length} students of builtin:${t} on its held-out split`);
    const { teacher, heldout } = await openDemoEvaluation({ rt, heldoutSequences, spread: true, teacher: t });
    const scores = new Map<string, ReportStudent>();
    let described;
    try {
      for (const { p, kept } of finished) {
        scores.set(
          p.out,
          kept ??
            await scoreStudent(p, key, () => evaluateStudent(describeStudent(p), teacher, heldout, batch)),
        );
      }
      described = await describeTeacherAndShards(tdir(t), teacher, heldout, null, `builtin:${t}`);
    } finally {
      teacher.dispose();
    }
    const mass = await teacherTopKMass(tdir(t), [1, ...ks]);
    studyTeachers.push({
      spec: `builtin:${t}`,
      heldoutPpl: described.teacher.heldoutPpl ?? NaN,
      ks: [1, ...ks],
      topKMass: mass,
    });
    reportStudents.set(t, [...scores.values()]);
    const topkBytes = await bytesPerPosition(`${tdir(t)}/topk`);
    const run = described.run;
    const entry = dtypeBytes(run.indexDtype) + dtypeBytes(run.valueDtype);
    const sampleBytes = new Map<number, { bytes: number; distinct: number }>();
    for (const n of samples) {
      if (await exists(`${tdir(t)}/sample${n}/run.json`)) {
        sampleBytes.set(n, {
          bytes: await bytesPerPosition(`${tdir(t)}/sample${n}`),
          distinct: await distinctPerPosition(`${tdir(t)}/sample${n}`),
        });
      }
    }
    for (const alpha of alphas) {
      const rowsHere: StudyRow[] = [];
      for (const m of methodsOf(t)) {
        const got = seeds.map((seed) => ({
          seed,
          s: scores.get(`${tdir(t)}/students/${studentFolder(m, alpha, seed)}`),
        }))
          .filter((x) => x.s !== undefined) as { seed: number; s: ReportStudent }[];
        const f = got.map((x) => x.s.final);
        const sb = m.n !== null ? sampleBytes.get(m.n) : undefined;
        rowsHere.push({
          teacher: `builtin:${t}`,
          alpha,
          id: m.id,
          method: m.method,
          k: m.k,
          n: m.n,
          bytesPerPosition: m.k !== null
            ? topKBytesPerPosition(topkBytes, run.k, m.k, entry)
            : sb?.bytes ?? null,
          distinctPerPosition: sb?.distinct ?? null,
          seeds: got.map((x) => x.seed),
          ppl: meanSe(f.map((x) => x.ppl)),
          kl: meanSe(f.map((x) => x.kl)),
          top1: meanSe(f.map((x) => x.top1)),
          ece: meanSe(f.map((x) => x.ece)),
          gapClosed: null,
          msPerStep: meanSe(got.map((x) => 1000 / x.s.stepsPerSecond)).mean,
        });
      }
      const ce = rowsHere.find((r) => r.id === "ce-only")!,
        online = rowsHere.find((r) => r.id === "online-full")!;
      for (const r of rowsHere) {
        r.gapClosed = ce.seeds.length && online.seeds.length && r.seeds.length
          ? gapClosed(ce.ppl, online.ppl, r.ppl)
          : null;
      }
      rows.push(...rowsHere);
    }
  }

  const settings = {
    sequences: S,
    steps,
    batchSize: batch,
    ks,
    samples,
    alphas,
    seeds,
    beta,
    divergenceSupport: support,
    heldoutSequences,
    adapter: rt.adapter ? rt.adapter.description : "CPU (no WebGPU)",
  };
  const markdown = studyMarkdown(rows, studyTeachers, settings);
  await writeAtomic(`${dir}/study.md`, markdown);
  await writeAtomic(
    `${dir}/study.json`,
    JSON.stringify(
      { createdAt: new Date().toISOString(), settings, teachers: studyTeachers, rows },
      null,
      1,
    ) +
      "\n",
  );
  const gapPoints: GapPoint[] = rows.filter((r) => r.bytesPerPosition !== null && r.gapClosed !== null).map((
    r,
  ) => ({
    teacher: `${r.teacher} α=${r.alpha}`,
    label: r.k !== null ? `${r.id.replace(/-k\d+$/, "")} K=${r.k}` : `sampled N=${r.n}`,
    bytesPerPosition: r.bytesPerPosition!,
    gapClosed: r.gapClosed!.mean,
    gapClosedSe: r.gapClosed!.se,
  }));
  const reports: string[] = [];
  for (const t of teachers) {
    if (!(await exists(`${tdir(t)}/topk/run.json`))) continue;
    const students = (reportStudents.get(t) ?? []).filter((s) =>
      s.name.endsWith("-s1") && !/-a0\./.test(s.name)
    );
    if (students.length === 0) continue;
    const { teacher: teacherPart, save } = await describeShards(tdir(t), rt, heldoutSequences, t);
    const input: ReportInput = {
      title: `sparsekd study: builtin:${t}`,
      createdAt: new Date().toISOString(),
      teacher: teacherPart,
      save,
      students,
      gapPoints,
      notes: [
        `The curves and tables show the seed-1 students at α = 1 (and CE-only); ${dir}/study.md has every ` +
        `α with means ± standard errors over the seeds. The gap chart shows every teacher and α.`,
        `Adapter: ${settings.adapter}.`,
      ],
    };
    await writeAtomic(`${tdir(t)}/report_input.json`, JSON.stringify(input, null, 1) + "\n");
    reports.push(await writeReport(tdir(t)));
  }
  return { rows, teachers: studyTeachers, trained, missing, markdown, reports };
}

/** What a student's kept scores must match to stand for it: the settings that shape every student. */
interface ScoreKey {
  steps: number;
  heldoutSequences: number;
  /** How the held-out sequences are chosen: spread evenly over the split (scores kept before had the first). */
  heldout: "spread";
  sequences: number;
  batchSize: number;
}

/** A student's kept held-out scores (`heldout.json`), when they were made with the same settings; else null. */
async function keptScores(out: string, key: ScoreKey): Promise<ReportStudent | null> {
  try {
    const kept = JSON.parse(await Deno.readTextFile(`${out}/heldout.json`)) as HeldoutScores;
    const same = (Object.keys(key) as (keyof ScoreKey)[]).every((k) => kept.key?.[k] === key[k]);
    return same && kept.student?.final ? kept.student : null;
  } catch {
    return null; // absent or unreadable: the student is scored again
  }
}

/** Scores a finished student and keeps the scores beside it. */
async function scoreStudent(
  p: { out: string },
  key: ScoreKey,
  evaluate: () => Promise<ReportStudent>,
): Promise<ReportStudent> {
  const student = await evaluate();
  await writeAtomic(`${p.out}/heldout.json`, JSON.stringify({ key, student } satisfies HeldoutScores) + "\n");
  return student;
}

/** The report's name and description of a planned student. */
function describeStudent(p: { out: string; m: StudyMethod; alpha: number; seed: number }) {
  return {
    name: p.out.split("/").pop()!,
    description: `${p.m.method}${p.m.usesAlpha ? `, α=${p.alpha}` : ""}, seed ${p.seed}`,
    out: p.out,
  };
}

/** The report's save-topk numbers when the shards were saved by an earlier run that kept no summary. */
const NOTHING_MEASURED: SaveNumbers = { tokens: 0, wallSeconds: 0, tokensPerSecond: 0, gpuWaitSeconds: 0 };

/** The teacher and storage sections of a teacher's report (the teacher evaluated once more, then disposed). */
async function describeShards(d: string, rt: Runtime, heldoutSequences: number, t: string) {
  const { teacher, heldout } = await openDemoEvaluation({ rt, heldoutSequences, spread: true, teacher: t });
  try {
    return await describeTeacherAndShards(
      d,
      teacher,
      heldout,
      await readSaveSummary(d) ?? NOTHING_MEASURED,
      `builtin:${t}`,
    );
  } finally {
    teacher.dispose();
  }
}

/** save-topk of samples only (`k` 0, N draws per position at t = 1, seed 1) into `<d>/<sub>`; it resumes. */
async function saveSampleShards(
  d: string,
  sub: string,
  o: { sequences: number; n: number; rt: Runtime; teacher: string },
): Promise<void> {
  await runSaveTopK({
    teacher: `builtin:${o.teacher}`,
    data: `builtin:${o.teacher}`,
    out: `${d}/${sub}`,
    k: 0,
    sample: o.n,
    seed: 1,
    maxSequences: o.sequences,
    rt: o.rt,
  });
}

/** Stored bytes per token position of a shard folder, from its host manifests. */
async function bytesPerPosition(folder: string): Promise<number> {
  let bytes = 0, tokens = 0;
  for (const e of (await readManifests(await openLocalStore(folder))).values()) {
    bytes += e.bytes;
    tokens += e.tokens;
  }
  return tokens ? bytes / tokens : NaN;
}

/** Mean distinct sampled ids per position of a sample folder, streamed shard by shard. */
async function distinctPerPosition(folder: string): Promise<number> {
  let distinct = 0, positions = 0;
  const store = await openLocalStore(folder);
  await readRunJson(store);
  for await (const r of readShards(store)) {
    for (const n of r.sampleLen ?? []) distinct += n;
    positions += r.tokens.length;
  }
  return positions ? distinct / positions : NaN;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await Deno.writeTextFile(tmp, text);
  await Deno.rename(tmp, path);
}
