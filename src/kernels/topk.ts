/**
 * Top-k per row with the full-vocabulary logsumexp on the GPU (`shaders/topk.wgsl`), with the CPU
 * reference as the path for a CPU runtime.
 * @module
 */
import type { Runtime } from "../gpu/runtime.ts";
import { readBack, type ReadRegion } from "../gpu/readback.ts";
import { submitScoped, throwIfGpuFailed } from "../gpu/gpu_errors.ts";
import { bindingBudget, kernelHooks, scratchCache } from "./test_hooks.ts";
import { fieldsOf, packUniforms, uniformLayout } from "../gpu/uniforms.ts";
import { assembleTopK, checkFromBufferArgs, dummy16, emptyTopKResult, uploadRows } from "./topk_host.ts";
import {
  checkTopKArgs,
  NonFiniteLogitsError,
  type TopKOptions,
  topKReference,
  type TopKResult,
} from "./topk_reference.ts";

export { NonFiniteLogitsError, topKReference };
export type { TopKOptions, TopKResult };

const CAP = 2048;

/** The kernel's uniforms: `struct Params` of `shaders/topk.wgsl`, field by field (tests check it). */
export const TOPK_PARAMS = uniformLayout([
  ...fieldsOf("u32", "vocab", "k", "rows", "in_off"),
  ...fieldsOf("vec4f[]", "inv_t"),
]);

const scratchOf = scratchCache();

/**
 * Threads per workgroup. Workgroup barriers are very costly on software adapters with large workgroups
 * (llvmpipe: ~1.7 ms per row with 256 threads against ~0.1 ms with 64), so the kernel uses 64 threads.
 */
const WG = 64;

/**
 * Stride (in vec4s) of the sample that estimates the candidate threshold of long rows, so that the row is
 * read once in full (see `shaders/topk.wgsl`).
 */
const SAMPLE = 4;

/** Vec4 blocks of sub-maxima per thread: about 4k sub-maxima keep the candidate count near k. */
function subMaximaBlocks(k: number): number {
  let rb = 1;
  while (rb < 8 && 4 * rb * WG < 4 * k) rb *= 2;
  return rb;
}

async function topKPipeline(rt: Runtime, k: number, nt: number): Promise<GPUComputePipeline> {
  const rb = subMaximaBlocks(k);
  const nt4 = Math.ceil(nt / 4);
  const prelude = `const WG: u32 = ${WG}u;\nconst NT: u32 = ${nt}u;\nconst NT4: u32 = ${nt4}u;\n` +
    `const RB: u32 = ${rb}u;\nconst CAP: u32 = ${CAP}u;\nconst SAMPLE: u32 = ${SAMPLE}u;\n`;
  return await rt.pipeline(`topk/wg${WG}/nt${nt}/rb${rb}/cap${CAP}/s${SAMPLE}`, "topk.wgsl", { prelude });
}

/** One dispatch's worth of rows, and where its results land. */
interface Chunk {
  row0: number;
  rows: number;
  out: GPUBuffer;
}

/**
 * Encodes and submits the dispatches for rows [0, rows) of `logits` (elements from `elemOffset`), using
 * output buffers `outputs[firstOut...]`; returns the chunks. Submits synchronously (no await), so that the
 * caller's read-back follows in queue order. Each dispatch covers at most `maxComputeWorkgroupsPerDimension`
 * rows (one workgroup per row), and each binding stays within `maxStorageBufferBindingSize` rounded down to
 * 16 bytes (the vec4 view of the logits rounds its size up to 16). `kernelHooks.repeat` > 1 records the same
 * dispatches that many times back to back in the one submission (benches; every copy writes the same results).
 */
function submitRows(
  rt: Runtime,
  pipeline: GPUComputePipeline,
  logits: GPUBuffer,
  elemOffset: number,
  rows: number,
  rowBase: number,
  vocab: number,
  k: number,
  temps: number[],
  outputs: GPUBuffer[],
  firstOut: number,
): Chunk[] {
  const device = rt.device!;
  const limits = device.limits;
  const align = limits.minStorageBufferOffsetAlignment;
  const nt = temps.length;
  const outWordsPerRow = 2 * k + nt + 1;
  const budget = bindingBudget(device, 16);
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
  const chunks: Chunk[] = [];
  const binds: GPUBindGroup[] = [];
  const enc = device.createCommandEncoder({ label: "topk" });
  const pass = enc.beginComputePass({
    label: "topk",
    timestampWrites: kernelHooks.timestampWrites ?? undefined,
  });
  pass.setPipeline(pipeline);
  const nt4 = Math.ceil(nt / 4);
  const params = device.createBuffer({
    label: "topk params",
    size: Math.ceil((rows + rowsPerChunk - 1) / rowsPerChunk) * 256 + 256,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  const paramBytes = new ArrayBuffer(params.size);
  for (let row0 = 0, c = 0; row0 < rows; row0 += rowsPerChunk, c++) {
    const n = Math.min(rowsPerChunk, rows - row0);
    const startByte = (elemOffset + row0 * vocab) * 4;
    const bindOffset = Math.floor(startByte / align) * align;
    const bindSize = startByte - bindOffset + n * vocab * 4;
    const outBytes = n * outWordsPerRow * 4;
    const size4 = Math.floor(Math.min(logits.size - bindOffset, Math.ceil(bindSize / 16) * 16) / 16) * 16;
    const oi = firstOut + c;
    if (!outputs[oi] || outputs[oi].size < outBytes) {
      outputs[oi]?.destroy();
      outputs[oi] = device.createBuffer({
        label: `topk out ${oi}`,
        size: Math.ceil(outBytes / 256) * 256,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
    }
    const inOff = (startByte - bindOffset) / 4;
    const invT = temps.map((t) => 1 / t);
    packUniforms(TOPK_PARAMS, { vocab, k, rows: n, in_off: inOff, inv_t: invT }, paramBytes, c * 256);
    const bind = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: params, offset: c * 256, size: TOPK_PARAMS.size(nt4) } },
        { binding: 1, resource: { buffer: logits, offset: bindOffset, size: bindSize } },
        { binding: 2, resource: { buffer: outputs[oi], offset: 0, size: outBytes } },
        size4 >= 16
          ? { binding: 3, resource: { buffer: logits, offset: bindOffset, size: size4 } }
          : { binding: 3, resource: { buffer: dummy16(device) } }, // a 1-row, 2- or 3-value input: no vec4
      ],
    });
    binds.push(bind);
    chunks.push({ row0: rowBase + row0, rows: n, out: outputs[oi] });
  }
  for (let r = 0; r < kernelHooks.repeat; r++) {
    chunks.forEach((c, i) => {
      pass.setBindGroup(0, binds[i]);
      pass.dispatchWorkgroups(c.rows);
    });
  }
  pass.end();
  device.queue.writeBuffer(params, 0, paramBytes);
  device.queue.submit([enc.finish()]);
  params.destroy();
  return chunks;
}

/**
 * Reads every chunk's results back in one map (its copy is submitted before any await), then awaits
 * `close` (the kernel's error scopes: a failed dispatch throws instead of returning stale output) and
 * assembles the results; throws on the first non-finite row.
 */
async function collect(
  device: GPUDevice,
  chunks: Chunk[],
  rows: number,
  k: number,
  nt: number,
  close: () => Promise<void>,
): Promise<TopKResult> {
  const regions: ReadRegion[] = chunks.map((c) => ({ buffer: c.out, size: c.rows * (2 * k + nt + 1) * 4 }));
  const pending = readBack(device, regions);
  pending.catch(() => {}); // (observed below; this only keeps an early rejection from being "unhandled")
  try {
    await close();
  } catch (e) {
    await pending.catch(() => {});
    throw e;
  }
  const data = await pending;
  return assembleTopK(data, chunks, rows, k, nt, 0, (row) => new NonFiniteLogitsError(row));
}

/**
 * For each of `rows` rows of `vocab` float32 logits, the `k` largest values and their token ids (value
 * descending, ties broken by the lower id), and the logsumexp of logits/T over the whole row for each
 * temperature T (default `[1]`), computed in the same kernel. Vocabularies 2..262,144, k 1..min(1024,
 * vocab), any number of rows, -Infinity entries and magnitudes up to ±1e30 are supported. A row holding
 * NaN throws {@linkcode NonFiniteLogitsError} naming the first such row; bad arguments throw a
 * {@linkcode SparsekdError}. On a CPU runtime (`rt.device === null`) the reference implementation runs.
 *
 * @example
 * ```ts
 * const rt = await createRuntime();
 * const { indices, values, logsumexp } = await topK(rt, new Float32Array([1, 3, 2, 0]), 1, 4, 2, {
 *   temperatures: [1, 2],
 * });
 * // indices = [1, 2], values = [3, 2], logsumexp = [lse(x), lse(x / 2)]
 * ```
 */
export async function topK(
  rt: Runtime,
  logits: Float32Array,
  rows: number,
  vocab: number,
  k: number,
  options: TopKOptions = {},
): Promise<TopKResult> {
  const temps = checkTopKArgs(logits.length, rows, vocab, k, options);
  if (!rt.device) return topKReference(logits, rows, vocab, k, { temperatures: temps });
  const device = rt.device;
  if (rows === 0) return emptyTopKResult();
  const pipeline = await topKPipeline(rt, k, temps.length);
  // From here to the read-back's submit there is no await: concurrent calls cannot interleave.
  const [chunks, close] = submitScoped(device, "topk", () => {
    const s = scratchOf(device);
    return uploadRows(
      device,
      s,
      "topk input",
      logits,
      rows,
      vocab,
      (input, n, r0, done) => submitRows(rt, pipeline, input, 0, n, r0, vocab, k, temps, s.outputs, done),
    );
  });
  return await collect(device, chunks, rows, k, temps.length, close);
}

/**
 * {@linkcode topK} for logits already on the GPU (for example a teacher's output): `logits` holds
 * `rows * vocab` float32 values from byte 0 and needs `GPUBufferUsage.STORAGE`. Nothing is uploaded; the
 * results of every dispatch are read back in one batched map.
 *
 * @example
 * ```ts
 * const buf = rt.device!.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
 * rt.device!.queue.writeBuffer(buf, 0, new Float32Array([1, 3, 2, 0]));
 * const { indices } = await topKFromBuffer(rt, buf, 1, 4, 2); // [1, 2]
 * ```
 */
export async function topKFromBuffer(
  rt: Runtime,
  logits: GPUBuffer,
  rows: number,
  vocab: number,
  k: number,
  options: TopKOptions = {},
): Promise<TopKResult> {
  const args = { rows, vocab, k, options };
  // From the submit to the read-back's submit there is no await.
  const result = await fromBuffer(
    "topKFromBuffer",
    rt,
    logits,
    args,
    (chunks, nt, close) => collect(rt.device!, chunks, rows, k, nt, close),
  );
  return await (result ?? emptyTopKResult());
}

/**
 * The kernel of {@linkcode topKFromBuffer} without its read-back, for benchmarks: checks the same arguments,
 * submits the dispatches (`kernelHooks.repeat` back-to-back copies, default 1, in one submission; with
 * `kernelHooks.timestampWrites` set, the compute pass writes those timestamps), throws if the submission
 * failed validation, and returns a function that reads the results back in one batched map. Call that
 * before any other top-k call on the same device, which would reuse the output buffers.
 *
 * @example
 * ```ts
 * kernelHooks.repeat = 20;
 * await submitTopKFromBuffer(rt, buf, rows, vocab, 64); // 20 runs of the kernel, one submit
 * kernelHooks.repeat = 1;
 * const { indices } = await (await submitTopKFromBuffer(rt, buf, rows, vocab, 64))();
 * ```
 */
export async function submitTopKFromBuffer(
  rt: Runtime,
  logits: GPUBuffer,
  rows: number,
  vocab: number,
  k: number,
  options: TopKOptions = {},
): Promise<() => Promise<TopKResult>> {
  const args = { rows, vocab, k, options };
  const submitted = await fromBuffer("submitTopKFromBuffer", rt, logits, args, (chunks, nt, close) => ({
    chunks,
    nt,
    close,
  }));
  if (!submitted) return () => Promise.resolve(emptyTopKResult());
  const { chunks, nt, close } = submitted;
  await close();
  return () => collect(rt.device!, chunks, rows, k, nt, () => Promise.resolve());
}

/**
 * The from-buffer entry points' common part (errors name `name`): checks the arguments and any earlier GPU
 * failure, compiles the pipeline, submits the dispatches for all rows in one error scope and hands the
 * chunks to `then` with no await in between. Resolves to null for zero rows.
 */
async function fromBuffer<T>(
  name: string,
  rt: Runtime,
  logits: GPUBuffer,
  { rows, vocab, k, options }: { rows: number; vocab: number; k: number; options: TopKOptions },
  then: (chunks: Chunk[], nt: number, close: () => Promise<void>) => T,
): Promise<T | null> {
  const temps = checkFromBufferArgs(name, rt, logits, rows, vocab, k, options);
  const device = rt.device!;
  throwIfGpuFailed(device);
  if (rows === 0) return null;
  const pipeline = await topKPipeline(rt, k, temps.length);
  const outputs = scratchOf(device).outputs;
  const [chunks, close] = submitScoped(
    device,
    "topk",
    () => submitRows(rt, pipeline, logits, 0, rows, 0, vocab, k, temps, outputs, 0),
  );
  return then(chunks, temps.length, close);
}
