/**
 * `deno task train`'s command line: flags → {@linkcode TrainOptions}, one call to {@linkcode train}, the
 * summary line, and SIGINT/SIGTERM (finish the step, checkpoint, print how to resume, exit 130/143).
 * @module
 */
import { stopOnSignals } from "./stop_signals.ts";
import { SparsekdError } from "../errors.ts";
import { kdModeHelp } from "../loss/modes.ts";
import { DEFAULT_STUDENT, train, type TrainOptions } from "../train/train.ts";
import { parseFlags } from "./flags.ts";

/** Help text of `deno task train`. */
export const TRAIN_HELP = `deno task train [flags]
  --shards OUT            top-k shards from save-topk: a folder, file://… or gs://… (default runs/demo/topk)
  --data SPEC             train on a token source instead, with --ce-only (builtin:demo | builtin:tslib |
                          npy:… | tokens:… | text:<file or folder> with --tokenizer)
  --out DIR               checkpoints and metrics.jsonl (default runs/demo/train/<mode>-<time>)
  --steps N               optimizer steps (default 200)
  --batch-size B          sequences per step (default 16)
  --lr LR                 peak learning rate (default 3e-3); --warmup N (default steps/20); --min-lr (default lr/10)
  --weight-decay WD       AdamW decoupled weight decay (default 0.1); --clip C global-norm clipping (default 1)
  --kd-mode MODE          the sparse-KD loss (default topk):
${kdModeHelp("                            ")}
  --divergence D          forward (default: KL(teacher‖student)), reverse (KL(student‖teacher)) or jsd
                          (generalized Jensen–Shannon, as TRL's GKD); reverse and jsd need --kd-mode
                          renorm or tail
  --beta B                jsd only: the teacher's weight in [0, 1] of the mixture (default 0.5; 0 is
                          forward KL, 1 reverse KL)
  --k N                   use only the first N of the stored top-k per position (their top-N; default all)
  --online-teacher SPEC   online KD instead: run this teacher (builtin:demo | builtin:tslib | tfjs:…) in the
                          process and distil from its full logits (the upper reference of docs/study.md)
  --alpha A               weight of the KD term in [0, 1] (default 1); 1−A weights the hard-label CE;
                          or a schedule START:END[:linear|cosine] over the steps, e.g. 0.7:0.3:cosine
  --temperature T         KD temperature > 0 (default 1), or a schedule as --alpha (not with --kd-mode
                          tail, which needs shards saved with --lse-temperatures including T)
  --ce-only               hard labels alone (no teacher); how the demo teacher is trained
  --vocab-pad error|drop  teacher ids ≥ the student's vocabulary (--vocab): fail (default) or drop them
  --vocab V               the student's vocabulary (default: the shards' or the data's)
  --layers N --width C --heads H --untied   the student (default ${DEFAULT_STUDENT.layers} × ${DEFAULT_STUDENT.width} × ${DEFAULT_STUDENT.heads}, tied)
  --seq-len L             tokens per sequence of --data (must match the shards' when given with --shards)
  --tokenizer FILE        a Hugging Face tokenizer.json for --data text:… (docs/data.md)
  --eot-token TEXT        the end-of-text token between documents (default <|endoftext|>)
  --cross-documents       let targets cross document boundaries (default: positions holding the
                          end-of-text token of text data, or of the shards' run.json, are masked)
  --seed S                weights and shuffling (default 1); --shuffle-window N (default 1024)
  --heldout-sequences M   held out for evaluation: the last M of the shards or --data file, or the
                          builtin corpus's held-out split (default 64, at most half the data; more than half is an error)
  --eval-every N          held-out evaluation every N steps (default 50, and at the end)
  --checkpoint-every N    checkpoint every N steps (default 50, and at the end)
  --log-every N           read losses back every N steps (default 10)
  --resume                continue from the newest complete checkpoint in --out, exactly; every setting
                          must be the same except --steps, which may grow: the cosine decay is then spread
                          over the new total (the learning rate rises to that schedule's value at the
                          checkpoint's step); a finished run has nothing to do (exit 0)
  --export DIR            also write the final student to DIR as a tfjs GraphModel (model.json +
                          weights) that plain tf.loadGraphModel loads, with sparsekd_tokenizer.json
  --export-dtype f32|f16  weights of --export (default f32)
  --export-tokenizer FILE copy this tokenizer (HF tokenizer.json or sparsekd BPE) beside --export
  --gcs-endpoint URL      GCS endpoint (default: STORAGE_EMULATOR_HOST, else Google's)
  --cpu                   run on tfjs-backend-cpu instead of WebGPU
  --quiet                 no progress display
Ctrl-C (SIGINT) or SIGTERM: the current step finishes, a checkpoint is written, and the command to resume
is printed (exit 130 or 143); a second one stops at once (the last complete checkpoint stays usable).`;

/** Each option of {@linkcode TrainOptions} the command sets, and how its flag's value is read. */
const OPTION_KINDS: Record<string, "number" | "schedule" | "string" | "boolean"> = {
  shards: "string",
  data: "string",
  out: "string",
  steps: "number",
  batchSize: "number",
  lr: "number",
  warmup: "number",
  minLr: "number",
  weightDecay: "number",
  clip: "number",
  kdMode: "string",
  divergence: "string",
  beta: "number",
  k: "number",
  onlineTeacher: "string",
  alpha: "schedule",
  temperature: "schedule",
  ceOnly: "boolean",
  vocabPad: "string",
  vocab: "number",
  layers: "number",
  width: "number",
  heads: "number",
  untied: "boolean",
  seqLen: "number",
  tokenizer: "string",
  eotToken: "string",
  crossDocuments: "boolean",
  seed: "number",
  shuffleWindow: "number",
  heldoutSequences: "number",
  evalEvery: "number",
  checkpointEvery: "number",
  logEvery: "number",
  resume: "boolean",
  export: "string",
  exportDtype: "string",
  exportTokenizer: "string",
  gcsEndpoint: "string",
  cpu: "boolean",
  quiet: "boolean",
};

/**
 * `deno task train`'s flags by option name (`batchSize` → `--batch-size`): how errors name an option. The
 * teacher registry's errors name `teacher`, which is `--online-teacher` here.
 */
export const TRAIN_FLAGS: Record<string, string> = {
  ...Object.fromEntries(
    Object.keys(OPTION_KINDS).map((o) => [o, "--" + o.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())]),
  ),
  teacher: "--online-teacher",
};

/**
 * Parses `deno task train`'s flags into {@linkcode TrainOptions} (null for `--help`); numbers are checked
 * to be numbers here, their ranges by the library.
 *
 * @example
 * ```ts
 * const o = parseTrainFlags(["--steps", "10", "--kd-mode", "tail"]); // { steps: 10, kdMode: "tail" }
 * ```
 */
export function parseTrainFlags(args: string[]): TrainOptions | null {
  const spec: Record<string, { type: "string" | "boolean" }> = { help: { type: "boolean" } };
  for (const [option, kind] of Object.entries(OPTION_KINDS)) {
    spec[TRAIN_FLAGS[option].slice(2)] = { type: kind === "boolean" ? "boolean" : "string" };
  }
  const { values } = parseFlags(args, spec);
  if (values.help) return null;
  const o: Record<string, unknown> = {};
  for (const [option, kind] of Object.entries(OPTION_KINDS)) {
    const flag = TRAIN_FLAGS[option];
    const v = values[flag.slice(2)];
    if (v === undefined) continue;
    if (kind === "schedule" && typeof v === "string" && v.includes(":")) o[option] = v;
    else if (kind === "number" || kind === "schedule") {
      const n = Number(v);
      if (typeof v !== "string" || v.trim() === "" || !Number.isFinite(n)) {
        throw new SparsekdError(`${flag} must be a number (got "${v}")`);
      }
      o[option] = n;
    } else o[option] = v;
  }
  return o as TrainOptions;
}

/**
 * Runs `deno task train` with `args`; returns the exit status (0; 130 or 143 after SIGINT or SIGTERM, with
 * a checkpoint written and the command to resume printed).
 *
 * @example
 * ```ts
 * await trainCommand(["--ce-only", "--data", "builtin:demo", "--steps", "10"]);
 * ```
 */
export async function trainCommand(args: string[]): Promise<number> {
  try {
    return await runTrain(args);
  } catch (err) {
    if (!(err instanceof SparsekdError)) throw err;
    // Options named inside the message (camelCase ones: unambiguous) as the flags the user typed.
    const msg = err.message.replace(/\b[a-z]+[A-Z]\w*\b/g, (w) => TRAIN_FLAGS[w] ?? w);
    throw new SparsekdError(msg, { option: err.option, exitCode: err.exitCode, cause: err.cause });
  }
}

async function runTrain(args: string[]): Promise<number> {
  const options = parseTrainFlags(args);
  if (options === null) {
    console.log(TRAIN_HELP);
    return 0;
  }
  const stop = stopOnSignals("train", "finishing the current step and writing a checkpoint…");
  try {
    const r = await train({
      ...options,
      signal: stop.signal,
      command: ["deno task train", ...args].join(" "),
    });
    if (r.status === "nothing-to-do") return 0;
    if (r.status === "interrupted") {
      const again = [...args];
      if (options.out === undefined) again.push("--out", r.out);
      if (!options.resume) again.push("--resume");
      console.error(
        `train: stopped at step ${r.step} of ${r.steps}; checkpoint ${r.out}/${r.checkpoint}; resume with: ` +
          ["deno task train", ...again.map(shellQuote)].join(" "),
      );
      return stop.exitCode() || 130;
    }
    console.log(
      `train: ${r.step} steps, ${r.msPerStep.toFixed(0)} ms/step, ${r.parameters} parameters` +
        (r.final ? `; held-out perplexity ${r.final.perplexity.toFixed(2)}` : "") +
        `; checkpoints in ${r.out}`,
    );
    if (r.exported) console.log(`train: model exported to ${r.exported}`);
    return 0;
  } finally {
    stop.dispose();
  }
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'"'"'`)}'`;
}
