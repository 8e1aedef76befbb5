/**
 * The sparse-KD loss as a tfjs op with its own gradient (`tf.customGrad`): on the `webgpu` backend running
 * on the runtime's device, the fused WGSL kernel reads the logits tensor's GPUBuffer in place and writes
 * the gradient into a tensor's GPUBuffer, so a training step reads nothing back to the CPU.
 * @module
 */
import * as tf from "../deps/tfjs_core.ts";
import type { Runtime } from "../gpu/runtime.ts";
import { emptyGpuTensor, flushTfjs, tensorGpuBuffer, tfjsGpuBackend } from "../gpu/tfjs_backend.ts";
import { scopeWithoutWaiting, throwIfGpuFailed } from "../gpu/gpu_errors.ts";
import { packUniforms, uniformLayout, uniformSlots } from "../gpu/uniforms.ts";
import {
  checkSoftwareLoopBudget,
  encodeSparseKdSync,
  packRowInfo,
  prepareSparseKd,
} from "../kernels/sparse_kd.ts";
import { bindingBudget } from "../kernels/test_hooks.ts";
import {
  checkSparseKd,
  type Divergence,
  sparseKdLossReference,
  type SparseKdMode,
  type SparseKdTeacher,
} from "../kernels/sparse_kd_reference.ts";
import { SparsekdError } from "../errors.ts";

/** The teacher's side of a batch for {@linkcode SparseKdLossOp}. */
export interface KdOpTeacher {
  /**
   * rows*k teacher ids: a typed array (checked on the host: range and distinctness), or an int32 tensor of
   * shape [rows, k] already on the GPU (checked by the kernel: a row with an id ≥ vocab or a repeated id gets
   * a NaN loss and gradient, which the trainer refuses).
   */
  indices: Uint32Array | tf.Tensor;
  /** rows*k raw teacher logits: a typed array, or a float32 tensor of shape [rows, k]. */
  values: Float32Array | tf.Tensor;
  /** Ids per row. */
  k: number;
  /** Lz(T) per row (needed by modes `tail` and `sampled`). */
  logsumexp?: Float32Array;
  /** Mode `sampled` (ids and values then typed arrays): the draw count of each slot (0 in padding). */
  hits?: Uint16Array | Uint32Array | Float32Array;
  /** Mode `sampled`: the temperature t the draws came from (default T). */
  sampleTemperature?: number;
  /** Mode `sampled`, t ≠ T: Lz(t) per row. */
  sampleLogsumexp?: Float32Array;
}

/** Options of {@linkcode SparseKdLossOp}. */
export interface KdOpOptions {
  mode: SparseKdMode;
  temperature: number;
  /** Weight of the KD term in [0, 1] (default 1). */
  alpha?: number;
  /** The divergence (default `forward`; `reverse` and `jsd` need mode renorm or tail). */
  divergence?: Divergence;
  /** `jsd` only: the teacher's weight β in [0, 1] of the mixture (default 0.5). */
  beta?: number;
  /** Hard labels per row (needed when alpha < 1). */
  labels?: Int32Array;
  /** One byte per row, 0 = masked. */
  mask?: Uint8Array;
  /**
   * `mean` (default): the result is the mean of the per-row losses over unmasked rows (the kernel is given
   * 1/(unmasked rows) as each row's scale); `sum`: their sum. `scale` multiplies further.
   */
  reduction?: "mean" | "sum";
  /** An extra factor on the loss and its gradient (default 1). */
  scale?: number;
}

/**
 * The loss op: `(logits [rows, vocab], teacher, options) => scalar`, differentiable with respect to the
 * logits through tfjs autograd.
 */
export type SparseKdLossOp = (logits: tf.Tensor2D, teacher: KdOpTeacher, options: KdOpOptions) => tf.Scalar;

const asU32 = (t: Uint32Array | tf.Tensor): Uint32Array | null => (t instanceof Uint32Array ? t : null);

/**
 * Compiles the kernels once and returns the synchronous tfjs loss op (tfjs needs the loss function to be
 * synchronous inside `tf.variableGrads` / `optimizer.minimize`). Use {@linkcode useTfjsOnRuntime} first:
 * when tfjs runs the `webgpu` backend on `rt.device` the op stays on the GPU; on any other backend it
 * falls back to the CPU reference (reading the logits back). Logits larger than one storage binding are
 * processed in row chunks (offset bindings). A GPU error of the kernel is recorded without waiting and thrown
 * as a `SparsekdError` by the next call (or the next read-back through the runtime).
 *
 * @example
 * ```ts
 * const rt = await createRuntime();
 * const tf = await useTfjsOnRuntime(rt);
 * const kdLoss = await createSparseKdLossOp(rt);
 * const { value, grads } = tf.variableGrads(() =>
 *   kdLoss(tf.matMul(x, w) as tf.Tensor2D, teacher, { mode: "topk", temperature: 2 }));
 * ```
 */
export async function createSparseKdLossOp(rt: Runtime): Promise<SparseKdLossOp> {
  const pipelines = rt.device ? await prepareSparseKd(rt) : null;
  const scalePipeline = rt.device ? await rt.pipeline("sparse_kd_scale", "sparse_kd_scale.wgsl") : null;
  return (logits, teacher, options) => {
    // A GPU error of an earlier call (recorded asynchronously) ends the run here, before more work.
    if (rt.device) throwIfGpuFailed(rt.device);
    if (logits.rank !== 2) {
      throw new SparsekdError(`sparse-KD loss: logits must be 2-D (got rank ${logits.rank})`);
    }
    const [rows, vocab] = logits.shape;
    const idArray = asU32(teacher.indices);
    const valArray = teacher.values instanceof Float32Array ? teacher.values : null;
    for (const [name, t] of [["indices", teacher.indices], ["values", teacher.values]] as const) {
      if (t instanceof tf.Tensor && t.size !== rows * teacher.k) {
        throw new SparsekdError(
          `sparse-KD loss: teacher ${name} have ${t.size} values, expected rows*k (k mismatch?)`,
        );
      }
    }
    // Checks everything it can see. Teacher ids given as a tensor stay on the GPU: the kernel checks them
    // (range and distinctness) and a row with a bad id gets a NaN loss and gradient, which the trainer
    // refuses; their count is checked above.
    if (options.mode === "sampled" && (!idArray || !valArray)) {
      throw new SparsekdError(
        "sparse-KD loss: mode sampled takes the teacher's ids and logits as typed arrays",
      );
    }
    const checkTeacher: SparseKdTeacher = {
      indices: idArray ?? new Uint32Array(rows * teacher.k),
      values: valArray ?? new Float32Array(rows * teacher.k),
      k: teacher.k,
      logsumexp: teacher.logsumexp,
      hits: teacher.hits,
      sampleTemperature: teacher.sampleTemperature,
      sampleLogsumexp: teacher.sampleLogsumexp,
    };
    let active = rows;
    if (options.mask) active = options.mask.reduce((a, m) => a + (m ? 1 : 0), 0);
    const reduction = options.reduction ?? "mean";
    const scale = (options.scale ?? 1) / (reduction === "mean" ? Math.max(1, active) : 1);
    const opts = { ...options, scale };
    const c = checkSparseKd(null, rows, vocab, checkTeacher, opts, idArray !== null);
    if (rt.device) checkSoftwareLoopBudget(rt.adapter, c.mode, vocab, c.k, idArray === null);
    const backend = rt.device ? tfjsGpuBackend(rt.device) : null;

    const f = tf.customGrad((x, save) => {
      const input = x as tf.Tensor2D;
      let grad: tf.Tensor;
      let lossRows: tf.Tensor;
      if (backend && pipelines && input.dtype === "float32") {
        const device = rt.device!;
        const own: tf.Tensor[] = [];
        const onGpu = (t: Uint32Array | Float32Array | tf.Tensor, dtype: "int32" | "float32") => {
          if (t instanceof tf.Tensor) return t;
          const made = dtype === "int32"
            ? tf.tensor1d(new Int32Array(t.buffer, t.byteOffset, t.length), "int32")
            : tf.tensor1d(t as Float32Array, "float32");
          own.push(made);
          return made;
        };
        const ids = onGpu(teacher.indices, "int32");
        const vals = onGpu(c.coef ?? teacher.values, "float32"); // sampled: the importance coefficients
        const info = tf.tensor1d(new Int32Array(packRowInfo(c)), "int32");
        own.push(info);
        const g = emptyGpuTensor(backend, [rows, vocab], "float32");
        const l = emptyGpuTensor(backend, [rows], "float32");
        const buffers = {
          logits: tensorGpuBuffer(backend, input),
          ids: tensorGpuBuffer(backend, ids),
          values: tensorGpuBuffer(backend, vals),
          rowInfo: tensorGpuBuffer(backend, info),
          grad: g.buffer,
          loss: l.buffer,
        };
        flushTfjs(backend);
        const closeScopes = scopeWithoutWaiting(device, "sparse_kd");
        const enc = device.createCommandEncoder({ label: "sparse_kd" });
        const release = encodeSparseKdSync(device, pipelines, enc, {
          ...buffers,
          rows,
          vocab,
          k: c.k,
          mode: c.mode,
          temperature: c.temperature,
          alpha: c.alpha,
          divergence: c.divergence,
          beta: c.beta,
          checkIds: idArray === null,
        });
        device.queue.submit([enc.finish()]);
        release();
        void closeScopes(); // an error is recorded for the runtime: the next call or read-back throws it
        for (const t of own) t.dispose(); // queue order keeps later reuse of their buffers safe
        grad = g.tensor;
        lossRows = l.tensor;
      } else {
        // CPU fallback: tfjs is not on our device, so the reference computes the loss (reads logits back).
        const s = input.dataSync() as Float32Array;
        const t2: SparseKdTeacher = {
          ...checkTeacher,
          indices: idArray ?? tensorIds(teacher.indices as tf.Tensor),
          values: valArray ??
            Float32Array.from(teacher.values instanceof tf.Tensor ? teacher.values.dataSync() : []),
        };
        const r = sparseKdLossReference(Float32Array.from(s), rows, vocab, t2, opts);
        grad = tf.tensor2d(r.grad, [rows, vocab]);
        lossRows = tf.tensor1d(r.loss);
      }
      (save as tf.GradSaveFunc)([grad]);
      const value = tf.sum(lossRows) as tf.Scalar;
      return {
        value,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const g = saved[0];
          if (backend && scalePipeline && g.size * 4 > bindingBudget(rt.device!, 4)) {
            return scaleOnGpu(rt.device!, backend, scalePipeline, g, dy);
          }
          return tf.mul(g, dy);
        },
      };
    });
    return f(logits) as tf.Scalar;
  };
}

/** The ids of an int32 teacher-ids tensor, read synchronously (CPU fallback). */
function tensorIds(t: tf.Tensor): Uint32Array {
  const data = t.dataSync();
  return new Uint32Array(data.buffer, data.byteOffset, data.length);
}

/** Uniforms of `shaders/sparse_kd_scale.wgsl` (`struct ScaleParams`). */
export const SCALE_PARAMS = uniformLayout([{ name: "n", type: "u32" }, { name: "off", type: "u32" }]);

/**
 * `g * dy` (dy a scalar tensor) computed by our own small kernel in chunks that each fit a binding: the
 * backward step for a gradient larger than tfjs-backend-webgpu can bind in one piece.
 */
function scaleOnGpu(
  device: GPUDevice,
  backend: NonNullable<ReturnType<typeof tfjsGpuBackend>>,
  pipeline: GPUComputePipeline,
  g: tf.Tensor,
  dy: tf.Tensor,
): tf.Tensor {
  const out = emptyGpuTensor(backend, g.shape, "float32");
  const src = tensorGpuBuffer(backend, g);
  const dyBuf = tensorGpuBuffer(backend, dy);
  const align = device.limits.minStorageBufferOffsetAlignment;
  const chunk = Math.floor((bindingBudget(device, 4) - align) / 4);
  const chunks = Math.ceil(g.size / chunk);
  const { uniform, bytes } = uniformSlots(device, "sparse_kd_scale params", chunks);
  const closeScopes = scopeWithoutWaiting(device, "sparse_kd_scale");
  const enc = device.createCommandEncoder({ label: "sparse_kd_scale" });
  const pass = enc.beginComputePass({ label: "sparse_kd_scale" });
  pass.setPipeline(pipeline);
  for (let c = 0; c < chunks; c++) {
    const e0 = c * chunk, n = Math.min(chunk, g.size - e0);
    const offset = Math.floor((e0 * 4) / align) * align;
    const size = e0 * 4 - offset + n * 4;
    packUniforms(SCALE_PARAMS, { n, off: (e0 * 4 - offset) / 4 }, bytes, c * 256);
    pass.setBindGroup(
      0,
      device.createBindGroup({
        label: "sparse_kd_scale",
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: src, offset, size } },
          { binding: 1, resource: { buffer: out.buffer, offset, size } },
          { binding: 2, resource: { buffer: dyBuf, offset: 0, size: 4 } },
          { binding: 3, resource: { buffer: uniform, offset: c * 256, size: SCALE_PARAMS.size() } },
        ],
      }),
    );
    pass.dispatchWorkgroups(Math.min(1024, Math.ceil(n / 256)));
  }
  pass.end();
  device.queue.writeBuffer(uniform, 0, bytes);
  device.queue.submit([enc.finish()]);
  uniform.destroy();
  void closeScopes();
  return out.tensor;
}
