/**
 * `deno task bench topk`: the WGSL top-k kernel against a plain streaming read of the same bytes (the
 * practical roofline) and against tfjs's `tf.topk` on tfjs-backend-webgpu (same GPUDevice) and on
 * tfjs-backend-cpu, for the shapes of issue 2. Prints a table and writes it as JSON under `bench/results/`.
 * @module
 */
import { createRuntime, type Runtime } from "../src/gpu/runtime.ts";
import { SparsekdError } from "../src/errors.ts";
import { submitTopKFromBuffer, topKFromBuffer } from "../src/kernels/topk.ts";
import { useTfjsOnRuntime } from "../src/gpu/tfjs_backend.ts";
import type { Tensor, Tensor2D } from "@tensorflow/tfjs-core";
import {
  fmt,
  formatTable,
  parsePerSubmit,
  timeAsync,
  timePerUnit,
  type Timing,
  writeResults,
} from "./harness.ts";

/** The benchmarked shapes: [rows, vocab, k]. */
export const TOPK_SHAPES: [number, number, number][] = [
  [256, 32_000, 64],
  [64, 131_072, 256],
  [1_024, 50_257, 64],
];

const STREAM_WG = 64;
const STREAM_SPAN = 16_384; // vec4s per workgroup

/** Threads per workgroup and vec4s per workgroup of the streaming read. */
export interface StreamLayout {
  /** Threads per workgroup. */
  wg: number;
  /** vec4s summed by one workgroup. */
  span: number;
}

/**
 * The layouts {@linkcode fastestStreamReader} tries on a hardware adapter: the one tuned on llvmpipe (few
 * large workgroups) and ones with many more threads in flight, which a real GPU needs to saturate memory.
 */
export const STREAM_LAYOUTS: readonly StreamLayout[] = [
  { wg: STREAM_WG, span: STREAM_SPAN },
  { wg: 256, span: 4_096 },
  { wg: 256, span: 1_024 },
  { wg: 256, span: 256 },
];

/**
 * The practical roofline: on a software adapter the llvmpipe-tuned streaming read; on a hardware adapter the
 * fastest of {@linkcode STREAM_LAYOUTS} over `bytes` of `buffer` (each timed `perSubmit` reads per submission),
 * so that the percentages against it are not flattered by a read that leaves the GPU idle.
 *
 * @example
 * ```ts
 * const { read, layout } = await fastestStreamReader(rt, buffer, buffer.size, 20);
 * await read(20);
 * ```
 */
export async function fastestStreamReader(
  rt: Runtime,
  buffer: GPUBuffer,
  bytes: number,
  perSubmit: number,
): Promise<{ read: (repeat?: number) => Promise<void>; layout: StreamLayout }> {
  if (rt.adapter?.software !== false) {
    return { read: await streamReader(rt, buffer, bytes), layout: STREAM_LAYOUTS[0] };
  }
  let best: { read: (repeat?: number) => Promise<void>; layout: StreamLayout; ms: number } | null = null;
  for (const layout of STREAM_LAYOUTS) {
    const read = await streamReader(rt, buffer, bytes, layout);
    const t = await timePerUnit(() => read(perSubmit), perSubmit, { reps: 3, budgetMs: 5_000 });
    if (!best || t.medianMs < best.ms) best = { read, layout, ms: t.medianMs };
  }
  return { read: best!.read, layout: best!.layout };
}

/**
 * Returns a function that reads `bytes` bytes of `buffer` `repeat` times (default once) with
 * `shaders/stream_read.wgsl` (in as many dispatches per read as the binding-size limit needs), all in one
 * submission, and resolves when the GPU is done.
 *
 * @example
 * ```ts
 * const read = await streamReader(rt, buffer, buffer.size);
 * await read(); // one read
 * await read(20); // 20 reads back to back, one submit and one wait
 * ```
 */
export async function streamReader(
  rt: Runtime,
  buffer: GPUBuffer,
  bytes: number,
  layout: StreamLayout = { wg: STREAM_WG, span: STREAM_SPAN },
): Promise<(repeat?: number) => Promise<void>> {
  const device = rt.device!;
  const { wg: WG, span: SPAN } = layout;
  const pipeline = await rt.pipeline(`stream_read/wg${WG}/span${SPAN}`, "stream_read.wgsl", {
    prelude: `const WG: u32 = ${WG}u;\nconst SPAN: u32 = ${SPAN}u;\n`,
  });
  const maxBytes = Math.floor(device.limits.maxStorageBufferBindingSize / (SPAN * 16)) * SPAN *
    16;
  const chunks: { offset: number; size: number }[] = [];
  for (let off = 0; off < bytes; off += maxBytes) {
    chunks.push({ offset: off, size: Math.min(maxBytes, bytes - off) });
  }
  const maxGroups = Math.ceil(maxBytes / 16 / SPAN);
  const out = device.createBuffer({ size: maxGroups * 4 * chunks.length, usage: GPUBufferUsage.STORAGE });
  const params = device.createBuffer({
    size: 256 * chunks.length,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  const bindGroups = chunks.map((c, i) => {
    const n4 = Math.floor(c.size / 16);
    device.queue.writeBuffer(params, i * 256, new Uint32Array([n4, (c.size - n4 * 16) / 4, 0, 0]));
    return {
      groups: Math.max(1, Math.ceil(n4 / SPAN)),
      bind: device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: params, offset: i * 256, size: 16 } },
          { binding: 1, resource: { buffer, offset: c.offset, size: n4 * 16 || 16 } },
          { binding: 2, resource: { buffer, offset: c.offset, size: c.size } },
          { binding: 3, resource: { buffer: out, offset: i * maxGroups * 4, size: maxGroups * 4 } },
        ],
      }),
    };
  });
  return async (repeat = 1) => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    for (let r = 0; r < repeat; r++) {
      for (const b of bindGroups) {
        pass.setBindGroup(0, b.bind);
        pass.dispatchWorkgroups(b.groups);
      }
    }
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
  };
}

function randomLogits(n: number): Float32Array<ArrayBuffer> {
  // Normal(0, 3) logits, Box-Muller on Math.random: a fresh input every run.
  const x = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - Math.random())) * 3;
    const a = 2 * Math.PI * Math.random();
    x[i] = r * Math.cos(a);
    if (i + 1 < n) x[i + 1] = r * Math.sin(a);
  }
  return x;
}

interface Row {
  rows: number;
  vocab: number;
  k: number;
  mbRead: number;
  /** topKFromBuffer per call: kernel + its one batched read-back (the user-visible cost); never batched. */
  topk: Timing;
  /** The kernel alone: `perSubmit` copies of its dispatches in one submission, one wait; per copy. */
  topkKernel: Timing;
  /** `perSubmit` copies of the kernel in one submission, then one read-back; per copy (= topk when 1). */
  topkBatchedReadBack: Timing;
  /** shaders/stream_read.wgsl over the same bytes, `perSubmit` reads in one submission, one wait; per read. */
  stream: Timing;
  /** null when the tfjs baselines were skipped (`--tfjs-reps 0`, `--tfjs-cpu-reps 0`). */
  tfWebgpu: Timing | null;
  tfCpu: Timing | null;
  tfWebgpuAgrees: boolean | null;
  tfCpuAgrees: boolean | null;
}

/** Options of {@linkcode benchTopK}, from its command-line flags. */
export interface TopKBenchOptions {
  /** [rows, vocab, k] triples (default {@linkcode TOPK_SHAPES}). */
  shapes?: [number, number, number][];
  /** Timed repetitions of the kernel and of the streaming read (default 5; the median is reported). */
  reps?: number;
  /** Timed repetitions of tf.topk on tfjs-backend-webgpu (default 3; 0 skips it). */
  tfjsReps?: number;
  /** Timed repetitions of tf.topk on tfjs-backend-cpu (default 3; 0 skips it). */
  tfjsCpuReps?: number;
  /**
   * Copies of the GPU work per timed repetition (default 1): the kernel and the streaming read record this
   * many copies into one submission and wait once, tf.topk on webgpu is called this many times before one
   * `data()`; times are reported per copy, so a per-submission latency is spread over them.
   */
  perSubmit?: number;
}

/**
 * Parses the flags of `deno task bench topk`: `--shapes ROWSxVOCABxK[,...]`, `--reps N`, `--tfjs-reps N`,
 * `--tfjs-cpu-reps N`, `--per-submit N`. Unknown flags and malformed values end with a
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
    } else if (flag === "--per-submit") {
      options.perSubmit = parsePerSubmit(v);
    } else if (flag === "--reps" || flag === "--tfjs-reps" || flag === "--tfjs-cpu-reps") {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new SparsekdError(`${flag} wants a whole number (got ${v})`);
      if (flag === "--reps") options.reps = Math.max(1, n);
      else if (flag === "--tfjs-reps") options.tfjsReps = n;
      else options.tfjsCpuReps = n;
    } else {
      throw new SparsekdError(
        `unknown flag ${flag} (flags: --shapes, --reps, --tfjs-reps, --tfjs-cpu-reps, --per-submit)`,
      );
    }
  }
  return options;
}

/**
 * `deno task bench topk [--shapes 256x32000x64,...] [--reps 5] [--tfjs-reps 3] [--tfjs-cpu-reps 3]
 * [--per-submit 1]`: runs the top-k benchmark on the default adapter, prints the table and writes
 * `bench/results/topk-*.json`, with a progress line on stderr after each phase of each shape. Without flags it
 * times {@linkcode TOPK_SHAPES}.
 *
 * @example
 * ```ts
 * await benchTopK(["--shapes", "64x32000x64", "--tfjs-cpu-reps", "0"]);
 * ```
 */
export async function benchTopK(args: string[] = []): Promise<void> {
  const options = parseTopKBenchArgs(args);
  const shapes = options.shapes ?? TOPK_SHAPES;
  const reps = options.reps ?? 5;
  const tfjsReps = options.tfjsReps ?? 3;
  const tfjsCpuReps = options.tfjsCpuReps ?? 3;
  const perSubmit = options.perSubmit ?? 1;
  const rt = await createRuntime();
  const device = rt.device;
  if (!device) throw new SparsekdError("deno task bench topk needs a WebGPU adapter (none was found)");
  const results: Row[] = [];
  const ms = (t: Timing) => `${fmt(t.medianMs)} ms`;
  for (const [rows, vocab, k] of shapes) {
    const bytes = rows * vocab * 4;
    const tag = `topk bench ${rows}x${vocab}x${k}`;
    const say = (line: string) => console.error(`${tag}: ${line}`);
    const t0 = performance.now();
    say(`${fmt(bytes / 1e6)} MB of logits, per-submit ${perSubmit} ...`);
    const logits = randomLogits(rows * vocab);
    const buffer = device.createBuffer({
      size: Math.ceil(bytes / 16) * 16,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    device.queue.writeBuffer(buffer, 0, logits);
    await device.queue.onSubmittedWorkDone();
    say(`logits on the GPU after ${fmt((performance.now() - t0) / 1e3)} s`);
    let ours: Float32Array = new Float32Array(0);
    const topk = await timeAsync(async () => {
      ours = (await topKFromBuffer(rt, buffer, rows, vocab, k)).values;
    }, { reps, budgetMs: 10_000 });
    const topkKernel = await timePerUnit(
      async () => {
        await submitTopKFromBuffer(rt, buffer, rows, vocab, k, {}, perSubmit);
        await device.queue.onSubmittedWorkDone();
      },
      perSubmit,
      { reps, budgetMs: 10_000 },
    );
    const topkBatchedReadBack = perSubmit === 1 ? topk : await timePerUnit(
      async () => {
        await (await submitTopKFromBuffer(rt, buffer, rows, vocab, k, {}, perSubmit))();
      },
      perSubmit,
      { reps, budgetMs: 10_000 },
    );
    say(
      `ours ${ms(topkKernel)} (kernel) / ${ms(topk)} (with read-back)` +
        (perSubmit === 1 ? "" : ` / ${ms(topkBatchedReadBack)} (${perSubmit} per read-back)`),
    );
    const { read, layout } = await fastestStreamReader(rt, buffer, bytes, perSubmit);
    const stream = await timePerUnit(() => read(perSubmit), perSubmit, { reps, budgetMs: 10_000 });
    say(`stream ${ms(stream)} (workgroups of ${layout.wg} threads, ${layout.span} vec4s each)`);

    const tf = await useTfjsOnRuntime(rt);
    let agree = true; // do tf.topk's values equal ours (ids may differ only among equal values)?
    // `calls` tf.topk calls, then one read-back of the last one's results; returns ms per call.
    const tfTopk = async (x: Tensor2D, calls: number) => {
      const t0 = performance.now();
      let last: { values: Tensor; indices: Tensor } | null = null;
      for (let c = 0; c < calls; c++) {
        if (last) tf.dispose([last.values, last.indices]);
        last = tf.topk(x, k, true);
      }
      const [v] = await Promise.all([last!.values.data(), last!.indices.data()]);
      const ms = (performance.now() - t0) / calls;
      tf.dispose([last!.values, last!.indices]);
      agree &&= v.length === ours.length && ours.every((y, i) => y === v[i]);
      return ms;
    };
    // Upload is left out of the tfjs timings: on webgpu x is our GPU buffer (zero copy), on the cpu backend
    // x is made before the clock starts.
    const timeTf = async (
      name: string,
      x: Tensor2D,
      n: number,
      calls: number,
      budgetMs: number,
    ): Promise<Timing> => {
      say(`${name} warm-up (1 call, with compilation) ${fmt(await tfTopk(x, 1))} ms; timing ...`);
      const times: number[] = [];
      const start = performance.now();
      while (times.length < n && (times.length === 0 || performance.now() - start < budgetMs)) {
        times.push(await tfTopk(x, calls));
      }
      times.sort((a, b) => a - b);
      return { medianMs: times[Math.floor((times.length - 1) / 2)], minMs: times[0], reps: times.length };
    };
    let tfWebgpu: Timing | null = null;
    if (tfjsReps > 0) {
      say("tf-webgpu ...");
      const x = tf.tensor({ buffer, zeroCopy: true }, [rows, vocab], "float32") as Tensor2D;
      tfWebgpu = await timeTf("tf-webgpu", x, tfjsReps, perSubmit, 20_000);
      tf.dispose(x);
      say(`tf-webgpu ${ms(tfWebgpu)}${agree ? "" : " (values differ from ours)"}`);
    }
    await device.queue.onSubmittedWorkDone();
    buffer.destroy();
    const tfWebgpuAgrees = tfWebgpu ? agree : null;
    agree = true;
    let tfCpu: Timing | null = null;
    if (tfjsCpuReps > 0) {
      await tf.setBackend("cpu");
      say("tf-cpu ...");
      const x = tf.tensor2d(logits, [rows, vocab]);
      tfCpu = await timeTf("tf-cpu", x, tfjsCpuReps, 1, 20_000);
      tf.dispose(x);
      say(`tf-cpu ${ms(tfCpu)}${agree ? "" : " (values differ from ours)"}`);
    }
    results.push({
      rows,
      vocab,
      k,
      mbRead: bytes / 1e6,
      topk,
      topkKernel,
      topkBatchedReadBack,
      stream,
      tfWebgpu,
      tfCpu,
      tfWebgpuAgrees,
      tfCpuAgrees: tfCpu ? agree : null,
    });
  }

  const gbs = (r: Row, t: Timing) => r.mbRead / 1e3 / (t.medianMs / 1e3);
  const table = formatTable(
    [
      "rows x vocab x k",
      "topk ms (read-back)",
      "kernel ms",
      "kernel GB/s",
      `kernel+rb/${perSubmit} ms`,
      "stream ms",
      "stream GB/s",
      "tf-webgpu ms",
      "tf-cpu ms",
      "% of roofline",
      "x tf-webgpu",
      "x tf-cpu",
      "tf values agree",
    ],
    results.map((r) => [
      `${r.rows} x ${r.vocab} x ${r.k}`,
      fmt(r.topk.medianMs),
      fmt(r.topkKernel.medianMs),
      fmt(gbs(r, r.topkKernel)),
      fmt(r.topkBatchedReadBack.medianMs),
      fmt(r.stream.medianMs),
      fmt(gbs(r, r.stream)),
      r.tfWebgpu ? fmt(r.tfWebgpu.medianMs) : "-",
      r.tfCpu ? fmt(r.tfCpu.medianMs) : "-",
      fmt((100 * r.stream.medianMs) / r.topkKernel.medianMs),
      r.tfWebgpu ? fmt(r.tfWebgpu.medianMs / r.topkBatchedReadBack.medianMs) : "-",
      r.tfCpu ? fmt(r.tfCpu.medianMs / r.topk.medianMs) : "-",
      [r.tfWebgpuAgrees, r.tfCpuAgrees].map((a) => a === null ? "-" : a ? "yes" : "NO").join("/"),
    ]),
  );
  console.log(`adapter: ${rt.adapter!.description}; per-submit ${perSubmit}`);
  console.log(table);
  const path = await writeResults("topk", {
    date: new Date().toISOString(),
    adapter: rt.adapter,
    backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? null,
    perSubmit,
    note: `medians in ms, per copy of the work; per-submit = ${perSubmit}. ` +
      "topk = topKFromBuffer per call (kernel + its one batched read-back, logits already on the GPU; never " +
      "batched); topkKernel = perSubmit copies of the kernel's dispatches in one submission, one " +
      "onSubmittedWorkDone, divided by perSubmit (no read-back); topkBatchedReadBack = the same followed by " +
      "one read-back, divided by perSubmit (= topk when perSubmit is 1); stream = perSubmit reads of the same " +
      "bytes by shaders/stream_read.wgsl in one submission, one wait, divided by perSubmit; tfWebgpu = " +
      "perSubmit tf.topk calls on tfjs-backend-webgpu over the same GPU buffer (zero copy) then one data() " +
      "of the last, divided by perSubmit; tfCpu = tf.topk + data() per call on tfjs-backend-cpu (upload not " +
      "timed). Ratios compare like with like: % of roofline = stream / topkKernel (both batched, no " +
      "read-back); x tf-webgpu = tfWebgpu / topkBatchedReadBack (both perSubmit runs + one read-back); " +
      "x tf-cpu = tfCpu / topk (both one call + its read-back)",
    results,
  });
  console.log(`written: ${path}`);
  rt.destroy();
}
