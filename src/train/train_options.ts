/**
 * The options of `train()` (`src/train/train.ts`), named as the library names them (the command maps its
 * flags onto them), and their validation: messages name the option (`alpha must be in [0, 1]`).
 * @module
 */
import { SparsekdError } from "../errors.ts";
import type { Runtime } from "../gpu/runtime.ts";
import { checkDivergence, shardMode } from "../loss/modes.ts";
import type { TrainMode } from "./records.ts";
import { parseValueSchedule } from "./schedule.ts";

/** The default student: several times smaller than the demo teacher (see models/demo_teacher/README.md). */
export const DEFAULT_STUDENT = { layers: 1, width: 32, heads: 2 } as const;

/** Options of {@linkcode train}; every one is optional, with the default given. */
export interface TrainOptions {
  /** save-topk's shards: a folder, file://… or gs://… (default `runs/demo/topk` unless `data` is given). */
  shards?: string;
  /** A token source instead of shards (`builtin:demo` | `npy:…` | `tokens:…`): with `ceOnly` or `onlineTeacher`. */
  data?: string;
  /** Checkpoints and metrics.jsonl (default `runs/demo/train/<mode>-<time>`). */
  out?: string;
  /** Optimizer steps (default 200). On resume it may grow: the cosine decay is then spread over the new total. */
  steps?: number;
  /** Sequences per step (default 16). */
  batchSize?: number;
  /** Peak learning rate (default 3e-3). */
  lr?: number;
  /** Warm-up steps (default steps/20; on resume the checkpoint's). */
  warmup?: number;
  /** Floor of the cosine decay (default lr/10). */
  minLr?: number;
  /** AdamW decoupled weight decay (default 0.1). */
  weightDecay?: number;
  /** Global-norm clipping (default 1; 0 = off). */
  clip?: number;
  /** The sparse-KD loss, a shard mode of `src/loss/modes.ts` (default topk). */
  kdMode?: string;
  /** Use the first k stored entries per position (default all). */
  k?: number;
  /** Online KD from this teacher's full logits (`builtin:demo` | `tfjs:…`). */
  onlineTeacher?: string;
  /**
   * KD weight in [0, 1] (default 1); 1 − alpha weights the hard-label cross-entropy. A number, or a schedule
   * `START:END[:linear|cosine]` over the run (e.g. `"0.7:0.3:cosine"`).
   */
  alpha?: number | string;
  /**
   * KD temperature > 0 (default 1): a number, or a schedule `START:END[:linear|cosine]` (not with a kdMode
   * that needs the stored logsumexp, which exists only at the saved temperatures).
   */
  temperature?: number | string;
  /**
   * The divergence between teacher and student (default `forward` KL): `reverse` KL or `jsd` (the
   * generalized Jensen–Shannon divergence, weight `beta`) on the supports where they are defined exactly,
   * kdMode `renorm` and `tail`.
   */
  divergence?: string;
  /** `jsd` only: the teacher's weight β in [0, 1] of the mixture (default 0.5; 0 is forward KL, 1 reverse). */
  beta?: number;
  /** Hard labels alone (no teacher). */
  ceOnly?: boolean;
  /** Teacher ids ≥ the student's vocabulary: fail (`error`, default) or drop them. */
  vocabPad?: "error" | "drop";
  /** The student's vocabulary (default: the shards' or the data's). */
  vocab?: number;
  /** Student layers (default 1). */
  layers?: number;
  /** Student width (default 32). */
  width?: number;
  /** Attention heads (default 2). */
  heads?: number;
  /** Untied input and output embeddings. */
  untied?: boolean;
  /** Tokens per sequence (token sources; must match shards). */
  seqLen?: number;
  /** `text:` data: the Hugging Face tokenizer.json. */
  tokenizer?: string;
  /** `text:` data: the end-of-text token between documents (default `<|endoftext|>`). */
  eotToken?: string;
  /**
   * Let targets cross document boundaries: no end-of-text position is masked (text data, or shards whose
   * run.json records `data.boundaryToken`).
   */
  crossDocuments?: boolean;
  /** Weights and shuffling seed (default 1). */
  seed?: number;
  /** Shuffle window in sequences (default 1024). */
  shuffleWindow?: number;
  /** Held-out sequences (default 64, at most half the data; given explicitly, more than half is an error). */
  heldoutSequences?: number;
  /** Evaluate every N steps (default 50, and at the end; 0 = only at the end). */
  evalEvery?: number;
  /** Checkpoint every N steps (default 50, and at the end; 0 = only at the end). */
  checkpointEvery?: number;
  /** Read losses back every N steps (default 10). */
  logEvery?: number;
  /** Continue from the newest complete checkpoint in `out`. */
  resume?: boolean;
  /** Also write the final model (model.json + weights) here. */
  export?: string;
  /** Weights of the export (default f32). */
  exportDtype?: "f32" | "f16";
  /**
   * A tokenizer file (a Hugging Face `tokenizer.json` or a sparsekd BPE JSON file) copied beside the export as
   * `tokenizer.json`; its ids must fit the student's vocabulary. Needs `export`. Default: `tokenizer`, the
   * tokenizer of `text:` data, when there is one.
   */
  exportTokenizer?: string;
  /** GCS endpoint (default STORAGE_EMULATOR_HOST, else Google's). */
  gcsEndpoint?: string;
  /** Run on tfjs-backend-cpu. */
  cpu?: boolean;
  /** No progress display. */
  quiet?: boolean;
  /** A runtime to reuse (in-process callers that train several students). */
  rt?: Runtime;
  /** Where lines for the user go (default console.log). */
  log?: (line: string) => void;
  /** When it aborts, the current step finishes, a checkpoint is written and the result says `interrupted`. */
  signal?: AbortSignal;
  /** How the run was started, recorded in the export's metadata. */
  command?: string;
}

function checkInt(name: string, v: number | undefined, min: number): void {
  if (v === undefined) return;
  if (!Number.isInteger(v)) {
    throw new SparsekdError(`${name} must be an integer (got ${v})`, { option: name });
  }
  if (v < min) throw new SparsekdError(`${name} must be ≥ ${min} (got ${v})`, { option: name });
}

function checkNumber(name: string, v: number | undefined, ok: (x: number) => boolean, rule: string): void {
  if (v !== undefined && !(Number.isFinite(v) && ok(v))) {
    throw new SparsekdError(`${name} must be ${rule} (got ${v})`, { option: name });
  }
}

/**
 * Checks options that need no data; returns the loss mode. Messages name options (`alpha must be …`).
 *
 * @example
 * ```ts
 * validateTrainOptions({ kdMode: "tail", alpha: 0.5 }); // "tail"
 * ```
 */
export function validateTrainOptions(o: TrainOptions): TrainMode {
  const online = o.onlineTeacher !== undefined;
  if (online && o.ceOnly) {
    throw new SparsekdError("onlineTeacher or ceOnly: give one, not both", { option: "onlineTeacher" });
  }
  if (online && o.kdMode !== undefined) {
    throw new SparsekdError(
      "kdMode is for the shards: onlineTeacher distils from full logits and takes no kdMode",
      {
        option: "kdMode",
      },
    );
  }
  const mode: TrainMode = o.ceOnly ? "ce" : online ? "full" : shardMode(o.kdMode ?? "topk").name as TrainMode;
  checkDivergence(mode, o.divergence, o.beta);
  if (o.alpha !== undefined) parseValueSchedule("alpha", o.alpha, (x) => x >= 0 && x <= 1, "in [0, 1]");
  if (o.temperature !== undefined) {
    const t = parseValueSchedule("temperature", o.temperature, (x) => x > 0, "> 0");
    if (t.start !== t.end && mode !== "ce" && mode !== "full" && shardMode(mode).needsLse) {
      throw new SparsekdError(
        `temperature: a schedule cannot be used with kdMode ${mode}, which needs the teacher's logsumexp ` +
          `stored at one fixed temperature (give a number)`,
        { option: "temperature" },
      );
    }
  }
  checkNumber("lr", o.lr, (x) => x > 0, "> 0");
  checkNumber("minLr", o.minLr, (x) => x >= 0, "≥ 0");
  checkNumber("weightDecay", o.weightDecay, (x) => x >= 0, "≥ 0");
  checkNumber("clip", o.clip, (x) => x >= 0, "≥ 0");
  for (
    const [n, min] of [
      ["steps", 1],
      ["batchSize", 1],
      ["warmup", 0],
      ["k", 1],
      ["vocab", 1],
      ["layers", 1],
      ["width", 1],
      ["heads", 1],
      ["seqLen", 2],
      ["seed", -(2 ** 53)],
      ["shuffleWindow", 1],
      ["heldoutSequences", 0],
      ["evalEvery", 0],
      ["checkpointEvery", 0],
      ["logEvery", 1],
    ] as const
  ) checkInt(n, o[n], min);
  if (o.vocabPad !== undefined && o.vocabPad !== "error" && o.vocabPad !== "drop") {
    throw new SparsekdError(`vocabPad must be error or drop (got "${o.vocabPad}")`, { option: "vocabPad" });
  }
  if (o.exportDtype !== undefined && o.exportDtype !== "f32" && o.exportDtype !== "f16") {
    throw new SparsekdError(`exportDtype must be f32 or f16 (got "${o.exportDtype}")`, {
      option: "exportDtype",
    });
  }
  if (o.exportTokenizer !== undefined && o.export === undefined) {
    throw new SparsekdError("exportTokenizer is copied beside the export: give export too", {
      option: "exportTokenizer",
    });
  }
  if (o.data !== undefined) {
    if (o.shards !== undefined) {
      throw new SparsekdError("data or shards: give one, not both", { option: "data" });
    }
    if (mode !== "ce" && mode !== "full") {
      throw new SparsekdError("data trains on tokens alone: with ceOnly or onlineTeacher (or use shards)", {
        option: "data",
      });
    }
    if (o.k !== undefined) {
      throw new SparsekdError("k selects from the shards' top-k: use shards", { option: "k" });
    }
  }
  return mode;
}
