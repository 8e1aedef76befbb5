/**
 * Sampled targets on the GPU (`shaders/sample.wgsl`): N draws with replacement per row from softmax(z/t)
 * over the full vocabulary, the same ids as the CPU reference (`./sample_reference.ts`), which is the path
 * of a CPU runtime.
 * @module
 */
import type { Runtime } from "../gpu/runtime.ts";
import { SparsekdError } from "../errors.ts";
import { readBack, type ReadRegion } from "../gpu/readback.ts";
import { submitScoped, throwIfGpuFailed } from "../gpu/gpu_errors.ts";
import { fieldsOf, packUniforms, uniformLayout } from "../gpu/uniforms.ts";
import { bindingBudget, kernelHooks, scratchCache } from "./test_hooks.ts";
import { uploadRows } from "./topk_host.ts";
import {
  checkSampleOptions,
  packDraws,
  SAMPLE_EXP_BITS,
  type SampleOptions,
  sampleReference,
  type SampleResult,
} from "./sample_reference.ts";

export { sampleReference };
export type { SampleOptions, SampleResult };

/** The kernel's uniforms: `struct Params` of `shaders/sample.wgsl`, field by field (tests check it). */
export const SAMPLE_PARAMS = uniformLayout([
  ...fieldsOf("u32", "vocab", "rows", "in_off"),
  ...fieldsOf("f32", "inv_t"),
  ...fieldsOf("u32", "seed_lo", "seed_hi", "pos_lo", "pos_hi", "zero"),
]);

/**
 * Threads per workgroup (one workgroup per row). Workgroup memory is 12·N + 780 bytes (≤ 13 KiB at N = 1024),
 * inside the 16 KiB every WebGPU device offers.
 */
const WG = 64;

const scratchOf = scratchCache();

/** A WGSL constant holding exactly the float32 of `bits` (a hexadecimal float literal: no decimal rounding). */
function f32Const(name: string, bits: number): string {
  const exp = ((bits >>> 23) & 0xff) - 127, mant = bits & 0x7fffff;
  const sign = bits >>> 31 ? "-" : "";
  return `const ${name}: f32 = ${sign}0x1.${(mant << 1).toString(16).padStart(6, "0")}p${exp}f;\n`;
}

async function samplePipeline(rt: Runtime, n: number): Promise<GPUComputePipeline> {
  const b = SAMPLE_EXP_BITS;
  const prelude = `const WG: u32 = ${WG}u;\nconst N: u32 = ${n}u;\n` + f32Const("LOG2E", b.LOG2E) +
    f32Const("LN2_HI", b.LN2_HI) + f32Const("LN2_LO", b.LN2_LO) +
    b.C.map((bits, i) => f32Const(`C${i}`, bits)).join("");
  return await rt.pipeline(`sample/wg${WG}/n${n}`, "sample.wgsl", { prelude });
}

interface Chunk {
  row0: number;
  rows: number;
  out: GPUBuffer;
}

/** Encodes and submits the dispatches for rows [0, rows) of `logits` (synchronously, no await). */
function submitRows(
  device: GPUDevice,
  pipeline: GPUComputePipeline,
  logits: GPUBuffer,
  rows: number,
  rowBase: number,
  vocab: number,
  o: SampleOptions,
  outputs: GPUBuffer[],
  firstOut: number,
): Chunk[] {
  const limits = device.limits;
  const align = limits.minStorageBufferOffsetAlignment;
  const outWordsPerRow = 1 + 3 * o.n;
  const budget = bindingBudget(device, 4);
  const rowsPerChunk = kernelHooks.ignoreBindingLimit
    ? Math.min(rows, limits.maxComputeWorkgroupsPerDimension)
    : Math.max(
      1,
      Math.min(
        limits.maxComputeWorkgroupsPerDimension,
        Math.floor((budget - align) / (vocab * 4)),
        Math.floor(budget / (outWordsPerRow * 4)),
      ),
    );
  const count = Math.ceil(rows / rowsPerChunk);
  const params = device.createBuffer({
    label: "sample params",
    size: count * 256,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  const paramBytes = new ArrayBuffer(params.size);
  const enc = device.createCommandEncoder({ label: "sample" });
  const pass = enc.beginComputePass({ label: "sample" });
  pass.setPipeline(pipeline);
  const chunks: Chunk[] = [];
  const invT = Math.fround(1 / o.temperature);
  for (let row0 = 0, c = 0; row0 < rows; row0 += rowsPerChunk, c++) {
    const n = Math.min(rowsPerChunk, rows - row0);
    const startByte = row0 * vocab * 4;
    const bindOffset = Math.floor(startByte / align) * align;
    const bindSize = startByte - bindOffset + n * vocab * 4;
    const outBytes = n * outWordsPerRow * 4;
    const oi = firstOut + c;
    if (!outputs[oi] || outputs[oi].size < outBytes) {
      outputs[oi]?.destroy();
      outputs[oi] = device.createBuffer({
        label: `sample out ${oi}`,
        size: Math.ceil(outBytes / 256) * 256,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
      });
    }
    const pos = o.position0 + rowBase + row0;
    packUniforms(
      SAMPLE_PARAMS,
      {
        vocab,
        rows: n,
        in_off: (startByte - bindOffset) / 4,
        inv_t: invT,
        seed_lo: o.seed % 2 ** 32,
        seed_hi: Math.floor(o.seed / 2 ** 32),
        pos_lo: pos % 2 ** 32,
        pos_hi: Math.floor(pos / 2 ** 32),
        zero: 0,
      },
      paramBytes,
      c * 256,
    );
    pass.setBindGroup(
      0,
      device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: params, offset: c * 256, size: SAMPLE_PARAMS.size() } },
          { binding: 1, resource: { buffer: logits, offset: bindOffset, size: bindSize } },
          { binding: 2, resource: { buffer: outputs[oi], offset: 0, size: outBytes } },
        ],
      }),
    );
    pass.dispatchWorkgroups(n);
    chunks.push({ row0: rowBase + row0, rows: n, out: outputs[oi] });
  }
  pass.end();
  device.queue.writeBuffer(params, 0, paramBytes);
  device.queue.submit([enc.finish()]);
  params.destroy();
  return chunks;
}

/** Reads every chunk back in one map, closes the error scopes, and packs the rows. */
async function collect(
  device: GPUDevice,
  chunks: Chunk[],
  rows: number,
  vocab: number,
  n: number,
  close: () => Promise<void>,
): Promise<SampleResult> {
  const stride = 1 + 3 * n;
  const regions: ReadRegion[] = chunks.map((c) => ({ buffer: c.out, size: c.rows * stride * 4 }));
  const pending = readBack(device, regions);
  pending.catch(() => {});
  try {
    await close();
  } catch (e) {
    await pending.catch(() => {});
    throw e;
  }
  const data = await pending;
  const rowsIds: Uint32Array[] = [];
  const vals: Float32Array[] = [];
  chunks.forEach((c, i) => {
    const words = new Uint32Array(data[i]);
    const floats = new Float32Array(data[i]);
    for (let r = 0; r < c.rows; r++) {
      const o = r * stride, len = words[o];
      if (len < 1 || len > n) throw new SparsekdError(`sample: row ${c.row0 + r} came back with ${len} ids`);
      // Expand to the sorted draws (as the reference gives them) and check the kernel's invariants.
      const ids = new Uint32Array(n);
      let s = 0;
      for (let j = 0; j < len; j++) {
        const id = words[o + 1 + j], h = words[o + 1 + n + j];
        if (id >= vocab || (j > 0 && id <= words[o + j]) || s + h > n || h < 1) {
          throw new SparsekdError(`sample: row ${c.row0 + r} came back malformed`);
        }
        ids.fill(id, s, s + h);
        s += h;
      }
      if (s !== n) throw new SparsekdError(`sample: row ${c.row0 + r} came back with ${s} of ${n} draws`);
      rowsIds.push(ids);
      vals.push(floats.subarray(o + 1 + 2 * n, o + 1 + 2 * n + len));
    }
  });
  // The logits come from the kernel (bit-exact copies of the row's values).
  const counters = new Uint32Array(rows);
  return packDraws(rowsIds, (r) => vals[r][counters[r]++]);
}

/**
 * N draws with replacement per row from softmax(logits/t) over the full vocabulary, in WGSL: `rows` rows of
 * `vocab` float32 logits (finite or −Infinity; rows holding NaN or +Infinity are the top-k kernel's to
 * refuse), row r being global position `position0 + r`. Returns the distinct ids per row (ascending), how
 * many draws gave each, and their logits; exactly what {@linkcode sampleReference} returns for the same
 * input. On a CPU runtime the reference runs.
 *
 * @example
 * ```ts
 * const s = await sampleTokens(rt, logits, rows, vocab, { n: 16, temperature: 1, seed: 7, position0: 0 });
 * ```
 */
export async function sampleTokens(
  rt: Runtime,
  logits: Float32Array,
  rows: number,
  vocab: number,
  o: SampleOptions,
): Promise<SampleResult> {
  checkSampleOptions(o);
  checkShape(logits.length, rows, vocab);
  if (!rt.device) return sampleReference(logits, rows, vocab, o);
  const device = rt.device;
  throwIfGpuFailed(device);
  if (rows === 0) return packDraws([], () => 0);
  const pipeline = await samplePipeline(rt, o.n);
  const [chunks, close] = submitScoped(device, "sample", () => {
    const s = scratchOf(device);
    return uploadRows(
      device,
      s,
      "sample input",
      logits,
      rows,
      vocab,
      (input, n, r0, done) => submitRows(device, pipeline, input, n, r0, vocab, o, s.outputs, done),
    );
  });
  return await collect(device, chunks, rows, vocab, o.n, close);
}

/**
 * {@linkcode sampleTokens} for logits already on the GPU (a teacher's output): `logits` holds `rows * vocab`
 * float32 values from byte 0 and needs `GPUBufferUsage.STORAGE`.
 *
 * @example
 * ```ts
 * const s = await sampleTokensFromBuffer(rt, buffer, rows, vocab, { n: 16, temperature: 1, seed: 7, position0: 0 });
 * ```
 */
export async function sampleTokensFromBuffer(
  rt: Runtime,
  logits: GPUBuffer,
  rows: number,
  vocab: number,
  o: SampleOptions,
): Promise<SampleResult> {
  checkSampleOptions(o);
  checkShape(null, rows, vocab);
  if (!rt.device) {
    throw new SparsekdError("sampleTokensFromBuffer needs a GPU runtime (this one runs on the CPU)");
  }
  if (logits.size < rows * vocab * 4) {
    throw new SparsekdError(
      `sampleTokensFromBuffer: the buffer holds ${logits.size} bytes but rows * vocab * 4 = ${
        rows * vocab * 4
      }`,
    );
  }
  if ((logits.usage & GPUBufferUsage.STORAGE) === 0) {
    throw new SparsekdError("sampleTokensFromBuffer: the logits buffer needs GPUBufferUsage.STORAGE");
  }
  const device = rt.device;
  throwIfGpuFailed(device);
  if (rows === 0) return packDraws([], () => 0);
  const pipeline = await samplePipeline(rt, o.n);
  const outputs = scratchOf(device).outputs;
  const [chunks, close] = submitScoped(
    device,
    "sample",
    () => submitRows(device, pipeline, logits, rows, 0, vocab, o, outputs, 0),
  );
  return await collect(device, chunks, rows, vocab, o.n, close);
}

function checkShape(length: number | null, rows: number, vocab: number): void {
  if (!Number.isSafeInteger(rows) || rows < 0) {
    throw new SparsekdError(`sample: rows must be an integer ≥ 0 (got ${rows})`);
  }
  if (!Number.isSafeInteger(vocab) || vocab < 1 || vocab > 2 ** 18) {
    throw new SparsekdError(`sample: vocab must be an integer from 1 to 262144 (got ${vocab})`);
  }
  if (length !== null && length < rows * vocab) {
    throw new SparsekdError(`sample: ${length} logits given, rows * vocab = ${rows * vocab}`);
  }
}
