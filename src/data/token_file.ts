/**
 * The sparsekd binary token file (`--data tokens:<path>`), documented in docs/data.md:
 *
 *     offset  size  field
 *          0     8  magic "SKDTOK01" (ASCII)
 *          8     4  u32 seqLen L (≥ 1)
 *         12     4  u32 bytes per id: 2 (u16) or 4 (u32)
 *         16     8  u64 sequences S
 *         24     4  u32 vocabSize (0 = not recorded; else every id is < vocabSize)
 *         28     4  u32 reserved, 0
 *         32     …  S·L ids, little-endian, row-major (sequence by sequence)
 *
 * All integers are little-endian; the file size is exactly 32 + S·L·width.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { openFile, readAt } from "./npy.ts";
import { sha256File } from "./sha256.ts";
import type { TokenSource } from "./source.ts";

/** The 8-byte magic at the start of a token file. */
export const TOKEN_FILE_MAGIC = "SKDTOK01";
/** Size of the header in bytes. */
export const TOKEN_FILE_HEADER_BYTES = 32;

/** The header of a token file. */
export interface TokenFileHeader {
  /** Tokens per sequence. */
  seqLen: number;
  /** Bytes per id: 2 or 4. */
  width: 2 | 4;
  /** Number of sequences. */
  sequences: number;
  /** The vocabulary size recorded by the writer, or 0. */
  vocabSize: number;
}

/**
 * Encodes a token-file header (32 bytes).
 *
 * @example
 * ```ts
 * const head = encodeTokenFileHeader({ seqLen: 128, width: 2, sequences: 10, vocabSize: 2048 });
 * ```
 */
export function encodeTokenFileHeader(h: TokenFileHeader): Uint8Array {
  const out = new Uint8Array(TOKEN_FILE_HEADER_BYTES);
  out.set(new TextEncoder().encode(TOKEN_FILE_MAGIC));
  const dv = new DataView(out.buffer);
  dv.setUint32(8, h.seqLen, true);
  dv.setUint32(12, h.width, true);
  dv.setBigUint64(16, BigInt(h.sequences), true);
  dv.setUint32(24, h.vocabSize, true);
  return out;
}

/**
 * Decodes and checks a token-file header; `name` is used in the one-line error.
 *
 * @example
 * ```ts
 * const h = decodeTokenFileHeader(first32Bytes, "data.tok");
 * ```
 */
export function decodeTokenFileHeader(head: Uint8Array, name: string): TokenFileHeader {
  const bad = (why: string) => new SparsekdError(`${name}: not a valid sparsekd token file (${why})`);
  if (head.length < TOKEN_FILE_HEADER_BYTES) throw bad("shorter than its 32-byte header");
  if (new TextDecoder("latin1").decode(head.subarray(0, 8)) !== TOKEN_FILE_MAGIC) {
    throw bad(`no ${TOKEN_FILE_MAGIC} magic`);
  }
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const seqLen = dv.getUint32(8, true);
  const width = dv.getUint32(12, true);
  const sequences = dv.getBigUint64(16, true);
  const vocabSize = dv.getUint32(24, true);
  if (seqLen === 0) throw bad("seqLen is 0");
  if (width !== 2 && width !== 4) throw bad(`bytes per id is ${width}, not 2 or 4`);
  if (sequences > BigInt(Number.MAX_SAFE_INTEGER)) throw bad("sequence count too large");
  if (width === 2 && vocabSize > 65536) throw bad(`vocabSize ${vocabSize} does not fit u16 ids`);
  return { seqLen, width, sequences: Number(sequences), vocabSize };
}

/**
 * Opens a token file as a {@linkcode TokenSource} read by sequence with seek + read. The fingerprint is
 * the SHA-256 of the whole file (streamed). When the header records a vocabulary size, ids at or above it
 * are refused on read with a one-line {@linkcode SparsekdError}.
 *
 * @example
 * ```ts
 * const src = await tokenFileSource("train.tok");
 * const ids = await src.read(0, 8);
 * ```
 */
export async function tokenFileSource(path: string): Promise<TokenSource & { vocabSize: number }> {
  let header: TokenFileHeader;
  {
    using file = await openFile(path);
    const stat = await file.stat();
    if (!stat.isFile) throw new SparsekdError(`${path}: not a file`);
    header = decodeTokenFileHeader(await readAt(file, 0, TOKEN_FILE_HEADER_BYTES), path);
    const want = TOKEN_FILE_HEADER_BYTES + header.sequences * header.seqLen * header.width;
    if (stat.size < want) {
      throw new SparsekdError(
        `${path}: truncated (${stat.size} bytes, ${header.sequences}×${header.seqLen} ids need ${want})`,
      );
    }
    if (stat.size > want) {
      throw new SparsekdError(`${path}: ${stat.size - want} bytes past the last sequence (a corrupt file?)`);
    }
  }
  if (header.sequences === 0) throw new SparsekdError(`${path}: the token file holds no sequences`);
  const { seqLen, width, sequences, vocabSize } = header;
  const fingerprint = await sha256File(path);
  return {
    sequences,
    seqLen,
    fingerprint,
    vocabSize,
    description: `tokens:${path}`,
    async read(start: number, count: number): Promise<Uint32Array> {
      if (!(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0)) {
        throw new RangeError(`${path}: bad read(${start}, ${count})`);
      }
      if (start + count > sequences) {
        throw new RangeError(`${path}: read(${start}, ${count}) past ${sequences}`);
      }
      const n = count * seqLen;
      using file = await openFile(path);
      const bytes = await readAt(file, TOKEN_FILE_HEADER_BYTES + start * seqLen * width, n * width);
      if (bytes.length !== n * width) throw new SparsekdError(`${path}: truncated while reading`);
      const ids = width === 4
        ? new Uint32Array(bytes.buffer, bytes.byteOffset, n)
        : Uint32Array.from(new Uint16Array(bytes.buffer, bytes.byteOffset, n));
      if (vocabSize > 0) {
        for (let i = 0; i < n; i++) {
          if (ids[i] >= vocabSize) {
            throw new SparsekdError(
              `${path}: token id ${ids[i]} at sequence ${start + Math.floor(i / seqLen)}, position ${
                i % seqLen
              } is ≥ the file's vocabulary size ${vocabSize}`,
            );
          }
        }
      }
      return ids;
    },
  };
}

/** Options of {@linkcode TokenFileWriter.create}. */
export interface TokenFileWriterOptions {
  /** Tokens per sequence. */
  seqLen: number;
  /** Vocabulary size to record (0 = none); ids are checked against it on write. Chooses u16 when ≤ 65536. */
  vocabSize?: number;
  /** Bytes per id; default 2 when vocabSize is in 1..65536, else 4. */
  width?: 2 | 4;
}

/**
 * Writes a token file sequence by sequence (memory bounded by one `write` call); the sequence count in the
 * header is filled in by {@linkcode TokenFileWriter.close}.
 *
 * @example
 * ```ts
 * const w = await TokenFileWriter.create("train.tok", { seqLen: 4, vocabSize: 2048 });
 * await w.write(new Uint32Array([1, 2, 3, 4, 5, 6, 7, 8])); // two sequences
 * await w.close();
 * ```
 */
export class TokenFileWriter {
  #file: Deno.FsFile;
  #header: TokenFileHeader;

  private constructor(file: Deno.FsFile, header: TokenFileHeader) {
    this.#file = file;
    this.#header = header;
  }

  /** Creates (or truncates) `path` and writes a provisional header. */
  static async create(path: string, options: TokenFileWriterOptions): Promise<TokenFileWriter> {
    const vocabSize = options.vocabSize ?? 0;
    const width = options.width ?? (vocabSize > 0 && vocabSize <= 65536 ? 2 : 4);
    if (!Number.isInteger(options.seqLen) || options.seqLen < 1) {
      throw new SparsekdError(`token file: seqLen must be ≥ 1 (got ${options.seqLen})`);
    }
    if (width === 2 && !(vocabSize > 0 && vocabSize <= 65536)) {
      throw new SparsekdError("token file: u16 ids need a vocabSize in 1..65536");
    }
    const header: TokenFileHeader = { seqLen: options.seqLen, width, sequences: 0, vocabSize };
    const file = await Deno.open(path, { write: true, create: true, truncate: true });
    await writeAll(file, encodeTokenFileHeader(header));
    return new TokenFileWriter(file, header);
  }

  /** Sequences written so far. */
  get sequences(): number {
    return this.#header.sequences;
  }

  /** Appends whole sequences (`ids.length` must be a multiple of seqLen). */
  async write(ids: ArrayLike<number>): Promise<void> {
    const { seqLen, width, vocabSize } = this.#header;
    if (ids.length % seqLen !== 0) {
      throw new RangeError(
        `token file: ${ids.length} ids is not a whole number of ${seqLen}-token sequences`,
      );
    }
    const out = width === 2 ? new Uint16Array(ids.length) : new Uint32Array(ids.length);
    const limit = vocabSize > 0 ? vocabSize : 2 ** 32;
    for (let i = 0; i < ids.length; i++) {
      const v = ids[i];
      if (!(Number.isInteger(v) && v >= 0 && v < limit)) {
        throw new SparsekdError(
          `token file: id ${v} at sequence ${this.#header.sequences + Math.floor(i / seqLen)}, position ${
            i % seqLen
          } is outside [0, ${limit})`,
        );
      }
      out[i] = v;
    }
    await writeAll(this.#file, new Uint8Array(out.buffer));
    this.#header.sequences += ids.length / seqLen;
  }

  /** Writes the final header and closes the file. */
  async close(): Promise<void> {
    await this.#file.seek(0, Deno.SeekMode.Start);
    await writeAll(this.#file, encodeTokenFileHeader(this.#header));
    this.#file.close();
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await file.write(bytes.subarray(off));
}
