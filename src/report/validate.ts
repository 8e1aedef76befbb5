/**
 * Checks a parsed `report_input.json` against {@linkcode ReportInput}, so that a malformed file is one clear
 * line rather than a broken page.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import type {
  EvalPoint,
  FinalMetrics,
  ReportInput,
  ReportSave,
  ReportStudent,
  ReportTeacher,
  TrainPoint,
} from "./types.ts";

type Obj = Record<string, unknown>;

function describe(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 40 ? `${s.slice(0, 37)}...` : s;
}

class Checker {
  constructor(readonly source: string) {}

  fail(path: string, what: string, got: unknown): never {
    throw new SparsekdError(`${this.source}: ${path} must be ${what} (got ${describe(got)})`);
  }

  obj(v: unknown, path: string): Obj {
    if (typeof v !== "object" || v === null || Array.isArray(v)) this.fail(path, "an object", v);
    return v as Obj;
  }

  arr(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.fail(path, "an array", v);
    return v;
  }

  str(v: unknown, path: string): string {
    if (typeof v !== "string") this.fail(path, "a string", v);
    return v;
  }

  /** A count or size: a finite number ≥ 0. */
  count(v: unknown, path: string): number {
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0) this.fail(path, "a number ≥ 0", v);
    return v;
  }

  /** A step index: an integer. */
  step(v: unknown, path: string): number {
    if (typeof v !== "number" || !Number.isInteger(v)) this.fail(path, "an integer", v);
    return v;
  }

  /** A measurement: a number, or null (JSON's spelling of NaN, for example a diverged loss) read as NaN. */
  measure(v: unknown, path: string): number {
    if (v === null) return NaN;
    if (typeof v !== "number") this.fail(path, "a number or null", v);
    return v;
  }

  optMeasure(v: unknown, path: string): number | undefined {
    return v === undefined ? undefined : this.measure(v, path);
  }

  optCount(v: unknown, path: string): number | undefined {
    return v === undefined ? undefined : this.count(v, path);
  }
}

function teacher(c: Checker, v: unknown, p: string): ReportTeacher {
  const o = c.obj(v, p);
  const t: ReportTeacher = { description: c.str(o.description, `${p}.description`) };
  const params = c.optCount(o.params, `${p}.params`);
  if (params !== undefined) t.params = params;
  const ppl = c.optMeasure(o.heldoutPpl, `${p}.heldoutPpl`);
  if (ppl !== undefined) t.heldoutPpl = ppl;
  return t;
}

function save(c: Checker, v: unknown, p: string): ReportSave {
  const o = c.obj(v, p);
  const s: ReportSave = {
    tokens: c.count(o.tokens, `${p}.tokens`),
    bytes: c.count(o.bytes, `${p}.bytes`),
    bytesPerToken: c.count(o.bytesPerToken, `${p}.bytesPerToken`),
    fullLogitsBytesPerToken: c.count(o.fullLogitsBytesPerToken, `${p}.fullLogitsBytesPerToken`),
    k: c.count(o.k, `${p}.k`),
    vocabSize: c.count(o.vocabSize, `${p}.vocabSize`),
    valueDtype: c.str(o.valueDtype, `${p}.valueDtype`),
    indexDtype: c.str(o.indexDtype, `${p}.indexDtype`),
    tokensPerSecond: c.count(o.tokensPerSecond, `${p}.tokensPerSecond`),
    wallSeconds: c.count(o.wallSeconds, `${p}.wallSeconds`),
    gpuWaitSeconds: c.count(o.gpuWaitSeconds, `${p}.gpuWaitSeconds`),
  };
  return s;
}

function trainPoints(c: Checker, v: unknown, p: string): TrainPoint[] {
  return c.arr(v, p).map((e, i) => {
    const o = c.obj(e, `${p}[${i}]`);
    return { step: c.step(o.step, `${p}[${i}].step`), loss: c.measure(o.loss, `${p}[${i}].loss`) };
  });
}

function evalPoints(c: Checker, v: unknown, p: string): EvalPoint[] {
  return c.arr(v, p).map((e, i) => {
    const q = `${p}[${i}]`;
    const o = c.obj(e, q);
    const pt: EvalPoint = {
      step: c.step(o.step, `${q}.step`),
      ce: c.measure(o.ce, `${q}.ce`),
      ppl: c.measure(o.ppl, `${q}.ppl`),
    };
    const kl = c.optMeasure(o.kl, `${q}.kl`);
    if (kl !== undefined) pt.kl = kl;
    const top1 = c.optMeasure(o.top1, `${q}.top1`);
    if (top1 !== undefined) pt.top1 = top1;
    return pt;
  });
}

function final(c: Checker, v: unknown, p: string): FinalMetrics {
  const o = c.obj(v, p);
  const f: FinalMetrics = {
    ppl: c.measure(o.ppl, `${p}.ppl`),
    ce: c.measure(o.ce, `${p}.ce`),
    kl: c.measure(o.kl, `${p}.kl`),
    top1: c.measure(o.top1, `${p}.top1`),
    ece: c.measure(o.ece, `${p}.ece`),
  };
  if (o.reliability !== undefined) {
    f.reliability = c.arr(o.reliability, `${p}.reliability`).map((e, i) => {
      const q = `${p}.reliability[${i}]`;
      const b = c.obj(e, q);
      return {
        confidence: c.measure(b.confidence, `${q}.confidence`),
        accuracy: c.measure(b.accuracy, `${q}.accuracy`),
        count: c.count(b.count, `${q}.count`),
      };
    });
  }
  return f;
}

function student(c: Checker, v: unknown, p: string): ReportStudent {
  const o = c.obj(v, p);
  return {
    name: c.str(o.name, `${p}.name`),
    description: c.str(o.description, `${p}.description`),
    params: c.count(o.params, `${p}.params`),
    steps: c.count(o.steps, `${p}.steps`),
    train: trainPoints(c, o.train, `${p}.train`),
    eval: evalPoints(c, o.eval, `${p}.eval`),
    final: final(c, o.final, `${p}.final`),
    stepsPerSecond: c.count(o.stepsPerSecond, `${p}.stepsPerSecond`),
    tokensPerSecond: c.count(o.tokensPerSecond, `${p}.tokensPerSecond`),
  };
}

/**
 * Checks `value` (a parsed `report_input.json`) and returns it typed as a {@linkcode ReportInput}. A measurement
 * written as `null` (how `JSON.stringify` writes NaN) is read as NaN and shown as "n/a". The first problem found
 * is a {@linkcode SparsekdError} naming the field, for example
 * `report_input.json: students[1].final.kl must be a number or null (got "0.3")`.
 *
 * @param value the parsed JSON
 * @param source the name used in error messages (default "report input")
 * @example
 * ```ts
 * const input = parseReportInput(JSON.parse(await Deno.readTextFile("runs/demo/report_input.json")));
 * ```
 */
export function parseReportInput(value: unknown, source = "report input"): ReportInput {
  const c = new Checker(source);
  const o = c.obj(value, "the top level");
  const input: ReportInput = {
    title: c.str(o.title, "title"),
    createdAt: c.str(o.createdAt, "createdAt"),
    teacher: teacher(c, o.teacher, "teacher"),
    save: save(c, o.save, "save"),
    students: c.arr(o.students, "students").map((s, i) => student(c, s, `students[${i}]`)),
  };
  if (o.notes !== undefined) input.notes = c.arr(o.notes, "notes").map((n, i) => c.str(n, `notes[${i}]`));
  if (o.gapPoints !== undefined) {
    input.gapPoints = c.arr(o.gapPoints, "gapPoints").map((v, i) => {
      const p = `gapPoints[${i}]`, g = c.obj(v, p);
      return {
        teacher: c.str(g.teacher, `${p}.teacher`),
        label: c.str(g.label, `${p}.label`),
        bytesPerPosition: c.count(g.bytesPerPosition, `${p}.bytesPerPosition`),
        gapClosed: c.measure(g.gapClosed, `${p}.gapClosed`),
        gapClosedSe: c.measure(g.gapClosedSe, `${p}.gapClosedSe`),
      };
    });
  }
  const seen = new Set<string>();
  input.students.forEach((s, i) => {
    if (seen.has(s.name)) c.fail(`students[${i}].name`, "unique", s.name);
    seen.add(s.name);
  });
  return input;
}
