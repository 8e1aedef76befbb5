/**
 * `--data npy:<path>`: token ids of shape [S, L] in a `.npy` file (int32 or uint32, C order), read by
 * sequence with seek + read, never loaded whole.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { NpyFile } from "./npy.ts";
import { sha256File } from "./sha256.ts";
import type { TokenSource } from "./source.ts";

/**
 * Opens a `.npy` file of token ids [S, L] as a {@linkcode TokenSource}. Its fingerprint is the SHA-256 of
 * the whole file (streamed). A missing or malformed file is a one-line {@linkcode SparsekdError}; so is a
 * negative int32 id met while reading (ids ≥ the vocabulary are checked by {@linkcode withVocabCheck}).
 *
 * @example
 * ```ts
 * const src = await npySource("ids.npy");
 * const ids = await src.read(0, 4);
 * ```
 */
export async function npySource(path: string): Promise<TokenSource> {
  const npy = await NpyFile.open(path, { dtypes: ["<i4", "<u4"], ndim: 2, what: "token ids [S, L]" });
  const [sequences, seqLen] = npy.header.shape;
  if (sequences === 0 || seqLen === 0) {
    throw new SparsekdError(`${path}: empty token array (shape (${sequences}, ${seqLen}))`);
  }
  const signed = npy.dtype === "<i4";
  const fingerprint = await sha256File(path);
  return {
    sequences,
    seqLen,
    fingerprint,
    description: `npy:${path}`,
    async read(start: number, count: number): Promise<Uint32Array> {
      const bytes = await npy.readRows(start, count);
      const ids = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
      if (signed) {
        for (let i = 0; i < ids.length; i++) {
          if (ids[i] >= 0x80000000) {
            const seq = start + Math.floor(i / seqLen), pos = i % seqLen;
            throw new SparsekdError(
              `${path}: negative token id ${ids[i] | 0} at sequence ${seq}, position ${pos}`,
            );
          }
        }
      }
      return ids;
    },
  };
}
