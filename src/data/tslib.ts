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
import { join } from "node:path";
import { END_OF_TEXT } from "./bpe.ts";
import { type DemoSplit, type DemoTokenizer, demoTokenizer } from "./demo.ts";
import type { TokenSource } from "./source.ts";
import { sha256Hex } from "./sha256.ts";
import { TSLIB_DOC_LINES, TSLIB_VERSION, tslibDocuments } from "./tslib_corpus.ts";
import { SparsekdError } from "../errors.ts";

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

const streams = new Map<DemoSplit, Promise<Uint16Array>>();

function streamKey(split: DemoSplit): string {
  const key = JSON.stringify([STREAM_VERSION, TSLIB_VERSION, TSLIB_DOC_LINES, split, "demo", tokenizerJson]);
  return sha256Hex(new TextEncoder().encode(key)).slice(0, 16);
}

async function buildStream(split: DemoSplit): Promise<Uint16Array> {
  const tok = tslibTokenizer();
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
  for await (const doc of tslibDocuments(split)) {
    push(tok.encode(doc.text));
    push([END_OF_TEXT]);
  }
  return buf.slice(0, n);
}

async function loadStream(split: DemoSplit): Promise<Uint16Array> {
  const dir = join(Deno.cwd(), "runs", ".cache");
  const path = join(dir, `tslib_${split}_${streamKey(split)}.u16`);
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
 * const ids = await tslibTokenStream("heldout");
 * ```
 */
export function tslibTokenStream(split: DemoSplit): Promise<Uint16Array> {
  let p = streams.get(split);
  if (!p) {
    p = loadStream(split);
    streams.set(split, p);
  }
  return p;
}

/** Options of {@linkcode tslibSource}. */
export interface TslibSourceOptions {
  /** `train` (default) or `heldout` (evaluation only). */
  split?: DemoSplit;
  /** Tokens per sequence. */
  seqLen: number;
  /** At most this many sequences (the first ones). */
  maxSequences?: number;
}

/**
 * The tslib corpus as a {@linkcode TokenSource}: non-overlapping windows of `seqLen` tokens of the split's
 * token stream (a trailing partial window is dropped). Its fingerprint is the SHA-256 of the served ids as
 * little-endian u32.
 *
 * @example
 * ```ts
 * const src = await tslibSource({ split: "heldout", seqLen: 64, maxSequences: 100 });
 * const first = await src.read(0, 2); // 128 token ids
 * ```
 */
export async function tslibSource(options: TslibSourceOptions): Promise<TokenSource> {
  const split = options.split ?? "train";
  const { seqLen } = options;
  if (split !== "train" && split !== "heldout") {
    throw new SparsekdError(`tslib split must be "train" or "heldout" (got "${split}")`);
  }
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new SparsekdError(`seqLen must be ≥ 1 (got ${seqLen})`);
  const max = options.maxSequences;
  if (max !== undefined && !(Number.isInteger(max) && max >= 1)) {
    throw new SparsekdError(`maxSequences must be ≥ 1 (got ${max})`);
  }
  const stream = await tslibTokenStream(split);
  const available = Math.floor(stream.length / seqLen);
  if (available === 0) {
    throw new SparsekdError(
      `seqLen ${seqLen} is longer than the tslib ${split} split (${stream.length} tokens)`,
    );
  }
  const sequences = Math.min(available, max ?? available);
  const served = Uint32Array.from(stream.subarray(0, sequences * seqLen));
  const fingerprint = sha256Hex(new Uint8Array(served.buffer));
  return {
    sequences,
    seqLen,
    fingerprint,
    description:
      `builtin:tslib (${TSLIB_VERSION} lib.*.d.ts, ${split} split, demo byte-BPE ${tslibTokenizer().vocabSize})`,
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
