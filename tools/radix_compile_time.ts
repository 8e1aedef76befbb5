/**
 * Times the compile of each pipeline variant of the radix top-k (`shaders/topk_radix.wgsl`): shader module
 * plus `createComputePipelineAsync`, then one dispatch (llvmpipe compiles the machine code there), one
 * variant after the other, in one process. On Mesa the compile is
 * cached on disk; time it cold with the cache off:
 *
 *     MESA_SHADER_CACHE_DISABLE=true DENO_WEBGPU_BACKEND=gl \
 *       deno run -A tools/radix_compile_time.ts [--variants main/256/4/4/max,merge/256/4/4/300,...]
 *
 * A variant is entry/workgroupSize/loads/ntBucket/capacity (capacity `max`: the device's default). Without
 * `--variants` it times those that `tests/kernels_topk_radix_test.ts` compiles. `--source FILE` compiles
 * another WGSL file (same prelude) instead, to try a change.
 *
 * @module
 */
import { parseFlags } from "../src/cli/flags.ts";
import { runMain } from "../src/cli/run_main.ts";
import { SparsekdError } from "../src/errors.ts";
import { createRuntime, loadShader } from "../src/gpu/runtime.ts";
import { radixVariant } from "../src/kernels/topk_radix.ts";
import { planOf } from "../src/kernels/topk_radix_plan.ts";

/** The variants the radix test file compiles (entry/wg/loads/ntBucket/capacity). */
export const TEST_VARIANTS = [
  "main/256/4/4/max",
  "merge/256/4/4/max",
  "main/256/4/4/300",
  "merge/256/4/4/300",
  "main/256/4/4/1100",
  "main/256/4/4/1768",
  "main/64/2/4/max",
];

/**
 * Compiles each variant and prints its compile time in seconds.
 *
 * @example
 * ```ts
 * await radixCompileTime(["--variants", "main/64/2/4/max"]);
 * ```
 */
export async function radixCompileTime(args: string[]): Promise<void> {
  const { values: flags } = parseFlags(args, { variants: { type: "string" }, source: { type: "string" } });
  const variants = typeof flags.variants === "string" ? flags.variants.split(",") : TEST_VARIANTS;
  const rt = await createRuntime({ quiet: true });
  const device = rt.device;
  if (!device) throw new SparsekdError("no WebGPU adapter: nothing to compile");
  const body = typeof flags.source === "string" ? await Deno.readTextFile(flags.source) : await loadShader(
    "topk_radix.wgsl",
  );
  console.log(
    `adapter: ${rt.adapter!.description}; backend ${Deno.env.get("DENO_WEBGPU_BACKEND") ?? "default"}`,
  );
  for (const v of variants) {
    const [entry, wg, loads, nt, cap] = v.split("/");
    if (entry !== "main" && entry !== "merge") throw new SparsekdError(`variant ${v}: entry main or merge`);
    const capacity = cap === "max" ? undefined : Number(cap);
    const plan = planOf(rt, 1, 262_144, 1, Number(nt), {
      workgroupSize: Number(wg),
      loads: Number(loads),
      capacity,
      split: 1,
    });
    const { prelude, key } = radixVariant(plan, entry);
    const t0 = performance.now();
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code: prelude + body, label: key });
    const pipe = await device.createComputePipelineAsync({
      layout: "auto",
      compute: { module, entryPoint: entry },
    });
    const t1 = performance.now();
    // llvmpipe compiles the machine code at the first dispatch: one workgroup over zero rows.
    const params = device.createBuffer({ size: 48 + 2 * plan.ntBucket * 4, usage: GPUBufferUsage.UNIFORM });
    const store = () => device.createBuffer({ size: 256, usage: GPUBufferUsage.STORAGE });
    const bufs = [params, store(), store(), store(), store()];
    const used = entry === "main" ? [0, 1, 2, 3] : [0, 1, 3, 4];
    const bind = device.createBindGroup({
      layout: pipe.getBindGroupLayout(0),
      entries: used.map((b) => ({ binding: b, resource: { buffer: bufs[b] } })),
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipe);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(1);
    pass.end();
    device.queue.submit([enc.finish()]);
    await device.queue.onSubmittedWorkDone();
    const err = await device.popErrorScope();
    bufs.forEach((b) => b.destroy());
    const t2 = performance.now();
    const sec = (a: number, b: number) => ((b - a) / 1000).toFixed(1);
    console.log(
      `${key}: ${sec(t0, t2)} s (pipeline ${sec(t0, t1)} s, first dispatch ${sec(t1, t2)} s)` +
        (err ? ` ERROR ${err.message.split("\n")[0]}` : ""),
    );
  }
  rt.destroy();
}

if (import.meta.main) await runMain(() => radixCompileTime(Deno.args));
