/**
 * The run flags that `deno task demo` and `deno task study` share (`--dir`, `--sequences`, `--steps`,
 * `--batch-size`, `--cpu`, `--help`): one definition of their parsing, their help lines and the library
 * options they map to.
 * @module
 */
import { intFlag } from "./flags.ts";

/** The `parseArgs` options of the shared run flags; a command spreads them into its own table. */
export const RUN_FLAG_SPEC = {
  dir: { type: "string" },
  sequences: { type: "string" },
  steps: { type: "string" },
  "batch-size": { type: "string" },
  cpu: { type: "boolean", default: false },
  help: { type: "boolean", default: false },
} as const;

/** The shared run flags by library option name, for the one-line errors of `runMain`. */
export const RUN_FLAGS: Record<string, string> = {
  dir: "--dir",
  sequences: "--sequences",
  steps: "--steps",
  batchSize: "--batch-size",
  cpu: "--cpu",
};

/** The options the shared run flags set (those of `runDemo` and `runStudy`). */
export interface RunFlagOptions {
  /** The run folder (undefined: the command's default). */
  dir?: string;
  /** Demo-corpus sequences given to save-topk. */
  sequences: number;
  /** Optimizer steps of each student. */
  steps: number;
  /** Sequences per step. */
  batchSize: number;
  /** Run on the CPU, without WebGPU. */
  cpu: boolean;
}

/**
 * The help lines of the shared run flags, `dir` being the command's default run folder and `what` what a
 * second run skips (`finished stages`, `finished students`).
 *
 * @example
 * ```ts
 * const help = `deno task demo [flags]\n\n${runFlagsHelp("runs/demo", "finished stages")}`;
 * ```
 */
export function runFlagsHelp(dir: string, what: string): string {
  return `  --dir DIR            the run folder (default ${dir}); a second run resumes and skips ${what}
  --sequences S        demo-corpus sequences given to save-topk (default 512)
  --steps N            optimizer steps of each student (default 100)
  --batch-size B       sequences per step (default 16)
  --cpu                run on the CPU, without WebGPU
`;
}

/**
 * Reads the shared run flags from `parseArgs`' values (integers checked here, as flags: `--steps must be ≥ 1`).
 *
 * @example
 * ```ts
 * const { values } = parseFlags(Deno.args, RUN_FLAG_SPEC);
 * const o = readRunFlags(values); // { dir: undefined, sequences: 512, steps: 100, batchSize: 16, cpu: false }
 * ```
 */
export function readRunFlags(
  f: { dir?: string; sequences?: string; steps?: string; "batch-size"?: string; cpu?: boolean },
): RunFlagOptions {
  return {
    dir: f.dir,
    sequences: intFlag("sequences", f.sequences, 512, { min: 2 }),
    steps: intFlag("steps", f.steps, 100, { min: 1 }),
    batchSize: intFlag("batch-size", f["batch-size"], 16, { min: 1 }),
    cpu: f.cpu ?? false,
  };
}
