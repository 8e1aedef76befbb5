/**
 * A built-in corpus as token data: its documents tokenized with the demo byte-BPE, each followed by the
 * end-of-text token, the stream of each split cached as raw little-endian u16 under `runs/.cache/` (relative
 * to the working directory; a cache that cannot be written is silently skipped), and served as non-overlapping
 * windows of `seqLen` tokens. `builtin:demo` (`demo.ts`) and `builtin:tslib` (`tslib.ts`) are two such corpora.
 * @module
 */
import { join } from "node:path";
import { END_OF_TEXT } from "./bpe.ts";
import type { DemoSplit } from "./brown.ts";
import type { TokenSource } from "./source.ts";
import { sha256Hex } from "./sha256.ts";
import { SparsekdError } from "../errors.ts";

/** What makes a built-in corpus: its name, documents, tokenizer and what its cache key depends on. */
export interface BuiltinCorpus {
  /** The name after `builtin:` (also the cache files' prefix and the error messages' word). */
  readonly name: string;
  /** The documents of a split, in order. */
  documents(split: DemoSplit): AsyncIterable<{ text: string }>;
  /** Text → token ids (ids below 65,536). */
  encode(text: string): ArrayLike<number>;
  /** Everything the tokenized stream depends on (versions, the tokenizer): a new value means a new cache. */
  cacheKey(split: DemoSplit): unknown[];
  /** The source's description for a split (run.json `data.description`). */
  describe(split: DemoSplit): string;
}

const streams = new Map<string, Promise<Uint16Array>>();

async function buildStream(corpus: BuiltinCorpus, split: DemoSplit): Promise<Uint16Array> {
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
  for await (const doc of corpus.documents(split)) {
    push(corpus.encode(doc.text));
    push([END_OF_TEXT]);
  }
  return buf.slice(0, n);
}

async function loadStream(corpus: BuiltinCorpus, split: DemoSplit): Promise<Uint16Array> {
  const dir = join(Deno.cwd(), "runs", ".cache");
  const key = sha256Hex(new TextEncoder().encode(JSON.stringify(corpus.cacheKey(split)))).slice(0, 16);
  const path = join(dir, `${corpus.name}_${split}_${key}.u16`);
  try {
    const bytes = await Deno.readFile(path);
    if (bytes.length % 2 === 0 && bytes.length > 0) {
      return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
    }
  } catch {
    // not cached yet
  }
  const stream = await buildStream(corpus, split);
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
 * The whole token stream of one split of a corpus (documents each followed by end-of-text), as u16 ids;
 * built once per process (and cached on disk).
 *
 * @example
 * ```ts
 * import { DEMO_CORPUS } from "./demo.ts";
 * const ids = await corpusTokenStream(DEMO_CORPUS, "heldout");
 * ```
 */
export function corpusTokenStream(corpus: BuiltinCorpus, split: DemoSplit): Promise<Uint16Array> {
  const id = `${corpus.name}/${split}`;
  let p = streams.get(id);
  if (!p) {
    p = loadStream(corpus, split);
    streams.set(id, p);
  }
  return p;
}

/** Options of {@linkcode corpusSource}. */
export interface CorpusSourceOptions {
  /** `train` (default; what save-topk reads) or `heldout` (evaluation only). */
  split?: DemoSplit;
  /** Tokens per sequence. */
  seqLen: number;
  /** At most this many sequences (the first ones). */
  maxSequences?: number;
}

/**
 * A corpus as a {@linkcode TokenSource}: non-overlapping windows of `seqLen` tokens of the split's token
 * stream (a trailing partial window is dropped). Its fingerprint is the SHA-256 of the served ids as
 * little-endian u32 (so another seqLen or maxSequences is other data).
 *
 * @example
 * ```ts
 * import { DEMO_CORPUS } from "./demo.ts";
 * const src = await corpusSource(DEMO_CORPUS, { split: "train", seqLen: 64, maxSequences: 1000 });
 * ```
 */
export async function corpusSource(
  corpus: BuiltinCorpus,
  options: CorpusSourceOptions,
): Promise<TokenSource> {
  const split = options.split ?? "train";
  const { seqLen } = options;
  if (split !== "train" && split !== "heldout") {
    throw new SparsekdError(`${corpus.name} split must be "train" or "heldout" (got "${split}")`);
  }
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new SparsekdError(`seqLen must be ≥ 1 (got ${seqLen})`);
  const max = options.maxSequences;
  if (max !== undefined && !(Number.isInteger(max) && max >= 1)) {
    throw new SparsekdError(`maxSequences must be ≥ 1 (got ${max})`);
  }
  const stream = await corpusTokenStream(corpus, split);
  const available = Math.floor(stream.length / seqLen);
  if (available === 0) {
    throw new SparsekdError(
      `seqLen ${seqLen} is longer than the ${corpus.name} ${split} split (${stream.length} tokens)`,
    );
  }
  const sequences = Math.min(available, max ?? available);
  const served = Uint32Array.from(stream.subarray(0, sequences * seqLen));
  const fingerprint = sha256Hex(new Uint8Array(served.buffer));
  return {
    sequences,
    seqLen,
    fingerprint,
    description: corpus.describe(split),
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
