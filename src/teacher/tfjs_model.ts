/**
 * `--teacher tfjs:<path or URI of model.json>`: a tfjs LayersModel or GraphModel that maps int32 token ids
 * [batch, L] to logits [batch, L, V]. model.json and its weight files are read through the store registry
 * (`src/store/registry.ts`): a local path, a `file:`, `http(s):` or `gs://` URI; the model runs on the tfjs `webgpu` backend on the runtime's own device
 * (logits stay on the GPU) or, on a CPU runtime, on the tfjs `cpu` backend.
 * @module
 */
import type * as tfType from "../deps/tfjs_core.ts";
import { SparsekdError } from "../errors.ts";
import type { Runtime } from "../gpu/runtime.ts";
import type { Teacher, TeacherOpener } from "./teacher.ts";
import { createHash } from "node:crypto";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { openStore, type OpenStoreOptions, readUriBytes, storeScheme } from "../store/open_store.ts";
import type { ObjectStore } from "../store/store.ts";
import { maxSeqLenOf } from "../model/graph_export.ts";

/** What {@linkcode loadTfjsArtifacts} returns. */
export interface LoadedArtifacts {
  /** The artifacts, ready for `tf.loadLayersModel` / `tf.loadGraphModel` through a handler. */
  artifacts: tfType.io.ModelArtifacts;
  /** `layers` or `graph`, from model.json's `format` (or, if absent, the topology's shape). */
  kind: "layers" | "graph";
  /** SHA-256 (hex) of model.json followed by its weight files in manifest order. */
  fingerprint: string;
  /** The URL model.json was read from. */
  url: URL;
  /** The longest sequence the model declares it takes (a sparsekd export's `maxSeqLen`), else undefined. */
  maxSeqLen?: number;
}

/** Turns a path or URI into a URL: a plain path becomes a `file:` URL; any other scheme is kept (`gs:`, …). */
function toUrl(uri: string): URL {
  if (storeScheme(uri) === "file" && !/^file:/i.test(uri)) return pathToFileURL(resolve(uri));
  try {
    return new URL(uri);
  } catch {
    throw new SparsekdError(`tfjs:${uri} is not a valid URI`);
  }
}

/**
 * Reads model files through the store registry: the folder of model.json is opened once as a store, and files
 * outside it (a weight path with `..` or a URL of its own) through the store of their own folder.
 */
function modelFiles(modelUrl: URL, options: OpenStoreOptions) {
  const folder = new URL(".", modelUrl).href;
  let store: Promise<ObjectStore> | null = null;
  return async (url: URL, what: string): Promise<Uint8Array> => {
    try {
      if (url.href.startsWith(folder) && !/[?#]/.test(url.href)) {
        store ??= openStore(folder, options);
        const path = url.href.slice(folder.length).split("/").map(decodeURIComponent).join("/");
        return await (await store).readBytes(path);
      }
      return await readUriBytes(url.href, options);
    } catch (err) {
      const why = err instanceof SparsekdError ? err.message : String(err).split("\n")[0];
      throw new SparsekdError(`cannot read ${what} ${url.href} (${why})`, { cause: err });
    }
  };
}

/**
 * Reads model.json and its weight files (checking their sizes) into tfjs model artifacts.
 *
 * @example
 * ```ts
 * const { artifacts, kind } = await loadTfjsArtifacts("./teacher/model.json");
 * ```
 */
export async function loadTfjsArtifacts(
  uri: string,
  options: OpenStoreOptions = {},
): Promise<LoadedArtifacts> {
  const tf = await import("../deps/tfjs_core.ts");
  const url = toUrl(uri);
  const fetchBytes = modelFiles(url, options);
  const jsonBytes = await fetchBytes(url, "model.json");
  const hash = createHash("sha256").update(jsonBytes);
  let json: tfType.io.ModelJSON;
  try {
    json = JSON.parse(new TextDecoder().decode(jsonBytes));
  } catch (err) {
    throw new SparsekdError(`${url.href}: not valid JSON (${String(err).split("\n")[0]})`);
  }
  if (
    typeof json !== "object" || json === null || typeof json.modelTopology !== "object" || !json.modelTopology
  ) {
    throw new SparsekdError(`${url.href}: not a tfjs model.json (no modelTopology)`);
  }
  const topology = json.modelTopology as { node?: unknown; class_name?: unknown };
  const kind = json.format === "graph-model" || (json.format === undefined && Array.isArray(topology.node))
    ? "graph"
    : "layers";
  const artifacts = await tf.io.getModelArtifactsForJSON(json, async (manifest) => {
    const parts: Uint8Array[] = [];
    for (const group of manifest) {
      for (const p of group.paths) {
        const bytes = await fetchBytes(new URL(p, url), "weight file");
        hash.update(bytes);
        parts.push(bytes);
      }
    }
    const specs = tf.io.getWeightSpecs(manifest);
    let need = 0;
    for (const s of specs) {
      const bytesPer = s.quantization
        ? (s.quantization.dtype === "uint8" ? 1 : 2)
        : s.dtype === "bool"
        ? 1
        : 4;
      need += s.shape.reduce((a, b) => a * b, 1) * bytesPer;
    }
    const total = parts.reduce((a, b) => a + b.length, 0);
    if (total !== need && !specs.some((s) => s.dtype === "string")) {
      throw new SparsekdError(`${url.href}: weight files hold ${total} bytes, the manifest needs ${need}`);
    }
    const data = new Uint8Array(total);
    let o = 0;
    for (const b of parts) {
      data.set(b, o);
      o += b.length;
    }
    return [specs, data.buffer];
  });
  return { artifacts, kind, fingerprint: hash.digest("hex"), url, maxSeqLen: maxSeqLenOf(json) };
}

/** The common face of a LayersModel and a GraphModel, as the teacher uses them. */
interface RunnableModel {
  inputDtype: "int32" | "float32";
  fixedSeqLen?: number;
  run(x: tfType.Tensor): Promise<tfType.Tensor>;
  dispose(): void;
}

async function loadModel(loaded: LoadedArtifacts): Promise<RunnableModel> {
  const handler = { load: () => Promise.resolve(loaded.artifacts) };
  const where = loaded.url.href;
  const fixed = (shape: readonly (number | null)[] | undefined) => {
    const n = shape?.[1];
    return typeof n === "number" && n > 0 ? n : undefined;
  };
  try {
    if (loaded.kind === "layers") {
      const tfl = await import("../deps/tfjs_layers.ts");
      const model = await tfl.loadLayersModel(handler);
      if (model.inputs.length !== 1 || model.outputs.length !== 1) {
        model.dispose();
        throw new SparsekdError(
          `${where}: the model must have one input (token ids) and one output (logits)`,
        );
      }
      return {
        inputDtype: model.inputs[0].dtype === "float32" ? "float32" : "int32",
        fixedSeqLen: fixed(model.inputs[0].shape),
        run: (x) => Promise.resolve(model.predict(x) as tfType.Tensor),
        dispose: () => model.dispose(),
      };
    }
    const tfc = await import("../deps/tfjs_converter.ts");
    const model = await tfc.loadGraphModel(handler);
    if (model.inputs.length !== 1 || model.outputs.length !== 1) {
      model.dispose();
      throw new SparsekdError(`${where}: the graph must have one input (token ids) and one output (logits)`);
    }
    return {
      inputDtype: model.inputs[0].dtype === "float32" ? "float32" : "int32",
      fixedSeqLen: fixed(model.inputs[0].shape),
      // execute() is synchronous and quiet; graphs with control flow or dynamic shapes need executeAsync().
      run: async (x) => {
        try {
          return model.execute(x) as tfType.Tensor;
        } catch (err) {
          if (!/executeAsync/.test(String(err))) throw err;
          return (await model.executeAsync(x)) as tfType.Tensor;
        }
      },
      dispose: () => model.dispose(),
    };
  } catch (err) {
    if (err instanceof SparsekdError) throw err;
    throw new SparsekdError(
      `${where}: tfjs cannot load the ${loaded.kind} model (${String(err).split("\n")[0]})`,
    );
  }
}

/**
 * Loads a tfjs model as a {@linkcode Teacher}. The model runs on the runtime's GPU device through
 * `useTfjsOnRuntime` (logits are handed over as the tensor's own GPUBuffer, released with the tensor), or
 * on the tfjs CPU backend on a CPU runtime. A probe forward pass at load time finds the vocabulary size and
 * checks that the output is [batch, L, V].
 *
 * @example
 * ```ts
 * const teacher = await tfjsTeacher(rt, "https://example.org/teacher/model.json");
 * const logits = await teacher.forward(tokens, 0, 4, 128);
 * ```
 */
export async function tfjsTeacher(
  rt: Runtime,
  uri: string,
  options: OpenStoreOptions = {},
): Promise<Teacher> {
  const { useTfjsOnRuntime } = await import("../gpu/tfjs_backend.ts");
  const { tensorTeacher } = await import("./tensor_logits.ts");
  const tf = await useTfjsOnRuntime(rt);
  const loaded = await loadTfjsArtifacts(uri, options);
  const model = await loadModel(loaded);
  const where = loaded.url.href;

  const run = async (tokens: Uint32Array, count: number, L: number): Promise<tfType.Tensor> => {
    let x: tfType.Tensor = tf.tensor2d(new Int32Array(tokens.buffer, tokens.byteOffset, tokens.length), [
      count,
      L,
    ], "int32");
    if (model.inputDtype === "float32") {
      const f = tf.cast(x, "float32");
      x.dispose();
      x = f;
    }
    let y: tfType.Tensor;
    try {
      y = await model.run(x);
    } catch (err) {
      throw new SparsekdError(
        `${where}: the model failed on a [${count}, ${L}] batch (${String(err).split("\n")[0]})`,
      );
    } finally {
      x.dispose();
    }
    if (y.rank !== 3 || y.shape[0] !== count || y.shape[1] !== L) {
      const shape = y.shape.join(", ");
      y.dispose();
      throw new SparsekdError(
        `${where}: the model's output is [${shape}], expected logits [${count}, ${L}, V]`,
      );
    }
    if (y.dtype !== "float32") {
      const f = tf.cast(y, "float32");
      y.dispose();
      y = f;
    }
    return y;
  };

  const probeLen = model.fixedSeqLen ?? Math.min(8, loaded.maxSeqLen ?? 8);
  let vocabSize: number;
  {
    const probe = await run(new Uint32Array(probeLen), 1, probeLen);
    vocabSize = probe.shape[2] as number;
    probe.dispose();
  }
  return tensorTeacher(rt, {
    name: "tfjs teacher",
    vocabSize,
    // A sparsekd export takes any L up to its context; like builtin:demo, it offers its context as the run's.
    seqLen: model.fixedSeqLen ?? loaded.maxSeqLen,
    fingerprint: loaded.fingerprint,
    description: `tfjs:${uri}`,
    checkSeqLen(L) {
      if (model.fixedSeqLen !== undefined && L !== model.fixedSeqLen) {
        throw new SparsekdError(
          `${where}: the model takes sequences of ${model.fixedSeqLen} tokens, not ${L}`,
        );
      }
      if (loaded.maxSeqLen !== undefined && L > loaded.maxSeqLen) {
        throw new SparsekdError(
          `${where}: the model takes sequences of at most ${loaded.maxSeqLen} tokens (its context), not ${L}`,
        );
      }
    },
    async logits(tokens, count, L) {
      const y = await run(tokens, count, L);
      const flat = tf.reshape(y, [count * L, vocabSize]) as tfType.Tensor2D;
      y.dispose();
      return flat;
    },
    dispose: () => model.dispose(),
  });
}

/**
 * The registry's opener of `tfjs:<model.json>` specs (see `registry.ts`).
 *
 * @example
 * ```ts
 * const teacher = await teacherOpener("./teacher/model.json", rt, {});
 * ```
 */
export const teacherOpener: TeacherOpener = (arg, rt, options) => {
  if (arg === "") {
    throw new SparsekdError("teacher tfjs: needs the path or URI of a model.json", { option: "teacher" });
  }
  return tfjsTeacher(rt, arg, { endpoint: options.endpoint });
};
