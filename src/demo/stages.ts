/**
 * The stages that the demo and the study share, all run in this process on one runtime: save-topk over the
 * demo corpus ({@linkcode runSaveTopK}), training one student ({@linkcode train}; skipped when finished,
 * resumed when half done), the final evaluation of a student against the teacher, and reading a student's
 * metrics.jsonl.
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
import { openSource } from "../data/open_source.ts";
import { evenlySpaced } from "../data/spaced_source.ts";
import type { Runtime } from "../gpu/runtime.ts";
import { useTfjsOnRuntime } from "../gpu/tfjs_backend.ts";
import { BUILTIN_TEACHERS } from "../teacher/builtin.ts";
import { runSaveTopK } from "../save/run_save_topk.ts";

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
 * Checks the run options that the demo and the study share before any stage starts; a bad one is a
 * {@linkcode SparsekdError} naming the option (`steps must be an integer ≥ 1 (got 0)`).
 *
 * @example
 * ```ts
 * checkRunOptions({ sequences: 512, steps: 100, batchSize: 16 });
 * ```
 */
export function checkRunOptions(o: Record<string, number | undefined>): void {
  const min: Record<string, number> = { sequences: 2, steps: 1, batchSize: 1, k: 1, heldoutSequences: 1 };
  for (const [option, v] of Object.entries(o)) {
    if (v === undefined) continue;
    const m = min[option] ?? 1;
    if (!Number.isSafeInteger(v) || v < m) {
      throw new SparsekdError(`${option} must be an integer ≥ ${m} (got ${v})`, { option });
    }
  }
}

/** The numbers of save-topk's summary that the report uses. */
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
 * The built-in teacher a demo or study runs with (`demo` by default, or `tslib`), checked: a name that is not
 * a key of {@linkcode BUILTIN_TEACHERS} is a one-line error about the option `teacher`. Each built-in teacher
 * goes with the built-in corpus of the same name (`builtin:<name>` data).
 *
 * @example
 * ```ts
 * builtinTeacherName("builtin:tslib"); // "tslib"
 * ```
 */
export function builtinTeacherName(spec: string | undefined): string {
  const name = (spec ?? "demo").replace(/^builtin:/, "");
  if (!Object.hasOwn(BUILTIN_TEACHERS, name)) {
    throw new SparsekdError(
      `teacher must be a built-in teacher (${
        Object.keys(BUILTIN_TEACHERS).map((n) => `builtin:${n}`).join(" or ")
      }), got "${spec}"`,
      { option: "teacher" },
    );
  }
  return name;
}

/**
 * save-topk (in this process, on `rt`) with a built-in teacher (`options.teacher`, default `demo`) over the
 * first `sequences` of its corpus's train split into `<dir>/topk`. It resumes by itself; the summary of the run that computed the shards is kept in
 * `<dir>/save_summary.json` (a resumed run that skipped everything measured nothing) and returned.
 *
 * @example
 * ```ts
 * const rt = await createRuntime();
 * const saved = await saveDemoShards("runs/demo", { sequences: 512, k: 64, rt });
 * ```
 */
export async function saveDemoShards(
  dir: string,
  options: { sequences: number; k: number; rt: Runtime; teacher?: string },
): Promise<SaveNumbers | null> {
  const savedPath = `${dir}/save_summary.json`;
  const name = builtinTeacherName(options.teacher);
  const s = await runSaveTopK({
    teacher: `builtin:${name}`,
    data: `builtin:${name}`,
    out: `${dir}/topk`,
    k: options.k,
    maxSequences: options.sequences,
    rt: options.rt,
  });
  if (s.tokens > 0) {
    // Written whole, then renamed: a summary is never half there.
    const { run: _run, ...numbers } = s;
    const tmp = `${dir}/.save_summary.json.tmp`;
    await Deno.writeTextFile(tmp, JSON.stringify({ out: `${dir}/topk`, ...numbers }, null, 1) + "\n");
    await Deno.rename(tmp, savedPath);
  }
  return await readSaveSummary(dir);
}

/**
 * The save-topk numbers kept in `<dir>/save_summary.json` by {@linkcode saveDemoShards}, or null when there is
 * none (the run resumed and measured nothing); a summary that is not valid JSON is a one-line error.
 *
 * @example
 * ```ts
 * const saved = await readSaveSummary("runs/demo"); // { tokens, wallSeconds, tokensPerSecond, … } or null
 * ```
 */
export async function readSaveSummary(dir: string): Promise<SaveNumbers | null> {
  const savedPath = `${dir}/save_summary.json`;
  let text: string;
  try {
    text = await Deno.readTextFile(savedPath);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  try {
    const n = JSON.parse(text);
    const num = (x: unknown) => (typeof x === "number" ? x : NaN);
    return {
      tokens: num(n.tokens),
      wallSeconds: num(n.wallSeconds),
      tokensPerSecond: num(n.tokensPerSecond),
      gpuWaitSeconds: num(n.gpuWaitSeconds),
    };
  } catch {
    throw new SparsekdError(
      `${savedPath} is not valid JSON: delete it (the report then omits save-topk's speed)`,
    );
  }
}

/**
 * What the final evaluation needs: tfjs on `rt`, a built-in teacher (`o.teacher`, default `demo`) as a model
 * (the caller disposes it) and `heldoutSequences` (default 64) sequences of its corpus's held-out split: the
 * first ones, or with `spread` that many spread evenly over the whole split (`evenlySpaced`).
 *
 * @example
 * ```ts
 * const { teacher, heldout } = await openDemoEvaluation({ rt, heldoutSequences: 64 });
 * ```
 */
export async function openDemoEvaluation(
  o: { rt: Runtime; heldoutSequences?: number; teacher?: string; spread?: boolean },
): Promise<{ teacher: Gpt; heldout: TokenSource }> {
  const name = builtinTeacherName(o.teacher);
  await useTfjsOnRuntime(o.rt);
  const teacher = await loadModel(await openLocalStore(fileURLToPath(BUILTIN_TEACHERS[name])), "");
  const n = o.heldoutSequences ?? 64;
  const heldout = await openSource(`builtin:${name}`, {
    split: "heldout",
    seqLen: teacher.config.seqLen,
    maxSequences: o.spread ? undefined : n,
  }).then((all) => o.spread ? evenlySpaced(all, n) : all).catch((err) => {
    teacher.dispose();
    throw err;
  });
  return { teacher, heldout };
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
  spec = "builtin:demo",
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
      description: `${spec} (${c.layers} layers × width ${c.width}, ${c.heads} heads, context ${c.seqLen}, ` +
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

/** A trained student to evaluate: its report name and description, and its output folder. */
export interface StudentToEvaluate {
  name: string;
  description: string;
  out: string;
}

/**
 * The final evaluation of a demo or study run: opens the teacher and the held-out split
 * ({@linkcode openDemoEvaluation}), evaluates each student in order (calling `onStudent` after each), then
 * describes the teacher and the shards; the teacher is disposed whatever happens.
 *
 * @example
 * ```ts
 * const { students, described } = await evaluateOnHeldout({ rt, dir, saved, batchSize: 16, students: specs });
 * ```
 */
export async function evaluateOnHeldout(o: {
  rt: Runtime;
  heldoutSequences?: number;
  dir: string;
  saved: SaveNumbers | null;
  batchSize: number;
  students: StudentToEvaluate[];
  onStudent?: (student: ReportStudent) => void;
  /** The built-in teacher (default `demo`). */
  teacher?: string;
}): Promise<{
  students: ReportStudent[];
  described: Awaited<ReturnType<typeof describeTeacherAndShards>>;
  heldoutSequences: number;
}> {
  const name = builtinTeacherName(o.teacher);
  const { teacher, heldout } = await openDemoEvaluation({
    rt: o.rt,
    heldoutSequences: o.heldoutSequences,
    teacher: name,
  });
  try {
    const students: ReportStudent[] = [];
    for (const s of o.students) {
      const student = await evaluateStudent(s, teacher, heldout, o.batchSize);
      students.push(student);
      o.onStudent?.(student);
    }
    const described = await describeTeacherAndShards(o.dir, teacher, heldout, o.saved, `builtin:${name}`);
    return { students, described, heldoutSequences: heldout.sequences };
  } finally {
    teacher.dispose();
  }
}
