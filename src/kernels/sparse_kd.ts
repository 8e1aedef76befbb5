/**
 * The sparse-KD loss on the GPU: one fused forward and backward WGSL kernel (`shaders/sparse_kd.wgsl`)
 * over a batch of rows, with {@linkcode sparseKdLossReference} as the CPU path. The mathematics is in
 * `docs/losses.md`.
 * @module
 */
import { loadShader, type Runtime } from "../gpu/runtime.ts";
import { readBack } from "../gpu/readback.ts";
import {
  type CheckedSparseKd,
  checkSparseKd,
  sparseKdLossReference,
  type SparseKdMode,
  type SparseKdOptions,
  type SparseKdResult,
  type SparseKdTeacher,
} from "./sparse_kd_reference.ts";
import { kernelModeIds } from "../loss/modes.ts";

export type {
  SparseKdMode,
  SparseKdOptions,
  SparseKdResult,
  SparseKdTeacher,
} from "./sparse_kd_reference.ts";

const WG = 256;
const MODES: Record<SparseKdMode, number> = kernelModeIds(); // src/loss/modes.ts

/** The GPU buffers and sizes of one fused sparse-KD dispatch (see {@linkcode encodeSparseKd}). */
export interface SparseKdGpuArgs {
  /** rows*vocab float32 student logits (STORAGE). */
  logits: GPUBuffer;
  /** rows*k uint32 teacher ids (STORAGE). */
  ids: GPUBuffer;
  /** rows*k float32 raw teacher logits (STORAGE). */
  values: GPUBuffer;
  /** rows*ROW_INFO_BYTES bytes made by {@linkcode packRowInfo} (STORAGE). */
  rowInfo: GPUBuffer;
  /** rows*vocab float32 output: the gradient (STORAGE). */
  grad: GPUBuffer;
  /** rows float32 output: the per-row loss (STORAGE). */
  loss: GPUBuffer;
  rows: number;
  vocab: number;
  k: number;
  mode: SparseKdMode;
  temperature: number;
  alpha: number;
}

/** Bytes per row of the kernel's per-row record (see {@linkcode packRowInfo}). */
export const ROW_INFO_BYTES = 20;

/**
 * Packs the per-row side inputs into the 20-byte records the kernel reads: the label, T·Lz(T) as the
 * float32 pair hi + lo (so that the kernel can form z/T − Lz = ((z − hi) − lo)/T without the large-number
 * cancellation of z/T − Lz in float32), the scale and the mask bit.
 *
 * @example
 * ```ts
 * const c = checkSparseKd(null, rows, vocab, teacher, options);
 * device.queue.writeBuffer(rowInfoBuffer, 0, packRowInfo(c));
 * ```
 */
export function packRowInfo(c: CheckedSparseKd): ArrayBuffer {
  const rows = c.active.length;
  const w = ROW_INFO_BYTES / 4;
  const buf = new ArrayBuffer(Math.max(16, rows * ROW_INFO_BYTES));
  const i32 = new Int32Array(buf);
  const f32 = new Float32Array(buf);
  const u32 = new Uint32Array(buf);
  for (let r = 0; r < rows; r++) {
    const tl = c.temperature * c.logsumexp[r]; // float64
    const hi = Math.fround(tl);
    i32[r * w] = c.labels[r];
    f32[r * w + 1] = Number.isFinite(tl) ? hi : 0;
    f32[r * w + 2] = Number.isFinite(tl) ? tl - hi : 0;
    f32[r * w + 3] = c.scale[r];
    u32[r * w + 4] = c.active[r];
  }
  return buf;
}

/** The compiled kernels, by mode and row layout (see {@linkcode prepareSparseKd}). */
export type SparseKdPipelines = Record<`${SparseKdMode}:${"vec4" | "scalar"}`, GPUComputePipeline>;

/**
 * Compiles (once per runtime, cached) the kernel for the three modes, in its two row layouts (vec4 when the
 * vocabulary is a multiple of 4, scalar otherwise).
 *
 * @example
 * ```ts
 * const pipelines = await prepareSparseKd(rt);
 * ```
 */
export async function prepareSparseKd(rt: Runtime): Promise<SparseKdPipelines> {
  const out = {} as SparseKdPipelines;
  for (const mode of Object.keys(MODES) as SparseKdMode[]) {
    for (const layout of ["vec4", "scalar"] as const) {
      out[`${mode}:${layout}`] = await pipelineFor(rt, mode, layout);
    }
  }
  return out;
}

async function pipelineFor(
  rt: Runtime,
  mode: SparseKdMode,
  layout: "vec4" | "scalar",
): Promise<GPUComputePipeline> {
  const helpers = await loadShader(`sparse_kd_${layout}.wgsl`);
  return await rt.pipeline(`sparse_kd:${mode}:${layout}`, "sparse_kd.wgsl", {
    prelude: `const WG: u32 = ${WG}u;\nconst MODE: u32 = ${MODES[mode]}u;\n${helpers}\n`,
  });
}

const layoutOf = (vocab: number) => (vocab % 4 === 0 ? "vec4" : "scalar");

/**
 * Records the fused sparse-KD kernel into `encoder` (one compute pass, one workgroup per row), with
 * pipelines from {@linkcode prepareSparseKd}; synchronous, for use inside tfjs ops. Inputs are not checked
 * here: pass them through {@linkcode checkSparseKd} first. Returns a function that releases the small
 * uniform buffer it made; call it after the encoder's commands have been submitted.
 *
 * @example
 * ```ts
 * const enc = device.createCommandEncoder();
 * const release = encodeSparseKdSync(device, pipelines, enc, { logits, ids, values, rowInfo, grad, loss,
 *   rows, vocab, k, mode: "topk", temperature: 2, alpha: 1 });
 * device.queue.submit([enc.finish()]);
 * release();
 * ```
 */
export function encodeSparseKdSync(
  device: GPUDevice,
  pipelines: Partial<SparseKdPipelines>,
  encoder: GPUCommandEncoder,
  a: SparseKdGpuArgs,
): () => void {
  if (a.rows === 0) return () => {};
  const pipeline = pipelines[`${a.mode}:${layoutOf(a.vocab)}`];
  if (!pipeline) throw new Error(`sparse-KD kernel ${a.mode}:${layoutOf(a.vocab)} was not prepared`);
  const maxX = device.limits.maxComputeWorkgroupsPerDimension;
  const nx = Math.min(a.rows, maxX);
  const ny = Math.ceil(a.rows / nx);
  const params = new ArrayBuffer(32);
  const pu = new Uint32Array(params);
  const pf = new Float32Array(params);
  pu[0] = a.rows;
  pu[1] = a.vocab;
  pu[2] = a.k;
  pu[3] = nx;
  pf[4] = 1 / a.temperature;
  pf[5] = a.temperature;
  pf[6] = a.alpha;
  pu[7] = a.alpha < 1 ? 1 : 0;
  const uniform = device.createBuffer({ size: 32, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(uniform, 0, params);
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [a.logits, a.ids, a.values, a.rowInfo, a.grad, a.loss, uniform].map((buffer, binding) => ({
      binding,
      resource: { buffer },
    })),
  });
  const pass = encoder.beginComputePass({ label: "sparse_kd" });
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(nx, ny);
  pass.end();
  return () => uniform.destroy();
}

/**
 * {@linkcode encodeSparseKdSync} that compiles (once) the one kernel variant it needs first.
 *
 * @example
 * ```ts
 * const enc = device.createCommandEncoder();
 * const release = await encodeSparseKd(rt, enc, { logits, ids, values, rowInfo, grad, loss, rows, vocab, k,
 *   mode: "topk", temperature: 2, alpha: 1 });
 * device.queue.submit([enc.finish()]);
 * release();
 * ```
 */
export async function encodeSparseKd(
  rt: Runtime,
  encoder: GPUCommandEncoder,
  a: SparseKdGpuArgs,
): Promise<() => void> {
  if (!rt.device) throw new Error("encodeSparseKd needs a GPU runtime");
  const key = `${a.mode}:${layoutOf(a.vocab)}` as const;
  return encodeSparseKdSync(
    rt.device,
    { [key]: await pipelineFor(rt, a.mode, layoutOf(a.vocab)) },
    encoder,
    a,
  );
}

/**
 * The sparse-KD loss and its gradient for a batch of rows: per row,
 * `loss = scale * (alpha*T^2*KD_T + (1-alpha)*CE(s, y))` (not averaged; 0 on masked rows) and `grad` the
 * derivative of that row's loss with respect to its student logits. Runs the fused WGSL kernel on a GPU
 * runtime and the float64 reference on a CPU runtime. Bad input is a one-line `SparsekdError`.
 * Batches larger than the device's largest binding are processed in chunks of rows (`maxChunkBytes`
 * lowers that bound, for tests).
 *
 * @example
 * ```ts
 * const rt = await createRuntime();
 * const { loss, grad } = await sparseKdLoss(rt, new Float32Array([1, 2, 3, 4]), 1, 4,
 *   { indices: new Uint32Array([3, 2]), values: new Float32Array([5, 4]), k: 2 },
 *   { mode: "topk", temperature: 2 });
 * ```
 */
export async function sparseKdLoss(
  rt: Runtime,
  studentLogits: Float32Array,
  rows: number,
  vocab: number,
  teacher: SparseKdTeacher,
  options: SparseKdOptions,
  maxChunkBytes = Infinity,
): Promise<SparseKdResult> {
  const device = rt.device;
  if (!device) return sparseKdLossReference(studentLogits, rows, vocab, teacher, options);
  const c = checkSparseKd(studentLogits, rows, vocab, teacher, options);
  const loss = new Float32Array(rows);
  const grad = new Float32Array(rows * vocab);
  const rowInfo = new Uint8Array(packRowInfo(c));
  const limit = Math.min(
    device.limits.maxStorageBufferBindingSize,
    device.limits.maxBufferSize,
    maxChunkBytes,
  );
  const chunkRows = Math.max(1, Math.floor(limit / (vocab * 4)));
  if (vocab * 4 > limit) throw new Error(`a row of ${vocab} logits exceeds the device's largest binding`);
  const k = c.k;
  for (let r0 = 0; r0 < rows; r0 += chunkRows) {
    const n = Math.min(chunkRows, rows - r0);
    const mk = (bytes: number, extra: number) =>
      device.createBuffer({ size: Math.max(16, bytes), usage: GPUBufferUsage.STORAGE | extra });
    const bufs = {
      logits: mk(n * vocab * 4, GPUBufferUsage.COPY_DST),
      ids: mk(n * k * 4, GPUBufferUsage.COPY_DST),
      values: mk(n * k * 4, GPUBufferUsage.COPY_DST),
      rowInfo: mk(n * ROW_INFO_BYTES, GPUBufferUsage.COPY_DST),
      grad: mk(n * vocab * 4, GPUBufferUsage.COPY_SRC),
      loss: mk(n * 4, GPUBufferUsage.COPY_SRC),
    };
    device.queue.writeBuffer(
      bufs.logits,
      0,
      studentLogits as Float32Array<ArrayBuffer>,
      r0 * vocab,
      n * vocab,
    );
    device.queue.writeBuffer(bufs.ids, 0, teacher.indices as Uint32Array<ArrayBuffer>, r0 * k, n * k);
    device.queue.writeBuffer(bufs.values, 0, teacher.values as Float32Array<ArrayBuffer>, r0 * k, n * k);
    device.queue.writeBuffer(bufs.rowInfo, 0, rowInfo, r0 * ROW_INFO_BYTES, n * ROW_INFO_BYTES);
    const enc = device.createCommandEncoder();
    const release = await encodeSparseKd(rt, enc, {
      ...bufs,
      rows: n,
      vocab,
      k,
      mode: c.mode,
      temperature: c.temperature,
      alpha: c.alpha,
    });
    device.queue.submit([enc.finish()]);
    release();
    const [g, l] = await readBack(device, [{ buffer: bufs.grad, size: n * vocab * 4 }, {
      buffer: bufs.loss,
      size: n * 4,
    }]);
    grad.set(new Float32Array(g), r0 * vocab);
    loss.set(new Float32Array(l), r0);
    for (const b of Object.values(bufs)) b.destroy();
  }
  return { loss, grad };
}
