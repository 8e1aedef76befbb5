/**
 * The streaming-read roofline: how fast the adapter can read a buffer once, measured with a plain
 * vec4 grid-stride read kernel (`shaders/stream_read.wgsl`). Benchmarks report their bandwidth against it.
 * @module
 */
import type { Runtime } from "../gpu/runtime.ts";

const WG = 256;

/** Result of {@linkcode streamReadRoofline}. */
export interface StreamReadResult {
  /** Median seconds per read of the whole buffer. */
  seconds: number;
  /** Bytes read per pass. */
  bytes: number;
  /** bytes / seconds / 1e9. */
  gbPerSecond: number;
}

/**
 * Times `iterations` streaming reads of the first `bytes` bytes (a multiple of 16) of `buffer` (a STORAGE
 * buffer) and returns the median.
 *
 * @example
 * ```ts
 * const { gbPerSecond } = await streamReadRoofline(rt, logitsBuffer, rows * vocab * 4);
 * ```
 */
export async function streamReadRoofline(
  rt: Runtime,
  buffer: GPUBuffer,
  bytes: number,
  iterations = 5,
): Promise<StreamReadResult> {
  const device = rt.device;
  if (!device) throw new Error("streamReadRoofline needs a GPU runtime");
  const n4 = Math.floor(bytes / 16);
  const pipeline = await rt.pipeline("stream_read", "stream_read.wgsl", { prelude: `const WG: u32 = ${WG}u;\n` });
  const groups = Math.max(1, Math.min(Math.ceil(n4 / WG), 4096, device.limits.maxComputeWorkgroupsPerDimension));
  const partial = device.createBuffer({ size: groups * 4, usage: GPUBufferUsage.STORAGE });
  const uniform = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(uniform, 0, new Uint32Array([n4, groups * WG, 0, 0]));
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer, size: n4 * 16 } },
      { binding: 1, resource: { buffer: partial } },
      { binding: 2, resource: { buffer: uniform } },
    ],
  });
  const run = async () => {
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(groups);
    pass.end();
    const t0 = performance.now();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    return (performance.now() - t0) / 1000;
  };
  await run(); // warm-up
  const times: number[] = [];
  for (let i = 0; i < iterations; i++) times.push(await run());
  partial.destroy();
  uniform.destroy();
  const seconds = median(times);
  return { seconds, bytes: n4 * 16, gbPerSecond: (n4 * 16) / seconds / 1e9 };
}

/**
 * The median of a non-empty list of numbers.
 *
 * @example
 * ```ts
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
