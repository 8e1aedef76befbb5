/**
 * Honest GPU timing for the benches.
 *
 * - With the adapter's `timestamp-query` feature, a kernel is timed by compute-pass `timestampWrites`
 *   around N back-to-back dispatches (one pass, one submission), resolved once per repetition: the time is
 *   (end − begin)/N, free of submission and wait latency.
 * - Without it, wall time is measured for N = 10, 50 and 200 dispatches per submission (one wait each) and
 *   fitted as time = a + b·N; b is the time per dispatch and a the per-submission overhead. One submission's
 *   time divided by N (which keeps a/N inside the figure) is never reported.
 *
 * The streaming roofline reads (and, for kernels that write as much as they read, copies) a buffer with a
 * capped grid-stride dispatch, checks the read's sum against the CPU's so that a read that did not happen
 * cannot pass for a fast one, and is measured at two sizes: a "% of roofline" is only reported when its time
 * grows with the size (else the roofline measures a per-dispatch floor, not bandwidth).
 * @module
 */
import type { Runtime } from "../src/gpu/runtime.ts";
import { readBack } from "../src/gpu/readback.ts";
import { withErrorScopes } from "../src/gpu/gpu_errors.ts";
import { kernelHooks } from "../src/kernels/test_hooks.ts";

/** How a kernel was timed. */
export interface KernelTiming {
  /** `timestamps` (GPU timestamps around N dispatches) or `wall-fit` (a + b·N over several N). */
  method: "timestamps" | "wall-fit";
  /** Median milliseconds per dispatch (b for a wall fit). */
  ms: number;
  /** For a wall fit: the per-submission overhead a (ms). */
  overheadMs?: number;
  /** The dispatch counts and the median milliseconds measured for each (wall fit), or per repetition. */
  points: { n: number; ms: number }[];
}

/** Options of {@linkcode timeKernel}. */
export interface TimeKernelOptions {
  /** Timed repetitions per point (default 3; medians are used). */
  reps?: number;
  /** Dispatches per submission with timestamps (default 10). */
  perPass?: number;
  /** Dispatch counts of the wall fit (default 10, 50, 200). */
  fitNs?: number[];
  /** Force the wall fit even with timestamps (default false). */
  forceWall?: boolean;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

/**
 * Least-squares fit of ms = a + b·n.
 *
 * @example
 * ```ts
 * fitLine([{ n: 10, ms: 2 }, { n: 50, ms: 6 }]); // { a: 1, b: 0.1 }
 * ```
 */
export function fitLine(points: { n: number; ms: number }[]): { a: number; b: number } {
  const k = points.length;
  const mn = points.reduce((s, p) => s + p.n, 0) / k;
  const mm = points.reduce((s, p) => s + p.ms, 0) / k;
  let sxy = 0, sxx = 0;
  for (const p of points) {
    sxy += (p.n - mn) * (p.ms - mm);
    sxx += (p.n - mn) ** 2;
  }
  const b = sxx > 0 ? sxy / sxx : mm / Math.max(1, mn);
  return { a: mm - b * mn, b };
}

/**
 * Times one kernel. `submit()` must encode and submit the kernel's dispatches once, reading
 * `kernelHooks.repeat` (copies per submission) and `kernelHooks.timestampWrites` (set here), as the
 * kernels' submit-only entry points do; it must not wait for the GPU.
 *
 * @example
 * ```ts
 * const t = await timeKernel(rt, () => submitTopKFromBuffer(rt, buf, rows, vocab, 64));
 * console.log(t.method, t.ms);
 * ```
 */
export async function timeKernel(
  rt: Runtime,
  submit: () => unknown,
  options: TimeKernelOptions = {},
): Promise<KernelTiming> {
  const device = rt.device!;
  const reps = options.reps ?? 3;
  // A synchronous submit runs inside validation and out-of-memory scopes: a failed dispatch is an error, not
  // a fast time (the kernels' own async entry points scope themselves).
  const scoped = () => withErrorScopes(device, "benchmarked kernel", submit);
  try {
    await scoped(); // warm-up (compilation)
    await device.queue.onSubmittedWorkDone();
    if (device.features.has("timestamp-query") && !options.forceWall) {
      const perPass = options.perPass ?? 10;
      const querySet = device.createQuerySet({ type: "timestamp", count: 2 });
      const resolved = device.createBuffer({
        size: 16,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
      const points: { n: number; ms: number }[] = [];
      for (let r = 0; r < reps; r++) {
        kernelHooks.repeat = perPass;
        kernelHooks.timestampWrites = { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 };
        await scoped();
        kernelHooks.timestampWrites = null;
        await withErrorScopes(device, "timestamps", () => {
          const enc = device.createCommandEncoder();
          enc.resolveQuerySet(querySet, 0, 2, resolved, 0);
          device.queue.submit([enc.finish()]);
        });
        const [ts] = await readBack(device, [{ buffer: resolved, size: 16 }]);
        const [t0, t1] = new BigUint64Array(ts);
        points.push({ n: perPass, ms: Number(t1 - t0) / 1e6 / perPass });
      }
      querySet.destroy();
      resolved.destroy();
      return { method: "timestamps", ms: median(points.map((p) => p.ms)), points };
    }
    const points: { n: number; ms: number }[] = [];
    for (const n of options.fitNs ?? [10, 50, 200]) {
      const times: number[] = [];
      for (let r = 0; r < reps; r++) {
        kernelHooks.repeat = n;
        const t0 = performance.now();
        await scoped();
        await device.queue.onSubmittedWorkDone();
        times.push(performance.now() - t0);
      }
      points.push({ n, ms: median(times) });
    }
    const { a, b } = fitLine(points);
    return { method: "wall-fit", ms: b, overheadMs: a, points };
  } finally {
    kernelHooks.repeat = 1;
    kernelHooks.timestampWrites = null;
  }
}

/** Threads per workgroup of the streaming kernels and the cap on their workgroup count. */
function streamShape(rt: Runtime): { wg: number; groups: number; span: number } {
  return rt.adapter?.software ? { wg: 64, groups: 64, span: 16_384 } : { wg: 256, groups: 4096, span: 1024 };
}

/** The streaming read and copy of one buffer, as submit functions for {@linkcode timeKernel}. */
export interface Stream {
  /** Submits `kernelHooks.repeat` grid-stride reads of the whole buffer (sums per workgroup). */
  read: () => void;
  /** Submits `kernelHooks.repeat` grid-stride copies of the buffer into a second one. */
  copy: () => void;
  /** Runs one read and returns the sum of the buffer's float32 values as the GPU computed it. */
  sum: () => Promise<number>;
  /** Releases the buffers. */
  destroy: () => void;
}

/**
 * Prepares the streaming read and copy (`shaders/stream_read.wgsl`, entry points `main` and `copy`) over
 * the first `bytes` bytes (a multiple of 16) of `buffer`, in as many bindings as the binding limit needs;
 * each dispatch is a capped grid of workgroups striding over its binding.
 *
 * @example
 * ```ts
 * const s = await streamKernels(rt, buffer, buffer.size);
 * const t = await timeKernel(rt, s.read);
 * ```
 */
export async function streamKernels(rt: Runtime, buffer: GPUBuffer, bytes: number): Promise<Stream> {
  const device = rt.device!;
  const { wg, groups, span } = streamShape(rt);
  const prelude = `const WG: u32 = ${wg}u;\nconst SPAN: u32 = ${span}u;\n`;
  const readPipe = await rt.pipeline(`stream_read/wg${wg}/s${span}`, "stream_read.wgsl", { prelude });
  const copyPipe = await rt.pipeline(`stream_copy/wg${wg}/s${span}`, "stream_read.wgsl", {
    prelude,
    entryPoint: "copy",
  });
  const align = device.limits.minStorageBufferOffsetAlignment;
  const maxBytes = Math.floor(Math.min(device.limits.maxStorageBufferBindingSize, 1 << 30) / align) * align;
  const chunks: { offset: number; size: number }[] = [];
  for (let off = 0; off < bytes; off += maxBytes) {
    chunks.push({ offset: off, size: Math.min(maxBytes, bytes - off) });
  }
  const out = device.createBuffer({
    size: groups * 4 * chunks.length,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  const dst = device.createBuffer({ size: Math.max(16, bytes), usage: GPUBufferUsage.STORAGE });
  const params = device.createBuffer({
    size: 256 * chunks.length,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  const reads: [GPUBindGroup, number][] = [];
  const copies: [GPUBindGroup, number][] = [];
  chunks.forEach((c, i) => {
    const n4 = c.size / 16;
    device.queue.writeBuffer(params, i * 256, new Uint32Array([n4, 0, 0, 0]));
    const g = Math.max(1, Math.min(groups, Math.ceil(n4 / span)));
    const p = { buffer: params, offset: i * 256, size: 16 };
    reads.push([
      device.createBindGroup({
        layout: readPipe.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: p },
          { binding: 1, resource: { buffer, offset: c.offset, size: c.size } },
          { binding: 3, resource: { buffer: out, offset: i * groups * 4, size: groups * 4 } },
        ],
      }),
      g,
    ]);
    copies.push([
      device.createBindGroup({
        layout: copyPipe.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: p },
          { binding: 1, resource: { buffer, offset: c.offset, size: c.size } },
          { binding: 2, resource: { buffer: dst, offset: c.offset, size: c.size } },
        ],
      }),
      g,
    ]);
  });
  const run = (pipe: GPUComputePipeline, binds: [GPUBindGroup, number][]) => () => {
    const enc = device.createCommandEncoder({ label: "stream" });
    const pass = enc.beginComputePass({
      label: "stream",
      timestampWrites: kernelHooks.timestampWrites ?? undefined,
    });
    pass.setPipeline(pipe);
    for (let r = 0; r < kernelHooks.repeat; r++) {
      for (const [b, g] of binds) {
        pass.setBindGroup(0, b);
        pass.dispatchWorkgroups(g);
      }
    }
    pass.end();
    device.queue.submit([enc.finish()]);
  };
  const read = run(readPipe, reads);
  return {
    read,
    copy: run(copyPipe, copies),
    async sum() {
      device.queue.writeBuffer(out, 0, new Float32Array(groups * chunks.length));
      read();
      const [data] = await readBack(device, [{ buffer: out, size: groups * 4 * chunks.length }]);
      return new Float32Array(data).reduce((s, x) => s + x, 0);
    },
    destroy() {
      out.destroy();
      dst.destroy();
      params.destroy();
    },
  };
}

/** The streaming roofline at one size. */
export interface RooflinePoint {
  /** Bytes read. */
  bytes: number;
  /** Read time (ms) and how it was timed. */
  read: KernelTiming;
  /** Copy time (ms: reads and writes `bytes` each). */
  copy: KernelTiming;
  /** The GPU's sum of the data and the CPU's (float64), which must agree to float32 rounding. */
  gpuSum: number;
  cpuSum: number;
}

/**
 * Measures the streaming roofline over `data` (uploaded to a fresh buffer), after checking the read's sum
 * against the CPU's; a mismatch throws (the read did not run, or not over all the data).
 *
 * @example
 * ```ts
 * const p = await rooflineAt(rt, new Float32Array(1 << 24).fill(1));
 * console.log(p.bytes / p.read.ms / 1e6, "GB/s");
 * ```
 */
export async function rooflineAt(
  rt: Runtime,
  data: Float32Array<ArrayBuffer>,
  options: TimeKernelOptions = {},
): Promise<RooflinePoint> {
  const device = rt.device!;
  const bytes = Math.floor(data.byteLength / 16) * 16;
  const buffer = device.createBuffer({
    size: Math.max(16, bytes),
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  device.queue.writeBuffer(buffer, 0, data, 0, bytes / 4);
  const s = await streamKernels(rt, buffer, bytes);
  try {
    let cpuSum = 0, abs = 0;
    for (let i = 0; i < bytes / 4; i++) {
      cpuSum += data[i];
      abs += Math.abs(data[i]);
    }
    const gpuSum = await s.sum();
    if (!(Math.abs(gpuSum - cpuSum) <= 1e-5 * abs + 1e-3)) {
      throw new Error(
        `the streaming read's sum ${gpuSum} differs from the CPU's ${cpuSum}: it did not read it all`,
      );
    }
    const read = await timeKernel(rt, s.read, options);
    const copy = await timeKernel(rt, s.copy, options);
    return { bytes, read, copy, gpuSum, cpuSum };
  } finally {
    s.destroy();
    buffer.destroy();
  }
}

/** The roofline at a shape's size and at a second size, from {@linkcode rooflineAtTwoSizes}. */
export interface RooflinePair {
  /** At the shape's size. */
  at: RooflinePoint;
  /** At twice the size, or at half of it where twice does not fit in one buffer (`maxBufferSize`). */
  other: RooflinePoint;
  /** {@linkcode rooflineValid} of the two, smaller first. */
  valid: boolean;
}

/**
 * The streaming roofline at `n` float32 values (`data` when given, else {@linkcode randomData}) and at a
 * second size: twice `n`, or half of it where twice would exceed the device's `maxBufferSize` (a 2.1 GB
 * shape on an adapter whose buffers stop at 2 GiB), so that a large shape still gets its validity check.
 *
 * @example
 * ```ts
 * const { at, valid } = await rooflineAtTwoSizes(rt, 1 << 24);
 * ```
 */
export async function rooflineAtTwoSizes(
  rt: Runtime,
  n: number,
  options: TimeKernelOptions = {},
  data?: Float32Array<ArrayBuffer>,
): Promise<RooflinePair> {
  const twice = 2 * n * 4 <= rt.device!.limits.maxBufferSize;
  const at = await rooflineAt(rt, data ?? randomData(n), options);
  const other = await rooflineAt(rt, randomData(twice ? 2 * n : Math.max(4, Math.floor(n / 2))), options);
  return { at, other, valid: twice ? rooflineValid(at, other) : rooflineValid(other, at) };
}

/**
 * Whether a roofline measured at `small` and `large` (twice the bytes) measures bandwidth: its read time
 * must grow by at least half of the size ratio. Otherwise "% of roofline" figures must not be reported.
 *
 * @example
 * ```ts
 * if (!rooflineValid(p1, p2)) console.log("roofline: time does not grow with size");
 * ```
 */
export function rooflineValid(small: RooflinePoint, large: RooflinePoint): boolean {
  const sizeRatio = large.bytes / small.bytes;
  return large.read.ms >= small.read.ms * (1 + (sizeRatio - 1) / 2);
}

/**
 * Length of the random block that {@linkcode tiledRandom} repeats: a prime, so that no power-of-two offset
 * (a binding chunk, a row of a power-of-two vocabulary) starts the same values again, and longer than any
 * benchmarked row, so that no row holds one value twice by the tiling.
 */
export const RANDOM_BLOCK = 1_048_573;

/**
 * `n` float32 values: a block of {@linkcode RANDOM_BLOCK} (or fewer) values drawn by `draw`, repeated. A
 * gigabyte of data then costs a copy, not hundreds of millions of `Math.random()` calls (tens of seconds of
 * a device's time); sums still differ when a read misses a chunk, and rows still differ from each other.
 *
 * @example
 * ```ts
 * const x = tiledRandom(1 << 26, (b) => b.forEach((_, i) => b[i] = Math.random()));
 * ```
 */
export function tiledRandom(n: number, draw: (block: Float32Array) => void): Float32Array<ArrayBuffer> {
  const x = new Float32Array(n);
  const m = Math.min(n, RANDOM_BLOCK);
  draw(x.subarray(0, m));
  for (let len = m; len < n; len *= 2) x.copyWithin(len, 0, Math.min(len, n - len));
  return x;
}

/**
 * Random normal-ish float32 data (mean 0, a sum that checks every chunk), tiled by {@linkcode tiledRandom}.
 *
 * @example
 * ```ts
 * const x = randomData(1 << 20);
 * ```
 */
export function randomData(n: number): Float32Array<ArrayBuffer> {
  return tiledRandom(n, (b) => {
    for (let i = 0; i < b.length; i++) b[i] = (Math.random() + Math.random() + Math.random() - 1.5) * 4;
  });
}
