/**
 * The top-k kernel chooser (`src/kernels/topk_select.ts`): `auto` picks today's kernel (`wg`) on software
 * and fallback adapters and the radix kernel on real GPUs; an explicit choice wins over the
 * `SPARSEKD_TOPK_KERNEL` environment variable, which wins over `auto`; bad names are one-line errors. On
 * the GPU (lavapipe here) both kernels give the reference's results through `topKSelected`, and which one
 * ran is seen in its refusal of a non-finite row (the radix kernel's says what the row holds). Through
 * save-topk, `topkKernel` picks the kernel (seen in the shaders compiled) and both write exact shards.
 */
import assert from "node:assert/strict";
import type { AdapterSummary, Runtime } from "../src/gpu/runtime.ts";
import { SparsekdError } from "../src/errors.ts";
import {
  chooseTopKKernel,
  parseTopKKernel,
  TOPK_KERNEL_ENV,
  topKSelected,
  topKSelectedFromBuffer,
} from "../src/kernels/topk_select.ts";
import { NonFiniteLogitsError, topKReference } from "../src/kernels/topk_reference.ts";
import { NonFiniteRowError } from "../src/kernels/topk_radix.ts";
import { withSeed } from "./_rng.ts";
import { assertSame, gpu, uploadLogits } from "./_topk_fixtures.ts";
import { checkAgainstReference, fixture, saveInProcess } from "./_save_fixtures.ts";

const LAVAPIPE: AdapterSummary = { description: "llvmpipe (LLVM 15.0.6, 256 bits)", software: true };
const FALLBACK: AdapterSummary = { description: "Microsoft Basic Render Driver", software: true };
const H200: AdapterSummary = { description: "NVIDIA H200", software: false };

Deno.test("auto picks today's kernel on software or fallback adapters and the radix kernel on real GPUs", () => {
  assert.equal(chooseTopKKernel(LAVAPIPE, "auto", undefined), "wg");
  assert.equal(chooseTopKKernel(FALLBACK, "auto", undefined), "wg");
  assert.equal(chooseTopKKernel(H200, "auto", undefined), "radix");
  assert.equal(chooseTopKKernel(H200, undefined, ""), "radix"); // an empty variable is no override
  assert.equal(chooseTopKKernel(null, "auto", undefined), "wg"); // the CPU path: the reference either way
});

Deno.test("an explicit kernel wins over SPARSEKD_TOPK_KERNEL, which wins over auto", () => {
  assert.equal(chooseTopKKernel(LAVAPIPE, "radix", "wg"), "radix");
  assert.equal(chooseTopKKernel(H200, "wg", "radix"), "wg");
  assert.equal(chooseTopKKernel(LAVAPIPE, "auto", "radix"), "radix");
  assert.equal(chooseTopKKernel(H200, "auto", "wg"), "wg");
  assert.equal(chooseTopKKernel(H200, "auto", "auto"), "radix");
});

Deno.test("bad kernel names are one-line SparsekdErrors naming the option or the variable", () => {
  assert.throws(
    () => parseTopKKernel("fast"),
    (e) =>
      e instanceof SparsekdError && e.option === "topkKernel" && /auto, wg or radix.*"fast"/.test(e.message),
  );
  assert.throws(
    () => chooseTopKKernel(H200, "auto", "Radix"),
    (e) => e instanceof SparsekdError && e.option === TOPK_KERNEL_ENV && /"Radix"/.test(e.message),
  );
  // deno-lint-ignore no-explicit-any
  assert.throws(() => chooseTopKKernel(H200, "gpu" as any, undefined), SparsekdError);
});

Deno.test("topKSelected runs the kernel asked for and both equal the reference (GPU)", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("selected", async ({ uniform: rand }) => {
    const rows = 3, vocab = 5000, k = 40;
    const x = new Float32Array(rows * vocab).map(() => (rand() - 0.5) * 20);
    const want = topKReference(x, rows, vocab, k, { temperatures: [1, 2] });
    for (const kernel of ["wg", "radix", "auto"] as const) {
      assertSame(await topKSelected(rt, x, rows, vocab, k, { kernel, temperatures: [1, 2] }), want, kernel);
      const buf = uploadLogits(rt, x);
      assertSame(
        await topKSelectedFromBuffer(rt, buf, rows, vocab, k, { kernel, temperatures: [1, 2] }),
        want,
        kernel,
      );
      buf.destroy();
    }
    // Which one ran: the radix kernel's refusal is a NonFiniteRowError (it says what the row holds).
    x[vocab + 7] = Infinity;
    const refusal = (kernel: "wg" | "radix" | "auto") =>
      topKSelected(rt, x, rows, vocab, k, { kernel }).then(() => assert.fail("not refused"), (e) => e);
    assert.ok((await refusal("radix")) instanceof NonFiniteRowError);
    const wg = await refusal("wg");
    assert.ok(wg instanceof NonFiniteLogitsError && !(wg instanceof NonFiniteRowError));
    if (rt.adapter?.software) assert.ok(!((await refusal("auto")) instanceof NonFiniteRowError));
  });
});

Deno.test("save-topk runs the kernel topkKernel names (the pipelines it compiles), both exact", async () => {
  const base = await gpu();
  if (!base) return;
  const f = await fixture(4, 4, 300);
  for (const topkKernel of ["wg", "radix"] as const) {
    const shaders = new Set<string>();
    const rt: Runtime = {
      ...base,
      pipeline: (key, shader, o) => (shaders.add(shader), base.pipeline(key, shader, o)),
    };
    await saveInProcess(f, `${f.dir}/${topkKernel}`, { rt, k: 16, sequencesPerShard: 2, topkKernel });
    assert.deepEqual([...shaders], [topkKernel === "wg" ? "topk.wgsl" : "topk_radix.wgsl"]);
    await checkAgainstReference(f, `${f.dir}/${topkKernel}`, 16);
  }
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    saveInProcess(f, `${f.dir}/bad`, { topkKernel: "fast" as any }),
    (e) => e instanceof SparsekdError && e.option === "topkKernel",
  );
});
