/**
 * The documents of a text corpus (`--data text:<file or folder>`), streamed: plain text (a file is one
 * document) or JSONL (one JSON object with a string `text` field per line, each one document), either of
 * them gzip-compressed (`.gz`). A folder is walked recursively and its `.txt`/`.jsonl` files (`.gz` too)
 * are read in sorted path order. Memory stays bounded: a long text file comes as pieces of about 1 MiB,
 * cut only after a line break followed by a non-space character (a pre-token boundary for GPT-2-style
 * tokenizers, so the pieces encode as the whole document would).
 * @module
 */
import { basename, join, relative } from "node:path";
import { SparsekdError } from "../errors.ts";

/** A text piece cut from a text file is about this long (characters). */
export const TEXT_PIECE_CHARS = 1 << 20;
/** The longest line read (characters): a longer line (or JSONL record) is an error. */
export const MAX_LINE_CHARS = 64 << 20;

/** One input file of a corpus. */
export interface TextFile {
  /** Its path. */
  path: string;
  /** Its path relative to the corpus root (the file name for a single file). */
  name: string;
  /** `text` (one document) or `jsonl` (one document per line). */
  kind: "text" | "jsonl";
  /** Gzip-compressed (`.gz`). */
  gzip: boolean;
  /** Size in bytes (compressed). */
  size: number;
}

/** A piece of a document: `end` marks its last piece. */
export interface TextPiece {
  /** The text. */
  text: string;
  /** Whether this piece ends its document. */
  end: boolean;
}

const CORPUS_FILE = /\.(txt|jsonl)(\.gz)?$/;

function fileOf(path: string, name: string, size: number): TextFile {
  const gzip = path.endsWith(".gz");
  const kind = /\.jsonl(\.gz)?$/.test(path) ? "jsonl" : "text";
  return { path, name, kind, gzip, size };
}

/**
 * The files of a corpus: the file itself (JSONL when it ends in `.jsonl` or `.jsonl.gz`, else text), or a
 * folder's `.txt`, `.jsonl`, `.txt.gz` and `.jsonl.gz` files, recursively, in sorted order of their
 * relative paths (hidden files and folders skipped). A missing path is a one-line error.
 *
 * @example
 * ```ts
 * const files = await listTextFiles("corpus/"); // [{ path: "corpus/a.txt", kind: "text", … }, …]
 * ```
 */
export async function listTextFiles(root: string): Promise<TextFile[]> {
  let st: Deno.FileInfo;
  try {
    st = await Deno.stat(root);
  } catch (err) {
    throw new SparsekdError(
      `data text:${root}: ${
        err instanceof Deno.errors.NotFound ? "does not exist" : String((err as Error).message).split("\n")[0]
      }`,
      { option: "data" },
    );
  }
  if (st.isFile) return [fileOf(root, basename(root), st.size)];
  const out: TextFile[] = [];
  const walk = async (dir: string) => {
    const entries: Deno.DirEntry[] = [];
    for await (const e of Deno.readDir(dir)) if (!e.name.startsWith(".")) entries.push(e);
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory) await walk(path);
      else if (CORPUS_FILE.test(e.name)) {
        const s = await Deno.stat(path);
        if (s.isFile) out.push(fileOf(path, relative(root, path), s.size));
      }
    }
  };
  await walk(root);
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The lines of a text stream, each with its `\n` (the last one may have none). */
async function* lines(chunks: AsyncIterable<string>, where: string): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of chunks) {
    const from = rest.length; // rest has no line break: search only the new text (a long line stays linear)
    rest += chunk;
    let at = 0;
    for (let nl = rest.indexOf("\n", from); nl >= 0; nl = rest.indexOf("\n", at)) {
      yield rest.slice(at, nl + 1);
      at = nl + 1;
    }
    rest = rest.slice(at);
    if (rest.length > MAX_LINE_CHARS) {
      throw new SparsekdError(`${where}: a line longer than ${MAX_LINE_CHARS} characters`, {
        option: "data",
      });
    }
  }
  if (rest !== "") yield rest;
}

async function* decoded(file: TextFile): AsyncGenerator<string> {
  const f = await Deno.open(file.path, { read: true });
  let bytes: ReadableStream<Uint8Array> = f.readable;
  if (file.gzip) {
    bytes = bytes.pipeThrough(new DecompressionStream("gzip") as TransformStream<Uint8Array, Uint8Array>);
  }
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const decode = (chunk?: Uint8Array) => {
    try {
      return chunk ? utf8.decode(chunk, { stream: true }) : utf8.decode();
    } catch {
      throw new SparsekdError(`data ${file.path}: is not valid UTF-8`, { option: "data" });
    }
  };
  const reader = bytes.getReader();
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (err) {
        const msg = String((err as Error).message).split("\n")[0];
        throw new SparsekdError(
          `data ${file.path}: ${file.gzip ? `is not a valid gzip file (${msg})` : msg}`,
          { option: "data" },
        );
      }
      if (r.done) break;
      yield decode(r.value);
    }
    const tail = decode();
    if (tail !== "") yield tail;
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/**
 * The documents of the files, in order, as pieces. Text files: one document each (an empty file none),
 * in pieces of about `pieceChars` (default {@linkcode TEXT_PIECE_CHARS}). JSONL: one document per non-blank line, its `text`
 * field (an empty text is no document); a line that is not a JSON object with a string `text` is a
 * one-line error naming the file and line.
 *
 * @example
 * ```ts
 * for await (const p of textPieces(await listTextFiles("corpus"))) console.log(p.text.length, p.end);
 * ```
 */
export async function* textPieces(
  files: TextFile[],
  pieceChars = TEXT_PIECE_CHARS,
): AsyncGenerator<TextPiece> {
  for (const file of files) {
    if (file.kind === "jsonl") {
      let n = 0;
      for await (const line of lines(decoded(file), `data ${file.path}`)) {
        n++;
        if (line.trim() === "") continue;
        let rec: unknown;
        try {
          rec = JSON.parse(line);
        } catch (err) {
          throw new SparsekdError(
            `data ${file.path}:${n}: not JSON (${String((err as Error).message).split("\n")[0]})`,
            { option: "data" },
          );
        }
        const text = (rec as { text?: unknown } | null)?.text;
        if (typeof rec !== "object" || rec === null || typeof text !== "string") {
          throw new SparsekdError(
            `data ${file.path}:${n}: expected a JSON object with a string "text" field`,
            {
              option: "data",
            },
          );
        }
        if (text !== "") yield { text, end: true };
      }
    } else {
      let piece = "";
      for await (const line of lines(decoded(file), `data ${file.path}`)) {
        // Cut before a line that starts with a non-space character: a pre-token boundary.
        if (piece.length >= pieceChars && piece.endsWith("\n") && /^\S/u.test(line)) {
          yield { text: piece, end: false };
          piece = "";
        }
        piece += line;
      }
      if (piece !== "") yield { text: piece, end: true };
    }
  }
}
