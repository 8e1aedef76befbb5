/**
 * `deno task bench sparse-kd`: the fused sparse-KD kernel against the streaming-read roofline and against the
 * same loss and gradient composed from tfjs ops on the same backend and device.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import type { Runtime } from "../gpu/runtime.ts";
import { flushTfjs, tfjsGpuBackend, useTfjsOnRuntime } from "../gpu/tfjs_backend.ts";
import { encodeSparseKdSync, packRowInfo, prepareSparseKd } from "../kernels/sparse_kd.ts";
import { checkSparseKd, type SparseKdMode } from "../kernels/sparse_kd_reference.ts";
import { median, streamReadRoofline } from "./stream_read.ts";

/** Options of {@linkcode benchSparseKd}. */
export interface SparseKdBenchOptions {
  /** [rows, vocab] pairs (default 1024×32000 and 256×131072). */
  shapes?: [number, number][];
  /** Teacher ids per row (default 64). */
  k?: number;
  /** Modes to time (default all three). */
  modes?: SparseKdMode[];
  /** KD weight α (default 0.5, so that the CE term and its second exp are included). */
  alpha?: number;
  /** Temperature (default 2). */
  temperature?: number;
  /** Timed iterations of the kernel (default 5; the median is reported). */
  iterations?: number;
  /** Timed iterations of the tfjs-composed version (default 2; 0 skips it). */
  tfjsIterations?: number;
}

/** One line of the benchmark. */
export interface SparseKdBenchRow {
  mode: SparseKdMode;
  rows: number;
  vocab: number;
  k: number;
  /** Median seconds per fused forward+backward over the batch. */
  seconds: number;
  /** The bytes that must move: two reads and one write of the logits (3·rows·vocab·4). */
  bytes: number;
  /** bytes / seconds. */
  gbPerSecond: number;
  /** The streaming-read kernel's bandwidth over the same logits buffer, same run, same adapter. */
  rooflineGbPerSecond: number;
  /** gbPerSecond / rooflineGbPerSecond. */
  rooflineFraction: number;
  /** Median seconds of the tfjs-composed loss + gradient (null when skipped). */
  tfjsSeconds: number | null;
  /** tfjsSeconds / seconds. */
  speedupVsTfjs: number | null;
}

async function time(device: GPUDevice, run: () => void, iterations: number): Promise<number> {
  const once = async () => {
    const t0 = performance.now();
    run();
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / 1000;
  };
  await once(); // warm-up (compiles, allocates)
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) times.push(await once());
  return median(times);
}

/**
 * Runs the benchmark on a GPU runtime and returns one row per (shape, mode).
 *
 * @example
 * ```ts
 * const rt = await createRuntime();
 * for (const r of await benchSparseKd(rt, { shapes: [[64, 32000]] })) console.log(formatSparseKdRow(r));
 * ```
 */
export async function benchSparseKd(rt: Runtime, options: SparseKdBenchOptions = {}): Promise<SparseKdBenchRow[]> {
  const device = rt.device;
  if (!device) throw new Error("the sparse-kd benchmark needs a WebGPU adapter");
  const shapes = options.shapes ?? [[1024, 32000], [256, 131072]];
  const k = options.k ?? 64;
  const modes = options.modes ?? ["topk", "renorm", "tail"];
  const alpha = options.alpha ?? 0.5;
  const T = options.temperature ?? 2;
  const iterations = options.iterations ?? 5;
  const tfjsIterations = options.tfjsIterations ?? 2;
  await useTfjsOnRuntime(rt);
  const backend = tfjsGpuBackend(device)!;
  const pipelines = await prepareSparseKd(rt);
  const out: SparseKdBenchRow[] = [];
  for (const [rows, vocab] of shapes) {
    const n = rows * vocab;
    const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    const logits = device.createBuffer({ size: n * 4, usage });
    const grad = device.createBuffer({ size: n * 4, usage });
    const lossBuf = device.createBuffer({ size: rows * 4, usage });
    const block = Float32Array.from({ length: 1 << 20 }, () => (Math.random() - 0.5) * 8);
    for (let o = 0; o < n; o += block.length) {
      device.queue.writeBuffer(logits, o * 4, block, 0, Math.min(block.length, n - o));
    }
    const indices = new Uint32Array(rows * k);
    const values = new Float32Array(rows * k);
    const lse = new Float32Array(rows);
    const labels = new Int32Array(rows);
    for (let r = 0; r < rows; r++) {
      const ids = new Set<number>();
      while (ids.size < k) ids.add(Math.floor(Math.random() * vocab));
      [...ids].forEach((id, i) => {
        indices[r * k + i] = id;
        values[r * k + i] = 10 + Math.random() * 6;
      });
      lse[r] = 16 / T + Math.log(k) + 1;
      labels[r] = Math.floor(Math.random() * vocab);
    }
    const ids = device.createBuffer({ size: rows * k * 4, usage });
    const vals = device.createBuffer({ size: rows * k * 4, usage });
    device.queue.writeBuffer(ids, 0, indices);
    device.queue.writeBuffer(vals, 0, values);
    const roof = await streamReadRoofline(rt, logits, n * 4, iterations);
    for (const mode of modes) {
      const teacher = { indices, values, k, logsumexp: lse };
      const c = checkSparseKd(null, rows, vocab, teacher, { mode, temperature: T, alpha, labels });
      const rowInfo = device.createBuffer({ size: rows * 16, usage });
      device.queue.writeBuffer(rowInfo, 0, packRowInfo(c));
      const seconds = await time(device, () => {
        const enc = device.createCommandEncoder();
        const release = encodeSparseKdSync(device, pipelines, enc, {
          logits,
          ids,
          values: vals,
          rowInfo,
          grad,
          loss: lossBuf,
          rows,
          vocab,
          k,
          mode,
          temperature: T,
          alpha,
        });
        device.queue.submit([enc.finish()]);
        release();
      }, iterations);
      rowInfo.destroy();
      const tfjsSeconds = tfjsIterations > 0
        ? await timeTfjs(device, backend, logits, rows, vocab, teacher, mode, T, alpha, labels, tfjsIterations)
        : null;
      const bytes = 3 * n * 4;
      const gbPerSecond = bytes / seconds / 1e9;
      out.push({
        mode,
        rows,
        vocab,
        k,
        seconds,
        bytes,
        gbPerSecond,
        rooflineGbPerSecond: roof.gbPerSecond,
        rooflineFraction: gbPerSecond / roof.gbPerSecond,
        tfjsSeconds,
        speedupVsTfjs: tfjsSeconds === null ? null : tfjsSeconds / seconds,
      });
    }
    for (const b of [logits, grad, lossBuf, ids, vals]) b.destroy();
  }
  return out;
}

/** The same loss and its gradient from tfjs ops (logSoftmax, gather, …), timed on the same device. */
async function timeTfjs(
  device: GPUDevice,
  backend: NonNullable<ReturnType<typeof tfjsGpuBackend>>,
  logitsBuffer: GPUBuffer,
  rows: number,
  vocab: number,
  teacher: { indices: Uint32Array; values: Float32Array; k: number; logsumexp: Float32Array },
  mode: SparseKdMode,
  T: number,
  alpha: number,
  labels: Int32Array,
  iterations: number,
): Promise<number> {
  const k = teacher.k;
  const logits = tf.tensor({ buffer: logitsBuffer, zeroCopy: true }, [rows, vocab], "float32") as tf.Tensor2D;
  const flat = new Int32Array(rows * k);
  for (let i = 0; i < flat.length; i++) flat[i] = Math.floor(i / k) * vocab + teacher.indices[i];
  const flatIds = tf.tensor1d(flat, "int32");
  const labelIds = tf.tensor1d(Int32Array.from(labels, (y, r) => r * vocab + y), "int32");
  const zT = tf.div(tf.tensor2d(teacher.values, [rows, k]), T);
  const lz = tf.tensor2d(teacher.logsumexp, [rows, 1]);
  const f = (s: tf.Tensor) => {
    const u = tf.div(s, T);
    const gatherS = (x: tf.Tensor) => tf.reshape(tf.gather(tf.reshape(x, [rows * vocab]), flatIds), [rows, k]);
    let kd: tf.Tensor;
    if (mode === "topk") {
      const logp = tf.logSoftmax(zT);
      kd = tf.sum(tf.mul(tf.exp(logp), tf.sub(logp, gatherS(tf.logSoftmax(u)))), 1);
    } else if (mode === "renorm") {
      const logp = tf.logSoftmax(zT);
      kd = tf.sum(tf.mul(tf.exp(logp), tf.sub(logp, tf.logSoftmax(gatherS(u)))), 1);
    } else {
      const logp = tf.sub(zT, lz);
      const p = tf.exp(logp);
      const r = tf.relu(tf.sub(1, tf.sum(p, 1)));
      const logq = tf.logSoftmax(u);
      const qS = tf.sum(tf.exp(gatherS(logq)), 1);
      const tail = tf.mul(r, tf.sub(tf.log(tf.add(r, 1e-30)), tf.log(tf.sub(1, qS))));
      kd = tf.add(tf.sum(tf.mul(p, tf.sub(logp, gatherS(logq))), 1), tail);
    }
    const ce = tf.neg(tf.gather(tf.reshape(tf.logSoftmax(s), [rows * vocab]), labelIds));
    return tf.sum(tf.add(tf.mul(kd, alpha * T * T), tf.mul(ce, 1 - alpha))) as tf.Scalar;
  };
  const vg = tf.valueAndGrad(f);
  const seconds = await time(device, () => {
    const { value, grad } = vg(logits);
    flushTfjs(backend);
    tf.dispose([value, grad]);
  }, iterations);
  tf.dispose([logits, flatIds, labelIds, zT, lz]);
  return seconds;
}

/**
 * One markdown table line for a benchmark row (see {@linkcode SPARSE_KD_TABLE_HEADER}).
 *
 * @example
 * ```ts
 * console.log(SPARSE_KD_TABLE_HEADER);
 * for (const r of rows) console.log(formatSparseKdRow(r));
 * ```
 */
export function formatSparseKdRow(r: SparseKdBenchRow): string {
  const f = (x: number, d = 2) => x.toFixed(d);
  return `| ${r.mode} | ${r.rows} × ${r.vocab} | ${r.k} | ${f(r.seconds * 1e3, 1)} | ${f(r.gbPerSecond)} | ${
    f(r.rooflineGbPerSecond)
  } | ${f(r.rooflineFraction * 100, 0)}% | ${r.tfjsSeconds === null ? "–" : f(r.tfjsSeconds * 1e3, 0)} | ${
    r.speedupVsTfjs === null ? "–" : f(r.speedupVsTfjs, 1) + "×"
  } |`;
}

/** The header of the markdown table {@linkcode formatSparseKdRow} writes lines of. */
export const SPARSE_KD_TABLE_HEADER = [
  "| mode | rows × V | K | kernel ms | GB/s (3 passes) | read roofline GB/s | of roofline | tfjs ms | speed-up |",
  "|---|---|---|---|---|---|---|---|---|",
].join("\n");
