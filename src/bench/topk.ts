/**
 * `deno task bench topk`: the WGSL top-k kernel against a plain streaming read of the same bytes (the
 * practical roofline) and against tfjs's `tf.topk` on tfjs-backend-webgpu (same GPUDevice) and on
 * tfjs-backend-cpu, for the shapes of issue 2. Prints a table and writes it as JSON under `bench/results/`.
 * @module
 */
import { createRuntime, type Runtime } from "../gpu/runtime.ts";
import { SparsekdError } from "../cli/errors.ts";
import { topKFromBuffer } from "../kernels/topk.ts";
import { useTfjsOnRuntime } from "../gpu/tfjs_backend.ts";
import { fmt, formatTable, timeAsync, type Timing, writeResults } from "./harness.ts";

/** The benchmarked shapes: [rows, vocab, k]. */
export const TOPK_SHAPES: [number, number, number][] = [
  [256, 32_000, 64],
  [64, 131_072, 256],
  [1_024, 50_257, 64],
];

const STREAM_WG = 64;
const STREAM_SPAN = 16_384; // vec4s per workgroup

/**
 * Returns a function that reads `bytes` bytes of `buffer` once with `shaders/stream_read.wgsl` (in as many
 * dispatches as the binding-size limit needs) and resolves when the GPU is done.
 *
 * @example
 * ```ts
 * const read = await streamReader(rt, buffer, buffer.size);
 * await read();
 * ```
 */
export async function streamReader(
  rt: Runtime,
  buffer: GPUBuffer,
  bytes: number,
): Promise<() => Promise<void>> {
  const device = rt.device!;
  const pipeline = await rt.pipeline(`stream_read/wg${STREAM_WG}/span${STREAM_SPAN}`, "stream_read.wgsl", {
    prelude: `const WG: u32 = ${STREAM_WG}u;\nconst SPAN: u32 = ${STREAM_SPAN}u;\n`,
  });
  const maxBytes = Math.floor(device.limits.maxStorageBufferBindingSize / (STREAM_SPAN * 16)) * STREAM_SPAN *
    16;
  const chunks: { offset: number; size: number }[] = [];
  for (let off = 0; off < bytes; off += maxBytes) {
    chunks.push({ offset: off, size: Math.min(maxBytes, bytes - off) });
  }
  const maxGroups = Math.ceil(maxBytes / 16 / STREAM_SPAN);
  const out = device.createBuffer({ size: maxGroups * 4 * chunks.length, usage: GPUBufferUsage.STORAGE });
  const params = device.createBuffer({
    size: 256 * chunks.length,
    usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
  });
  const bindGroups = chunks.map((c, i) => {
    const n4 = Math.floor(c.size / 16);
    device.queue.writeBuffer(params, i * 256, new Uint32Array([n4, (c.size - n4 * 16) / 4, 0, 0]));
    return {
      groups: Math.max(1, Math.ceil(n4 / STREAM_SPAN)),
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
  return async () => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    for (const b of bindGroups) {
      pass.setBindGroup(0, b.bind);
      pass.dispatchWorkgroups(b.groups);
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
  topk: Timing;
  stream: Timing;
  tfWebgpu: Timing;
  tfCpu: Timing;
  tfWebgpuAgrees: boolean;
  tfCpuAgrees: boolean;
}

/**
 * Runs the top-k benchmark on the default adapter, prints the table and writes `bench/results/topk-*.json`.
 *
 * @example
 * ```ts
 * await benchTopK();
 * ```
 */
export async function benchTopK(): Promise<void> {
  const rt = await createRuntime();
  const device = rt.device;
  if (!device) throw new SparsekdError("deno task bench topk needs a WebGPU adapter (none was found)");
  const results: Row[] = [];
  for (const [rows, vocab, k] of TOPK_SHAPES) {
    const bytes = rows * vocab * 4;
    console.error(`topk bench: ${rows} x ${vocab} x ${k} ...`);
    const logits = randomLogits(rows * vocab);
    const buffer = device.createBuffer({
      size: Math.ceil(bytes / 16) * 16,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(buffer, 0, logits);
    let ours: Float32Array = new Float32Array(0);
    const topk = await timeAsync(async () => {
      ours = (await topKFromBuffer(rt, buffer, rows, vocab, k)).values;
    }, { reps: 5, budgetMs: 10_000 });
    const read = await streamReader(rt, buffer, bytes);
    const stream = await timeAsync(read, { reps: 5, budgetMs: 10_000 });
    buffer.destroy();

    const tf = await useTfjsOnRuntime(rt);
    let agree = true; // do tf.topk's values equal ours (ids may differ only among equal values)?
    const tfTopk = async () => {
      const x = tf.tensor2d(logits, [rows, vocab]);
      const t0 = performance.now();
      const { values, indices } = tf.topk(x, k, true);
      const [v] = await Promise.all([values.data(), indices.data()]);
      const ms = performance.now() - t0;
      tf.dispose([x, values, indices]);
      agree &&= v.length === ours.length && ours.every((y, i) => y === v[i]);
      return ms;
    };
    // Upload is left out of the tfjs timings: only tf.topk and its read-back are timed.
    const timeTf = async (reps: number, budgetMs: number): Promise<Timing> => {
      await tfTopk(); // warm-up: shader compilation
      const times: number[] = [];
      const start = performance.now();
      while (times.length < reps && (times.length === 0 || performance.now() - start < budgetMs)) {
        times.push(await tfTopk());
      }
      times.sort((a, b) => a - b);
      return { medianMs: times[Math.floor((times.length - 1) / 2)], minMs: times[0], reps: times.length };
    };
    const tfWebgpu = await timeTf(3, 20_000);
    const tfWebgpuAgrees = agree;
    agree = true;
    await tf.setBackend("cpu");
    const tfCpu = await timeTf(3, 20_000);
    results.push({
      rows,
      vocab,
      k,
      mbRead: bytes / 1e6,
      topk,
      stream,
      tfWebgpu,
      tfCpu,
      tfWebgpuAgrees,
      tfCpuAgrees: agree,
    });
  }

  const gbs = (r: Row, t: Timing) => r.mbRead / 1e3 / (t.medianMs / 1e3);
  const table = formatTable(
    [
      "rows x vocab x k",
      "topk ms",
      "topk GB/s",
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
      fmt(gbs(r, r.topk)),
      fmt(r.stream.medianMs),
      fmt(gbs(r, r.stream)),
      fmt(r.tfWebgpu.medianMs),
      fmt(r.tfCpu.medianMs),
      fmt((100 * r.stream.medianMs) / r.topk.medianMs),
      fmt(r.tfWebgpu.medianMs / r.topk.medianMs),
      fmt(r.tfCpu.medianMs / r.topk.medianMs),
      `${r.tfWebgpuAgrees ? "yes" : "NO"}/${r.tfCpuAgrees ? "yes" : "NO"}`,
    ]),
  );
  console.log(`adapter: ${rt.adapter!.description}`);
  console.log(table);
  const path = await writeResults("topk", {
    date: new Date().toISOString(),
    adapter: rt.adapter,
    backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? null,
    note: "medians in ms; topk = topKFromBuffer (kernel + batched read-back, logits already on the GPU); " +
      "stream = shaders/stream_read.wgsl over the same bytes; tf-* = tf.topk + data() (upload not timed)",
    results,
  });
  console.log(`written: ${path}`);
  rt.destroy();
}
