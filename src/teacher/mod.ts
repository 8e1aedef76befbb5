/**
 * Teachers: models whose logits are distilled — `builtin:demo`, `builtin:tslib`, `tfjs:<model.json>`,
 * `npy:<logits.npy>` — opened by spec through the registry ({@linkcode TEACHERS}).
 *
 * @example The registered teacher kinds
 * ```ts
 * import { TEACHERS, teacherUsage } from "./mod.ts";
 *
 * for (const kind of ["builtin", "tfjs", "npy"]) if (!(kind in TEACHERS)) throw new Error(kind);
 * if (!teacherUsage().includes("tfjs:<model.json>")) throw new Error("usage names the tfjs form");
 * ```
 * @module
 */
export { npyTeacher } from "./npy.ts";
export { tfjsTeacher } from "./tfjs_model.ts";
export { openTeacher } from "./open_teacher.ts";
export type { Teacher, TeacherLogits } from "./teacher.ts";
export { BUILTIN_TEACHERS, createBuiltinTeacher, createDemoTeacher } from "./builtin.ts";
export { denseTeacher, openAnyTeacher } from "./open_teacher.ts";
export type { AnyTeacher, SparseTargets, SparseTeacher } from "./teacher.ts";
export { teacherHelp, TEACHERS, teacherUsage } from "./registry.ts";
export type { TeacherEntry, TeacherOpener, TeacherOpenOptions } from "./registry.ts";
