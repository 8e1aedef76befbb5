/**
 * Old vs new top-k: `topKFromBuffer` (shaders/topk.wgsl) against `topKRadix` from
 * `src/kernels/topk_radix.ts` when that module exists (another helper's kernel; skipped otherwise), on the
 * same logits already on the GPU: values compared, one call each timed with its read-back (latency; the
 * same work for both). Run: `deno run -A bench/topk_compare.ts --shapes 4096x32000x64,...`.
 * @module
 */
import { createRuntime, type Runtime } from "../src/gpu/runtime.ts";
import { SparsekdError } from "../src/errors.ts";
import { runMain } from "../src/cli/run_main.ts";
import { topKFromBuffer, type TopKResult } from "../src/kernels/topk.ts";
import { fmt, formatTable, timeAsync, writeResults } from "./harness.ts";
import { randomData } from "./gpu_timing.ts";

type RadixFn = (
  rt: Runtime,
  logits: GPUBuffer | Float32Array,
  rows: number,
  vocab: number,
  k: number,
) => Promise<TopKResult>;

/**
 * Runs the comparison; returns false (after one line on stderr) when there is no new kernel to compare.
 *
 * @example
 * ```ts
 * await compareTopK(["--shapes", "64x32000x64"]);
 * ```
 */
export async function compareTopK(args: string[] = []): Promise<boolean> {
  const url = new URL("../src/kernels/topk_radix.ts", import.meta.url);
  try {
    await Deno.stat(url);
  } catch {
    console.error("topk compare: src/kernels/topk_radix.ts does not exist: skipped");
    return false;
  }
  const mod = await import(url.href) as { topKRadix?: RadixFn };
  if (typeof mod.topKRadix !== "function") {
    console.error("topk compare: src/kernels/topk_radix.ts exports no topKRadix: skipped");
    return false;
  }
  let shapes: number[][] = [[256, 32000, 64]];
  if (args[0] === "--shapes" && args[1]) shapes = args[1].split(",").map((s) => s.split("x").map(Number));
  const rt = await createRuntime();
  const device = rt.device;
  if (!device) throw new SparsekdError("the top-k comparison needs a WebGPU adapter (none was found)");
  const rows: (string | number)[][] = [];
  const record = [];
  for (const [n, vocab, k] of shapes) {
    const data = randomData(n * vocab);
    const buffer = device.createBuffer({
      size: data.byteLength,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    device.queue.writeBuffer(buffer, 0, data);
    let a: TopKResult | null = null, b: TopKResult | null = null;
    const old = await timeAsync(async () => void (a = await topKFromBuffer(rt, buffer, n, vocab, k)), {
      reps: 3,
    });
    const neu = await timeAsync(async () => void (b = await mod.topKRadix!(rt, buffer, n, vocab, k)), {
      reps: 3,
    });
    const agree = a!.values.every((v, i) => v === b!.values[i]);
    rows.push([
      `${n} x ${vocab} x ${k}`,
      fmt(old.medianMs),
      fmt(neu.medianMs),
      fmt(old.medianMs / neu.medianMs),
      agree ? "yes" : "NO",
    ]);
    record.push({ rows: n, vocab, k, oldMs: old.medianMs, newMs: neu.medianMs, valuesAgree: agree });
    buffer.destroy();
  }
  console.log(
    formatTable(["rows x vocab x k", "old ms (1 call)", "radix ms (1 call)", "x", "values agree"], rows),
  );
  console.log(`written: ${await writeResults("topk-compare", { adapter: rt.adapter, results: record })}`);
  rt.destroy();
  return true;
}

if (import.meta.main) await runMain(async () => void (await compareTopK(Deno.args)));
