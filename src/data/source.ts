/**
 * The token-source interface: fixed-length sequences of token ids, readable at any sequence index so that
 * each host reads only the sequences of its own shards.
 * @module
 */

/** A dataset of `sequences` sequences of `seqLen` token ids each. */
export interface TokenSource {
  /** Number of sequences. */
  readonly sequences: number;
  /** Tokens per sequence. */
  readonly seqLen: number;
  /** A hash of the token data (hex), stored in run.json so that other data is refused on resume. */
  readonly fingerprint: string;
  /** A short human description (for run.json's `data` entry), e.g. `builtin:demo (brown, train split)`. */
  readonly description: string;
  /**
   * A document separator: a position whose input token is this id has the first token of another document
   * as its target, and training masks it. Absent: no position is masked (sources without documents, or
   * text read with `crossDocuments`).
   */
  readonly boundaryToken?: number;
  /** The vocabulary of the tokenizer that made the ids, when the source knows it (text sources). */
  readonly vocabSize?: number;
  /** Reads sequences [start, start+count) as count*seqLen token ids, row-major. */
  read(start: number, count: number): Promise<Uint32Array>;
}
