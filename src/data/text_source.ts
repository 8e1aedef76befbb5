/**
 * `--data text:<file or folder>` with `--tokenizer <tokenizer.json>`: a text corpus (plain text or JSONL,
 * gzip or not; see `text_files.ts`) tokenized with a Hugging Face tokenizer and packed into sequences of
 * `seqLen` tokens: the documents' ids one after the other, each document followed by the end-of-text token,
 * cut into non-overlapping windows (a trailing partial window is dropped).
 *
 * Document boundaries: the position holding an end-of-text token has the first token of the next document
 * as its target. The source names that token as its `boundaryToken`, and training masks those positions
 * (their loss and gradient are zero), unless `crossDocuments` is set. save-topk records the token in
 * run.json's `data.boundaryToken`, so training from the shards masks the same positions.
 *
 * One streaming pass tokenizes the corpus into a cache file of ids (`runs/.cache/text/` in the working
 * directory: 2 bytes per token for vocabularies up to 65,536, else 4) keyed by the SHA-256 of the input
 * files, the tokenizer and the end-of-text token; it gives the number of sequences, the fingerprint, and
 * reads by sequence index (seek + read), so memory does not grow with the corpus. A second open of the
 * same corpus and tokenizer reads the cache (after checking its size and SHA-256; a damaged cache is
 * tokenized again).
 * @module
 */
import { createHash } from "node:crypto";
import { basename, join } from "node:path";
import { SparsekdError } from "../errors.ts";
import { openHfTokenizer } from "./hf_tokenizer.ts";
import { sha256File, sha256Hex } from "./sha256.ts";
import type { TokenSource } from "./source.ts";
import { listTextFiles, textPieces } from "./text_files.ts";

/** Bumped whenever the token stream's layout changes, so that stale caches are not reused. */
const TEXT_CACHE_VERSION = 1;
/** Token ids buffered before each write of the cache file. */
const FLUSH_TOKENS = 1 << 18;

/** Options of {@linkcode textSource}. */
export interface TextSourceOptions {
  /** The Hugging Face tokenizer.json. */
  tokenizer: string;
  /** The end-of-text token's text (default `<|endoftext|>`). */
  eotToken?: string;
  /** Tokens per sequence. */
  seqLen: number;
  /** Let targets cross document boundaries (no `boundaryToken`): off by default. */
  crossDocuments?: boolean;
  /** The vocabulary the ids feed (the teacher's or the student's): a larger tokenizer is refused. */
  vocabSize?: number;
  /** Whose vocabulary `vocabSize` is, for the error (default `the teacher's`). */
  vocabOwner?: string;
  /** Where the tokenized stream is cached (default `runs/.cache/text` in the working directory). */
  cacheDir?: string;
  /** Text files are encoded in pieces of about this many characters (default 1 MiB; tests make it small). */
  pieceChars?: number;
}

/** A text corpus as a token source, with what its tokenization found. */
export interface TextSource extends TokenSource {
  /** The tokenizer's vocabulary size. */
  readonly vocabSize: number;
  /** Positions holding this id are masked in training (undefined with `crossDocuments`). */
  readonly boundaryToken?: number;
  /** The end-of-text id put after each document. */
  readonly endOfText: number;
  /** Documents in the corpus. */
  readonly documents: number;
  /** Tokens in the packed stream (end-of-text tokens included; the served sequences hold the first ones). */
  readonly tokens: number;
  /** Whether the tokenized stream came from the cache. */
  readonly cached: boolean;
}

interface CacheMeta {
  version: number;
  width: number;
  tokens: number;
  documents: number;
  sha256: string;
}

async function readMeta(metaPath: string, binPath: string, width: number): Promise<CacheMeta | null> {
  try {
    const meta = JSON.parse(await Deno.readTextFile(metaPath)) as CacheMeta;
    const st = await Deno.stat(binPath);
    if (
      meta.version === TEXT_CACHE_VERSION && meta.width === width && Number.isSafeInteger(meta.tokens) &&
      Number.isSafeInteger(meta.documents) && typeof meta.sha256 === "string" &&
      st.size === meta.tokens * width && (await sha256File(binPath)) === meta.sha256
    ) return meta;
  } catch {
    // not cached (or a damaged cache): build it again
  }
  return null;
}

function defaultCacheDir(): string {
  return join(Deno.cwd(), "runs", ".cache", "text");
}

/**
 * Opens a text corpus as a {@linkcode TextSource}. One-line {@linkcode SparsekdError}s: a missing path or
 * tokenizer, an unknown tokenizer format, a tokenizer whose vocabulary exceeds `vocabSize`, an end-of-text
 * token the tokenizer lacks, empty input (no file, no document, or fewer tokens than one sequence), bad
 * JSONL, invalid UTF-8 or gzip.
 *
 * @example
 * ```ts
 * const src = await textSource("tests/fixtures/text", {
 *   tokenizer: "models/demo_teacher/tokenizer.json",
 *   seqLen: 64,
 *   vocabSize: 2048,
 * });
 * const first = await src.read(0, 2); // 128 ids; position t of a sequence with id src.boundaryToken is masked
 * ```
 */
export async function textSource(path: string, o: TextSourceOptions): Promise<TextSource> {
  const { seqLen } = o;
  if (!Number.isSafeInteger(seqLen) || seqLen < 1) {
    throw new SparsekdError(`data text:${path} needs a sequence length ≥ 1 (got ${seqLen})`, {
      option: "data",
    });
  }
  const tok = await openHfTokenizer(o.tokenizer, { eotToken: o.eotToken });
  if (o.vocabSize !== undefined && tok.vocabSize > o.vocabSize) {
    throw new SparsekdError(
      `tokenizer ${o.tokenizer} has a vocabulary of ${tok.vocabSize} tokens, more than ` +
        `${o.vocabOwner ?? "the teacher's"} ${o.vocabSize}`,
      { option: "tokenizer" },
    );
  }
  const files = await listTextFiles(path);
  if (files.length === 0) {
    throw new SparsekdError(`data text:${path}: empty input: no .txt or .jsonl files (.gz too)`, {
      option: "data",
    });
  }
  const width = tok.vocabSize <= 65536 ? 2 : 4;
  const keyParts: unknown[] = [TEXT_CACHE_VERSION, width, tok.sha256, tok.endOfText];
  for (const f of files) keyParts.push([f.name, f.size, await sha256File(f.path)]);
  const key = sha256Hex(new TextEncoder().encode(JSON.stringify(keyParts))).slice(0, 32);
  let dir = o.cacheDir ?? defaultCacheDir();
  const binPath = () => join(dir, `${key}.ids`), metaPath = () => join(dir, `${key}.json`);
  let meta = await readMeta(metaPath(), binPath(), width);
  const cached = meta !== null;
  if (meta === null) {
    try {
      await Deno.mkdir(dir, { recursive: true });
    } catch (err) {
      if (o.cacheDir !== undefined) {
        throw new SparsekdError(`cannot create the token cache ${dir}: ${String(err).split("\n")[0]}`);
      }
      dir = await Deno.makeTempDir({ prefix: "sparsekd-text-" }); // a read-only working directory
    }
    meta = await tokenize(files, tok, width, binPath(), metaPath(), o.pieceChars);
  }
  if (meta.documents === 0) {
    throw new SparsekdError(`data text:${path}: empty input: no text in ${files.length} file(s)`, {
      option: "data",
    });
  }
  const sequences = Math.floor(meta.tokens / seqLen);
  if (sequences === 0) {
    throw new SparsekdError(
      `data text:${path}: ${meta.tokens} tokens (${meta.documents} documents), fewer than one sequence of ${seqLen}`,
      { option: "data" },
    );
  }
  const boundaryToken = o.crossDocuments ? undefined : tok.endOfText;
  const fingerprint = sha256Hex(
    new TextEncoder().encode(
      JSON.stringify([
        "sparsekd.text.v1",
        meta.sha256,
        tok.sha256,
        tok.endOfText,
        seqLen,
        boundaryToken ?? null,
      ]),
    ),
  );
  const bin = binPath();
  const what = files.length === 1 && files[0].path === path ? "" : `${files.length} files, `;
  return {
    sequences,
    seqLen,
    fingerprint,
    description: `text:${path} (${what}${meta.documents} documents, ${meta.tokens} tokens; tokenizer ` +
      `${basename(o.tokenizer)} ${tok.modelType} ${tok.vocabSize}, end of text ${tok.endOfTextToken} = ` +
      `${tok.endOfText}; ${
        boundaryToken === undefined ? "targets cross documents" : "no target crosses a document"
      })`,
    vocabSize: tok.vocabSize,
    boundaryToken,
    endOfText: tok.endOfText,
    documents: meta.documents,
    tokens: meta.tokens,
    cached,
    async read(start: number, count: number): Promise<Uint32Array> {
      if (!(Number.isSafeInteger(start) && Number.isSafeInteger(count) && start >= 0 && count >= 0)) {
        throw new RangeError(`read(${start}, ${count}): bad range`);
      }
      if (start + count > sequences) {
        throw new RangeError(`read(${start}, ${count}) is past the ${sequences} sequences`);
      }
      const bytes = new Uint8Array(count * seqLen * width);
      using f = await Deno.open(bin, { read: true });
      await f.seek(start * seqLen * width, Deno.SeekMode.Start);
      for (let at = 0; at < bytes.length;) {
        const n = await f.read(bytes.subarray(at));
        if (n === null) throw new SparsekdError(`the token cache ${bin} is shorter than it was: delete it`);
        at += n;
      }
      return width === 2 ? Uint32Array.from(new Uint16Array(bytes.buffer)) : new Uint32Array(bytes.buffer);
    },
  };
}

/** The streaming pass: documents → ids (+ end-of-text after each) → the cache file, hashed on the way. */
async function tokenize(
  files: Awaited<ReturnType<typeof listTextFiles>>,
  tok: Awaited<ReturnType<typeof openHfTokenizer>>,
  width: number,
  binPath: string,
  metaPath: string,
  pieceChars?: number,
): Promise<CacheMeta> {
  const tmp = `${binPath}.${crypto.randomUUID()}.tmp`;
  const f = await Deno.open(tmp, { write: true, createNew: true });
  const hash = createHash("sha256");
  const buf = width === 2 ? new Uint16Array(FLUSH_TOKENS) : new Uint32Array(FLUSH_TOKENS);
  let n = 0, tokens = 0, documents = 0;
  const flush = async () => {
    const bytes = new Uint8Array(buf.buffer, 0, n * width);
    hash.update(bytes);
    for (let at = 0; at < bytes.length;) at += await f.write(bytes.subarray(at));
    n = 0;
  };
  const push = async (id: number) => {
    buf[n++] = id;
    tokens++;
    if (n === FLUSH_TOKENS) await flush();
  };
  try {
    for await (const piece of textPieces(files, pieceChars)) {
      for (const id of tok.encode(piece.text)) await push(id);
      if (piece.end) {
        await push(tok.endOfText);
        documents++;
      }
    }
    await flush();
    f.close();
  } catch (err) {
    try {
      f.close();
    } catch { /* already closed */ }
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  const meta: CacheMeta = {
    version: TEXT_CACHE_VERSION,
    width,
    tokens,
    documents,
    sha256: hash.digest("hex"),
  };
  await Deno.rename(tmp, binPath);
  const metaTmp = `${metaPath}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(metaTmp, JSON.stringify(meta) + "\n");
  await Deno.rename(metaTmp, metaPath);
  return meta;
}
