/**
 * The teacher registry: `--teacher` spec prefix → the module that opens it (loaded only when a spec with that
 * prefix is opened) and its help text.
 *
 * A new teacher is one new file that exports a {@linkcode TeacherOpener} named `teacherOpener` (returning a
 * dense `Teacher` or a `SparseTeacher`, see `teacher.ts`) and one line here; `openTeacher`, the commands'
 * help and their error messages then know it. See docs/extending.md.
 * @module
 */
import type { TeacherOpener } from "./teacher.ts";

export type { RemoteTeacherOptions, TeacherOpener, TeacherOpenOptions } from "./teacher.ts";

/** One registered teacher kind. */
export interface TeacherEntry {
  /** How a spec of this kind is written, e.g. `tfjs:<model.json>`. */
  readonly usage: string;
  /** One line on what it is, for help texts. */
  readonly help: string;
  /** Loads the module and returns its opener. */
  readonly load: () => Promise<TeacherOpener>;
}

/** The registered teachers, by spec prefix (the part before the first `:`). */
export const TEACHERS: Readonly<Record<string, TeacherEntry>> = {
  builtin: {
    usage: "builtin:demo|tslib",
    help: "a teacher whose weights ship with sparsekd: demo (models/demo_teacher/, flat) or tslib " +
      "(models/tslib_teacher/, peaked)",
    load: async () => (await import("./builtin.ts")).teacherOpener,
  },
  tfjs: {
    usage: "tfjs:<model.json>",
    help: "a tfjs LayersModel or GraphModel: a path or a file:, http(s): or gs:// URI of its model.json",
    load: async () => (await import("./tfjs_model.ts")).teacherOpener,
  },
  npy: {
    usage: "npy:<path>",
    help: "precomputed float32 logits [sequences, seqLen, vocab] in a .npy file",
    load: async () => (await import("./npy.ts")).teacherOpener,
  },
  openai: {
    usage: "openai:<base URL>",
    help: "an OpenAI-compatible completions server that returns prompt log-probabilities (vLLM, SGLang)",
    load: async () => (await import("./openai.ts")).teacherOpener,
  },
  sglang: {
    usage: "sglang:<base URL>",
    help: "an SGLang server's native /generate endpoint, asked for input top-k log-probabilities",
    load: async () => (await import("./openai.ts")).sglangTeacherOpener,
  },
};

/**
 * The registered spec forms as one phrase: `builtin:demo, tfjs:<model.json> or npy:<path>`.
 *
 * @example
 * ```ts
 * throw new SparsekdError(`teacher "x": expected ${teacherUsage()}`, { option: "teacher" });
 * ```
 */
export function teacherUsage(): string {
  const forms = Object.values(TEACHERS).map((t) => t.usage);
  return forms.length < 2 ? forms.join("") : `${forms.slice(0, -1).join(", ")} or ${forms.at(-1)}`;
}

/**
 * One line per registered teacher, `usage  help`, indented for a command's `--help` text.
 *
 * @example
 * ```ts
 * console.log(`--teacher SPEC\n${teacherHelp("  ")}`);
 * ```
 */
export function teacherHelp(indent = "  "): string {
  const width = Math.max(...Object.values(TEACHERS).map((t) => t.usage.length));
  return Object.values(TEACHERS).map((t) => `${indent}${t.usage.padEnd(width)}  ${t.help}`).join("\n");
}
