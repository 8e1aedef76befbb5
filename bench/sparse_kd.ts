/**
 * `deno task bench sparse-kd`: the fused sparse-KD kernel against the streaming-read roofline and against the
 * same loss and gradient composed from tfjs ops on the same backend and device.
 * @module
 */
import * as tf from "@tensorflow/tfjs-core";
import { createRuntime, type Runtime } from "../src/gpu/runtime.ts";
import { flushTfjs, tfjsGpuBackend, useTfjsOnRuntime } from "../src/gpu/tfjs_backend.ts";
import {
  encodeSparseKdSync,
  packRowInfo,
  prepareSparseKd,
  ROW_INFO_BYTES,
  SPARSE_KD_ONE_READ_VOCAB,
} from "../src/kernels/sparse_kd.ts";
import { kernelHooks } from "../src/kernels/test_hooks.ts";
import { checkSparseKd, type SparseKdMode } from "../src/kernels/sparse_kd_reference.ts";
import { SparsekdError } from "../src/errors.ts";
import { fmt, formatTable, writeResults } from "./harness.ts";
import { fitLine, type KernelTiming, rooflineAtTwoSizes, timeKernel } from "./gpu_timing.ts";
import { parseFitNs } from "./topk.ts";

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
  /** Dispatch counts of the kernel's wall-time fit (default 10, 50, 200). */
  fitNs?: number[];
  /** Run counts of the tfjs-composed loss's wall-time fit (default: `fitNs`). */
  tfjsFitNs?: number[];
  /** Time with the wall fit even when the adapter has timestamps (default false). */
  forceWall?: boolean;
  /** Called with one line after each phase of each shape (default: nothing). */
  progress?: (line: string) => void;
  /**
   * Rows read twice only: also time the kernel with at most this many rows per dispatch (`rowsInFlight`,
   * so that the second read of a row can hit L2 on a GPU), in the same run (default: not timed).
   */
  rowsInFlight?: number;
}

/** One line of the benchmark. */
export interface SparseKdBenchRow {
  mode: SparseKdMode;
  rows: number;
  vocab: number;
  k: number;
  /** How the kernel was timed (GPU timestamps or a wall-time fit) and the points measured. */
  timing: KernelTiming;
  /** Median seconds per fused forward+backward over the batch. */
  seconds: number;
  /** Reads of the logits: 1 for rows of up to 32,768 logits (kept in registers), else 2. */
  reads: 1 | 2;
  /** The bytes that must move: `reads` reads and one write of the logits ((reads + 1)·rows·vocab·4). */
  bytes: number;
  /** bytes / seconds. */
  gbPerSecond: number;
  /** The roofline of the same traffic: one copy of the logits, plus one streaming read when reads = 2 (s). */
  rooflineSeconds: number;
  /**
   * Rows read once only: the same kernel compiled to read every row twice (the kernel before the one-read
   * path), timed the same way (seconds), and its time over the one-read kernel's; null otherwise.
   */
  twoReadSeconds: number | null;
  /** twoReadSeconds / seconds (null with twoReadSeconds). */
  oneReadSpeedup: number | null;
  /** Rows read twice, with `rowsInFlight` given: that bound, its kernel time (s) and seconds / it; else nulls. */
  rowsInFlight: number | null;
  boundedSeconds: number | null;
  boundedSpeedup: number | null;
  /** The streaming read's time at the shape's size and at twice it, or half where twice exceeds `maxBufferSize` (ms): the roofline's validity check. */
  rooflineReadMs: [number, number];
  /** rooflineSeconds / seconds, or null when the roofline's time did not grow with size. */
  rooflineFraction: number | null;
  /** Median seconds of the tfjs-composed loss + gradient (null when skipped). */
  tfjsSeconds: number | null;
  /** tfjsSeconds / seconds. */
  speedupVsTfjs: number | null;
}

/**
 * Runs the benchmark on a GPU runtime and returns one row per (shape, mode).
 *
 * @example
 * ```ts
 * const rt = await createRuntime();
 * const rows = await runSparseKdBench(rt, { shapes: [[64, 32000]], modes: ["topk"] });
 * ```
 */
export async function runSparseKdBench(
  rt: Runtime,
  options: SparseKdBenchOptions = {},
): Promise<SparseKdBenchRow[]> {
  const device = rt.device;
  if (!device) throw new Error("the sparse-kd benchmark needs a WebGPU adapter");
  const shapes = options.shapes ?? [[1024, 32000], [256, 131072]];
  const k = options.k ?? 64;
  const modes = options.modes ?? ["topk", "renorm", "tail"];
  const alpha = options.alpha ?? 0.5;
  const T = options.temperature ?? 2;
  const iterations = options.iterations ?? 5;
  const tfjsIterations = options.tfjsIterations ?? 2;
  const timingOptions = {
    reps: iterations,
    fitNs: options.fitNs ?? [10, 50, 200],
    forceWall: options.forceWall,
  };
  const progress = options.progress ?? (() => {});
  await useTfjsOnRuntime(rt);
  const backend = tfjsGpuBackend(device)!;
  const pipelines = await prepareSparseKd(rt);
  kernelHooks.sparseKdTwoReads = true; // the same kernel reading every row twice (before/after)
  const twoReads = await prepareSparseKd(rt).finally(() => kernelHooks.sparseKdTwoReads = false);
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
    const tag = `sparse-kd bench ${rows}x${vocab}`;
    const pair = await rooflineAtTwoSizes(rt, n, timingOptions);
    const [roofSmall, roofLarge, roofValid] = [pair.at, pair.other, pair.valid];
    const reads = vocab <= SPARSE_KD_ONE_READ_VOCAB ? 1 : 2;
    // The loss's traffic: one copy (1 read + 1 write), plus one read when the kernel reads the row twice.
    const roofSeconds = (roofSmall.copy.ms + (reads === 2 ? roofSmall.read.ms : 0)) / 1e3;
    progress(
      `${tag}: stream read ${fmt(roofSmall.read.ms)} ms (${fmt(roofLarge.read.ms)} ms at ` +
        `${fmt(roofLarge.bytes / 1e6)} MB), ` +
        `copy ${fmt(roofSmall.copy.ms)} ms (${roofSmall.read.method})` +
        (roofValid ? "" : "; the read does not grow with size: no % of roofline"),
    );
    for (const mode of modes) {
      const teacher = { indices, values, k, logsumexp: lse };
      const c = checkSparseKd(null, rows, vocab, teacher, { mode, temperature: T, alpha, labels });
      const rowInfo = device.createBuffer({ size: rows * ROW_INFO_BYTES, usage });
      device.queue.writeBuffer(rowInfo, 0, packRowInfo(c));
      const time = (p: typeof pipelines, rowsInFlight?: number) =>
        timeKernel(rt, () => {
          const enc = device.createCommandEncoder();
          const release = encodeSparseKdSync(device, p, enc, {
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
            rowsInFlight,
          });
          device.queue.submit([enc.finish()]);
          release();
        }, timingOptions);
      const timing = await time(pipelines);
      const seconds = timing.ms / 1e3;
      const twoReadSeconds = reads === 1 ? (await time(twoReads)).ms / 1e3 : null;
      const bound = reads === 2 ? options.rowsInFlight ?? null : null;
      const boundedSeconds = bound === null ? null : (await time(pipelines, bound)).ms / 1e3;
      rowInfo.destroy();
      progress(
        `${tag} ${mode}: kernel ${fmt(seconds * 1e3)} ms` +
          (twoReadSeconds === null ? "" : ` (read once; read twice: ${fmt(twoReadSeconds * 1e3)} ms)`) +
          (boundedSeconds === null ? "" : ` (${bound} rows in flight: ${fmt(boundedSeconds * 1e3)} ms)`),
      );
      if (tfjsIterations > 0) progress(`${tag} ${mode}: tfjs ...`);
      const tfjsSeconds = tfjsIterations > 0
        ? await timeTfjs(
          device,
          backend,
          logits,
          rows,
          vocab,
          teacher,
          mode,
          T,
          alpha,
          labels,
          tfjsIterations,
          options.tfjsFitNs ?? timingOptions.fitNs,
        )
        : null;
      if (tfjsSeconds !== null) progress(`${tag} ${mode}: tfjs ${fmt(tfjsSeconds * 1e3)} ms`);
      const bytes = (reads + 1) * n * 4;
      const gbPerSecond = bytes / seconds / 1e9;
      out.push({
        mode,
        rows,
        vocab,
        k,
        timing,
        seconds,
        reads,
        bytes,
        gbPerSecond,
        rooflineSeconds: roofSeconds,
        rooflineReadMs: [roofSmall.read.ms, roofLarge.read.ms],
        rooflineFraction: roofValid ? roofSeconds / seconds : null,
        tfjsSeconds,
        speedupVsTfjs: tfjsSeconds === null ? null : tfjsSeconds / seconds,
        twoReadSeconds,
        oneReadSpeedup: twoReadSeconds === null ? null : twoReadSeconds / seconds,
        rowsInFlight: bound,
        boundedSeconds,
        boundedSpeedup: boundedSeconds === null ? null : seconds / boundedSeconds,
      });
    }
    for (const b of [logits, grad, lossBuf, ids, vals]) b.destroy();
  }
  return out;
}

/**
 * The same loss and its gradient from tfjs ops (logSoftmax, gather, …), timed on the same device: for each
 * N of `fitNs`, N runs (tfjs submits as it goes), one flush, one wait; seconds per run = the slope of the
 * fit time = a + b·N.
 */
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
  fitNs: number[],
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
    const gatherS = (x: tf.Tensor) =>
      tf.reshape(tf.gather(tf.reshape(x, [rows * vocab]), flatIds), [rows, k]);
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
    if (alpha === 1) return tf.sum(tf.mul(kd, T * T)) as tf.Scalar; // no CE term to compute
    const ce = tf.neg(tf.gather(tf.reshape(tf.logSoftmax(s), [rows * vocab]), labelIds));
    return tf.sum(tf.add(tf.mul(kd, alpha * T * T), tf.mul(ce, 1 - alpha))) as tf.Scalar;
  };
  const vg = tf.valueAndGrad(f);
  const once = async (n: number) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const { value, grad } = vg(logits);
      tf.dispose([value, grad]);
    }
    flushTfjs(backend);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  };
  await once(1); // warm-up (compilation)
  const points = [];
  for (const n of fitNs) {
    const times: number[] = [];
    for (let r = 0; r < iterations; r++) times.push(await once(n));
    points.push({ n, ms: times.sort((a, b) => a - b)[Math.floor((times.length - 1) / 2)] });
  }
  const seconds = fitLine(points).b / 1e3;
  tf.dispose([logits, flatIds, labelIds, zT, lz]);
  return seconds;
}

function parseShapes(v: string): [number, number][] {
  return v.split(",").map((p) => {
    const m = /^(\d+)x(\d+)$/.exec(p.trim());
    if (!m) throw new SparsekdError(`--shapes wants ROWSxVOCAB[,ROWSxVOCAB...] (got ${JSON.stringify(p)})`);
    return [Number(m[1]), Number(m[2])];
  });
}

/**
 * `deno task bench sparse-kd [--shapes 1024x32000,256x131072] [--modes topk,renorm,tail] [--k 64] [--alpha 0.5]
 * [--reps 5] [--tfjs-reps 2] [--fit-ns 10,50,200] [--tfjs-fit-ns 10,50,200] [--wall]`: runs the benchmark on the default adapter, prints the table
 * and writes `bench/results/sparse-kd-*.json`, with a progress line on stderr after each phase of each shape.
 *
 * @example
 * ```ts
 * await benchSparseKd(["--shapes", "64x32000", "--modes", "topk"]);
 * ```
 */
export async function benchSparseKd(args: string[] = []): Promise<void> {
  const options: SparseKdBenchOptions = {};
  for (let i = 0; i < args.length; i += 2) {
    const [flag, v] = [args[i], args[i + 1]];
    if (flag === "--wall") {
      options.forceWall = true;
      i--;
      continue;
    }
    if (v === undefined) throw new SparsekdError(`${flag} needs a value`);
    if (flag === "--shapes") options.shapes = parseShapes(v);
    else if (flag === "--modes") {
      options.modes = v.split(",").map((m) => {
        if (m !== "topk" && m !== "renorm" && m !== "tail") {
          throw new SparsekdError(`--modes takes topk, renorm, tail (got ${JSON.stringify(m)})`);
        }
        return m;
      });
    } else if (flag === "--rows-in-flight" || flag === "--k") {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) {
        throw new SparsekdError(`${flag} wants a whole number ≥ 1 (got ${v})`);
      }
      if (flag === "--k") options.k = n;
      else options.rowsInFlight = n;
    } else if (flag === "--alpha") {
      const a = Number(v);
      if (!(a >= 0 && a <= 1)) throw new SparsekdError(`--alpha must be in [0, 1] (got ${v})`);
      options.alpha = a;
    } else if (flag === "--fit-ns") {
      options.fitNs = parseFitNs(v);
    } else if (flag === "--tfjs-fit-ns") {
      options.tfjsFitNs = parseFitNs(v);
    } else if (flag === "--reps" || flag === "--tfjs-reps") {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new SparsekdError(`${flag} wants a whole number (got ${v})`);
      if (flag === "--reps") options.iterations = Math.max(1, n);
      else options.tfjsIterations = n;
    } else {throw new SparsekdError(
        `unknown flag ${flag} (flags: --shapes, --modes, --k, --alpha, --reps, --tfjs-reps, --fit-ns, --tfjs-fit-ns, --rows-in-flight, --wall)`,
      );}
  }
  const rt = await createRuntime();
  if (!rt.device) {
    throw new SparsekdError("deno task bench sparse-kd needs a WebGPU adapter (none was found)");
  }
  const rows = await runSparseKdBench(rt, { ...options, progress: (line) => console.error(line) });
  console.log(`adapter: ${rt.adapter!.description}`);
  console.log(formatTable(
    [
      "mode",
      "rows x vocab",
      "k",
      "timing",
      "kernel ms",
      "reads",
      "2-read ms (x)",
      "bounded ms (x)",
      "GB/s (reads+1W)",
      "roofline ms",
      "read ms (1x / 2x or ½x)",
      "% of roofline",
      "tfjs ms",
      "x tfjs",
    ],
    rows.map((r) => [
      r.mode,
      `${r.rows} x ${r.vocab}`,
      r.k,
      r.timing.method,
      fmt(r.seconds * 1e3),
      r.reads,
      r.twoReadSeconds === null ? "-" : `${fmt(r.twoReadSeconds * 1e3)} (${fmt(r.oneReadSpeedup!)})`,
      r.boundedSeconds === null ? "-" : `${fmt(r.boundedSeconds * 1e3)} (${fmt(r.boundedSpeedup!)})`,
      fmt(r.gbPerSecond),
      fmt(r.rooflineSeconds * 1e3),
      `${fmt(r.rooflineReadMs[0])} / ${fmt(r.rooflineReadMs[1])}`,
      r.rooflineFraction === null ? "n/a (roofline flat)" : fmt(100 * r.rooflineFraction),
      r.tfjsSeconds === null ? "-" : fmt(r.tfjsSeconds * 1e3),
      r.speedupVsTfjs === null ? "-" : fmt(r.speedupVsTfjs),
    ]),
  ));
  const path = await writeResults("sparse-kd", {
    date: new Date().toISOString(),
    adapter: rt.adapter,
    backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? null,
    alpha: options.alpha ?? 0.5,
    fitNs: options.fitNs ?? [10, 50, 200],
    tfjsFitNs: options.tfjsFitNs ?? options.fitNs ?? [10, 50, 200],
    note: "ms/seconds per fused forward+backward over the batch (logits already on the GPU, no read-back): " +
      "GPU timestamps around N dispatches in one pass (timing.method = timestamps), else the slope b of " +
      "wall time = a + b*N over N = fitNs dispatches per submission (wall-fit). bytes = `reads` reads + 1 " +
      "write of the logits (reads = 1 for vocab <= 32768: the row stays in registers, else 2); roofline = one " +
      "copy of the same bytes, plus one streaming read (sum checked against the CPU's) when reads = 2 " +
      "(shaders/stream_read.wgsl), timed the same way; twoReadSeconds = the same kernel compiled to read " +
      "every row twice (the kernel before the one-read path), timed the same way; boundedSeconds = rows read " +
      "twice, at most rowsInFlight rows per dispatch (--rows-in-flight), boundedSpeedup = seconds / it; % of roofline only when the read's time grows " +
      "with size (measured at 1x and 2x, or ½x where 2x exceeds maxBufferSize). tfjs = the same loss and gradient from tfjs ops " +
      "(tf.valueAndGrad) on tfjs-backend-webgpu on the same device, slope of a wall-time fit over tfjsFitNs runs",
    rows,
  });
  console.log(`written: ${path}`);
  rt.destroy();
}
