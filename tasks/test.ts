/**
 * `deno task test`: the test suite, on a machine with a GPU or on a fresh machine without one.
 *
 * 1. Picks the WebGPU path of the main pass. On Linux, unless `DENO_WEBGPU_BACKEND` is set, it asks a child
 *    process for a Vulkan adapter (a GPU, or Mesa's lavapipe from `mesa-vulkan-drivers`). With one, the main
 *    pass runs on Vulkan. Without one it does NOT let WebGPU fall back to OpenGL for the whole suite (llvmpipe
 *    compiles every pipeline for about a minute, hours for the suite): it runs with
 *    `DENO_WEBGPU_BACKEND=vulkan SPARSEKD_TEST_CPU_ONLY=1`, so the kernel tests that need an adapter skip and
 *    everything else takes the CPU paths, and says so in one line.
 * 2. Runs `deno test -A tests/` without the browser test (`tests/report_chromium_test.ts`); extra arguments
 *    go to this `deno test` (for example `--filter`).
 * 3. Runs `tests/kernels_backends_test.ts` and the radix top-k's tests (`tests/kernels_topk_radix_test.ts`,
 *    the kernel chosen on hardware GPUs) again on OpenGL (`DENO_WEBGPU_BACKEND=gl`, llvmpipe from
 *    `libgl1-mesa-dri`), so the kernels are checked on a second GPU path even without Vulkan (Linux only).
 * 4. Says that the report's browser check is a separate step, `deno task test-browser` (it needs Chromium;
 *    `.ci/run` installs it and runs that step after this one).
 *
 * Exits with the first failing pass's status.
 * @module
 */

const BROWSER_TEST = "tests/report_chromium_test.ts";
const linux = Deno.build.os === "linux";

/** Runs `deno <args>` with `env` added, output inherited; returns its exit status. */
async function deno(args: string[], env: Record<string, string> = {}): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), { args, env, stdin: "null" }).spawn();
  return (await child.status).code;
}

/** True when a child process on `DENO_WEBGPU_BACKEND=vulkan` gets a WebGPU adapter. */
async function hasVulkanAdapter(): Promise<boolean> {
  const probe = "const a = await navigator.gpu?.requestAdapter(); Deno.exit(a ? 0 : 3);";
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", probe],
    env: { DENO_WEBGPU_BACKEND: "vulkan" },
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).output();
  return out.code === 0;
}

const say = (line: string) => console.error(`test: ${line}`);
const env: Record<string, string> = {};
const chosen = Deno.env.get("DENO_WEBGPU_BACKEND");
if (chosen !== undefined) {
  say(`DENO_WEBGPU_BACKEND=${chosen} is set: the main pass uses it`);
} else if (linux) {
  env.DENO_WEBGPU_BACKEND = "vulkan";
  if (!(await hasVulkanAdapter())) {
    env.SPARSEKD_TEST_CPU_ONLY = "1";
    say(
      "no Vulkan adapter (no GPU, no mesa-vulkan-drivers): the main pass runs the CPU paths and skips the " +
        "kernel tests that need an adapter; the kernels run on WebGPU in the OpenGL pass only",
    );
  }
}

let code = await deno(["test", "-A", `--ignore=${BROWSER_TEST}`, ...Deno.args, "tests/"], env);
if (code === 0 && linux) {
  // One process per file: two GL devices in one process (one per test file) sometimes abort at exit inside
  // Mesa ("corrupted size vs. prev_size", about 1 run in 8 here), after every test has passed.
  for (const file of ["tests/kernels_backends_test.ts", "tests/kernels_topk_radix_test.ts"]) {
    if (code !== 0) break;
    say(`the kernels again on OpenGL (llvmpipe): DENO_WEBGPU_BACKEND=gl ${file}`);
    code = await deno(["test", "-A", file], { DENO_WEBGPU_BACKEND: "gl" });
  }
}
say(
  `the report's browser check is a separate step: deno task test-browser (${BROWSER_TEST}, needs ` +
    "Chromium; .ci/run installs it and runs both)",
);
Deno.exit(code);
