/**
 * The sparse-KD loss on the GPU: one fused forward and backward WGSL kernel (`shaders/sparse_kd.wgsl`)
 * over a batch of rows, with {@linkcode sparseKdLossReference} as the CPU path. The mathematics is in
 * `docs/losses.md`.
 * @module
 */
import { loadShader, type Runtime } from "../gpu/runtime.ts";
import { readBack } from "../gpu/readback.ts";
import { openErrorScopes } from "../gpu/gpu_errors.ts";
import { fieldsOf, packUniforms, uniformLayout, uniformSlots } from "../gpu/uniforms.ts";
import { bindRange } from "../gpu/bindings.ts";
import { SparsekdError } from "../errors.ts";
import { bindingBudget, kernelHooks } from "./test_hooks.ts";
import {
  type CheckedSparseKd,
  checkSparseKd,
  type Divergence,
  DIVERGENCES,
  sparseKdLossReference,
  type SparseKdMode,
  type SparseKdOptions,
  type SparseKdResult,
  type SparseKdTeacher,
} from "./sparse_kd_reference.ts";
import { kernelModeIds } from "../loss/modes.ts";

const WG = 256;

/** The kernel's uniforms: `struct Params` of `shaders/sparse_kd.wgsl`, field by field (tests check it). */
export const SPARSE_KD_PARAMS = uniformLayout([
  ...fieldsOf("u32", "rows", "vocab", "k", "nx"),
  ...fieldsOf("f32", "inv_t", "t", "alpha"),
  ...fieldsOf("u32", "need_ce", "l_off", "k_off", "r_off", "o_off", "check_ids", "divergence"),
  ...fieldsOf("f32", "beta", "beta_c"),
]);

const MODES: Record<SparseKdMode, number> = kernelModeIds(); // src/loss/modes.ts

/** The GPU buffers and sizes of one fused sparse-KD dispatch (see {@linkcode encodeSparseKd}). */
export interface SparseKdGpuArgs {
  /** rows*vocab float32 student logits (STORAGE). */
  logits: GPUBuffer;
  /** rows*k uint32 teacher ids (STORAGE). */
  ids: GPUBuffer;
  /** rows*k float32 raw teacher logits; mode `sampled`: the coefficients `CheckedSparseKd.coef` (STORAGE). */
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
  /** The divergence (default `forward`; others in modes renorm and tail only, as checked by `checkSparseKd`). */
  divergence?: Divergence;
  /** β of divergence `jsd`, in (0, 1) (the checked value: `checkSparseKd` maps β = 0 and 1 to forward and reverse). */
  beta?: number;
  /**
   * Check the teacher ids on the GPU (for ids that were not checked on the host because they live on the
   * GPU): a row with an id ≥ vocab or a repeated id gets a NaN loss and a NaN gradient row.
   */
  checkIds?: boolean;
  /**
   * At most this many rows per dispatch (default: as many as one binding holds). Each dispatch gets its own
   * bind group and WebGPU orders dispatches that write the same buffer, so this bounds the rows in flight:
   * on a GPU, the second read of a row longer than {@linkcode SPARSE_KD_ONE_READ_VOCAB} then finds the row in
   * L2 when rowsInFlight × vocab × 4 bytes fit there. Off by default until measured on a GPU
   * (docs/performance.md); the device script compares both.
   */
  rowsInFlight?: number;
}

/** {@linkcode sparseKdLoss}'s options: the loss's ({@linkcode SparseKdOptions}) and how to dispatch it. */
export interface SparseKdLossOptions extends SparseKdOptions {
  /** At most this many rows per dispatch (see {@linkcode SparseKdGpuArgs.rowsInFlight}); default unbounded. */
  rowsInFlight?: number;
}

/** Bytes per row of the kernel's per-row record (see {@linkcode packRowInfo}). */
export const ROW_INFO_BYTES = 20;

/**
 * Packs the per-row side inputs into the 20-byte records the kernel reads: the label, T·Lz(T) as the
 * float32 pair hi + lo (so that the kernel can form z/T − Lz = ((z − hi) − lo)/T without the large-number
 * cancellation of z/T − Lz in float32), the scale and the mask bit. In mode `sampled` the pair holds the
 * row's Σ c_i·log p_T(i) instead (see `sampledCoefficients` in `sparse_kd_reference.ts`).
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
    const tl = c.teacherTerm ? c.teacherTerm[r] : c.temperature * c.logsumexp[r]; // float64
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
 * Compiles (once per runtime, cached) the kernel for every mode, in its two row layouts (vec4 when the
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

/**
 * Floats of a row each thread keeps in registers: rows of up to CACHED_FLOATS·WG = 32,768 logits are read
 * once (the gradient pass takes them from registers), longer rows twice.
 */
const CACHED_FLOATS = 128;

/** The longest row (logits) the kernel reads once; longer rows are read a second time by the gradient pass. */
export const SPARSE_KD_ONE_READ_VOCAB = CACHED_FLOATS * WG;

async function pipelineFor(
  rt: Runtime,
  mode: SparseKdMode,
  layout: "vec4" | "scalar",
): Promise<GPUComputePipeline> {
  const helpers = await loadShader(`sparse_kd_${layout}.wgsl`);
  // kernelHooks.sparseKdTwoReads (benches): one element per thread, so that rows longer than WG elements
  // take the two-read path (the kernel before the one-read path existed), for a before/after comparison.
  const cn = kernelHooks.sparseKdTwoReads ? 1 : CACHED_FLOATS / (layout === "vec4" ? 4 : 1);
  return await rt.pipeline(`sparse_kd:${mode}:${layout}:cn${cn}`, "sparse_kd.wgsl", {
    prelude: `const WG: u32 = ${WG}u;\nconst MODE: u32 = ${MODES[mode]}u;\nconst CN: u32 = ${cn}u;\n` +
      `const KSORT: u32 = ${mode === "tail" ? SPARSE_KD_SORTED_IDS : 1}u;\n${helpers}\n`,
  });
}

const layoutOf = (vocab: number) => (vocab % 4 === 0 ? "vec4" : "scalar");

/**
 * Mode `tail`: the most teacher ids per row that the kernel sorts in workgroup memory for its bounded
 * membership test (a binary search of log2 steps). 2,048 ids take 8 KiB; with the rest of the kernel's
 * workgroup memory (3 KiB of reductions, the 2 KiB bitmap) 13,320 bytes, under WebGPU's 16,384. Above it the
 * kernel scans the ids in global memory linearly.
 */
export const SPARSE_KD_SORTED_IDS = 2048;

/**
 * llvmpipe (lavapipe and GL) gives each group of 8 lanes one budget of 65,535 loop iterations per workgroup
 * and silently ends every loop once it is spent (`tools/llvmpipe_loop_budget.ts`). Shapes whose count
 * ({@linkcode sparseKdLoopIterations}, an upper bound) exceeds this are refused on software adapters; the
 * margin covers loops the count might miss.
 */
const SOFTWARE_LOOP_BUDGET = 60_000;

/**
 * An upper bound on the loop iterations one lane (one 8-lane group: its lanes run in lockstep) of the
 * sparse-KD kernel runs for one row, every loop counted (also fully unrollable ones): the row's two passes,
 * the reductions (log2(WG) steps each), the loops over the K ids, the id check (`checkIds`: over the sorted
 * ids in mode tail with K ≤ {@linkcode SPARSE_KD_SORTED_IDS}, else K²/WG pairs), and in mode tail the bitmap,
 * the bitonic sort (log2(n)·(log2(n) + 1)/2 stages, n the next power of two ≥ K) and the membership test of
 * pass 1, counted as if every element's bitmap bit were set: log2(n) search steps per element, or, for K
 * above the sorted ids, a linear scan of K per id.
 *
 * @example
 * ```ts
 * sparseKdLoopIterations("tail", 131_072, 1024); // 1,793: well under llvmpipe's 65,535
 * ```
 */
export function sparseKdLoopIterations(mode: string, vocab: number, k: number, checkIds = false): number {
  const vw = vocab % 4 === 0 ? 4 : 1;
  const ne = vocab / vw;
  const cn = CACHED_FLOATS / vw;
  const elems = Math.ceil(ne / WG); // elements of the row per lane
  const perRow = ne <= cn * WG ? cn : elems; // iterations of each pass over the row
  const kw = Math.ceil(k / WG);
  const logWg = Math.log2(WG);
  const sorted = mode === "tail" && k <= SPARSE_KD_SORTED_IDS;
  let n = 2 * perRow + 6 * logWg + 6 * kw; // passes 1 and 2, ≤ 6 reductions, ≤ 6 loops over the K ids
  if (checkIds) n += sorted ? kw : Math.ceil((k * k) / WG);
  if (mode === "tail") {
    n += Math.ceil(512 / WG) + kw; // the bitmap: cleared, then one bit per id
    if (sorted) {
      const lg = 32 - Math.clz32(k - 1); // log2(n), n the padded size (as sort_log2 in the shader)
      const stages = (lg * (lg + 1)) / 2;
      const size = 2 ** lg;
      n += Math.ceil(size / WG) + lg + stages + stages * Math.ceil(size / 2 / WG); // load, then the sort's loops
      n += elems * lg; // one search per element (vec4: one for its 4 ids)
    } else {
      n += elems * vw * k; // a linear scan of the K ids for each id
    }
  }
  return n;
}

/**
 * Refuses, on a software adapter (llvmpipe), a shape whose loops ({@linkcode sparseKdLoopIterations})
 * would exceed llvmpipe's loop budget and silently give a wrong loss and gradient; a one-line
 * {@linkcode SparsekdError} naming the limit. In mode `tail` that is K above
 * {@linkcode SPARSE_KD_SORTED_IDS} on all but small vocabularies (its membership test is then a linear
 * scan); below it, only vocabularies of millions. Real GPUs have no such budget: nothing is refused there.
 *
 * @example
 * ```ts
 * checkSoftwareLoopBudget({ software: true }, "tail", 131_072, 1024); // fine
 * ```
 */
export function checkSoftwareLoopBudget(
  adapter: { software: boolean } | null,
  mode: string,
  vocab: number,
  k: number,
  checkIds = false,
): void {
  if (!adapter?.software) return;
  const iterations = sparseKdLoopIterations(mode, vocab, k, checkIds);
  if (iterations > SOFTWARE_LOOP_BUDGET) {
    const hint = mode === "tail" && k > SPARSE_KD_SORTED_IDS ? `k ≤ ${SPARSE_KD_SORTED_IDS}, ` : "";
    throw new SparsekdError(
      `k: mode ${mode} with k = ${k} over a vocabulary of ${vocab} exceeds the software adapter's loop ` +
        `budget (about ${iterations} loop iterations per lane; llvmpipe ends loops silently past 65,535): ` +
        `use ${hint}a real GPU, or --cpu`,
      { option: "k" },
    );
  }
}

/**
 * The most rows of `vocab` logits and `k` teacher entries that one dispatch of the kernel may bind on
 * `device`: every binding, whose start moves down by up to lcm(alignment, 20) bytes to an aligned offset,
 * stays within `maxStorageBufferBindingSize` rounded down to 16 bytes. Throws a {@linkcode SparsekdError}
 * when not even one row fits.
 *
 * @example
 * ```ts
 * const rows = rowsPerBinding(device, 32_000, 64);
 * ```
 */
export function rowsPerBinding(device: GPUDevice, vocab: number, k: number): number {
  const limits = device.limits;
  const slack = Math.max(limits.minStorageBufferOffsetAlignment * 5, 1280);
  const budget = Math.min(bindingBudget(device, 16), limits.maxBufferSize);
  const fit = Math.floor((budget - slack) / (Math.max(vocab, k) * 4));
  if (fit < 1) {
    throw new SparsekdError(
      `vocab: a row of ${vocab} logits does not fit the device's largest storage binding ` +
        `(${limits.maxStorageBufferBindingSize} bytes)`,
      { option: "vocab" },
    );
  }
  const maxX = limits.maxComputeWorkgroupsPerDimension;
  return Math.min(fit, maxX * maxX);
}

/**
 * Records the fused sparse-KD kernel into `encoder` (one compute pass, one workgroup per row), with
 * pipelines from {@linkcode prepareSparseKd}; synchronous, for use inside tfjs ops. Inputs are not checked
 * here: pass them through {@linkcode checkSparseKd} first. The buffers may be larger than the device's
 * largest binding: the rows are split into chunks whose bindings (offset and size) each fit
 * `maxStorageBufferBindingSize` rounded down to the element size, one dispatch per chunk, and each
 * dispatch's workgroup counts stay within `maxComputeWorkgroupsPerDimension` (a second dimension past it).
 * Returns a function that releases the small uniform buffer it made; call it after the encoder's commands
 * have been submitted.
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
  const layout = layoutOf(a.vocab);
  const pipeline = pipelines[`${a.mode}:${layout}`];
  if (!pipeline) throw new Error(`sparse-KD kernel ${a.mode}:${layout} was not prepared`);
  const limits = device.limits;
  const maxX = limits.maxComputeWorkgroupsPerDimension;
  const align = limits.minStorageBufferOffsetAlignment;
  const ew = layout === "vec4" ? 16 : 4; // bytes per element of the logits/grad bindings
  const bindingRows = kernelHooks.ignoreBindingLimit ? a.rows : rowsPerBinding(device, a.vocab, a.k);
  const chunkRows = Math.min(bindingRows, checkRowsInFlight(a.rowsInFlight));
  const chunks = Math.ceil(a.rows / chunkRows);
  const { uniform, bytes } = uniformSlots(device, "sparse_kd params", chunks);
  const pass = encoder.beginComputePass({
    label: "sparse_kd",
    timestampWrites: kernelHooks.timestampWrites ?? undefined,
  });
  pass.setPipeline(pipeline);
  const binds: [GPUBindGroup, number, number][] = [];
  for (let c = 0; c < chunks; c++) {
    const r0 = c * chunkRows;
    const n = Math.min(chunkRows, a.rows - r0);
    const rowElems = a.vocab * 4 / ew; // elements of `ew` bytes per row
    const lg = bindRange(a.logits, r0 * rowElems, n * rowElems, ew, align);
    const gr = bindRange(a.grad, r0 * rowElems, n * rowElems, ew, align);
    const id = bindRange(a.ids, r0 * a.k, n * a.k, 4, align);
    const tv = bindRange(a.values, r0 * a.k, n * a.k, 4, align);
    const ri = bindRange(a.rowInfo, r0, n, ROW_INFO_BYTES, align);
    const lo = bindRange(a.loss, r0, n, 4, align);
    if (lg.skip !== gr.skip || id.skip !== tv.skip) {
      throw new Error("sparse-KD: logits/grad (or ids/values) buffers must have the same layout");
    }
    const nx = Math.min(n, maxX);
    packUniforms(
      SPARSE_KD_PARAMS,
      {
        rows: n,
        vocab: a.vocab,
        k: a.k,
        nx,
        inv_t: 1 / a.temperature,
        t: a.temperature,
        alpha: a.alpha,
        need_ce: a.alpha < 1 ? 1 : 0,
        l_off: lg.skip * (ew / 4),
        k_off: id.skip,
        r_off: ri.skip,
        o_off: lo.skip,
        check_ids: a.checkIds ? 1 : 0,
        divergence: DIVERGENCES.indexOf(a.divergence ?? "forward"),
        beta: a.divergence === "jsd" ? a.beta ?? 0.5 : 0,
        beta_c: a.divergence === "jsd" ? 1 - (a.beta ?? 0.5) : 1, // 1 − β in float64, then rounded
      },
      bytes,
      c * 256,
    );
    const entries = [lg, id, tv, ri, gr, lo].map((b, binding) => ({ binding, resource: b.entry }));
    entries.push({
      binding: 6,
      resource: { buffer: uniform, offset: c * 256, size: SPARSE_KD_PARAMS.size() },
    });
    const bind = device.createBindGroup({
      label: "sparse_kd",
      layout: pipeline.getBindGroupLayout(0),
      entries,
    });
    binds.push([bind, nx, Math.ceil(n / nx)]);
  }
  device.queue.writeBuffer(uniform, 0, bytes);
  for (let r = 0; r < kernelHooks.repeat; r++) {
    for (const [bind, nx, ny] of binds) {
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(nx, ny);
    }
  }
  pass.end();
  return () => uniform.destroy();
}

/** `rowsInFlight` checked: a whole number ≥ 1, or Infinity when absent. */
function checkRowsInFlight(n: number | undefined): number {
  if (n === undefined) return Infinity;
  if (!(Number.isSafeInteger(n) && n >= 1)) {
    throw new SparsekdError(`rowsInFlight must be a whole number ≥ 1 (got ${n})`, { option: "rowsInFlight" });
  }
  return n;
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
 * Batches larger than the device's largest binding are uploaded and run in chunks of rows. A GPU error
 * (validation, out of memory, a lost device) is a {@linkcode SparsekdError} naming the kernel, never stale
 * output.
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
  options: SparseKdLossOptions,
): Promise<SparseKdResult> {
  const device = rt.device;
  checkRowsInFlight(options.rowsInFlight);
  if (!device) return sparseKdLossReference(studentLogits, rows, vocab, teacher, options);
  const c = checkSparseKd(studentLogits, rows, vocab, teacher, options);
  checkSoftwareLoopBudget(rt.adapter, c.mode, vocab, c.k);
  const loss = new Float32Array(rows);
  const grad = new Float32Array(rows * vocab);
  const rowInfo = new Uint8Array(packRowInfo(c));
  const k = c.k;
  const chunkRows = kernelHooks.ignoreBindingLimit ? Math.max(1, rows) : rowsPerBinding(device, vocab, k);
  const pipelines = { [`${c.mode}:${layoutOf(vocab)}`]: await pipelineFor(rt, c.mode, layoutOf(vocab)) };
  for (let r0 = 0; r0 < rows; r0 += chunkRows) {
    const n = Math.min(chunkRows, rows - r0);
    const close = openErrorScopes(device, "sparse_kd");
    const mk = (label: string, bytes: number, extra: number) =>
      device.createBuffer({ label, size: Math.max(16, bytes), usage: GPUBufferUsage.STORAGE | extra });
    const bufs = {
      logits: mk("sparse_kd logits", n * vocab * 4, GPUBufferUsage.COPY_DST),
      ids: mk("sparse_kd ids", n * k * 4, GPUBufferUsage.COPY_DST),
      values: mk("sparse_kd values", n * k * 4, GPUBufferUsage.COPY_DST),
      rowInfo: mk("sparse_kd rowinfo", n * ROW_INFO_BYTES, GPUBufferUsage.COPY_DST),
      grad: mk("sparse_kd grad", n * vocab * 4, GPUBufferUsage.COPY_SRC),
      loss: mk("sparse_kd loss", n * 4, GPUBufferUsage.COPY_SRC),
    };
    let pending: Promise<ArrayBuffer[]>;
    try {
      const logitsView = studentLogits as Float32Array<ArrayBuffer>;
      device.queue.writeBuffer(bufs.logits, 0, logitsView, r0 * vocab, n * vocab);
      device.queue.writeBuffer(bufs.ids, 0, teacher.indices as Uint32Array<ArrayBuffer>, r0 * k, n * k);
      const values = (c.coef ?? teacher.values) as Float32Array<ArrayBuffer>; // sampled: the coefficients
      device.queue.writeBuffer(bufs.values, 0, values, r0 * k, n * k);
      device.queue.writeBuffer(bufs.rowInfo, 0, rowInfo, r0 * ROW_INFO_BYTES, n * ROW_INFO_BYTES);
      const enc = device.createCommandEncoder({ label: "sparse_kd" });
      const release = encodeSparseKdSync(device, pipelines, enc, {
        ...bufs,
        rows: n,
        vocab,
        k,
        mode: c.mode,
        temperature: c.temperature,
        alpha: c.alpha,
        divergence: c.divergence,
        beta: c.beta,
        rowsInFlight: options.rowsInFlight,
      });
      device.queue.submit([enc.finish()]);
      release();
      pending = readBack(device, [{ buffer: bufs.grad, size: n * vocab * 4 }, {
        buffer: bufs.loss,
        size: n * 4,
      }]);
      pending.catch(() => {}); // (observed below; this only keeps an early rejection from being "unhandled")
    } catch (e) {
      await close().catch(() => {});
      for (const b of Object.values(bufs)) b.destroy();
      throw e;
    }
    try {
      await close();
      const [g, l] = await pending;
      grad.set(new Float32Array(g), r0 * vocab);
      loss.set(new Float32Array(l), r0);
    } finally {
      await pending.catch(() => {});
      for (const b of Object.values(bufs)) b.destroy();
    }
  }
  return { loss, grad };
}
