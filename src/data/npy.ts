/**
 * NumPy `.npy` files (format versions 1.0, 2.0 and 3.0) with random access by leading index: the header is
 * parsed and checked, and rows are read with seek + read, so a file of any size is never loaded whole.
 * @module
 */
import { SparsekdError } from "../errors.ts";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** A parsed `.npy` header. */
export interface NpyHeader {
  /** The dtype string with byte order, e.g. `<f4`. */
  descr: string;
  /** Bytes per element. */
  itemSize: number;
  /** The array shape. */
  shape: number[];
  /** Byte offset of the data. */
  dataOffset: number;
}

/**
 * Parses and checks the header at the start of a `.npy` file (`head` must hold at least the whole header).
 * Any problem is a one-line {@linkcode SparsekdError} naming `name`.
 *
 * @example
 * ```ts
 * const h = parseNpyHeader(await Deno.readFile("x.npy"), "x.npy");
 * console.log(h.descr, h.shape);
 * ```
 */
export function parseNpyHeader(head: Uint8Array, name: string): NpyHeader {
  const bad = (why: string) => new SparsekdError(`${name}: not a valid .npy file (${why})`);
  if (head.length < 10 || MAGIC.some((b, i) => head[i] !== b)) throw bad("no \\x93NUMPY magic");
  const major = head[6];
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let headerLen: number, start: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (head.length < 12) throw bad("truncated header");
    headerLen = dv.getUint32(8, true);
    start = 12;
  } else {
    throw bad(`unsupported format version ${major}.${head[7]}`);
  }
  if (head.length < start + headerLen) throw bad("truncated header");
  const text = new TextDecoder(major === 3 ? "utf-8" : "latin1").decode(
    head.subarray(start, start + headerLen),
  );
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined) {
    throw bad("header lacks descr, fortran_order or shape");
  }
  if (fortran === "True") {
    throw new SparsekdError(`${name}: Fortran-order arrays are not supported (save C order)`);
  }
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  if (shape.some((n) => !Number.isSafeInteger(n) || n < 0)) throw bad(`bad shape (${shapeText})`);
  const m = /^([<>|=])([a-z])(\d+)$/.exec(descr);
  if (!m) throw bad(`unsupported dtype '${descr}'`);
  return { descr, itemSize: Number(m[3]), shape, dataOffset: start + headerLen };
}

/** The little-endian form of a descr (`=i4` on this little-endian machine is `<i4`; `|u1` stays). */
function littleEndian(descr: string): string {
  return descr.startsWith("=") ? "<" + descr.slice(1) : descr;
}

/** What {@linkcode NpyFile.open} accepts. */
export interface NpyExpect {
  /** Accepted dtypes, e.g. `["<i4", "<u4"]`. */
  dtypes: string[];
  /** Required number of dimensions. */
  ndim: number;
  /** What the array is, for messages (e.g. `token ids [S, L]`). */
  what: string;
}

/**
 * A checked `.npy` file read by rows of its leading dimension. Each read opens the file, seeks and reads
 * (no handle stays open between reads, so any number of reads may run at once).
 *
 * @example
 * ```ts
 * const f = await NpyFile.open("ids.npy", { dtypes: ["<i4", "<u4"], ndim: 2, what: "token ids [S, L]" });
 * const bytes = await f.readRows(10, 4); // rows 10..13
 * ```
 */
export class NpyFile {
  /** The path it was opened from. */
  readonly path: string;
  /** The header. */
  readonly header: NpyHeader;
  /** The dtype in little-endian form. */
  readonly dtype: string;
  /** Bytes per row of the leading dimension. */
  readonly rowBytes: number;
  /** Size of the file in bytes. */
  readonly fileSize: number;

  private constructor(path: string, header: NpyHeader, fileSize: number) {
    this.path = path;
    this.header = header;
    this.dtype = littleEndian(header.descr);
    this.rowBytes = header.shape.slice(1).reduce((a, b) => a * b, 1) * header.itemSize;
    this.fileSize = fileSize;
  }

  /**
   * Opens and checks a `.npy` file: a missing file, a malformed header, another dtype, Fortran order,
   * another rank or a size that does not match the shape is a one-line {@linkcode SparsekdError}.
   *
   * @example
   * ```ts
   * const f = await NpyFile.open("logits.npy", { dtypes: ["<f4"], ndim: 3, what: "logits [S, L, V]" });
   * ```
   */
  static async open(path: string, expect: NpyExpect): Promise<NpyFile> {
    using file = await openFile(path);
    const stat = await file.stat();
    if (!stat.isFile) throw new SparsekdError(`${path}: not a file`);
    const size = stat.size;
    let head = await readAt(file, 0, Math.min(size, 4096));
    if (head.length >= 12 && head[6] >= 2) {
      const len = new DataView(head.buffer, head.byteOffset).getUint32(8, true);
      if (len + 12 > head.length && len + 12 <= size) head = await readAt(file, 0, len + 12);
    }
    const header = parseNpyHeader(head, path);
    const dtype = littleEndian(header.descr);
    if (!expect.dtypes.includes(dtype)) {
      throw new SparsekdError(
        `${path}: dtype '${header.descr}' is not accepted for ${expect.what} (use ${
          expect.dtypes.join(" or ")
        })`,
      );
    }
    if (header.shape.length !== expect.ndim) {
      throw new SparsekdError(
        `${path}: shape (${
          header.shape.join(", ")
        }) has ${header.shape.length} dimensions, ${expect.what} needs ${expect.ndim}`,
      );
    }
    const want = header.dataOffset + header.shape.reduce((a, b) => a * b, 1) * header.itemSize;
    if (size < want) {
      throw new SparsekdError(
        `${path}: truncated (${size} bytes, shape (${header.shape.join(", ")}) needs ${want})`,
      );
    }
    if (size > want) {
      throw new SparsekdError(`${path}: ${size - want} bytes past the end of the array (a corrupt file?)`);
    }
    return new NpyFile(path, header, size);
  }

  /** Reads `count` rows starting at row `start` (raw little-endian bytes). */
  async readRows(start: number, count: number): Promise<Uint8Array> {
    const rows = this.header.shape[0];
    if (
      !(Number.isInteger(start) && Number.isInteger(count) && start >= 0 && count >= 0 &&
        start + count <= rows)
    ) {
      throw new RangeError(`${this.path}: rows [${start}, ${start + count}) outside [0, ${rows})`);
    }
    using file = await openFile(this.path);
    const bytes = await readAt(file, this.header.dataOffset + start * this.rowBytes, count * this.rowBytes);
    if (bytes.length !== count * this.rowBytes) {
      throw new SparsekdError(`${this.path}: truncated while reading`);
    }
    return bytes;
  }
}

/** Opens a file for reading; a missing or unreadable file is a one-line {@linkcode SparsekdError}. */
export async function openFile(path: string): Promise<Deno.FsFile> {
  try {
    return await Deno.open(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new SparsekdError(`${path}: no such file`);
    throw new SparsekdError(`${path}: cannot open (${String(err).split("\n")[0]})`);
  }
}

/**
 * Reads up to `length` bytes at `offset` (fewer only at the end of the file).
 *
 * @example
 * ```ts
 * using f = await Deno.open("x.bin");
 * const first16 = await readAt(f, 0, 16);
 * ```
 */
export async function readAt(file: Deno.FsFile, offset: number, length: number): Promise<Uint8Array> {
  await file.seek(offset, Deno.SeekMode.Start);
  const out = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const n = await file.read(out.subarray(got));
    if (n === null) break;
    got += n;
  }
  return got === length ? out : out.subarray(0, got);
}

/**
 * Builds a `.npy` file's bytes (format 1.0, C order) — for tests and small exports.
 *
 * @example
 * ```ts
 * await Deno.writeFile("ids.npy", npyBytes("<i4", [2, 3], new Int32Array(6)));
 * ```
 */
export function npyBytes(descr: string, shape: number[], data: ArrayBufferView, version = 1): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}${
    shape.length === 1 ? "," : ""
  }), }`;
  const pre = version === 1 ? 10 : 12;
  const padded = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const header = dict + " ".repeat(padded - pre - dict.length - 1) + "\n";
  const out = new Uint8Array(padded + data.byteLength);
  out.set(MAGIC);
  out[6] = version;
  out[7] = 0;
  const dv = new DataView(out.buffer);
  if (version === 1) dv.setUint16(8, header.length, true);
  else dv.setUint32(8, header.length, true);
  out.set(new TextEncoder().encode(header), pre);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), padded);
  return out;
}
