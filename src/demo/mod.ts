/**
 * The end-to-end demo and study: save shards from the demo teacher, train students with each loss mode,
 * evaluate them and write the report. These take minutes; see `deno task demo` and `deno task study`.
 *
 * @example The study's table as Markdown (a full demo or study takes minutes, so `runDemo` is only wrapped here)
 * ```ts
 * import { runDemo, studyMarkdown } from "./mod.ts";
 *
 * const _demo = () => runDemo({ dir: "runs/demo", steps: 100 }); // what `deno task demo` runs
 * const md = studyMarkdown([{
 *   name: "ce-only",
 *   method: "ce-only",
 *   k: null,
 *   ppl: 400,
 *   kl: 1.2,
 *   top1: 0.3,
 *   ece: 0.05,
 *   pplPerSeed: [400],
 *   gapClosed: null,
 *   msPerStep: 20,
 * }], 300, { steps: 100, batchSize: 16, ks: [8], alpha: 1 });
 * if (!md.includes("ce-only")) throw new Error("one row per student");
 * ```
 * @module
 */
export { runDemo } from "./run_demo.ts";
export type { DemoOptions } from "./run_demo.ts";
export { finalEvaluation } from "./final_eval.ts";
export type { FinalEvalOptions } from "./final_eval.ts";
export { runStudy, studyMarkdown } from "./run_study.ts";
export type { StudyOptions, StudyResult, StudyRow } from "./run_study.ts";
export { describeTeacherAndShards, evaluateStudent, readMetrics, saveDemoShards, stage } from "./stages.ts";
export { trainStudent, trainStudents } from "./students.ts";
export type { SaveNumbers } from "./stages.ts";
export type { StudentOptions, StudentRun, StudentSpec, StudentStatus } from "./students.ts";
export { teacherTopKMass } from "./run_study.ts";
