/**
 * `train(options)`: the whole training job as one library call — the data (shards or a token source), the
 * held-out set, the student, the loss, checkpoints and resume, the final export — with options named as in
 * {@linkcode TrainOptions} and validated here. `deno task train` only maps flags to these options
 * (`src/cli/train_flags.ts`); the demo and the study call it in-process.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { joinUri } from "../format/uri.ts";
import { createRuntime, type Runtime } from "../gpu/runtime.ts";
import { useTfjsOnRuntime } from "../gpu/tfjs_backend.ts";
import { exportGraphModel } from "../model/graph_export.ts";
import { readTokenizerFile, TOKENIZER_NOTE, writeTokenizerNote } from "../model/export_tokenizer.ts";
import type { GptConfig } from "../model/gpt.ts";
import { openStore, parseStoreUri } from "../store/open_store.ts";
import { openTeacher } from "../teacher/open_teacher.ts";
import type { Teacher } from "../teacher/teacher.ts";
import type { EvalResult } from "./evaluate.ts";
import { createSparseKdLossOp } from "./kd_loss_op.ts";
import { openShardData, openTokenData } from "./train_data.ts";
import { trainLoop, type TrainLoopResult } from "./trainer.ts";
import { DEFAULT_STUDENT, type TrainOptions, validateTrainOptions } from "./train_options.ts";
import { parseValueSchedule } from "./schedule.ts";
import { checkDivergence } from "../loss/modes.ts";

export { DEFAULT_STUDENT, type TrainOptions, validateTrainOptions } from "./train_options.ts";

/** What {@linkcode train} returns. */
export interface TrainResult {
  /** How it ended (`nothing-to-do`: resumed a run that had finished; `interrupted`: by `signal`). */
  status: TrainLoopResult["status"];
  /** The out folder (checkpoints, metrics.jsonl). */
  out: string;
  /** The step reached. */
  step: number;
  /** The run's total steps. */
  steps: number;
  /** The last complete checkpoint's folder, or null. */
  checkpoint: string | null;
  /** Evaluations of this invocation. */
  evals: (EvalResult & { step: number })[];
  /** The final evaluation (null when none ran in this invocation). */
  final: (EvalResult & { step: number }) | null;
  /** Mean wall time of a training step in this invocation, ms (evaluations and checkpoints excluded). */
  msPerStep: number;
  /** The student's parameters. */
  parameters: number;
  /** Where the model was exported, or null. */
  exported: string | null;
}

/** Fails before any training when `path` (a local folder) cannot be written. */
async function probeWritable(path: string, option: string): Promise<void> {
  try {
    await Deno.mkdir(path, { recursive: true });
    const probe = await Deno.makeTempFile({ dir: path, prefix: ".write-probe-", suffix: ".tmp" });
    await Deno.remove(probe);
  } catch (err) {
    throw new SparsekdError(`${option}: cannot write to ${path}: ${String(err).split("\n")[0]}`, {
      option,
      cause: err,
    });
  }
}

/**
 * Trains a student from the options (see {@linkcode TrainOptions}) and returns what it reached. Bad options,
 * data or out folders are a one-line {@linkcode SparsekdError} naming the option, raised before training
 * starts wherever they can be seen then.
 *
 * @example
 * ```ts
 * const r = await train({ shards: "runs/demo/topk", out: "runs/s1", steps: 100, kdMode: "tail", alpha: 0.5 });
 * console.log(r.final?.perplexity, r.msPerStep);
 * ```
 */
export async function train(o: TrainOptions): Promise<TrainResult> {
  const mode = validateTrainOptions(o);
  const { divergence, beta } = checkDivergence(mode, o.divergence, o.beta);
  const log = o.log ?? ((line: string) => console.log(line));
  const steps = o.steps ?? 200;
  const alpha = o.alpha ?? 1;
  const temperature = o.temperature ?? 1;
  const endpoint = o.gcsEndpoint ?? Deno.env.get("STORAGE_EMULATOR_HOST") ?? undefined;
  const dataOptions = {
    mode,
    // A schedule is refused for modes that read the stored logsumexp, so its start stands for the run here.
    temperature: parseValueSchedule("temperature", temperature, (x) => x > 0, "> 0").start,
    heldoutSequences: o.heldoutSequences,
    vocab: o.vocab,
    vocabPad: o.vocabPad ?? "error",
    k: o.k,
    seqLen: o.seqLen,
    tokenizer: o.tokenizer,
    eotToken: o.eotToken,
    crossDocuments: o.crossDocuments,
  };
  let d;
  if (o.data !== undefined) d = await openTokenData(o.data, dataOptions);
  else {
    const uri = o.shards ?? "runs/demo/topk";
    const store = await openStore(uri, { endpoint });
    if (!(await store.exists("run.json"))) {
      throw new SparsekdError(
        o.shards
          ? `shards: ${uri} has no run.json: it is not an OUT of save-topk`
          : `shards: ${uri} has no run.json: make the demo shards first with \`deno task save-topk\``,
        { option: "shards" },
      );
    }
    d = await openShardData(store, dataOptions);
  }
  const model: GptConfig = {
    vocabSize: d.vocab,
    seqLen: d.seqLen,
    layers: o.layers ?? DEFAULT_STUDENT.layers,
    width: o.width ?? DEFAULT_STUDENT.width,
    heads: o.heads ?? DEFAULT_STUDENT.heads,
    tiedEmbeddings: !o.untied,
  };

  // Where results go: checked before any training.
  const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "").replace("T", "-");
  const outUri = o.out ?? `runs/demo/train/${mode}-${stamp}`;
  const parsed = parseStoreUri(outUri);
  if (parsed.kind === "local") await probeWritable(parsed.path, "out");
  const out = await openStore(outUri, { endpoint, create: true });
  const metricsPath = parsed.kind === "local" ? `${parsed.path}/metrics.jsonl` : null;
  let exportStore = null, exportDone = false;
  // The export records the tokenizer: the one asked for, else the one text: data was read with.
  const tokenizerFile = o.exportTokenizer ?? (o.export !== undefined ? o.tokenizer : undefined);
  const exportTokenizer = tokenizerFile === undefined
    ? undefined
    : await readTokenizerFile(tokenizerFile, d.vocab);
  if (o.export !== undefined) {
    const pe = parseStoreUri(o.export);
    if (pe.kind === "local") await probeWritable(pe.path, "export");
    exportStore = await openStore(o.export, { endpoint, create: true });
    exportDone = await exportStore.exists("model.json");
    if (exportDone && !o.resume) {
      throw new SparsekdError(`export: ${joinUri(exportStore.uri, "model.json")} already exists`, {
        option: "export",
      });
    }
  }

  if (metricsPath) {
    try {
      (await Deno.open(metricsPath, { append: true, create: true })).close();
    } catch (err) {
      throw new SparsekdError(`out: cannot write to ${metricsPath}: ${String(err).split("\n")[0]}`, {
        option: "out",
        cause: err,
      });
    }
  }

  const rt = o.rt ?? await createRuntime({ cpu: o.cpu });
  await useTfjsOnRuntime(rt);
  const sparse = mode !== "ce" && mode !== "full";
  const kdLoss = sparse ? await createSparseKdLossOp(rt) : undefined;
  const teacher = o.onlineTeacher === undefined
    ? undefined
    : await openOnlineTeacher(o.onlineTeacher, rt, d.vocab);
  if (teacher) d.identity.onlineTeacher = { teacher: teacher.description, fingerprint: teacher.fingerprint };
  const what = mode === "ce"
    ? "cross-entropy"
    : mode === "full"
    ? `online KD from ${teacher!.description}'s full logits α=${alpha} T=${temperature}`
    : `KD ${mode}${
      divergence === "forward" ? "" : ` ${divergence}${beta === undefined ? "" : ` β=${beta}`}`
    } α=${alpha} T=${temperature}${
      d.sampleTemperature !== undefined
        ? ` (samples drawn at t=${d.sampleTemperature})`
        : d.k < d.storedK
        ? ` (top-${d.k} of the stored top-${d.storedK})`
        : ""
    }`;
  console.error(
    `train: ${what}; student ${model.layers}×${model.width}×${model.heads} (vocab ${d.vocab}, context ${d.seqLen}); ` +
      `${d.data.sequences} training sequences, ${d.heldout.length} held out; → ${out.uri}`,
  );
  let r: TrainLoopResult;
  try {
    r = await trainLoop({
      rt,
      model,
      seed: o.seed ?? 1,
      steps,
      batchSize: o.batchSize ?? 16,
      lr: o.lr ?? 3e-3,
      warmup: o.warmup,
      minLr: o.minLr,
      weightDecay: o.weightDecay ?? 0.1,
      clipNorm: o.clip ?? 1,
      mode,
      alpha,
      temperature,
      divergence,
      beta,
      k: d.k,
      sampleTemperature: d.sampleTemperature,
      data: d.data,
      heldout: d.heldout,
      boundaryToken: d.boundaryToken,
      shuffleWindow: o.shuffleWindow ?? 1024,
      out,
      metricsPath,
      checkpointEvery: o.checkpointEvery ?? 50,
      evalEvery: o.evalEvery ?? 50,
      logEvery: o.logEvery ?? 10,
      resume: o.resume,
      kdLoss,
      teacher: teacher && ((tokens, count, L) => teacher.forwardTensor!(tokens, 0, count, L)),
      identity: d.identity,
      log,
      progress: !o.quiet,
      signal: o.signal,
    });
  } finally {
    teacher?.dispose();
  }
  const final = r.status === "finished" ? r.evals.at(-1) ?? null : null;
  let exported: string | null = null;
  try {
    if (exportStore && (r.status === "finished" || r.status === "nothing-to-do")) {
      if (exportDone) log(`train: ${joinUri(exportStore.uri, "model.json")} exists: not exported again`);
      else {
        // The tokenizer note first: model.json, written last, marks a complete export.
        await writeTokenizerNote(exportStore, "", { identity: d.identity, tokenizer: exportTokenizer });
        const path = await exportGraphModel(exportStore, "", r.model, {
          storage: o.exportDtype === "f16" ? "float16" : "float32",
          metadata: {
            trainedWith: o.command ?? "train()",
            steps: r.step,
            eval: final,
            tokenizer: TOKENIZER_NOTE,
          },
        });
        exported = joinUri(exportStore.uri, path);
      }
    }
    return {
      status: r.status,
      out: out.uri,
      step: r.step,
      steps,
      checkpoint: r.checkpoint,
      evals: r.evals,
      final,
      msPerStep: r.msPerStep,
      parameters: r.model.parameterCount(),
      exported,
    };
  } finally {
    r.model.dispose();
  }
}

/** Opens the online teacher: one that runs on tfjs, with the student's vocabulary. */
async function openOnlineTeacher(spec: string, rt: Runtime, vocab: number): Promise<Teacher> {
  const teacher = await openTeacher(spec, rt);
  if (!teacher.forwardTensor) {
    teacher.dispose();
    throw new SparsekdError(
      `onlineTeacher ${spec}: precomputed logits cannot run online; use builtin:demo or tfjs:<model.json>`,
      { option: "onlineTeacher" },
    );
  }
  if (teacher.vocabSize !== vocab) {
    teacher.dispose();
    throw new SparsekdError(
      `onlineTeacher ${spec}: its vocabulary (${teacher.vocabSize}) is not the student's (${vocab})`,
      { option: "onlineTeacher" },
    );
  }
  return teacher;
}
