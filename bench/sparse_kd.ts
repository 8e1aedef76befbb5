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
} from "../src/kernels/sparse_kd.ts";
import { checkSparseKd, type SparseKdMode } from "../src/kernels/sparse_kd_reference.ts";
import { SparsekdError } from "../src/errors.ts";
import { fmt, formatTable, parsePerSubmit, timePerUnit, writeResults } from "./harness.ts";
import { fastestStreamReader } from "./topk.ts";

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
  /**
   * Copies of the work per timed iteration (default 1): the kernel and the streaming read record this many
   * copies into one submission, the tfjs version runs this many times; then one wait. Times are per copy, so
   * a per-submission latency is spread over the copies.
   */
  perSubmit?: number;
  /** Called with one line after each phase of each shape (default: nothing). */
  progress?: (line: string) => void;
}

/** One line of the benchmark. */
export interface SparseKdBenchRow {
  mode: SparseKdMode;
  rows: number;
  vocab: number;
  k: number;
  /** Copies of the work per submission and wait (see {@linkcode SparseKdBenchOptions.perSubmit}). */
  perSubmit: number;
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

/** Median seconds per copy: each iteration runs `run` (which does `copies` copies of the work), then waits. */
async function time(device: GPUDevice, run: () => void, reps: number, copies: number): Promise<number> {
  const t = await timePerUnit(
    async () => {
      run();
      await device.queue.onSubmittedWorkDone();
    },
    copies,
    { reps, budgetMs: 20_000 },
  );
  return t.medianMs / 1e3;
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
  const perSubmit = options.perSubmit ?? 1;
  const progress = options.progress ?? (() => {});
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
    const tag = `sparse-kd bench ${rows}x${vocab}`;
    const { read, layout } = await fastestStreamReader(rt, logits, n * 4, perSubmit);
    const roof = await timePerUnit(() => read(perSubmit), perSubmit, { reps: iterations, budgetMs: 20_000 });
    const roofSeconds = roof.medianMs / 1e3;
    const roofGbPerSecond = (n * 4) / roofSeconds / 1e9;
    progress(
      `${tag}: stream ${fmt(roof.medianMs)} ms (${fmt(roofGbPerSecond)} GB/s; workgroups of ${layout.wg} ` +
        `threads, ${layout.span} vec4s each), per-submit ${perSubmit}`,
    );
    for (const mode of modes) {
      const teacher = { indices, values, k, logsumexp: lse };
      const c = checkSparseKd(null, rows, vocab, teacher, { mode, temperature: T, alpha, labels });
      const rowInfo = device.createBuffer({ size: rows * ROW_INFO_BYTES, usage });
      device.queue.writeBuffer(rowInfo, 0, packRowInfo(c));
      const seconds = await time(
        device,
        () => {
          const enc = device.createCommandEncoder();
          const releases = Array.from(
            { length: perSubmit },
            () =>
              encodeSparseKdSync(device, pipelines, enc, {
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
              }),
          );
          device.queue.submit([enc.finish()]);
          for (const release of releases) release();
        },
        iterations,
        perSubmit,
      );
      rowInfo.destroy();
      progress(`${tag} ${mode}: kernel ${fmt(seconds * 1e3)} ms`);
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
          perSubmit,
        )
        : null;
      if (tfjsSeconds !== null) progress(`${tag} ${mode}: tfjs ${fmt(tfjsSeconds * 1e3)} ms`);
      const bytes = 3 * n * 4;
      const gbPerSecond = bytes / seconds / 1e9;
      out.push({
        mode,
        perSubmit,
        rows,
        vocab,
        k,
        seconds,
        bytes,
        gbPerSecond,
        rooflineGbPerSecond: roofGbPerSecond,
        rooflineFraction: gbPerSecond / roofGbPerSecond,
        tfjsSeconds,
        speedupVsTfjs: tfjsSeconds === null ? null : tfjsSeconds / seconds,
      });
    }
    for (const b of [logits, grad, lossBuf, ids, vals]) b.destroy();
  }
  return out;
}

/**
 * The same loss and its gradient from tfjs ops (logSoftmax, gather, …), timed on the same device: per
 * iteration `perSubmit` runs (tfjs submits as it goes), one flush, one wait; seconds per run.
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
  perSubmit: number,
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
  const seconds = await time(
    device,
    () => {
      for (let i = 0; i < perSubmit; i++) {
        const { value, grad } = vg(logits);
        tf.dispose([value, grad]);
      }
      flushTfjs(backend);
    },
    iterations,
    perSubmit,
  );
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
 * `deno task bench sparse-kd [--shapes 1024x32000,256x131072] [--modes topk,renorm,tail] [--alpha 0.5]
 * [--reps 5] [--tfjs-reps 2] [--per-submit 1]`: runs the benchmark on the default adapter, prints the table
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
    if (v === undefined) throw new SparsekdError(`${flag} needs a value`);
    if (flag === "--shapes") options.shapes = parseShapes(v);
    else if (flag === "--modes") {
      options.modes = v.split(",").map((m) => {
        if (m !== "topk" && m !== "renorm" && m !== "tail") {
          throw new SparsekdError(`--modes takes topk, renorm, tail (got ${JSON.stringify(m)})`);
        }
        return m;
      });
    } else if (flag === "--alpha") {
      const a = Number(v);
      if (!(a >= 0 && a <= 1)) throw new SparsekdError(`--alpha must be in [0, 1] (got ${v})`);
      options.alpha = a;
    } else if (flag === "--per-submit") {
      options.perSubmit = parsePerSubmit(v);
    } else if (flag === "--reps" || flag === "--tfjs-reps") {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new SparsekdError(`${flag} wants a whole number (got ${v})`);
      if (flag === "--reps") options.iterations = Math.max(1, n);
      else options.tfjsIterations = n;
    } else {throw new SparsekdError(
        `unknown flag ${flag} (flags: --shapes, --modes, --alpha, --reps, --tfjs-reps, --per-submit)`,
      );}
  }
  const rt = await createRuntime();
  if (!rt.device) {
    throw new SparsekdError("deno task bench sparse-kd needs a WebGPU adapter (none was found)");
  }
  const rows = await runSparseKdBench(rt, { ...options, progress: (line) => console.error(line) });
  const perSubmit = options.perSubmit ?? 1;
  console.log(`adapter: ${rt.adapter!.description}; per-submit ${perSubmit}`);
  console.log(formatTable(
    [
      "mode",
      "rows x vocab",
      "k",
      "kernel ms",
      "GB/s (2R+1W)",
      "read roofline GB/s",
      "% of roofline",
      "tfjs ms",
      "x tfjs",
    ],
    rows.map((r) => [
      r.mode,
      `${r.rows} x ${r.vocab}`,
      r.k,
      fmt(r.seconds * 1e3),
      fmt(r.gbPerSecond),
      fmt(r.rooflineGbPerSecond),
      fmt(100 * r.rooflineFraction),
      r.tfjsSeconds === null ? "-" : fmt(r.tfjsSeconds * 1e3),
      r.speedupVsTfjs === null ? "-" : fmt(r.speedupVsTfjs),
    ]),
  ));
  const path = await writeResults("sparse-kd", {
    date: new Date().toISOString(),
    adapter: rt.adapter,
    backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? null,
    alpha: options.alpha ?? 0.5,
    perSubmit,
    note: `medians, per copy of the work; per-submit = ${perSubmit}: kernel and roofline record perSubmit ` +
      "copies into one submission and wait once (onSubmittedWorkDone), tfjs runs perSubmit times then " +
      "flushes and waits once; each time is divided by perSubmit, so all three are batched alike and " +
      "% of roofline and x tfjs compare like with like. kernel = fused forward+backward (logits already on " +
      "the GPU, no read-back), bytes = 2 reads + 1 write of the logits; roofline = shaders/stream_read.wgsl " +
      "over the logits; tfjs = the same loss and gradient from tfjs ops (tf.valueAndGrad) on " +
      "tfjs-backend-webgpu on the same device",
    rows,
  });
  console.log(`written: ${path}`);
  rt.destroy();
}
