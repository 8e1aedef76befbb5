/**
 * Checkpoints in the tfjs weights-manifest format: `model.json` (the config plus a `weightsManifest`) with
 * `model.weights.bin`, the optimizer's moments the same way (`optimizer.json`, `optimizer.weights.bin`), and
 * `state.json` (step, data position, RNG state, …) written last, so that a checkpoint without `state.json`
 * is incomplete and ignored (each object appears atomically; state.json is the commit). Each checkpoint is a folder `ckpt-<step>/` of a store (local folder or gs://).
 * @module
 */
import * as tf from "../deps/tfjs_core.ts";
import { SparsekdError } from "../errors.ts";
import { f16ToF32, f32ToF16 } from "../format/f16.ts";
import type { ObjectStore } from "../store/store.ts";
import { createGpt, type Gpt, type GptConfig } from "./gpt.ts";
import { GRAPH_EXPORT_FORMAT } from "./graph_export.ts";

/** `format` of our model.json. */
export const MODEL_FORMAT = "sparsekd.gpt";

/** One entry of a tfjs weights manifest. */
export interface WeightEntry {
  /** Weight name (a key of the model's weights). */
  name: string;
  /** Shape of the weight. */
  shape: number[];
  /** Element type in memory (float32; int32 only for the graph's own constants in a graph export). */
  dtype: "float32" | "int32";
  /** Present when the bytes are stored as float16 (tfjs's quantization entry). */
  quantization?: { dtype: "float16" };
}

/** A model.json (or optimizer.json): tfjs's weights-manifest layout plus our config. */
export interface ModelJson {
  /** What the file is, e.g. `sparsekd.gpt` ({@linkcode MODEL_FORMAT}) for a model.json. */
  format: string;
  /** The model config (for optimizer.json: the model's config too). */
  modelTopology: GptConfig;
  /** tfjs's weights manifest: the weight files and the weights they hold, in order. */
  weightsManifest: { paths: string[]; weights: WeightEntry[] }[];
  /** Free-form facts (how it was trained, …). */
  userDefinedMetadata?: Record<string, unknown>;
}

/** state.json of a checkpoint. */
export interface TrainState {
  /** Optimizer steps done. */
  step: number;
  /** Sequences consumed from the (shuffled) data stream. */
  position: number;
  /** The run's seed. */
  seed: number;
  /** Everything else the trainer needs to refuse a mismatched resume (flags, data fingerprint, …). */
  [key: string]: unknown;
}

/**
 * Encodes named tensors as one weights file and its manifest entries (float32, or float16 with tfjs's
 * quantization entry).
 *
 * @example
 * ```ts
 * const { bytes, weights } = await encodeTensors(model.weights, "float16");
 * ```
 */
export async function encodeTensors(
  tensors: Map<string, tf.Tensor>,
  storage: "float32" | "float16" = "float32",
): Promise<{ bytes: Uint8Array; weights: WeightEntry[] }> {
  const parts: Uint8Array[] = [];
  const weights: WeightEntry[] = [];
  let total = 0;
  for (const [name, t] of tensors) {
    const data = (await t.data()) as Float32Array;
    let bytes: Uint8Array;
    if (storage === "float16") {
      const h = f32ToF16(data);
      bytes = new Uint8Array(h.buffer, h.byteOffset, h.byteLength);
      weights.push({ name, shape: t.shape, dtype: "float32", quantization: { dtype: "float16" } });
    } else {
      bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      weights.push({ name, shape: t.shape, dtype: "float32" });
    }
    parts.push(bytes.slice());
    total += bytes.length;
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return { bytes: out, weights };
}

/**
 * Decodes a weights file against its manifest entries into float32 arrays by name; a short or long file is a
 * {@linkcode SparsekdError} naming `where`.
 *
 * @example
 * ```ts
 * const arrays = decodeTensors(bytes, json.weightsManifest[0].weights, "ckpt-100/model.weights.bin");
 * ```
 */
export function decodeTensors(
  bytes: Uint8Array,
  weights: WeightEntry[],
  where: string,
): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  let o = 0;
  for (const w of weights) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    const half = w.quantization?.dtype === "float16";
    const size = n * (half ? 2 : 4);
    if (o + size > bytes.length) {
      throw new SparsekdError(
        `${where} is truncated: weight ${w.name} needs bytes ${o}–${o + size}, file has ${bytes.length}`,
      );
    }
    if (w.dtype === "float32") {
      const chunk = bytes.slice(o, o + size);
      out.set(w.name, half ? f16ToF32(new Uint16Array(chunk.buffer)) : new Float32Array(chunk.buffer));
    } // int32 entries (a graph export's own constants) are skipped
    o += size;
  }
  if (o !== bytes.length) {
    throw new SparsekdError(`${where} has ${bytes.length - o} bytes more than its manifest describes`);
  }
  return out;
}

/**
 * Writes a model as `model.json` + `model.weights.bin` under `dir/` of a store (create-only).
 *
 * @example
 * ```ts
 * await saveModel(store, "models/demo_teacher", model, { storage: "float16" });
 * ```
 */
export async function saveModel(
  store: ObjectStore,
  dir: string,
  model: Gpt,
  options: { storage?: "float32" | "float16"; metadata?: Record<string, unknown> } = {},
): Promise<void> {
  const { bytes, weights } = await encodeTensors(model.weights, options.storage);
  const json: ModelJson = {
    format: MODEL_FORMAT,
    modelTopology: model.config,
    weightsManifest: [{ paths: ["model.weights.bin"], weights }],
    ...(options.metadata ? { userDefinedMetadata: options.metadata } : {}),
  };
  await store.writeBytes(join(dir, "model.weights.bin"), bytes);
  await store.writeBytes(
    join(dir, "model.json"),
    new TextEncoder().encode(JSON.stringify(json, null, 2) + "\n"),
  );
}

/**
 * Reads a `model.json` and its weights from `dir/` of a store and builds the model: a checkpoint's or the
 * demo teacher's `sparsekd.gpt` layout, or a `train --export` GraphModel (its config from
 * `userDefinedMetadata.sparsekd.model`, its weights by name; the graph's own constants are skipped).
 *
 * @example
 * ```ts
 * const model = await loadModel(store, "ckpt-00000100");
 * ```
 */
export async function loadModel(store: ObjectStore, dir: string): Promise<Gpt> {
  const json = await readJson<ModelJson>(store, join(dir, "model.json"));
  const where = `${store.uri}/${join(dir, "model.json")}`;
  let config = json.modelTopology;
  if (json.format === "graph-model") {
    const meta = json.userDefinedMetadata?.sparsekd as { format?: unknown; model?: GptConfig } | undefined;
    if (meta?.format !== GRAPH_EXPORT_FORMAT || typeof meta.model !== "object" || meta.model === null) {
      throw new SparsekdError(`${where} is a tfjs GraphModel but not a sparsekd export`);
    }
    config = { ...meta.model };
  } else if (json.format !== MODEL_FORMAT) {
    throw new SparsekdError(`${where} is not a sparsekd model (format ${json.format})`);
  }
  const model = createGpt(config, 0, false);
  try {
    await loadInto(store, dir, json, model.weights);
  } catch (err) {
    model.dispose();
    throw err;
  }
  return model;
}

/** Loads a manifest's weights into existing variables, checking names and shapes. */
async function loadInto(store: ObjectStore, dir: string, json: ModelJson, vars: Map<string, tf.Variable>) {
  for (const group of json.weightsManifest) {
    const where = `${store.uri}/${join(dir, group.paths[0])}`;
    const bytes = await store.readBytes(join(dir, group.paths[0]));
    const arrays = decodeTensors(bytes, group.weights, where);
    for (const w of group.weights) {
      const v = vars.get(w.name);
      if (!v && json.format === "graph-model" && w.name.startsWith("const/")) continue; // the graph's own
      if (!v) throw new SparsekdError(`${where}: unexpected weight ${w.name}`);
      if (v.shape.join(",") !== w.shape.join(",")) {
        throw new SparsekdError(`${where}: weight ${w.name} has shape [${w.shape}], expected [${v.shape}]`);
      }
      const t = tf.tensor(arrays.get(w.name)!, w.shape, "float32");
      v.assign(t);
      t.dispose(); // the variable holds the data now
    }
  }
  const have = new Set(json.weightsManifest.flatMap((g) => g.weights.map((w) => w.name)));
  for (const name of vars.keys()) {
    if (!have.has(name)) throw new SparsekdError(`${store.uri}/${dir}: weight ${name} is missing`);
  }
}

/**
 * The folder name of the checkpoint at `step`.
 *
 * @example
 * ```ts
 * checkpointDir(100); // "ckpt-00000100"
 * ```
 */
export function checkpointDir(step: number): string {
  return `ckpt-${String(step).padStart(8, "0")}`;
}

/**
 * Saves a training checkpoint: the model, the optimizer moments and `state.json` (last) under
 * `ckpt-<step>/`.
 *
 * @example
 * ```ts
 * await saveCheckpoint(store, model, opt.state, { step: 100, position: 3200, seed: 1 });
 * ```
 */
export async function saveCheckpoint(
  store: ObjectStore,
  model: Gpt,
  optimizerState: Map<string, tf.Variable>,
  state: TrainState,
): Promise<string> {
  const dir = checkpointDir(state.step);
  // Leftovers of a write that crashed before its state.json: the objects are rewritten from scratch.
  const leftovers = await store.list(`${dir}/`);
  if (leftovers.includes(`${dir}/state.json`)) throw new SparsekdError(`${store.uri}/${dir} already exists`);
  for (const p of leftovers) await store.delete(p);
  await saveModel(store, dir, model);
  const { bytes, weights } = await encodeTensors(optimizerState);
  const json: ModelJson = {
    format: MODEL_FORMAT + ".optimizer",
    modelTopology: model.config,
    weightsManifest: [{ paths: ["optimizer.weights.bin"], weights }],
  };
  await store.writeBytes(join(dir, "optimizer.weights.bin"), bytes);
  await store.writeBytes(join(dir, "optimizer.json"), new TextEncoder().encode(JSON.stringify(json) + "\n"));
  await store.writeBytes(
    join(dir, "state.json"),
    new TextEncoder().encode(JSON.stringify(state, null, 2) + "\n"),
  );
  return dir;
}

/**
 * The step of the newest complete checkpoint (one with `state.json`) in a store, or null.
 *
 * @example
 * ```ts
 * const step = await latestCheckpoint(store);
 * ```
 */
export async function latestCheckpoint(store: ObjectStore): Promise<number | null> {
  const paths = await store.list("");
  let best: number | null = null;
  for (const p of paths) {
    const m = /^ckpt-(\d{8})\/state\.json$/.exec(p);
    if (m) best = Math.max(best ?? -1, Number(m[1]));
  }
  return best;
}

/**
 * The steps of the incomplete checkpoints in a store: folders `ckpt-<step>/` without `state.json` (a write
 * that crashed; {@linkcode saveCheckpoint} rewrites them).
 *
 * @example
 * ```ts
 * const broken = await incompleteCheckpoints(store); // e.g. [400]
 * ```
 */
export async function incompleteCheckpoints(store: ObjectStore): Promise<number[]> {
  const seen = new Map<number, boolean>();
  for (const p of await store.list("")) {
    const m = /^ckpt-(\d{8})\/(.+)$/.exec(p);
    if (m) seen.set(Number(m[1]), (seen.get(Number(m[1])) ?? false) || m[2] === "state.json");
  }
  return [...seen].filter(([, complete]) => !complete).map(([step]) => step).sort((a, b) => a - b);
}

/**
 * Loads the checkpoint at `step` into an existing model and optimizer state (same config) and returns its
 * `state.json`.
 *
 * @example
 * ```ts
 * const state = await loadCheckpoint(store, 100, model, opt.state);
 * ```
 */
export async function loadCheckpoint(
  store: ObjectStore,
  step: number,
  model: Gpt,
  optimizerState: Map<string, tf.Variable>,
): Promise<TrainState> {
  const dir = checkpointDir(step);
  const mj = await readJson<ModelJson>(store, join(dir, "model.json"));
  const a = JSON.stringify(mj.modelTopology), b = JSON.stringify(model.config);
  if (a !== b) throw new SparsekdError(`${store.uri}/${dir} holds a model ${a}, not the requested ${b}`);
  await loadInto(store, dir, mj, model.weights);
  const oj = await readJson<ModelJson>(store, join(dir, "optimizer.json"));
  await loadInto(store, dir, oj, optimizerState);
  return await readJson<TrainState>(store, join(dir, "state.json"));
}

async function readJson<T>(store: ObjectStore, path: string): Promise<T> {
  if (!(await store.exists(path))) throw new SparsekdError(`${store.uri}/${path} does not exist`);
  const text = new TextDecoder().decode(await store.readBytes(path));
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new SparsekdError(`${store.uri}/${path} is not valid JSON`);
  }
}

function join(dir: string, name: string): string {
  return dir === "" || dir === "." ? name : `${dir.replace(/\/+$/, "")}/${name}`;
}
