/**
 * The end-to-end demo and study: save shards from the demo teacher, train students with each loss mode,
 * evaluate them and write the report. These take minutes; see `deno task demo` and `deno task study`.
 *
 * @example Run the demo into a folder (not run here: it takes minutes)
 * ```ts ignore
 * import { runDemo } from "./mod.ts";
 *
 * await runDemo({ dir: "runs/demo" });
 * ```
 * @module
 */
export { runDemo } from "./run_demo.ts";
export type { DemoOptions } from "./run_demo.ts";
export { finalEvaluation } from "./final_eval.ts";
export type { FinalEvalOptions } from "./final_eval.ts";
export { runStudy, studyMarkdown } from "./run_study.ts";
export type { StudyOptions, StudyResult, StudyRow } from "./run_study.ts";
export {
  describeTeacherAndShards,
  evaluateStudent,
  readMetrics,
  runTask,
  saveDemoShards,
  stage,
  trainStudent,
} from "./stages.ts";
export type { SaveNumbers, StudentRun } from "./stages.ts";
export { teacherTopKMass } from "./run_study.ts";
