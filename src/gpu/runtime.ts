/**
 * The WebGPU runtime: adapter and device, the pipeline cache, WGSL loading from `shaders/`, and GPU error
 * tracking (`uncapturederror`, `device.lost`, error scopes; see `src/gpu/gpu_errors.ts`).
 * @module
 */
import { markDestroyed, watchDevice, withErrorScopes } from "./gpu_errors.ts";

/** What the runtime knows about the adapter it got. */
export interface AdapterSummary {
  /** The adapter's description (for example `llvmpipe (LLVM 15.0.6, 256 bits)`). */
  description: string;
  /** True for a fallback or software adapter (llvmpipe, lavapipe, SwiftShader, WARP). */
  software: boolean;
}

/**
 * A sparsekd runtime. `device` is null on the CPU path (`--cpu`, or no adapter at all); kernels then use
 * their plain TypeScript implementations.
 */
export interface Runtime {
  /** The GPU device, or null when running on the CPU. */
  readonly device: GPUDevice | null;
  /** The adapter's description, or null on the CPU path. */
  readonly adapter: AdapterSummary | null;
  /** Returns a compiled compute pipeline, cached by `key`. Throws on the CPU path. */
  pipeline(key: string, shader: string, options?: PipelineOptions): Promise<GPUComputePipeline>;
  /** Releases the device. */
  destroy(): void;
}

/** Options of {@linkcode Runtime.pipeline}. */
export interface PipelineOptions {
  /** Entry point in the shader module (default `main`). */
  entryPoint?: string;
  /** Text prepended to the shader source (for example `const WG: u32 = 256u;`). */
  prelude?: string;
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|warp|software/i;
const shaderTexts = new Map<string, Promise<string>>();
let announced = false;

/**
 * Loads a WGSL file from the toolkit's `shaders/` folder, relative to this module (so it works when
 * `mod.ts` is imported from elsewhere, from a file: or an http(s): URL). Results are cached.
 *
 * @example
 * ```ts
 * const source = await loadShader("topk.wgsl");
 * ```
 */
export function loadShader(name: string): Promise<string> {
  let text = shaderTexts.get(name);
  if (!text) {
    const url = new URL(`../../shaders/${name}`, import.meta.url);
    text = url.protocol === "file:" ? Deno.readTextFile(url) : fetch(url).then((r) => {
      if (!r.ok) throw new Error(`cannot load shader ${url}: HTTP ${r.status}`);
      return r.text();
    });
    shaderTexts.set(name, text);
  }
  return text;
}

/** Options of {@linkcode createRuntime}. */
export interface RuntimeOptions {
  /** Force the CPU path. */
  cpu?: boolean;
  /** Do not print the adapter line (nor the "compiling GPU kernels" line) on stderr. */
  quiet?: boolean;
}

/** The line printed on stderr before the first pipeline compile of a (non-quiet) process. */
export const COMPILING_LINE =
  "sparsekd: compiling GPU kernels (first run only; can take minutes on a software adapter)";
let compileAnnounced = false;

/**
 * The Vulkan loader (Mesa's WSI) prints "XDG_RUNTIME_DIR is invalid or not set" on stderr when the variable is
 * missing, before our adapter line. A private, empty directory of our own silences it; nothing is written there.
 */
function ensureXdgRuntimeDir(): void {
  try {
    if (Deno.env.get("XDG_RUNTIME_DIR")) return;
    Deno.env.set("XDG_RUNTIME_DIR", Deno.makeTempDirSync({ prefix: "sparsekd-xdg-" }));
  } catch {
    // No env or write permission: the warning stays, nothing else changes.
  }
}

/**
 * Acquires a WebGPU adapter and device, asking for the adapter's largest buffer and binding sizes, and
 * prints once per process on stderr which adapter it got. With no adapter it says so in one line and
 * returns a CPU runtime; `{ cpu: true }` forces the CPU path.
 *
 * @example
 * ```ts
 * const rt = await createRuntime();
 * console.log(rt.device ? rt.adapter!.description : "cpu");
 * ```
 */
export async function createRuntime(options: RuntimeOptions = {}): Promise<Runtime> {
  const say = (line: string) => {
    if (!announced && !options.quiet) console.error(line);
    announced = true;
  };
  if (options.cpu) {
    say("sparsekd: --cpu given: running on the CPU");
    return cpuRuntime();
  }
  ensureXdgRuntimeDir();
  const gpu = (globalThis.navigator as { gpu?: GPU }).gpu;
  const adapter = gpu ? await gpu.requestAdapter({ powerPreference: "high-performance" }) : null;
  if (!adapter) {
    say("sparsekd: no WebGPU adapter found: running on the CPU");
    return cpuRuntime();
  }
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const description = info.description ||
    [info.vendor, info.architecture, info.device].filter(Boolean).join(" ") ||
    "unknown adapter";
  const software = Boolean(info.isFallbackAdapter) || SOFTWARE.test(description);
  const limits = adapter.limits;
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has("shader-f16")) requiredFeatures.push("shader-f16");
  if (adapter.features.has("timestamp-query")) requiredFeatures.push("timestamp-query");
  const device = await adapter.requestDevice({
    requiredFeatures,
    requiredLimits: {
      maxBufferSize: limits.maxBufferSize,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
    },
  });
  say(`sparsekd: WebGPU adapter: ${description}${software ? " (software/fallback adapter)" : ""}`);
  return gpuRuntime(device, { description, software }, { quiet: options.quiet });
}

function cpuRuntime(): Runtime {
  return {
    device: null,
    adapter: null,
    pipeline() {
      return Promise.reject(new Error("no GPU device: this runtime runs on the CPU"));
    },
    destroy() {},
  };
}

/**
 * Wraps an existing GPUDevice (for example one shared with tfjs-backend-webgpu) as a runtime.
 *
 * @example
 * ```ts
 * const adapter = await navigator.gpu.requestAdapter();
 * const rt = gpuRuntime(await adapter!.requestDevice(), { description: "mine", software: false });
 * ```
 */
export function gpuRuntime(
  device: GPUDevice,
  adapter: AdapterSummary,
  runtimeOptions: { quiet?: boolean } = {},
): Runtime {
  watchDevice(device);
  const cache = new Map<string, Promise<GPUComputePipeline>>();
  return {
    device,
    adapter,
    pipeline(key, shader, options = {}) {
      const quiet = runtimeOptions.quiet === true;
      let p = cache.get(key);
      if (!p) {
        p = (async () => {
          const code = (options.prelude ?? "") + (await loadShader(shader));
          if (!compileAnnounced && !quiet) console.error(COMPILING_LINE);
          compileAnnounced = true;
          return await withErrorScopes(device, `compile ${key}`, async () => {
            const module = device.createShaderModule({ code, label: key });
            return await device.createComputePipelineAsync({
              label: key,
              layout: "auto",
              compute: { module, entryPoint: options.entryPoint ?? "main" },
            });
          });
        })();
        cache.set(key, p);
        p.catch(() => cache.delete(key));
      }
      return p;
    },
    destroy() {
      cache.clear();
      markDestroyed(device);
      device.destroy();
    },
  };
}
