/**
 * The built-in teachers: GPT-style models of `src/model/gpt.ts` trained with `deno task train --ce-only`,
 * their weights committed under `models/` (see the README of each for the exact command and its held-out
 * figures):
 *
 * - `builtin:demo` (`models/demo_teacher/`): on the demo corpus (Brown, `--data builtin:demo`); weak, with
 *   flat distributions (the hard case for top-K distillation);
 * - `builtin:tslib` (`models/tslib_teacher/`): on the TypeScript library declarations
 *   (`--data builtin:tslib`); its probability mass is concentrated in a few tokens, like a large LM's.
 * @module
 */
import * as tf from "../deps/tfjs_core.ts";
import { createHash } from "node:crypto";
import { SparsekdError } from "../errors.ts";
import type { Runtime } from "../gpu/runtime.ts";
import { useTfjsOnRuntime } from "../gpu/tfjs_backend.ts";
import { loadModel } from "../model/checkpoint.ts";
import { tuneTfjsForAdapter } from "../model/gpt.ts";
import { openStore } from "../store/open_store.ts";
import type { ObjectStore } from "../store/store.ts";
import type { Teacher, TeacherOpener } from "./teacher.ts";
import { tensorTeacher } from "./tensor_logits.ts";

/** Where the committed weights of the demo teacher live, relative to this module. */
export const DEMO_TEACHER_URL: URL = new URL("../../models/demo_teacher/", import.meta.url);

/** Where the committed weights of the tslib teacher live, relative to this module. */
export const TSLIB_TEACHER_URL: URL = new URL("../../models/tslib_teacher/", import.meta.url);

/** The built-in teachers: name (`builtin:<name>`) → the folder of their committed weights. */
export const BUILTIN_TEACHERS: Readonly<Record<string, URL>> = {
  demo: DEMO_TEACHER_URL,
  tslib: TSLIB_TEACHER_URL,
};

/**
 * Loads the demo teacher onto the runtime (tfjs on its GPUDevice, or tfjs-backend-cpu on a CPU runtime).
 * Logits come back as a GPU buffer on WebGPU (no read-back) and as an array on the CPU.
 *
 * @example
 * ```ts
 * const rt = await createRuntime();
 * const teacher = await createDemoTeacher(rt);
 * const logits = await teacher.forward(tokens, 0, 2, 64); // 2 sequences of 64 tokens
 * ```
 */
export function createDemoTeacher(rt: Runtime, dir: URL = DEMO_TEACHER_URL): Promise<Teacher> {
  return createBuiltinTeacher(rt, "demo", dir);
}

/**
 * Loads the built-in teacher `name` (a key of {@linkcode BUILTIN_TEACHERS}) onto the runtime, from `dir`
 * (default: its committed folder), as {@linkcode createDemoTeacher} does for the demo teacher.
 *
 * @example
 * ```ts
 * const rt = await createRuntime();
 * const teacher = await createBuiltinTeacher(rt, "tslib");
 * const logits = await teacher.forward(tokens, 0, 2, 64); // 2 sequences of 64 tokens
 * ```
 */
export async function createBuiltinTeacher(
  rt: Runtime,
  name: string,
  dir?: URL,
): Promise<Teacher> {
  dir ??= Object.hasOwn(BUILTIN_TEACHERS, name) ? BUILTIN_TEACHERS[name] : undefined;
  if (dir === undefined) {
    throw new SparsekdError(`teacher builtin:${name}: ${builtinTeachersPhrase()}`, { option: "teacher" });
  }
  await useTfjsOnRuntime(rt);
  tuneTfjsForAdapter(rt);
  const hash = createHash("sha256");
  // Read through the store registry: a file: URL from a local checkout, http(s): when imported from a server.
  const store = hashingStore(await openStore(dir.href), (bytes) => hash.update(bytes));
  if (!(await store.exists("model.json"))) {
    throw new SparsekdError(
      `the ${name} teacher's weights are missing (${new URL("model.json", dir).href})`,
    );
  }
  const model = await loadModel(store, "");
  const fingerprint = hash.digest("hex");
  const { vocabSize, seqLen } = model.config;
  return tensorTeacher(rt, {
    name: `${name} teacher`,
    vocabSize,
    seqLen,
    fingerprint,
    description: `builtin:${name}`,
    checkSeqLen(L) {
      if (L > seqLen) {
        throw new SparsekdError(`the ${name} teacher takes at most ${seqLen} tokens per sequence, not ${L}`);
      }
    },
    logits(tokens, count, L) {
      const y = tf.tidy(() => {
        const x = tf.tensor2d(
          new Int32Array(tokens.buffer, tokens.byteOffset, tokens.length),
          [count, L],
          "int32",
        );
        return model.logits(x);
      });
      return Promise.resolve(y);
    },
    dispose: () => model.dispose(),
  });
}

/** A view of `store` that hands every whole object read to `onBytes` (for the weights' fingerprint). */
function hashingStore(store: ObjectStore, onBytes: (b: Uint8Array) => void): ObjectStore {
  return {
    uri: store.uri,
    exists: (path) => store.exists(path),
    list: (prefix) => store.list(prefix),
    size: (path) => store.size(path),
    read: (path, options) => store.read(path, options),
    async readBytes(path) {
      const bytes = await store.readBytes(path);
      onBytes(bytes);
      return bytes;
    },
    create: (path) => store.create(path),
    writeBytes: (path, bytes) => store.writeBytes(path, bytes),
    delete: (path) => store.delete(path),
  };
}

/** "the built-in teachers are builtin:demo and builtin:tslib". */
function builtinTeachersPhrase(): string {
  return `the built-in teachers are ${
    Object.keys(BUILTIN_TEACHERS).map((n) => `builtin:${n}`).join(" and ")
  }`;
}

/**
 * The registry's opener of `builtin:<name>` specs (see `registry.ts`): `builtin:demo` and `builtin:tslib`.
 *
 * @example
 * ```ts
 * const teacher = await teacherOpener("tslib", rt, {});
 * ```
 */
export const teacherOpener: TeacherOpener = (arg, rt) => {
  if (!Object.hasOwn(BUILTIN_TEACHERS, arg)) {
    throw new SparsekdError(`teacher builtin:${arg}: ${builtinTeachersPhrase()}`, { option: "teacher" });
  }
  return createBuiltinTeacher(rt, arg);
};
