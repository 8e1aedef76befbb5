/**
 * The HTML report of a run: its input (validated), calibration metrics and the rendered page.
 *
 * @example Expected calibration error of a perfectly calibrated set is 0
 * ```ts
 * import { CalibrationAccumulator } from "./mod.ts";
 *
 * const acc = new CalibrationAccumulator(10);
 * acc.add([1, 1, 0.0], [1, 1, 0]);
 * if (acc.ece() !== 0) throw new Error("confident and right, or unsure and wrong: ECE 0");
 * ```
 * @module
 */
export { CalibrationAccumulator, expectedCalibrationError } from "./calibration.ts";
export type { CalibrationBin } from "./calibration.ts";
export { renderReport } from "./html.ts";
export { parseReportInput } from "./validate.ts";
export { REPORT_FILE, REPORT_INPUT_FILE, runFolderKind, writeReport } from "./write_report.ts";
export type { RunFolderKind, WriteReportOptions } from "./write_report.ts";
export { topKMass } from "./topk_mass.ts";
export { measureTeacherMass, teacherMass } from "./teacher_mass.ts";
export type { MeasureTeacherMassOptions, TeacherMass, TeacherMassOptions } from "./teacher_mass.ts";
// The report input's types: ReportInput, ReportTeacher, ReportSave, ReportStudent, TrainPoint, EvalPoint,
// ReliabilityBin, FinalMetrics.
export type * from "./types.ts";
