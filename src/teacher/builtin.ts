/**
 * The built-in demo teacher (`builtin:demo`): the GPT-style model of `src/model/gpt.ts`, trained with
 * `deno task train --ce-only` on the demo corpus, its weights committed under `models/demo_teacher/` (see the
 * README there for the exact command and its held-out perplexity).
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

/** Where the committed weights live, relative to this module. */
export const DEMO_TEACHER_URL: URL = new URL("../../models/demo_teacher/", import.meta.url);

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
export async function createDemoTeacher(rt: Runtime, dir: URL = DEMO_TEACHER_URL): Promise<Teacher> {
  await useTfjsOnRuntime(rt);
  tuneTfjsForAdapter(rt);
  const hash = createHash("sha256");
  // Read through the store registry: a file: URL from a local checkout, http(s): when imported from a server.
  const store = hashingStore(await openStore(dir.href), (bytes) => hash.update(bytes));
  if (!(await store.exists("model.json"))) {
    throw new SparsekdError(`the demo teacher's weights are missing (${new URL("model.json", dir).href})`);
  }
  const model = await loadModel(store, "");
  const fingerprint = hash.digest("hex");
  const { vocabSize, seqLen } = model.config;
  return tensorTeacher(rt, {
    name: "demo teacher",
    vocabSize,
    seqLen,
    fingerprint,
    description: "builtin:demo",
    checkSeqLen(L) {
      if (L > seqLen) {
        throw new SparsekdError(`the demo teacher takes at most ${seqLen} tokens per sequence, not ${L}`);
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

/**
 * The registry's opener of `builtin:<name>` specs (see `registry.ts`): only `builtin:demo`.
 *
 * @example
 * ```ts
 * const teacher = await teacherOpener("demo", rt, {});
 * ```
 */
export const teacherOpener: TeacherOpener = (arg, rt) => {
  if (arg !== "demo") {
    throw new SparsekdError(`teacher builtin:${arg}: the only built-in teacher is builtin:demo`, {
      option: "teacher",
    });
  }
  return createDemoTeacher(rt);
};
