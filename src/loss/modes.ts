/**
 * The registry of distillation loss modes: one entry per mode with everything the rest of the toolkit asks
 * about it — its name, the WGSL kernel's numeric mode id, where the teacher comes from, whether it needs the
 * teacher's stored logsumexp, its float64 reference and its help text. `train`'s `--kd-mode` help and
 * validation and the kernel's `MODE` constant come from here; `docs/extending.md` says how to add a mode.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import {
  DEFAULT_JSD_BETA,
  type Divergence,
  DIVERGENCES,
  sparseKdLossReference64,
  type SparseKdMode,
  type SparseKdTeacher,
} from "../kernels/sparse_kd_reference.ts";
import type { SampleSpec } from "../format/types.ts";

/** The float64 reference of a mode: per-row loss and gradient with respect to the student's logits. */
export type LossReference = (
  student: Float32Array | Float64Array,
  rows: number,
  vocab: number,
  teacher: SparseKdTeacher,
  options: {
    temperature: number;
    alpha?: number;
    labels?: Int32Array;
    mask?: Uint8Array;
    divergence?: Divergence;
    beta?: number;
  },
) => { loss: Float64Array; grad: Float64Array };

/** One loss mode. */
export interface LossMode {
  /** The name users give (`--kd-mode NAME`; `full` is chosen by `--online-teacher`). */
  readonly name: string;
  /** `shards`: offline, from the stored top-k; `online`: the full logits of a teacher run in the process. */
  readonly source: "shards" | "online";
  /** The `MODE` constant of `shaders/sparse_kd.wgsl`, or null when the mode does not run on that kernel. */
  readonly kernelId: number | null;
  /** Whether the mode needs the teacher's stored logsumexp at the training temperature. */
  readonly needsLse: boolean;
  /** Whether the mode trains from the shards' sampled targets (`save-topk --sample`) instead of the top-k. */
  readonly needsSamples?: boolean;
  /** The float64 reference (the test oracle; for `full`, the teacher's full logits are its top-V). */
  readonly reference: LossReference;
  /**
   * The divergences defined on the mode's support (`--divergence`); absent means `forward` only. Reverse
   * KL and JSD need a support on which the student is restricted like the teacher (docs/losses.md).
   */
  readonly divergences?: readonly Divergence[];
  /** One line for `--help`. */
  readonly help: string;
}

const sparse = (mode: SparseKdMode): LossReference => (student, rows, vocab, teacher, options) =>
  sparseKdLossReference64(student, rows, vocab, teacher, { ...options, mode });

/** The name of a registered mode (add a new one here and in {@linkcode LOSS_MODES}). */
export type LossModeName = "topk" | "renorm" | "tail" | "sampled" | "full";

/** The modes, in the order the help lists them. */
export const LOSS_MODES: Readonly<Record<LossModeName, LossMode>> = {
  topk: {
    name: "topk",
    source: "shards",
    kernelId: 0,
    needsLse: false,
    reference: sparse("topk"),
    help: "KL from the teacher renormalized over its top-k to the student's full distribution",
  },
  renorm: {
    name: "renorm",
    source: "shards",
    kernelId: 1,
    needsLse: false,
    reference: sparse("renorm"),
    divergences: DIVERGENCES,
    help: "KL between teacher and student both renormalized over the teacher's top-k",
  },
  tail: {
    name: "tail",
    source: "shards",
    kernelId: 2,
    needsLse: true,
    reference: sparse("tail"),
    divergences: DIVERGENCES,
    help: "top-k plus one tail bucket with the exact mass (needs the stored logsumexp at T)",
  },
  sampled: {
    name: "sampled",
    source: "shards",
    kernelId: 3,
    needsLse: true,
    needsSamples: true,
    reference: sparse("sampled"),
    help: "importance-weighted KL estimate from the teacher's sampled tokens (save-topk --sample)",
  },
  full: {
    name: "full",
    source: "online",
    kernelId: null,
    needsLse: false,
    // The full KL is every sparse mode at K = V (docs/losses.md); topk is the cheapest of them.
    reference: sparse("topk"),
    help: "online KD from a teacher's full logits, run in the training process (--online-teacher)",
  },
};

/** The names of the modes trained from the shards (the values of `kdMode`). */
export const SHARD_MODES: LossModeName[] = (Object.keys(LOSS_MODES) as LossModeName[]).filter((m) =>
  LOSS_MODES[m].source === "shards"
);

/**
 * The mode called `name`, if it is one that `kdMode` accepts (trained from the shards); otherwise a
 * {@linkcode SparsekdError} about option `kdMode` listing them.
 *
 * @example
 * ```ts
 * const mode = shardMode("tail"); // mode.needsLse === true
 * ```
 */
export function shardMode(name: string): LossMode {
  const m = (LOSS_MODES as Record<string, LossMode>)[name];
  if (m && m.source === "shards") return m;
  const online = m?.source === "online" ? ` (${name} is online: give onlineTeacher instead)` : "";
  throw new SparsekdError(`kdMode must be ${listOr(SHARD_MODES)} (got "${name}")${online}`, {
    option: "kdMode",
  });
}

/**
 * The kernel's mode ids by name, for the modes that run on the sparse-KD kernel.
 *
 * @example
 * ```ts
 * const ids = kernelModeIds(); // { topk: 0, renorm: 1, tail: 2, sampled: 3 }
 * ```
 */
export function kernelModeIds(): Record<SparseKdMode, number> {
  const out: Record<string, number> = {};
  for (const m of Object.values(LOSS_MODES) as LossMode[]) if (m.kernelId !== null) out[m.name] = m.kernelId;
  return out as Record<SparseKdMode, number>;
}

/**
 * Checks that shards saved with logsumexp at `stored` temperatures serve mode `mode` at `temperature`;
 * returns the index of that temperature in the stored ones (−1 when the mode needs none).
 *
 * @example
 * ```ts
 * lseIndexFor(LOSS_MODES.tail, 2, [1, 2], "runs/demo/topk"); // 1
 * ```
 */
export function lseIndexFor(mode: LossMode, temperature: number, stored: number[], where: string): number {
  const i = stored.indexOf(temperature);
  if (mode.needsLse && i < 0) {
    const want = [...new Set([...stored, temperature])].sort((a, b) => a - b).join(",");
    throw new SparsekdError(
      `kdMode ${mode.name} needs the teacher's logsumexp at temperature ${temperature}; ${where} has it at ` +
        `${stored.join(",")} only: re-run save-topk with --lse-temperatures ${want}`,
      { option: "kdMode" },
    );
  }
  return i;
}

/**
 * Checks that shards with sampled targets `sample` (run.json's, absent when the run stores none) serve mode
 * `mode`: they must hold samples, and the logsumexp at their sampling temperature t (the importance weights
 * need it). Returns the index of t in the stored temperatures (−1 when the mode uses no samples).
 *
 * @example
 * ```ts
 * sampleLseIndexFor(LOSS_MODES.sampled, { n: 16, temperature: 1, seed: 0 }, [1, 2], "runs/demo/topk"); // 0
 * ```
 */
export function sampleLseIndexFor(
  mode: LossMode,
  sample: SampleSpec | undefined,
  stored: number[],
  where: string,
): number {
  if (!mode.needsSamples) return -1;
  if (!sample) {
    throw new SparsekdError(
      `kdMode ${mode.name} needs sampled targets; ${where} has none: re-run save-topk with --sample N`,
      { option: "kdMode" },
    );
  }
  const i = stored.indexOf(sample.temperature);
  if (i < 0) {
    throw new SparsekdError(
      `kdMode ${mode.name} needs the teacher's logsumexp at the sampling temperature ${sample.temperature}; ` +
        `${where} has it at ${stored.join(",")} only`,
      { option: "kdMode" },
    );
  }
  return i;
}

/**
 * Checks the divergence options of a run whose loss mode is `mode` (a registered mode, or `ce` for hard
 * labels alone) and returns the divergence and β to train with: `divergence` must be one the mode lists
 * (default `forward`), `beta` is for `jsd` only and lies in [0, 1] (default 0.5). Errors name the option.
 *
 * @example
 * ```ts
 * checkDivergence("tail", "jsd", 0.3); // { divergence: "jsd", beta: 0.3 }
 * checkDivergence("topk", "reverse"); // throws: reverse is defined on renorm and tail only
 * ```
 */
export function checkDivergence(
  mode: string,
  divergence: string | undefined,
  beta: number | undefined,
): { divergence: Divergence; beta?: number } {
  const d = divergence ?? "forward";
  if (!(DIVERGENCES as readonly string[]).includes(d)) {
    throw new SparsekdError(`divergence must be ${listOr([...DIVERGENCES])} (got "${d}")`, {
      option: "divergence",
    });
  }
  if (d !== "forward") {
    const m = (LOSS_MODES as Record<string, LossMode>)[mode];
    if (!(m?.divergences ?? ["forward"]).includes(d as Divergence)) {
      const on = (Object.values(LOSS_MODES) as LossMode[]).filter((x) =>
        x.divergences?.includes(d as Divergence)
      );
      throw new SparsekdError(
        `divergence ${d} is defined on the ${listOr(on.map((x) => x.name))} supports only ` +
          `(the loss here is ${
            mode === "ce"
              ? "ceOnly"
              : LOSS_MODES[mode as LossModeName]?.source === "online"
              ? "onlineTeacher's full KD"
              : `kdMode ${mode}`
          })`,
        { option: "divergence" },
      );
    }
  }
  if (beta !== undefined) {
    if (d !== "jsd") {
      throw new SparsekdError(`beta is only for divergence jsd (the divergence here is ${d})`, {
        option: "beta",
      });
    }
    if (!(Number.isFinite(beta) && beta >= 0 && beta <= 1)) {
      throw new SparsekdError(`beta must be in [0, 1] (got ${beta})`, { option: "beta" });
    }
    if (beta > 0 && beta < 1e-30) {
      throw new SparsekdError(`beta must be 0 or at least 1e-30 (got ${beta}: below float32's range)`, {
        option: "beta",
      });
    }
  }
  return d === "jsd" ? { divergence: d, beta: beta ?? DEFAULT_JSD_BETA } : { divergence: d as Divergence };
}

/**
 * The `--kd-mode` lines of a help text, from the registry.
 *
 * @example
 * ```ts
 * console.log(kdModeHelp("  "));
 * ```
 */
export function kdModeHelp(indent: string): string {
  return SHARD_MODES.map((m) => `${indent}${m.padEnd(7)} ${LOSS_MODES[m].help}`).join("\n");
}

function listOr(names: string[]): string {
  return names.length < 2 ? names.join("") : `${names.slice(0, -1).join(", ")} or ${names.at(-1)}`;
}
