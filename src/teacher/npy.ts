/**
 * `--teacher npy:<path>`: precomputed float32 logits of shape [S, L, V] in a `.npy` file, for a teacher that
 * ran elsewhere. Sequence i of the data gets row i of the file; rows are read with seek + read.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { NpyFile } from "../data/npy.ts";
import { sha256File } from "../data/sha256.ts";
import type { Teacher, TeacherLogits, TeacherOpener } from "./teacher.ts";

/**
 * Opens a logits `.npy` file as a {@linkcode Teacher} (logits come back in memory: `{kind: "cpu"}`). Its
 * fingerprint is the SHA-256 of the whole file, streamed. A missing or malformed file, or a dtype other
 * than `<f4`, is a one-line {@linkcode SparsekdError}.
 *
 * @example
 * ```ts
 * const teacher = await npyTeacher("logits.npy");
 * const out = await teacher.forward(tokens, 0, 4, teacher.seqLen!); // rows 0..3
 * ```
 */
export async function npyTeacher(path: string): Promise<Teacher> {
  const npy = await NpyFile.open(path, { dtypes: ["<f4"], ndim: 3, what: "teacher logits [S, L, V]" });
  const [sequences, seqLen, vocabSize] = npy.header.shape;
  if (sequences === 0 || seqLen === 0 || vocabSize === 0) {
    throw new SparsekdError(`${path}: empty logits array (shape (${npy.header.shape.join(", ")}))`);
  }
  const fingerprint = await sha256File(path);
  return {
    kind: "dense",
    vocabSize,
    seqLen,
    fingerprint,
    description: `npy:${path}`,
    async forward(tokens: Uint32Array, start: number, count: number, L: number): Promise<TeacherLogits> {
      if (L !== seqLen) {
        throw new SparsekdError(`${path}: logits are for sequences of ${seqLen} tokens, not ${L}`);
      }
      if (tokens.length !== count * L) {
        throw new RangeError(`npy teacher: ${tokens.length} tokens for ${count} sequences of ${L}`);
      }
      if (start + count > sequences) {
        throw new SparsekdError(
          `${path}: holds logits for ${sequences} sequences, but sequences up to ${
            start + count
          } were asked for`,
        );
      }
      const bytes = await npy.readRows(start, count);
      return { kind: "cpu", array: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4) };
    },
    dispose() {},
  };
}

/**
 * The registry's opener of `npy:<path>` specs (see `registry.ts`).
 *
 * @example
 * ```ts
 * const teacher = await teacherOpener("logits.npy", rt, {});
 * ```
 */
export const teacherOpener: TeacherOpener = (arg) => {
  if (arg === "") {
    throw new SparsekdError("teacher npy: needs the path of a logits .npy file", { option: "teacher" });
  }
  return npyTeacher(arg);
};
