/**
 * A sample of a token source spread evenly over it: `n` sequences at indices ⌊i·total/n⌋. An evaluation on
 * the first sequences of a split sees one or two documents; a spread sample sees all of them.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { sha256Hex } from "./sha256.ts";
import type { TokenSource } from "./source.ts";

/**
 * `n` sequences of `source` spread evenly over it (sequence i of the result is sequence ⌊i·total/n⌋ of
 * `source`); `source` itself when `n` covers it. Its fingerprint and description name the sample.
 *
 * @example
 * ```ts
 * import { openSource } from "./open_source.ts";
 * import { evenlySpaced } from "./spaced_source.ts";
 * const all = await openSource("builtin:demo", { split: "heldout", seqLen: 64 });
 * const sample = evenlySpaced(all, 8); // 8 sequences from the whole held-out split
 * ```
 */
export function evenlySpaced(source: TokenSource, n: number): TokenSource {
  if (!(Number.isSafeInteger(n) && n >= 1)) {
    throw new SparsekdError(`a spread sample needs n ≥ 1 sequences (got ${n})`);
  }
  const total = source.sequences;
  if (n >= total) return source;
  const index = (i: number) => Math.floor((i * total) / n);
  return {
    sequences: n,
    seqLen: source.seqLen,
    fingerprint: sha256Hex(new TextEncoder().encode(`${source.fingerprint}:spread${n}`)),
    description: `${source.description} (${n} sequences spread evenly over ${total})`,
    boundaryToken: source.boundaryToken,
    vocabSize: source.vocabSize,
    async read(start: number, count: number): Promise<Uint32Array> {
      if (!(Number.isSafeInteger(start) && Number.isSafeInteger(count) && start >= 0 && count >= 0)) {
        throw new RangeError(`read(${start}, ${count}): start and count must be integers ≥ 0`);
      }
      if (start + count > n) throw new RangeError(`read(${start}, ${count}) past the ${n} sequences`);
      const out = new Uint32Array(count * source.seqLen);
      for (let i = 0; i < count; i++) {
        out.set(await source.read(index(start + i), 1), i * source.seqLen);
      }
      return out;
    },
  };
}
