/**
 * `deno run -A bench/topk_radix.ts [ROWSxVOCABxK ...]`: the radix-select top-k (`topKRadixFromBuffer`)
 * against the current kernel (`topKFromBuffer`) on the same GPU buffer, each call including its one
 * batched read-back; the results must agree. Prints one line per shape (median ms of each, and the ratio).
 * On a software adapter only the ratio means anything, and the radix kernel runs one workgroup per row.
 * @module
 */
import { createRuntime } from "../src/gpu/runtime.ts";
import { topKFromBuffer } from "../src/kernels/topk.ts";
import { topKRadixFromBuffer } from "../src/kernels/topk_radix.ts";
import { SparsekdError } from "../src/errors.ts";
import { fmt, timeAsync } from "./harness.ts";

/** Parses `ROWSxVOCABxK` shapes; default: two shapes of issue 2 that run in seconds on lavapipe. */
export function parseShapes(args: string[]): [number, number, number][] {
  if (args.length === 0) return [[64, 32_000, 64], [4, 131_072, 256]];
  return args.map((a) => {
    const m = /^(\d+)x(\d+)x(\d+)$/.exec(a);
    if (!m) throw new SparsekdError(`shape must look like ROWSxVOCABxK (got ${a})`);
    return [Number(m[1]), Number(m[2]), Number(m[3])];
  });
}

if (import.meta.main) {
  const rt = await createRuntime();
  if (!rt.device) throw new SparsekdError("the radix top-k bench needs a WebGPU adapter");
  const device = rt.device;
  for (const [rows, vocab, k] of parseShapes(Deno.args)) {
    const x = new Float32Array(rows * vocab).map(() => (Math.random() - 0.5) * 12);
    const buf = device.createBuffer({
      size: x.byteLength,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(buf, 0, x);
    const a = await topKFromBuffer(rt, buf, rows, vocab, k);
    const b = await topKRadixFromBuffer(rt, buf, rows, vocab, k);
    const agree = a.indices.every((v, i) => v === b.indices[i]);
    const old = await timeAsync(() => topKFromBuffer(rt, buf, rows, vocab, k), { reps: 5 });
    const radix = await timeAsync(() => topKRadixFromBuffer(rt, buf, rows, vocab, k), { reps: 5 });
    console.log(
      `${rows}x${vocab}x${k}: topK ${fmt(old.medianMs)} ms, topKRadix ${fmt(radix.medianMs)} ms ` +
        `(x${fmt(old.medianMs / radix.medianMs)} faster), results agree: ${agree}`,
    );
    buf.destroy();
  }
}
