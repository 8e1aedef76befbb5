/**
 * `deno task bench topk`: the WGSL top-k kernel against a plain streaming read of the same bytes (the
 * practical roofline, measured at the shape's size and at twice it) and against tfjs's `tf.topk` on
 * tfjs-backend-webgpu (same GPUDevice) and on tfjs-backend-cpu. Kernel times come from GPU timestamps where
 * the adapter has them, else from a wall-time fit over several dispatch counts (`bench/gpu_timing.ts`).
 * Prints a table and writes it as JSON under `bench/results/`.
 * @module
 */
import { createRuntime } from "../src/gpu/runtime.ts";
import { SparsekdError } from "../src/errors.ts";
import { submitTopKFromBuffer, topKFromBuffer } from "../src/kernels/topk.ts";
import { useTfjsOnRuntime } from "../src/gpu/tfjs_backend.ts";
import type { Tensor, Tensor2D } from "@tensorflow/tfjs-core";
import { fmt, formatTable, timeAsync, type Timing, writeResults } from "./harness.ts";
import {
  fitLine,
  type KernelTiming,
  rooflineAtTwoSizes,
  type RooflinePoint,
  tiledRandom,
  timeKernel,
} from "./gpu_timing.ts";

/** The benchmarked shapes: [rows, vocab, k]. */
export const TOPK_SHAPES: [number, number, number][] = [
  [256, 32_000, 64],
  [64, 131_072, 256],
  [1_024, 50_257, 64],
];

function randomLogits(n: number): Float32Array<ArrayBuffer> {
  // Normal(0, 3) logits, Box-Muller on Math.random: a fresh input every run, one random block tiled.
  return tiledRandom(n, (x) => {
    for (let i = 0; i < x.length; i += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - Math.random())) * 3;
      const a = 2 * Math.PI * Math.random();
      x[i] = r * Math.cos(a);
      if (i + 1 < x.length) x[i + 1] = r * Math.sin(a);
    }
  });
}

interface Row {
  rows: number;
  vocab: number;
  k: number;
  mbRead: number;
  /** topKFromBuffer per call: kernel + its one batched read-back (the user-visible latency of one call). */
  topk: Timing;
  /** The kernel alone, per dispatch: GPU timestamps, or the slope of a wall-time fit. */
  kernel: KernelTiming;
  /** The streaming roofline at the shape's size and at twice it (half of it where twice exceeds `maxBufferSize`). */
  roofline: [RooflinePoint, RooflinePoint];
  /** Whether the roofline's time grew with size (else no "% of roofline" is reported). */
  rooflineValid: boolean;
  /** tf.topk on tfjs-backend-webgpu per call: the slope of a wall-time fit over calls per read-back. */
  tfWebgpu: { ms: number; overheadMs: number; points: { n: number; ms: number }[] } | null;
  /** tf.topk + data() per call on tfjs-backend-cpu. */
  tfCpu: Timing | null;
  tfWebgpuAgrees: boolean | null;
  tfCpuAgrees: boolean | null;
}

/** Options of {@linkcode benchTopK}, from its command-line flags. */
export interface TopKBenchOptions {
  /** [rows, vocab, k] triples (default {@linkcode TOPK_SHAPES}). */
  shapes?: [number, number, number][];
  /** Timed repetitions per measurement (default 3; medians are reported). */
  reps?: number;
  /** Timed repetitions of tf.topk on tfjs-backend-webgpu per fit point (default 3; 0 skips it). */
  tfjsReps?: number;
  /** Timed repetitions of tf.topk on tfjs-backend-cpu (default 3; 0 skips it). */
  tfjsCpuReps?: number;
  /** Dispatch counts of the kernel's wall-time fit (default 10, 50, 200). */
  fitNs?: number[];
  /** tf.topk call counts of tfjs-backend-webgpu's wall-time fit (default: `fitNs`). */
  tfjsFitNs?: number[];
  /** Time with the wall fit even when the adapter has timestamps (default false). */
  forceWall?: boolean;
}

/**
 * Parses the flags of `deno task bench topk`: `--shapes ROWSxVOCABxK[,...]`, `--reps N`, `--tfjs-reps N`,
 * `--tfjs-cpu-reps N`, `--fit-ns N,N,N`, `--tfjs-fit-ns N,N,N`, `--wall` (no value). Unknown flags and malformed values end with a
 * {@linkcode SparsekdError}.
 *
 * @example
 * ```ts
 * parseTopKBenchArgs(["--shapes", "4096x32000x64", "--tfjs-cpu-reps", "0"]);
 * // → { shapes: [[4096, 32000, 64]], tfjsCpuReps: 0 }
 * ```
 */
export function parseTopKBenchArgs(args: string[]): TopKBenchOptions {
  const options: TopKBenchOptions = {};
  for (let i = 0; i < args.length; i += 2) {
    const [flag, v] = [args[i], args[i + 1]];
    if (flag === "--wall") {
      options.forceWall = true;
      i--;
      continue;
    }
    if (v === undefined) throw new SparsekdError(`${flag} needs a value`);
    if (flag === "--shapes") {
      options.shapes = v.split(",").map((p) => {
        const m = /^(\d+)x(\d+)x(\d+)$/.exec(p.trim());
        if (!m || +m[1] < 1 || +m[2] < 1 || +m[3] < 1 || +m[3] > +m[2]) {
          throw new SparsekdError(
            `--shapes wants ROWSxVOCABxK[,ROWSxVOCABxK...] with 1 <= K <= VOCAB (got ${JSON.stringify(p)})`,
          );
        }
        return [Number(m[1]), Number(m[2]), Number(m[3])];
      });
    } else if (flag === "--fit-ns") {
      options.fitNs = parseFitNs(v);
    } else if (flag === "--tfjs-fit-ns") {
      options.tfjsFitNs = parseFitNs(v);
    } else if (flag === "--reps" || flag === "--tfjs-reps" || flag === "--tfjs-cpu-reps") {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new SparsekdError(`${flag} wants a whole number (got ${v})`);
      if (flag === "--reps") options.reps = Math.max(1, n);
      else if (flag === "--tfjs-reps") options.tfjsReps = n;
      else options.tfjsCpuReps = n;
    } else {
      throw new SparsekdError(
        `unknown flag ${flag} (flags: --shapes, --reps, --tfjs-reps, --tfjs-cpu-reps, --fit-ns, --tfjs-fit-ns, --wall)`,
      );
    }
  }
  return options;
}

/**
 * Parses `--fit-ns`: at least two distinct whole numbers >= 1, comma-separated.
 *
 * @example
 * ```ts
 * parseFitNs("10,50,200"); // [10, 50, 200]
 * ```
 */
export function parseFitNs(v: string): number[] {
  const ns = v.split(",").map(Number);
  if (ns.length < 2 || ns.some((n) => !Number.isInteger(n) || n < 1) || new Set(ns).size !== ns.length) {
    throw new SparsekdError(
      `--fit-ns wants two or more distinct whole numbers >= 1, e.g. 10,50,200 (got ${v})`,
    );
  }
  return ns;
}

/** "% of roofline" cell: stream read time / kernel time, or why it is not reported. */
function percentOfRoofline(r: Row): string {
  if (!r.rooflineValid) return "n/a (roofline flat)";
  return fmt((100 * r.roofline[0].read.ms) / r.kernel.ms);
}

/**
 * `deno task bench topk [--shapes 256x32000x64,...] [--reps 3] [--tfjs-reps 3] [--tfjs-cpu-reps 3]
 * [--fit-ns 10,50,200] [--tfjs-fit-ns 10,50,200] [--wall]`: runs the top-k benchmark on the default adapter, prints the table and
 * writes `bench/results/topk-*.json`, with a progress line on stderr after each phase of each shape. Without
 * flags it times {@linkcode TOPK_SHAPES}.
 *
 * @example
 * ```ts
 * await benchTopK(["--shapes", "64x32000x64", "--tfjs-cpu-reps", "0"]);
 * ```
 */
export async function benchTopK(args: string[] = []): Promise<void> {
  const options = parseTopKBenchArgs(args);
  const shapes = options.shapes ?? TOPK_SHAPES;
  const reps = options.reps ?? 3;
  const tfjsReps = options.tfjsReps ?? 3;
  const tfjsCpuReps = options.tfjsCpuReps ?? 3;
  const fitNs = options.fitNs ?? [10, 50, 200];
  const tfjsFitNs = options.tfjsFitNs ?? fitNs;
  const timing = { reps, fitNs, forceWall: options.forceWall };
  const rt = await createRuntime();
  const device = rt.device;
  if (!device) throw new SparsekdError("deno task bench topk needs a WebGPU adapter (none was found)");
  const results: Row[] = [];
  for (const [rows, vocab, k] of shapes) {
    const bytes = rows * vocab * 4;
    const say = (line: string) => console.error(`topk bench ${rows}x${vocab}x${k}: ${line}`);
    say(`${fmt(bytes / 1e6)} MB of logits ...`);
    const logits = randomLogits(rows * vocab);
    const buffer = device.createBuffer({
      size: Math.ceil(bytes / 16) * 16,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    device.queue.writeBuffer(buffer, 0, logits);
    let ours: Float32Array = new Float32Array(0);
    const topk = await timeAsync(async () => {
      ours = (await topKFromBuffer(rt, buffer, rows, vocab, k)).values;
    }, { reps, budgetMs: 10_000 });
    const kernel = await timeKernel(rt, () => submitTopKFromBuffer(rt, buffer, rows, vocab, k), timing);
    say(`kernel ${fmt(kernel.ms)} ms (${kernel.method}), one call with read-back ${fmt(topk.medianMs)} ms`);
    const pair = await rooflineAtTwoSizes(rt, rows * vocab, timing, logits);
    const roofline: [RooflinePoint, RooflinePoint] = [pair.at, pair.other];
    const valid = pair.valid;
    say(
      `stream read ${fmt(roofline[0].read.ms)} ms, at ${fmt(roofline[1].bytes / 1e6)} MB ` +
        `${fmt(roofline[1].read.ms)} ms` +
        (valid ? "" : " (does not grow with size: no % of roofline)"),
    );

    const tf = await useTfjsOnRuntime(rt);
    let agree = true; // do tf.topk's values equal ours (ids may differ only among equal values)?
    // `calls` tf.topk calls, then one read-back of the last one's results; returns ms in all.
    const tfTopk = async (x: Tensor2D, calls: number) => {
      const t0 = performance.now();
      let last: { values: Tensor; indices: Tensor } | null = null;
      for (let c = 0; c < calls; c++) {
        if (last) tf.dispose([last.values, last.indices]);
        last = tf.topk(x, k, true);
      }
      const [v] = await Promise.all([last!.values.data(), last!.indices.data()]);
      const ms = performance.now() - t0;
      tf.dispose([last!.values, last!.indices]);
      agree &&= v.length === ours.length && ours.every((y, i) => y === v[i]);
      return ms;
    };
    let tfWebgpu: Row["tfWebgpu"] = null;
    if (tfjsReps > 0) {
      // Upload is left out: x is our GPU buffer (zero copy).
      const x = tf.tensor({ buffer, zeroCopy: true }, [rows, vocab], "float32") as Tensor2D;
      say(`tf-webgpu warm-up (1 call, with compilation) ${fmt(await tfTopk(x, 1))} ms; fitting ...`);
      const points = [];
      for (const n of tfjsFitNs) {
        const times: number[] = [];
        for (let r = 0; r < tfjsReps; r++) times.push(await tfTopk(x, n));
        points.push({ n, ms: times.sort((a, b) => a - b)[Math.floor((times.length - 1) / 2)] });
      }
      const { a, b } = fitLine(points);
      tfWebgpu = { ms: b, overheadMs: a, points };
      tf.dispose(x);
      say(`tf-webgpu ${fmt(b)} ms per call${agree ? "" : " (values differ from ours)"}`);
    }
    await device.queue.onSubmittedWorkDone();
    buffer.destroy();
    const tfWebgpuAgrees = tfWebgpu ? agree : null;
    agree = true;
    let tfCpu: Timing | null = null;
    if (tfjsCpuReps > 0) {
      await tf.setBackend("cpu");
      const x = tf.tensor2d(logits, [rows, vocab]);
      tfCpu = await timeAsync(() => tfTopk(x, 1), { reps: tfjsCpuReps, budgetMs: 20_000 });
      tf.dispose(x);
      say(`tf-cpu ${fmt(tfCpu.medianMs)} ms${agree ? "" : " (values differ from ours)"}`);
    }
    results.push({
      rows,
      vocab,
      k,
      mbRead: bytes / 1e6,
      topk,
      kernel,
      roofline,
      rooflineValid: valid,
      tfWebgpu,
      tfCpu,
      tfWebgpuAgrees,
      tfCpuAgrees: tfCpu ? agree : null,
    });
  }

  const gbs = (mb: number, ms: number) => mb / 1e3 / (ms / 1e3);
  const table = formatTable(
    [
      "rows x vocab x k",
      "timing",
      "kernel ms",
      "kernel GB/s",
      "1 call + read-back ms",
      "stream ms",
      "stream ms (2x or ½x)",
      "stream GB/s",
      "% of roofline",
      "tf-webgpu ms/call",
      "x tf-webgpu",
      "tf-cpu ms",
      "x tf-cpu",
      "tf values agree",
    ],
    results.map((r) => [
      `${r.rows} x ${r.vocab} x ${r.k}`,
      r.kernel.method,
      fmt(r.kernel.ms),
      fmt(gbs(r.mbRead, r.kernel.ms)),
      fmt(r.topk.medianMs),
      fmt(r.roofline[0].read.ms),
      fmt(r.roofline[1].read.ms),
      fmt(gbs(r.roofline[0].bytes / 1e6, r.roofline[0].read.ms)),
      percentOfRoofline(r),
      r.tfWebgpu ? fmt(r.tfWebgpu.ms) : "-",
      r.tfWebgpu ? fmt(r.tfWebgpu.ms / r.kernel.ms) : "-",
      r.tfCpu ? fmt(r.tfCpu.medianMs) : "-",
      r.tfCpu ? fmt(r.tfCpu.medianMs / r.topk.medianMs) : "-",
      [r.tfWebgpuAgrees, r.tfCpuAgrees].map((a) => a === null ? "-" : a ? "yes" : "NO").join("/"),
    ]),
  );
  console.log(`adapter: ${rt.adapter!.description}`);
  console.log(table);
  const path = await writeResults("topk", {
    date: new Date().toISOString(),
    adapter: rt.adapter,
    backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? null,
    fitNs,
    tfjsFitNs,
    note: "ms. kernel = the top-k kernel per dispatch: GPU timestamps around N dispatches in one pass " +
      "(method timestamps), else the slope b of wall time = a + b*N over N = fitNs dispatches per submission " +
      "(method wall-fit); topk = one topKFromBuffer call with its read-back (latency, not throughput); " +
      "roofline = shaders/stream_read.wgsl (read: sum checked against the CPU's; copy: read + write) timed " +
      "the same way at the shape's size and at twice it (half where twice exceeds maxBufferSize); % of roofline = stream read / kernel, only when " +
      "the read time grows with size; tfWebgpu = slope of a wall-time fit of N = tfjsFitNs tf.topk calls " +
      "then one data() (same GPU buffer, zero copy); x tf-webgpu = tfWebgpu / kernel; tfCpu = tf.topk + data() per " +
      "call on tfjs-backend-cpu; x tf-cpu = tfCpu / topk",
    results,
  });
  console.log(`written: ${path}`);
  rt.destroy();
}
