/**
 * Shows whether the WebGPU adapter cuts long-running loops short, as llvmpipe (lavapipe and GL) does: its
 * compiled shaders give each 8-lane group of a workgroup one budget of 65,535 loop iterations, shared by every
 * loop and never reset (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS), after which each loop ends after its current
 * iteration without any error. The shader below runs `--outer` iterations of an outer loop (with barriers),
 * each with two inner loops of up to 256 iterations whose sums are checked; on llvmpipe it stops after 128
 * outer iterations (128 × 512 = 65,536) and the last check fails. Kernels that must be exact on software
 * adapters keep each group's loop iterations under the budget (docs/performance.md).
 *
 *     DENO_WEBGPU_BACKEND=vulkan deno run -A tools/llvmpipe_loop_budget.ts [--outer 1000]
 *
 * @module
 */
import { intFlag, parseFlags } from "../src/cli/flags.ts";
import { runMain } from "../src/cli/run_main.ts";
import { SparsekdError } from "../src/errors.ts";

const SHADER = `
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> errs: atomic<u32>;
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@group(0) @binding(1) var<uniform> outer: vec4<u32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  var it = 0u;
  loop {
    atomicStore(&hist[lid], (lid * 7u + it) % 13u);
    workgroupBarrier();
    var above = 0u;
    for (var b = lid + 1u; b < 256u; b++) { above += atomicLoad(&hist[b]); }
    var want = 0u;
    for (var b = 0u; b < 256u; b++) { want += select(0u, (b * 7u + it) % 13u, b > lid); }
    if (above != want) { atomicAdd(&errs, 1u); }
    workgroupBarrier();
    it++;
    if (it >= outer.x) { break; }
  }
  workgroupBarrier();
  if (lid == 0u) { out[0] = it; out[1] = atomicLoad(&errs); }
}`;

await runMain(async () => {
  const { values: f } = parseFlags(Deno.args, { outer: { type: "string" } });
  const outer = intFlag("outer", f.outer, 1000);
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) throw new SparsekdError("no WebGPU adapter");
  const device = await adapter.requestDevice();
  const pipeline = await device.createComputePipelineAsync({
    layout: "auto",
    compute: { module: device.createShaderModule({ code: SHADER }), entryPoint: "main" },
  });
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC;
  const out = device.createBuffer({ size: 16, usage });
  const uniform = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const read = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(uniform, 0, new Uint32Array([outer, 0, 0, 0]));
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: out } }, { binding: 1, resource: { buffer: uniform } }],
    }),
  );
  pass.dispatchWorkgroups(1);
  pass.end();
  enc.copyBufferToBuffer(out, 0, read, 0, 16);
  device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const [done, errs] = new Uint32Array(read.getMappedRange().slice(0));
  const info = adapter.info;
  console.log(
    `${info.vendor} ${info.description}: ${done} of ${outer} outer iterations ran, ${errs} wrong sums` +
      (done === outer && errs === 0 ? " (no loop budget seen)" : " (loops were cut short)"),
  );
  device.destroy();
});
