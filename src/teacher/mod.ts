/**
<<<<<<< HEAD
 * Teachers: models whose logits are distilled — `builtin:demo`, `builtin:tslib`, `tfjs:<model.json>`,
 * `npy:<logits.npy>` — opened by spec through the registry ({@linkcode TEACHERS}).
=======
 * Teachers: models whose logits are distilled — `builtin:demo`, `tfjs:<model.json>`, `npy:<logits.npy>`, and
 * served teachers `openai:<base URL>` / `sglang:<base URL>` (sparse: top-k log-probabilities) — opened by spec
 * through the registry ({@linkcode TEACHERS}).
>>>>>>> main
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
export type { RemoteTeacherOptions, TeacherEntry, TeacherOpener, TeacherOpenOptions } from "./registry.ts";
export { openaiTeacher } from "./openai.ts";
export type { OpenAITeacherOptions } from "./openai.ts";
export type { TeacherProtocol } from "./openai_response.ts";
