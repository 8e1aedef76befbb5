/**
 * Top-k per row with the full-vocabulary logsumexp for real GPUs (`shaders/topk_radix.wgsl`): one read of
 * each row by 256-thread workgroups with several vec4 loads in flight, the logsumexp at every temperature
 * fused into that read, candidates above a running threshold kept in workgroup memory and compacted by an
 * exact 8-bit radix select, and, when there are too few rows to fill the GPU, several workgroups per row
 * plus a small merge dispatch. Same inputs and results as {@linkcode topK} in `./topk.ts`, except that
 * rows holding +Infinity or only -Infinity are refused like rows holding NaN.
 * The options, the tuning plan and the refusal of non-finite rows are in `./topk_radix_plan.ts`.
 *
 * Selected on real GPUs by `./topk_select.ts` (today's kernel, `./topk.ts`, stays on software adapters).
 * On llvmpipe (lavapipe and GL) every loop iteration of a workgroup's 8-lane group counts against one budget
 * of 65,535 (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS), after which loops end silently: the compaction's digit
 * search is a parallel scan, so that rows needing hundreds of compactions stay exact there
 * (docs/performance.md, "A top-k for real GPUs").
 * @module
 */
import type { Runtime } from "../gpu/runtime.ts";
import { readBack, type ReadRegion } from "../gpu/readback.ts";
import { submitScoped, throwIfGpuFailed } from "../gpu/gpu_errors.ts";
import { bindingBudget, kernelHooks, registerScratch } from "./test_hooks.ts";
import { checkTopKArgs, topKReference, type TopKResult } from "./topk_reference.ts";
import { assembleTopK, checkFromBufferArgs, dummy16, emptyTopKResult, uploadRows } from "./topk_host.ts";
import {
  firstBadRow,
  kindOf,
  type NonFiniteKind,
  NonFiniteRowError,
  type Plan,
  planOf,
  radixSplit,
  type TopKRadixOptions,
} from "./topk_radix_plan.ts";

export { NonFiniteRowError, radixSplit };
export type { NonFiniteKind, TopKRadixOptions };

/**
 * The WGSL prelude (constants) and the pipeline cache key of one variant of `shaders/topk_radix.wgsl`: the
 * shader's source is the prelude followed by the file. Used by the kernel and by
 * `tools/radix_compile_time.ts`, which times each variant's compile.
 *
 * @example
 * ```ts
 * const { prelude, key } = radixVariant({ wg: 256, loads: 4, ntBucket: 4, cap: 3000 }, "main");
 * ```
 */
export function radixVariant(
  p: Pick<Plan, "wg" | "loads" | "ntBucket" | "cap">,
  entryPoint: "main" | "merge",
): { prelude: string; key: string } {
  const nt4 = p.ntBucket / 4;
  const prelude = `const WG: u32 = ${p.wg}u;\nconst WG4: u32 = ${p.wg / 4}u;\nconst U: u32 = ${p.loads}u;\n` +
    `const E: u32 = ${4 * p.loads}u;\nconst NT: u32 = ${p.ntBucket}u;\nconst NT4: u32 = ${nt4}u;\n` +
    `const CAP: u32 = ${p.cap}u;\nconst CAPQ: u32 = ${Math.ceil(p.cap / 4)}u;\n` +
    `const BPT: u32 = ${256 / p.wg}u;\n`;
  const key = `topk_radix/${entryPoint}/wg${p.wg}/u${p.loads}/nt${p.ntBucket}/cap${p.cap}`;
  return { prelude, key };
}

function pipelineOf(rt: Runtime, p: Plan, entryPoint: "main" | "merge"): Promise<GPUComputePipeline> {
  const { prelude, key } = radixVariant(p, entryPoint);
  return rt.pipeline(key, "topk_radix.wgsl", { prelude, entryPoint });
}

interface Scratch {
  input: GPUBuffer | null;
  outputs: GPUBuffer[];
  parts: GPUBuffer[];
}
const scratch = new WeakMap<GPUDevice, Scratch>();

function scratchOf(device: GPUDevice): Scratch {
  let s = scratch.get(device);
  if (!s) {
    const made: Scratch = { input: null, outputs: [], parts: [] };
    scratch.set(device, s = made);
    registerScratch(device, () => [...made.outputs, ...made.parts, ...(made.input ? [made.input] : [])]);
  }
  return s;
}

function ensure(device: GPUDevice, list: GPUBuffer[], i: number, bytes: number, label: string): GPUBuffer {
  if (!list[i] || list[i].size < bytes) {
    list[i]?.destroy();
    list[i] = device.createBuffer({
      label: `${label} ${i}`,
      size: Math.max(256, Math.ceil(bytes / 256) * 256),
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
  }
  return list[i];
}

/** One dispatch's worth of rows and where its results land. */
interface Chunk {
  row0: number;
  rows: number;
  out: GPUBuffer;
}

/** A 2D grid of `n` workgroups within the per-dimension limit: [x, y]. */
function grid(n: number, maxDim: number): [number, number] {
  const x = Math.min(n, maxDim);
  return [x, Math.ceil(n / x)];
}

/**
 * Encodes and submits (synchronously, no await) the dispatches for rows [0, rows) of `logits` from element
 * `elemOffset`; results of row r land in the chunk that holds it, rows numbered from `rowBase`.
 */
function submitRows(
  rt: Runtime,
  pipes: { main: GPUComputePipeline; merge: GPUComputePipeline | null },
  p: Plan,
  logits: GPUBuffer,
  elemOffset: number,
  rows: number,
  rowBase: number,
  temps: number[],
  s: Scratch,
  firstOut: number,
): Chunk[] {
  const device = rt.device!;
  const limits = device.limits;
  const align = limits.minStorageBufferOffsetAlignment;
  const { vocab, k, nt, split } = p;
  const outWords = 2 * k + nt + 1;
  const partWords = split * (2 + nt + 2 * k);
  const maxDim = limits.maxComputeWorkgroupsPerDimension;
  const maxBind = bindingBudget(device, 16); // the vec4 binding is rounded up to 16 bytes
  const rowsPerChunk = Math.max(
    1,
    Math.min(
      Math.floor((maxBind - align) / (vocab * 4)),
      Math.floor(maxBind / (outWords * 4)),
      split > 1 ? Math.floor(maxBind / (partWords * 4)) : Infinity,
      Math.floor(maxDim * maxDim / split),
    ),
  );
  const nt4 = p.ntBucket / 4;
  const paramBytes = 48 + 2 * nt4 * 16;
  const stride = Math.ceil(paramBytes / 256) * 256;
  const nChunks = Math.ceil(rows / rowsPerChunk);
  const params = device.createBuffer({
    label: "topk_radix params",
    size: nChunks * stride,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  const bytes = new ArrayBuffer(params.size);
  const nb = Math.floor(vocab / 4); // vec4s per row, at most (the head may take one less)
  const seg4 = Math.ceil(nb / split);
  const enc = device.createCommandEncoder({ label: "topk_radix" });
  const pass = enc.beginComputePass({
    label: "topk_radix",
    timestampWrites: kernelHooks.timestampWrites ?? undefined,
  });
  const dispatches: (() => void)[] = [];
  const chunks: Chunk[] = [];
  for (let c = 0; c < nChunks; c++) {
    const row0 = c * rowsPerChunk;
    const n = Math.min(rowsPerChunk, rows - row0);
    const startByte = (elemOffset + row0 * vocab) * 4;
    const bindOffset = Math.floor(startByte / align) * align;
    const bindSize = startByte - bindOffset + n * vocab * 4;
    const size4 = Math.floor(Math.min(logits.size - bindOffset, Math.ceil(bindSize / 16) * 16) / 16) * 16;
    const out = ensure(device, s.outputs, firstOut + c, n * outWords * 4, "topk_radix out");
    const [mx, my] = grid(n * split, maxDim);
    const u = new Uint32Array(bytes, c * stride, 9);
    u.set([vocab, k, n, (startByte - bindOffset) / 4, split, seg4, mx, split > 1 ? 1 : 0, nt]);
    new Float32Array(bytes, c * stride + 48, nt).set(temps.map((t) => Math.LOG2E / t));
    new Float32Array(bytes, c * stride + 48 + nt4 * 16, nt).set(temps.map((t) => 1 / t));
    const paramsRes = { buffer: params, offset: c * stride, size: paramBytes };
    const logitsRes = { buffer: logits, offset: bindOffset, size: bindSize };
    const logits4Res = size4 >= 16
      ? { buffer: logits, offset: bindOffset, size: size4 }
      : { buffer: dummy16(device) }; // a 1-row, 2- or 3-value input: no vec4
    const parts = split > 1
      ? ensure(device, s.parts, firstOut + c, n * partWords * 4, "topk_radix parts")
      : null;
    const mainBind = device.createBindGroup({
      layout: pipes.main.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: paramsRes },
        { binding: 1, resource: logitsRes },
        { binding: 2, resource: logits4Res },
        {
          binding: 3,
          resource: parts
            ? { buffer: parts, size: n * partWords * 4 }
            : { buffer: out, size: n * outWords * 4 },
        },
      ],
    });
    // The merge's grid has the main grid's width (params.nx): row = wg.y * nx + wg.x.
    const mergeBind = parts
      ? device.createBindGroup({
        layout: pipes.merge!.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: paramsRes },
          { binding: 1, resource: logitsRes },
          { binding: 3, resource: { buffer: out, size: n * outWords * 4 } },
          { binding: 4, resource: { buffer: parts, size: n * partWords * 4 } },
        ],
      })
      : null;
    dispatches.push(() => {
      pass.setPipeline(pipes.main);
      pass.setBindGroup(0, mainBind);
      pass.dispatchWorkgroups(mx, my);
      if (mergeBind) {
        pass.setPipeline(pipes.merge!);
        pass.setBindGroup(0, mergeBind);
        pass.dispatchWorkgroups(Math.min(n, mx), Math.ceil(n / mx));
      }
    });
    chunks.push({ row0: rowBase + row0, rows: n, out });
  }
  for (let r = 0; r < kernelHooks.repeat; r++) dispatches.forEach((d) => d());
  pass.end();
  device.queue.writeBuffer(params, 0, bytes);
  device.queue.submit([enc.finish()]);
  params.destroy();
  return chunks;
}

/**
 * Reads every chunk's results back in one map (its copy is submitted before any await), then awaits `close`
 * (the kernel's error scopes: a failed dispatch throws instead of returning stale output) and assembles the
 * results; throws on the first refused row.
 */
async function collect(
  device: GPUDevice,
  chunks: Chunk[],
  rows: number,
  k: number,
  nt: number,
  close: () => Promise<void>,
) {
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
  // Only "a value above -Infinity" (4) is fine.
  return assembleTopK(data, chunks, rows, k, nt, 4, (row, flag) => new NonFiniteRowError(row, kindOf(flag)));
}

async function pipelinesOf(rt: Runtime, p: Plan) {
  const [main, merge] = await Promise.all([
    pipelineOf(rt, p, "main"),
    p.split > 1 ? pipelineOf(rt, p, "merge") : Promise.resolve(null),
  ]);
  return { main, merge };
}

/**
 * For each of `rows` rows of `vocab` float32 logits, the `k` largest values and their token ids (value
 * descending, ties by the lower id, -0 equal to +0) and the logsumexp of logits/T over the whole row for
 * each temperature T (default `[1]`), with the radix-select kernel meant for real GPUs. Same arguments,
 * limits and results as {@linkcode topK}; a row holding NaN or +Infinity, or only -Infinity, throws
 * {@linkcode NonFiniteRowError} (a `NonFiniteLogitsError`) naming the first such row. `options.split` and
 * the other tuning options default to values for real GPUs. On a CPU runtime the reference runs.
 *
 * @example
 * ```ts
 * const rt = await createRuntime();
 * const { indices, logsumexp } = await topKRadix(rt, new Float32Array([1, 3, 2, 0]), 1, 4, 2, {
 *   temperatures: [1, 2],
 * });
 * // indices = [1, 2], logsumexp = [lse(x), lse(x / 2)]
 * ```
 */
export async function topKRadix(
  rt: Runtime,
  logits: Float32Array,
  rows: number,
  vocab: number,
  k: number,
  options: TopKRadixOptions = {},
): Promise<TopKResult> {
  const temps = checkTopKArgs(logits.length, rows, vocab, k, options);
  if (!rt.device) {
    const bad = firstBadRow(logits, rows, vocab);
    if (bad) throw bad;
    return topKReference(logits, rows, vocab, k, { temperatures: temps });
  }
  const device = rt.device;
  throwIfGpuFailed(device);
  const plan = planOf(rt, rows, vocab, k, temps.length, options);
  if (rows === 0) return emptyTopKResult();
  const pipes = await pipelinesOf(rt, plan);
  // From here to the read-back's submit there is no await: concurrent calls cannot interleave.
  const [chunks, close] = submitScoped(device, "topk_radix", () => {
    const s = scratchOf(device);
    return uploadRows(
      device,
      s,
      "topk_radix input",
      logits,
      rows,
      vocab,
      (input, n, r0, done) => submitRows(rt, pipes, plan, input, 0, n, r0, temps, s, done),
    );
  });
  return await collect(device, chunks, rows, k, temps.length, close);
}

/**
 * {@linkcode topKRadix} for logits already on the GPU (the equivalent of `topKFromBuffer`): `logits` holds
 * `rows * vocab` float32 values from byte 0 and needs `GPUBufferUsage.STORAGE`. Nothing is uploaded; the
 * results of every dispatch are read back in one batched map.
 *
 * @example
 * ```ts
 * const buf = rt.device!.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
 * rt.device!.queue.writeBuffer(buf, 0, new Float32Array([1, 3, 2, 0]));
 * const { indices } = await topKRadixFromBuffer(rt, buf, 1, 4, 2); // [1, 2]
 * ```
 */
export async function topKRadixFromBuffer(
  rt: Runtime,
  logits: GPUBuffer,
  rows: number,
  vocab: number,
  k: number,
  options: TopKRadixOptions = {},
): Promise<TopKResult> {
  const s = await fromBuffer("topKRadixFromBuffer", rt, logits, rows, vocab, k, options);
  return s ? await collect(rt.device!, s.chunks, rows, k, s.nt, s.close) : emptyTopKResult();
}

/**
 * The kernel of {@linkcode topKRadixFromBuffer} without its read-back, for benchmarks (like
 * `submitTopKFromBuffer`): submits the dispatches (`kernelHooks.repeat` copies in one submission, with
 * `kernelHooks.timestampWrites` when set), throws if the submission failed validation, and returns a
 * function that reads the results back. Call that before any other radix top-k call on the same device.
 *
 * @example
 * ```ts
 * kernelHooks.repeat = 20;
 * await submitTopKRadixFromBuffer(rt, buf, rows, vocab, 64); // 20 runs of the kernel, one submit
 * ```
 */
export async function submitTopKRadixFromBuffer(
  rt: Runtime,
  logits: GPUBuffer,
  rows: number,
  vocab: number,
  k: number,
  options: TopKRadixOptions = {},
): Promise<() => Promise<TopKResult>> {
  const s = await fromBuffer("submitTopKRadixFromBuffer", rt, logits, rows, vocab, k, options);
  if (!s) return () => Promise.resolve(emptyTopKResult());
  await s.close();
  return () => collect(rt.device!, s.chunks, rows, k, s.nt, () => Promise.resolve());
}

/** The from-buffer entry points' common part: checks, compiles, submits in error scopes; null for 0 rows. */
async function fromBuffer(
  name: string,
  rt: Runtime,
  logits: GPUBuffer,
  rows: number,
  vocab: number,
  k: number,
  options: TopKRadixOptions,
): Promise<{ chunks: Chunk[]; nt: number; close: () => Promise<void> } | null> {
  const temps = checkFromBufferArgs(name, rt, logits, rows, vocab, k, options);
  const device = rt.device!;
  throwIfGpuFailed(device);
  const plan = planOf(rt, rows, vocab, k, temps.length, options);
  if (rows === 0) return null;
  const pipes = await pipelinesOf(rt, plan);
  const [chunks, close] = submitScoped(
    device,
    "topk_radix",
    () => submitRows(rt, pipes, plan, logits, 0, rows, 0, temps, scratchOf(device), 0),
  );
  return { chunks, nt: temps.length, close };
}

/**
 * Test hook: fills the GPU buffers that {@linkcode topKRadix} reuses between calls (outputs, parts, input)
 * with a poison pattern, so that a test can check that every result is written by the current call.
 *
 * @example
 * ```ts
 * poisonTopKRadixScratch(rt, 0x7fc00001); // NaN bits everywhere
 * ```
 */
export function poisonTopKRadixScratch(rt: Runtime, word: number): void {
  if (!rt.device) return;
  const s = scratchOf(rt.device);
  for (const b of [...s.outputs, ...s.parts, ...(s.input ? [s.input] : [])]) {
    if (b) rt.device.queue.writeBuffer(b, 0, new Uint32Array(b.size / 4).fill(word));
  }
}
