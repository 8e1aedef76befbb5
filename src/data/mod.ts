/**
 * Token data: sources of fixed-length token sequences (`builtin:demo`, `builtin:tslib`, `.npy` files, sparsekd
 * token files), the built-in tokenizers, and the assignment of shards to hosts.
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
export { demoSource, demoTokenizer, demoTokenStream } from "./demo.ts";
export type { DemoSourceOptions, DemoSplit, DemoTokenizer } from "./demo.ts";
export { tslibSource, tslibTokenizer, tslibTokenStream } from "./tslib.ts";
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
