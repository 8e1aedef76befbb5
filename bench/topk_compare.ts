/**
 * Old vs new top-k on the same logits already on the GPU: today's kernel (`wg`, shaders/topk.wgsl) against
 * the radix-select kernel (`radix`, shaders/topk_radix.wgsl), with the kernel `auto` picks on this adapter
 * (`src/kernels/topk_select.ts`). Per shape: the kernel time of each (GPU timestamps around N dispatches
 * where the adapter has `timestamp-query`, else the slope of a wall-time fit over N dispatches per
 * submission: `bench/gpu_timing.ts`), one call with its read-back (latency), and whether the two agree
 * (ids, values bit for bit, logsumexps within 1e-6 relative). Run:
 * `deno run -A bench/topk_compare.ts --shapes 4096x32000x64,... [--fit-ns 10,50,200] [--reps 3] [--wall]`.
 * @module
 */
import { createRuntime } from "../src/gpu/runtime.ts";
import { SparsekdError } from "../src/errors.ts";
import { runMain } from "../src/cli/run_main.ts";
import { submitTopKFromBuffer, topKFromBuffer, type TopKResult } from "../src/kernels/topk.ts";
import { submitTopKRadixFromBuffer, topKRadixFromBuffer } from "../src/kernels/topk_radix.ts";
import { chooseTopKKernel } from "../src/kernels/topk_select.ts";
import { fmt, formatTable, timeAsync, writeResults } from "./harness.ts";
import { randomData, timeKernel } from "./gpu_timing.ts";
import { parseFitNs } from "./topk.ts";

function agree(a: TopKResult, b: TopKResult): boolean {
  if (a.indices.length !== b.indices.length || a.logsumexp.length !== b.logsumexp.length) return false;
  const av = new Uint32Array(a.values.buffer, a.values.byteOffset, a.values.length);
  const bv = new Uint32Array(b.values.buffer, b.values.byteOffset, b.values.length);
  for (let i = 0; i < a.indices.length; i++) {
    if (a.indices[i] !== b.indices[i] || av[i] !== bv[i]) return false;
  }
  return a.logsumexp.every((x, i) => Math.abs(x - b.logsumexp[i]) <= Math.max(1e-5, 1e-6 * Math.abs(x)));
}

/**
 * Runs the comparison and prints its table; writes `bench/results/topk-compare-*.json`.
 *
 * @example
 * ```ts
 * await compareTopK(["--shapes", "64x32000x64"]);
 * ```
 */
export async function compareTopK(args: string[] = []): Promise<void> {
  let shapes: number[][] = [[256, 32000, 64]];
  let fitNs = [10, 50, 200], reps = 3, forceWall = false;
  for (let i = 0; i < args.length; i++) {
    const [flag, v] = [args[i], args[i + 1]];
    if (flag === "--wall") forceWall = true;
    else if (v === undefined) throw new SparsekdError(`${flag} needs a value`);
    else if (flag === "--shapes") {
      shapes = v.split(",").map((s) => s.split("x").map(Number));
      if (shapes.some((s) => s.length !== 3 || s.some((x) => !Number.isInteger(x) || x < 1))) {
        throw new SparsekdError(`--shapes wants ROWSxVOCABxK[,...] (got ${JSON.stringify(v)})`);
      }
      i++;
    } else if (flag === "--fit-ns") fitNs = parseFitNs(v), i++;
    else if (flag === "--reps") reps = Math.max(1, Number(v) | 0), i++;
    else throw new SparsekdError(`unknown flag ${flag} (flags: --shapes, --fit-ns, --reps, --wall)`);
  }
  const rt = await createRuntime();
  const device = rt.device;
  if (!device) throw new SparsekdError("the top-k comparison needs a WebGPU adapter (none was found)");
  const auto = chooseTopKKernel(rt.adapter, "auto", "");
  const timing = { reps, fitNs, forceWall };
  const table: (string | number)[][] = [];
  const results = [];
  for (const [n, vocab, k] of shapes) {
    const say = (line: string) => console.error(`topk compare ${n}x${vocab}x${k}: ${line}`);
    if (n * vocab * 4 > device.limits.maxBufferSize) {
      say(`${n * vocab * 4} bytes of logits exceed maxBufferSize (${device.limits.maxBufferSize}): skipped`);
      continue;
    }
    const data = randomData(n * vocab);
    const buffer = device.createBuffer({
      size: Math.ceil(data.byteLength / 16) * 16,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
    });
    device.queue.writeBuffer(buffer, 0, data);
    let a: TopKResult | null = null, b: TopKResult | null = null;
    const wgCall = await timeAsync(async () => void (a = await topKFromBuffer(rt, buffer, n, vocab, k)), {
      reps,
    });
    const rxCall = await timeAsync(
      async () => void (b = await topKRadixFromBuffer(rt, buffer, n, vocab, k)),
      {
        reps,
      },
    );
    const same = agree(a!, b!);
    say(`one call: wg ${fmt(wgCall.medianMs)} ms, radix ${fmt(rxCall.medianMs)} ms; agree: ${same}`);
    const wg = await timeKernel(rt, () => submitTopKFromBuffer(rt, buffer, n, vocab, k), timing);
    const rx = await timeKernel(rt, () => submitTopKRadixFromBuffer(rt, buffer, n, vocab, k), timing);
    say(`kernel: wg ${fmt(wg.ms)} ms, radix ${fmt(rx.ms)} ms (${rx.method})`);
    const gbs = (ms: number) => fmt(n * vocab * 4 / (ms / 1e3) / 1e9);
    table.push([
      `${n} x ${vocab} x ${k}`,
      rx.method,
      fmt(wg.ms),
      fmt(rx.ms),
      gbs(wg.ms),
      gbs(rx.ms),
      fmt(wg.ms / rx.ms),
      fmt(wgCall.medianMs),
      fmt(rxCall.medianMs),
      same ? "yes" : "NO",
    ]);
    results.push({
      rows: n,
      vocab,
      k,
      wg,
      radix: rx,
      wgCallMs: wgCall.medianMs,
      radixCallMs: rxCall.medianMs,
      agree: same,
    });
    buffer.destroy();
  }
  console.log(`adapter: ${rt.adapter!.description}; auto picks: ${auto}`);
  console.log(formatTable(
    [
      "rows x vocab x k",
      "timing",
      "wg ms",
      "radix ms",
      "wg GB/s",
      "radix GB/s",
      "x (wg/radix)",
      "wg 1 call ms",
      "radix 1 call ms",
      "agree",
    ],
    table,
  ));
  const path = await writeResults("topk-compare", {
    date: new Date().toISOString(),
    adapter: rt.adapter,
    backend: Deno.env.get("DENO_WEBGPU_BACKEND") ?? null,
    autoPicks: auto,
    note:
      "ms per kernel run over the batch (logits already on the GPU): GPU timestamps around N dispatches " +
      "(method timestamps) or the slope b of wall time = a + b*N over N = fitNs dispatches per submission " +
      "(wall-fit); GB/s = logits bytes / kernel time (one read); *CallMs = one call with its read-back; agree = " +
      "the same ids and values bit for bit, logsumexps within 1e-6 relative",
    results,
  });
  console.log(`written: ${path}`);
  rt.destroy();
}

if (import.meta.main) await runMain(async () => void (await compareTopK(Deno.args)));
