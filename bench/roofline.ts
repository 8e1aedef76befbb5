/**
 * The streaming roofline at several sizes (`bench/gpu_timing.ts`): a read (its sum checked against the
 * CPU's) and a copy of each size, GPU timestamps where the adapter has them, else a wall-time fit. Prints a
 * table and writes `bench/results/roofline-*.json`. Run: `deno run -A bench/roofline.ts --sizes-mib 512,1024,2048`.
 * @module
 */
import { createRuntime } from "../src/gpu/runtime.ts";
import { SparsekdError } from "../src/errors.ts";
import { runMain } from "../src/cli/run_main.ts";
import { fmt, formatTable, writeResults } from "./harness.ts";
import { randomData, rooflineAt, type RooflinePoint } from "./gpu_timing.ts";
import { parseFitNs } from "./topk.ts";

/**
 * Measures the roofline at each size (MiB) and returns the points; a size the device cannot hold in one
 * buffer (2 GiB where `maxBufferSize` is 2³¹ − 1) is measured at the largest it can, with a line on stderr.
 *
 * @example
 * ```ts
 * await benchRoofline(["--sizes-mib", "8,16"]);
 * ```
 */
export async function benchRoofline(args: string[] = []): Promise<RooflinePoint[]> {
  let sizes = [512, 1024, 2048];
  let fitNs = [10, 50, 200];
  let reps = 3;
  for (let i = 0; i < args.length; i += 2) {
    const [flag, v] = [args[i], args[i + 1]];
    if (v === undefined) throw new SparsekdError(`${flag} needs a value`);
    if (flag === "--sizes-mib") sizes = v.split(",").map(Number);
    else if (flag === "--fit-ns") fitNs = parseFitNs(v);
    else if (flag === "--reps") reps = Number(v);
    else throw new SparsekdError(`unknown flag ${flag} (flags: --sizes-mib, --fit-ns, --reps)`);
  }
  if (sizes.some((s) => !(s > 0))) throw new SparsekdError("--sizes-mib wants positive numbers");
  const rt = await createRuntime();
  const device = rt.device;
  if (!device) throw new SparsekdError("the roofline needs a WebGPU adapter (none was found)");
  const points: RooflinePoint[] = [];
  for (const mib of sizes) {
    let bytes = Math.floor((mib * 2 ** 20) / 16) * 16;
    if (bytes > device.limits.maxBufferSize) {
      bytes = Math.floor(device.limits.maxBufferSize / 16) * 16;
      console.error(
        `roofline: ${mib} MiB exceeds maxBufferSize (${device.limits.maxBufferSize}): ${bytes} bytes`,
      );
    }
    const p = await rooflineAt(rt, randomData(bytes / 4), { reps, fitNs });
    console.error(
      `roofline ${mib} MiB: read ${fmt(p.read.ms)} ms, copy ${fmt(p.copy.ms)} ms (${p.read.method})`,
    );
    points.push(p);
  }
  const gb = (p: RooflinePoint, ms: number) => p.bytes / 1e6 / ms;
  console.log(`adapter: ${rt.adapter!.description}`);
  console.log(formatTable(
    ["MiB", "timing", "read ms", "read GB/s", "copy ms", "copy GB/s (r+w)", "sum checked"],
    points.map((p) => [
      fmt(p.bytes / 2 ** 20),
      p.read.method,
      fmt(p.read.ms),
      fmt(gb(p, p.read.ms)),
      fmt(p.copy.ms),
      fmt(gb(p, p.copy.ms) * 2),
      `${fmt(p.gpuSum, 6)} = ${fmt(p.cpuSum, 6)}`,
    ]),
  ));
  const path = await writeResults("roofline", {
    date: new Date().toISOString(),
    adapter: rt.adapter,
    limits: {
      maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize,
      maxBufferSize: device.limits.maxBufferSize,
    },
    note:
      "ms per read (or copy) of `bytes`: GPU timestamps around N dispatches (timestamps) or the slope of a " +
      "wall-time fit over fitNs dispatches per submission (wall-fit); copy GB/s counts read + write",
    points,
  });
  console.log(`written: ${path}`);
  rt.destroy();
  return points;
}

if (import.meta.main) await runMain(async () => void (await benchRoofline(Deno.args)));
