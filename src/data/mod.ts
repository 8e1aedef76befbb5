/**
 * Token data: sources of fixed-length token sequences (`builtin:demo`, `builtin:tslib`, `.npy` files,
 * sparsekd token files, text with a Hugging Face tokenizer), the built-in tokenizers, and the assignment of
 * shards to hosts.
 *
 * @example Read the first sequences of the built-in demo corpus
 * ```ts
 * import { openSource } from "./mod.ts";
 *
 * const src = await openSource("builtin:demo", { seqLen: 16, maxSequences: 4 });
 * const ids = await src.read(0, 2);
 * if (src.sequences !== 4 || ids.length !== 2 * 16) throw new Error("two sequences of 16 ids");
 * ```
 * @module
 */
export { DEMO_CORPUS, demoSource, demoTokenizer, demoTokenStream } from "./demo.ts";
export type { DemoSourceOptions, DemoSplit, DemoTokenizer } from "./demo.ts";
export { TSLIB_CORPUS, tslibSource, tslibTokenizer, tslibTokenStream } from "./tslib.ts";
export { corpusSource, corpusTokenStream } from "./corpus_source.ts";
export type { BuiltinCorpus, CorpusSourceOptions } from "./corpus_source.ts";
export type { TslibSourceOptions } from "./tslib.ts";
export { END_OF_TEXT } from "./bpe.ts";
export { npyBytes, NpyFile, parseNpyHeader } from "./npy.ts";
export type { NpyExpect, NpyHeader } from "./npy.ts";
export { npySource } from "./npy_source.ts";
export {
  decodeTokenFileHeader,
  encodeTokenFileHeader,
  TOKEN_FILE_HEADER_BYTES,
  TOKEN_FILE_MAGIC,
  tokenFileSource,
  TokenFileWriter,
} from "./token_file.ts";
export type { TokenFileHeader, TokenFileWriterOptions } from "./token_file.ts";
export { checkTokenIds, withVocabCheck } from "./check_tokens.ts";
export { hostFromEnv, ownsShard, shardsForHost } from "./hosts.ts";
export type { HostAssignment } from "./hosts.ts";
export { openSource } from "./open_source.ts";
export type { OpenSourceOptions } from "./open_source.ts";
export { sha256File, sha256Hex } from "./sha256.ts";
export type { TokenSource } from "./source.ts";
export { DEFAULT_EOT_TOKEN, MAX_TOKENIZER_BYTES, openHfTokenizer } from "./hf_tokenizer.ts";
export type { HfTokenizer, OpenHfTokenizerOptions } from "./hf_tokenizer.ts";
export { listTextFiles, MAX_LINE_CHARS, TEXT_PIECE_CHARS, textPieces } from "./text_files.ts";
export type { TextFile, TextPiece } from "./text_files.ts";
export { textSource } from "./text_source.ts";
export type { TextSource, TextSourceOptions } from "./text_source.ts";
