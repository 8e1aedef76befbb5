/**
 * Opens the teacher a `--teacher` spec names through the teacher registry (`registry.ts`): `builtin:demo`
 * (the default) | `tfjs:<path or URI of model.json>` | `npy:<path>` (precomputed float32 logits [S, L, V]).
 * @module
 */
import { SparsekdError } from "../errors.ts";
import type { Runtime } from "../gpu/runtime.ts";
import { type TeacherOpenOptions, TEACHERS, teacherUsage } from "./registry.ts";
import type { AnyTeacher, Teacher } from "./teacher.ts";

/**
 * Opens any registered teacher, dense or sparse (only the module of the kind asked for is imported). An
 * unknown prefix or a bad argument is a one-line {@linkcode SparsekdError} about the option `teacher`.
 *
 * @example
 * ```ts
 * const teacher = await openAnyTeacher("npy:logits.npy", rt);
 * if (teacher.kind === "sparse") console.log(teacher.k);
 * ```
 */
export async function openAnyTeacher(
  spec: string,
  rt: Runtime,
  options: TeacherOpenOptions = {},
): Promise<AnyTeacher> {
  const colon = spec.indexOf(":");
  const prefix = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? "" : spec.slice(colon + 1);
  const entry = Object.hasOwn(TEACHERS, prefix) ? TEACHERS[prefix] : undefined;
  if (entry === undefined) {
    throw new SparsekdError(`teacher "${spec}": expected ${teacherUsage()}`, { option: "teacher" });
  }
  const open = await entry.load();
  return await open(arg, rt, options);
}

/**
 * Opens the teacher a `--teacher` spec names, as a dense {@linkcode Teacher} (full logits): what save-topk and
 * online distillation need. A sparse teacher is refused in one line.
 *
 * @example
 * ```ts
 * const teacher = await openTeacher("tfjs:./teacher/model.json", rt);
 * console.log(teacher.vocabSize, teacher.description);
 * ```
 */
export async function openTeacher(
  spec: string,
  rt: Runtime,
  options: TeacherOpenOptions = {},
): Promise<Teacher> {
  return denseTeacher(await openAnyTeacher(spec, rt, { ...options, dense: true }), spec);
}

/**
 * The teacher as a dense {@linkcode Teacher}; a `SparseTeacher` is disposed and refused with one line
 * about the option `teacher` (the command needs full logits).
 *
 * @example
 * ```ts
 * const dense = denseTeacher(await openAnyTeacher(spec, rt), spec);
 * ```
 */
export function denseTeacher(teacher: AnyTeacher, spec: string): Teacher {
  if (teacher.kind === "sparse") {
    teacher.dispose();
    throw new SparsekdError(
      `teacher ${spec} returns sparse targets (top-k), but full logits are needed here`,
      { option: "teacher" },
    );
  }
  return teacher;
}
