/**
 * Parses a `--teacher` spec and opens the teacher: `builtin:demo` (the default) |
 * `tfjs:<path or URI of model.json>` | `npy:<path>` (precomputed float32 logits [S, L, V]).
 * @module
 */
import { SparsekdError } from "../errors.ts";
import type { Runtime } from "../gpu/runtime.ts";
import type { Teacher } from "./teacher.ts";

/**
 * Opens the teacher a `--teacher` spec names (modules are imported only for the kind asked for).
 *
 * @example
 * ```ts
 * const teacher = await openTeacher("tfjs:./teacher/model.json", rt);
 * console.log(teacher.vocabSize, teacher.description);
 * ```
 */
export async function openTeacher(spec: string, rt: Runtime): Promise<Teacher> {
  const colon = spec.indexOf(":");
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? "" : spec.slice(colon + 1);
  switch (kind) {
    case "builtin": {
      if (arg !== "demo") {
        throw new SparsekdError(`--teacher builtin:${arg}: the only built-in teacher is builtin:demo`);
      }
      const { createDemoTeacher } = await import("./builtin.ts");
      return await createDemoTeacher(rt);
    }
    case "tfjs": {
      if (arg === "") throw new SparsekdError("--teacher tfjs: needs the path or URI of a model.json");
      const { tfjsTeacher } = await import("./tfjs_model.ts");
      return await tfjsTeacher(rt, arg);
    }
    case "npy": {
      if (arg === "") throw new SparsekdError("--teacher npy: needs the path of a logits .npy file");
      const { npyTeacher } = await import("./npy.ts");
      return await npyTeacher(arg);
    }
    default:
      throw new SparsekdError(`--teacher "${spec}": expected builtin:demo, tfjs:<model.json> or npy:<path>`);
  }
}
