/**
 * The end-to-end demo and study: save shards from the demo teacher, train students with each loss mode,
 * evaluate them and write the report. These take minutes; see `deno task demo` and `deno task study`.
 *
 * @example The study's table as Markdown (a full demo or study takes minutes, so `runDemo` is only wrapped here)
 * ```ts
 * import { runDemo, studyMarkdown } from "./mod.ts";
 *
 * const _demo = () => runDemo({ dir: "runs/demo", steps: 100 }); // what `deno task demo` runs
 * const se = { mean: 400, se: 5, n: 3 };
 * const md = studyMarkdown([{
 *   teacher: "builtin:demo", alpha: 1, id: "ce-only", method: "ce-only", k: null, n: null,
 *   bytesPerPosition: null, distinctPerPosition: null, seeds: [1, 2, 3],
 *   ppl: se, kl: se, top1: se, ece: se, gapClosed: null, msPerStep: 20,
 * }], [{ spec: "builtin:demo", heldoutPpl: 300, ks: [1, 64], topKMass: [0.08, 0.5] }],
 *   { steps: 100, batchSize: 16, seeds: [1, 2, 3], ks: [64] });
 * if (!md.includes("ce-only")) throw new Error("one row per student");
 * ```
 * @module
 */
export { runDemo } from "./run_demo.ts";
export type { DemoOptions } from "./run_demo.ts";
export { finalEvaluation } from "./final_eval.ts";
export type { FinalEvalOptions } from "./final_eval.ts";
export { runStudy, studyMarkdown } from "./run_study.ts";
export type { StudyOptions, StudyResult, StudyRow, StudyTeacher } from "./run_study.ts";
export { goalVerdicts } from "./study_markdown.ts";
export type { StudyMarkdownSettings } from "./study_markdown.ts";
export { gapClosed, meanSe } from "./study_stats.ts";
export type { MeanSe } from "./study_stats.ts";
export { studentFolder, studyMethods, topKBytesPerPosition } from "./study_methods.ts";
export type { StudyMethod, StudyMethodSettings } from "./study_methods.ts";
export {
  describeTeacherAndShards,
  evaluateStudent,
  readMetrics,
  readSaveSummary,
  saveDemoShards,
  stage,
} from "./stages.ts";
export { trainStudent, trainStudents } from "./students.ts";
export type { SaveNumbers } from "./stages.ts";
export type { StudentOptions, StudentRun, StudentSpec, StudentStatus } from "./students.ts";
export { teacherTopKMass } from "./run_study.ts";
