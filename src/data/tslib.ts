/**
 * The built-in low-entropy data (`--data builtin:tslib`): the TypeScript standard-library declarations
 * (`src/data/tslib_corpus.ts`), tokenized with the demo's byte-level BPE (`assets/demo_tokenizer.json`,
 * vocabulary 2,048, trained on Brown prose: code falls into short pieces, about 1.7 characters per token, many
 * of them easy continuations), documents separated by the end-of-text token, cut into non-overlapping windows
 * of `seqLen` tokens. The same tokenizer and vocabulary as `builtin:demo`, so the same student shapes work.
 *
 * Every 10th document is held out (`split: "heldout"`). The tokenized stream of each split is cached as raw
 * little-endian u16 under `runs/.cache/` (relative to the working directory); a cache that cannot be written
 * is silently skipped.
 * @module
 */
import tokenizerJson from "./assets/demo_tokenizer.json" with { type: "json" };
import { type DemoSplit, type DemoTokenizer, demoTokenizer } from "./demo.ts";
import type { TokenSource } from "./source.ts";
import { TSLIB_DOC_LINES, TSLIB_VERSION, tslibDocuments } from "./tslib_corpus.ts";
import {
  type BuiltinCorpus,
  corpusSource,
  type CorpusSourceOptions,
  corpusTokenStream,
} from "./corpus_source.ts";

/** Bumped whenever normalization, the document cut or the stream layout changes (stale caches). */
const STREAM_VERSION = 1;

/**
 * The tokenizer of `builtin:tslib`: the demo's byte-level BPE ({@linkcode demoTokenizer}, vocabulary 2,048).
 *
 * @example
 * ```ts
 * const tok = tslibTokenizer();
 * const ids = tok.encode("interface Foo {\n    readonly bar: number;\n}\n");
 * console.log(tok.vocabSize, tok.decode(ids));
 * ```
 */
export function tslibTokenizer(): DemoTokenizer {
  return demoTokenizer();
}

/** The TypeScript library declarations with the demo tokenizer, as a {@linkcode BuiltinCorpus}. */
export const TSLIB_CORPUS: BuiltinCorpus = {
  name: "tslib",
  documents: (split) => tslibDocuments(split),
  encode: (text) => tslibTokenizer().encode(text),
  cacheKey: (split) => [STREAM_VERSION, TSLIB_VERSION, TSLIB_DOC_LINES, split, "demo", tokenizerJson],
  describe: (split) =>
    `builtin:tslib (${TSLIB_VERSION} lib.*.d.ts, ${split} split, demo byte-BPE ${tslibTokenizer().vocabSize})`,
};

/**
 * The whole token stream of one split (documents each followed by end-of-text), as u16 ids.
 *
 * @example
 * ```ts
 * const ids = await tslibTokenStream("heldout");
 * ```
 */
export function tslibTokenStream(split: DemoSplit): Promise<Uint16Array> {
  return corpusTokenStream(TSLIB_CORPUS, split);
}

/** Options of {@linkcode tslibSource}. */
export type TslibSourceOptions = CorpusSourceOptions;

/**
 * The tslib corpus as a {@linkcode TokenSource}: non-overlapping windows of `seqLen` tokens of the split's
 * token stream; its fingerprint is the SHA-256 of the served ids as little-endian u32.
 *
 * @example
 * ```ts
 * const src = await tslibSource({ split: "heldout", seqLen: 64, maxSequences: 100 });
 * ```
 */
export function tslibSource(options: TslibSourceOptions): Promise<TokenSource> {
  return corpusSource(TSLIB_CORPUS, options);
}
