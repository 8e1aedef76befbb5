/**
 * Host-side pieces shared by the two top-k kernels (`./topk.ts` and `./topk_radix.ts`): the from-buffer
 * argument checks, the staged upload of logits from memory, the empty result and a bindable dummy buffer.
 * @module
 */
import type { Runtime } from "../gpu/runtime.ts";
import { SparsekdError } from "../errors.ts";
import { checkTopKArgs, type TopKOptions, type TopKResult } from "./topk_reference.ts";

/** Largest upload staged on the GPU at once by the top-k kernels (bytes). */
const MAX_UPLOAD = 256 * 1024 * 1024;

const dummies = new WeakMap<GPUDevice, GPUBuffer>();
/**
 * A 16-byte storage buffer of `device`, made once: what an unused binding is bound to.
 *
 * @example
 * ```ts
 * const unused = dummy16(device);
 * ```
 */
export function dummy16(device: GPUDevice): GPUBuffer {
  let b = dummies.get(device);
  if (!b) dummies.set(device, b = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE }));
  return b;
}

/**
 * The result for zero rows.
 *
 * @example
 * ```ts
 * if (rows === 0) return emptyTopKResult();
 * ```
 */
export function emptyTopKResult(): TopKResult {
  return { indices: new Uint32Array(0), values: new Float32Array(0), logsumexp: new Float32Array(0) };
}

/**
 * The from-buffer entry points' argument checks (errors name `name`): a GPU runtime, a buffer large enough
 * for `rows * vocab` float32 values and bindable as storage. Returns the temperatures.
 *
 * @example
 * ```ts
 * const temps = checkFromBufferArgs("topKFromBuffer", rt, buf, rows, vocab, k, options);
 * ```
 */
export function checkFromBufferArgs(
  name: string,
  rt: Runtime,
  logits: GPUBuffer,
  rows: number,
  vocab: number,
  k: number,
  options: TopKOptions,
): number[] {
  const temps = checkTopKArgs(null, rows, vocab, k, options);
  if (!rt.device) throw new SparsekdError(`${name} needs a GPU runtime (this one runs on the CPU)`);
  if (logits.size < rows * vocab * 4) {
    throw new SparsekdError(
      `${name}: the buffer holds ${logits.size} bytes but rows * vocab * 4 = ${rows * vocab * 4}`,
    );
  }
  if ((logits.usage & GPUBufferUsage.STORAGE) === 0) {
    throw new SparsekdError(`${name}: the logits buffer needs GPUBufferUsage.STORAGE`);
  }
  return temps;
}

/**
 * Uploads `rows` rows of `vocab` logits from memory in slices that fit the staging buffer `scratch.input`
 * (grown as needed, labelled `label`) and calls `submit` for each slice (synchronously, no await): `n` rows
 * from row `r0`, with the number of chunks submitted so far. Returns every chunk `submit` returned.
 *
 * @example
 * ```ts
 * const chunks = uploadRows(device, s, "topk input", logits, rows, vocab, (input, n, r0, done) =>
 *   submitRows(rt, pipeline, input, 0, n, r0, vocab, k, temps, s.outputs, done));
 * ```
 */
export function uploadRows<C>(
  device: GPUDevice,
  scratch: { input: GPUBuffer | null },
  label: string,
  logits: Float32Array,
  rows: number,
  vocab: number,
  submit: (input: GPUBuffer, n: number, r0: number, done: number) => C[],
): C[] {
  const rowsPerUpload = Math.max(
    1,
    Math.floor(Math.min(MAX_UPLOAD, device.limits.maxBufferSize) / (vocab * 4)),
  );
  const uploadBytes = Math.min(rows, rowsPerUpload) * vocab * 4;
  if (!scratch.input || scratch.input.size < uploadBytes) {
    scratch.input?.destroy();
    scratch.input = device.createBuffer({
      label,
      size: Math.ceil(uploadBytes / 256) * 256,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
  }
  const input = scratch.input;
  const chunks: C[] = [];
  for (let r0 = 0; r0 < rows; r0 += rowsPerUpload) {
    const n = Math.min(rowsPerUpload, rows - r0);
    device.queue.writeBuffer(input, 0, logits as Float32Array<ArrayBuffer>, r0 * vocab, n * vocab);
    chunks.push(...submit(input, n, r0, chunks.length));
  }
  return chunks;
}

/**
 * Assembles the read-back of every chunk (per chunk: `rows*k` ids, `rows*k` values, `rows*nt` logsumexps,
 * `rows` flags) into one result. A row whose flag is not `okFlag` throws `refuse(row, flag)`, the first such.
 *
 * @example
 * ```ts
 * return assembleTopK(await readBack(device, regions), chunks, rows, k, nt, 0, (r) => new NonFiniteLogitsError(r));
 * ```
 */
export function assembleTopK(
  data: ArrayBuffer[],
  chunks: { row0: number; rows: number }[],
  rows: number,
  k: number,
  nt: number,
  okFlag: number,
  refuse: (row: number, flag: number) => Error,
): TopKResult {
  const indices = new Uint32Array(rows * k);
  const values = new Float32Array(rows * k);
  const logsumexp = new Float32Array(rows * nt);
  chunks.forEach((c, i) => {
    const words = new Uint32Array(data[i]);
    const n = c.rows;
    const flags = words.subarray(2 * n * k + n * nt, 2 * n * k + n * nt + n);
    const bad = flags.findIndex((f) => f !== okFlag);
    if (bad >= 0) throw refuse(c.row0 + bad, flags[bad]);
    indices.set(words.subarray(0, n * k), c.row0 * k);
    values.set(new Float32Array(data[i], n * k * 4, n * k), c.row0 * k);
    logsumexp.set(new Float32Array(data[i], 2 * n * k * 4, n * nt), c.row0 * nt);
  });
  return { indices, values, logsumexp };
}
