/**
 * The check that every token id is below the teacher's vocabulary, with the sequence and position of the
 * first offender in a one-line error.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import type { TokenSource } from "./source.ts";

/**
 * Throws a {@linkcode SparsekdError} if any id in `ids` (sequences `firstSequence`… of `seqLen` tokens) is
 * ≥ `vocabSize`.
 *
 * @example
 * ```ts
 * checkTokenIds(await src.read(0, 8), 2048, 0, src.seqLen, src.description);
 * ```
 */
export function checkTokenIds(
  ids: Uint32Array,
  vocabSize: number,
  firstSequence: number,
  seqLen: number,
  what: string,
): void {
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] >= vocabSize) {
      const seq = firstSequence + Math.floor(i / seqLen), pos = i % seqLen;
      throw new SparsekdError(
        `${what}: token id ${
          ids[i]
        } at sequence ${seq}, position ${pos} is ≥ the vocabulary size ${vocabSize}`,
      );
    }
  }
}

/**
 * Wraps a source so that every read is checked against `vocabSize` with {@linkcode checkTokenIds}.
 *
 * @example
 * ```ts
 * const checked = withVocabCheck(await openSource("npy:ids.npy"), teacher.vocabSize);
 * ```
 */
export function withVocabCheck(source: TokenSource, vocabSize: number): TokenSource {
  return {
    sequences: source.sequences,
    seqLen: source.seqLen,
    fingerprint: source.fingerprint,
    description: source.description,
    boundaryToken: source.boundaryToken,
    vocabSize: source.vocabSize,
    async read(start: number, count: number): Promise<Uint32Array> {
      const ids = await source.read(start, count);
      checkTokenIds(ids, vocabSize, start, source.seqLen, source.description);
      return ids;
    },
  };
}
