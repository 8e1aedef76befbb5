/**
 * Which top-k kernel runs: today's one-workgroup-per-row kernel (`wg`, `./topk.ts`, tuned for software
 * adapters) or the radix-select kernel for real GPUs (`radix`, `./topk_radix.ts`). `auto` picks by adapter:
 * `wg` on a software or fallback adapter (llvmpipe, lavapipe, SwiftShader, WARP, or `isFallbackAdapter`),
 * `radix` on any other. An explicit choice wins, then the `SPARSEKD_TOPK_KERNEL` environment variable, then
 * `auto`. Both kernels return the same ids, values and logsumexps (docs/performance.md).
 * @module
 */
import type { AdapterSummary, Runtime } from "../gpu/runtime.ts";
import { SparsekdError } from "../errors.ts";
import { topK, topKFromBuffer } from "./topk.ts";
import { topKRadix, topKRadixFromBuffer } from "./topk_radix.ts";
import type { TopKOptions, TopKResult } from "./topk_reference.ts";

/** What a caller may ask for: a kernel by name, or `auto` (by adapter). */
export type TopKKernelChoice = "auto" | "wg" | "radix";
/** A kernel that runs. */
export type TopKKernel = "wg" | "radix";

/** The environment variable that overrides `auto` (an explicit option still wins). */
export const TOPK_KERNEL_ENV = "SPARSEKD_TOPK_KERNEL";

const CHOICES: readonly TopKKernelChoice[] = ["auto", "wg", "radix"];

/**
 * `value` as a kernel choice; anything else is a `SparsekdError` naming `option`.
 *
 * @example
 * ```ts
 * parseTopKKernel("radix"); // "radix"
 * parseTopKKernel("fast"); // throws: topkKernel must be auto, wg or radix (got "fast")
 * ```
 */
export function parseTopKKernel(value: string, option = "topkKernel"): TopKKernelChoice {
  if (!(CHOICES as readonly string[]).includes(value)) {
    throw new SparsekdError(`${option} must be auto, wg or radix (got "${value}")`, { option });
  }
  return value as TopKKernelChoice;
}

/**
 * The kernel that runs for `adapter` (null: the CPU path, where both kernels run the reference): the
 * explicit `requested` kernel if it is not `auto`, else `env` (default: `SPARSEKD_TOPK_KERNEL` when set),
 * else `wg` on a software or fallback adapter and `radix` on any other.
 *
 * @example
 * ```ts
 * chooseTopKKernel({ description: "llvmpipe (LLVM 15.0.6, 256 bits)", software: true }); // "wg"
 * chooseTopKKernel({ description: "NVIDIA H200", software: false }); // "radix"
 * chooseTopKKernel({ description: "NVIDIA H200", software: false }, "wg"); // "wg"
 * ```
 */
export function chooseTopKKernel(
  adapter: AdapterSummary | null,
  requested: TopKKernelChoice = "auto",
  env: string | undefined = envChoice(),
): TopKKernel {
  const asked = parseTopKKernel(requested);
  if (asked !== "auto") return asked;
  const fromEnv = env === undefined || env === "" ? "auto" : parseTopKKernel(env, TOPK_KERNEL_ENV);
  if (fromEnv !== "auto") return fromEnv;
  return !adapter || adapter.software ? "wg" : "radix";
}

function envChoice(): string | undefined {
  try {
    return Deno.env.get(TOPK_KERNEL_ENV);
  } catch {
    return undefined; // no --allow-env: no override
  }
}

/** Options of {@linkcode topKSelected}: those of `topK` and the kernel to run (default `auto`). */
export interface TopKSelectedOptions extends TopKOptions {
  /** `auto` (default: by adapter, or `SPARSEKD_TOPK_KERNEL`), `wg` or `radix`. */
  kernel?: TopKKernelChoice;
}

/**
 * Top-k with logsumexp by the kernel {@linkcode chooseTopKKernel} picks for `rt`'s adapter: same
 * arguments and results as `topK` (`./topk.ts`). Rows with non-finite logits throw a
 * `NonFiniteLogitsError` with either kernel.
 *
 * @example
 * ```ts
 * const rt = await createRuntime();
 * const { indices } = await topKSelected(rt, new Float32Array([1, 3, 2, 0]), 1, 4, 2); // [1, 2]
 * ```
 */
export function topKSelected(
  rt: Runtime,
  logits: Float32Array,
  rows: number,
  vocab: number,
  k: number,
  options: TopKSelectedOptions = {},
): Promise<TopKResult> {
  const { kernel, ...rest } = options;
  return chooseTopKKernel(rt.adapter, kernel) === "radix"
    ? topKRadix(rt, logits, rows, vocab, k, rest)
    : topK(rt, logits, rows, vocab, k, rest);
}

/**
 * {@linkcode topKSelected} for logits already on the GPU (`topKFromBuffer`'s arguments).
 *
 * @example
 * ```ts
 * const { indices } = await topKSelectedFromBuffer(rt, buffer, rows, vocab, 64, { kernel: "radix" });
 * ```
 */
export function topKSelectedFromBuffer(
  rt: Runtime,
  logits: GPUBuffer,
  rows: number,
  vocab: number,
  k: number,
  options: TopKSelectedOptions = {},
): Promise<TopKResult> {
  const { kernel, ...rest } = options;
  return chooseTopKKernel(rt.adapter, kernel) === "radix"
    ? topKRadixFromBuffer(rt, logits, rows, vocab, k, rest)
    : topKFromBuffer(rt, logits, rows, vocab, k, rest);
}
