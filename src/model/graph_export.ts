/**
 * The student as a standard tfjs model: {@linkcode gptGraph} writes the GPT of `gpt.ts` as a TensorFlow
 * GraphDef in JSON (tfjs's `graph-model` format) made only of ops that tfjs-converter executes — Placeholder,
 * Const, GatherV2, Slice, OnesLike, Cast, Cumsum, Reshape, Greater, BatchMatMulV2, AddV2, Sub, Mul, Mean,
 * Square, Rsqrt, Softmax, Pow, Tanh, ConcatV2, Identity — and {@linkcode exportGraphModel} writes it with its
 * weights, so that plain `tf.loadGraphModel` (tfjs-core + tfjs-converter + any backend) runs it without any
 * sparsekd code or custom op. Input `tokens`: int32 token ids `[batch, L]`, 1 ≤ L ≤ the model's context;
 * output `logits`: float32 `[batch, L, V]`. Every op mirrors `Gpt.logits` in the same order (the same GELU
 * tanh approximation, LayerNorm ε = 1e-5, attention scale 1/√D, causal mask −1e9), so on one backend the
 * logits agree to float32 rounding. docs/export.md describes the graph.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { f32ToF16 } from "../format/f16.ts";
import type { ObjectStore } from "../store/store.ts";
import { type Gpt, type GptConfig, gptWeightShapes, validateGptConfig } from "./gpt.ts";

/** `userDefinedMetadata.sparsekd.format` of an exported model.json. */
export const GRAPH_EXPORT_FORMAT = "sparsekd.gpt.graph";
/** Version of the exported graph's layout. */
export const GRAPH_EXPORT_VERSION = 1;
/** The name of the graph's input node (int32 token ids `[batch, L]`). */
export const GRAPH_INPUT = "tokens";
/** The name of the graph's output node (float32 logits `[batch, L, V]`). */
export const GRAPH_OUTPUT = "logits";
/** The weight file of an export, beside model.json (tfjs-converter's name for a single shard). */
export const GRAPH_WEIGHTS_FILE = "group1-shard1of1.bin";

/** One node of a GraphDef in JSON, as tfjs-converter reads it. */
export interface GraphNode {
  /** Node name (unique; the names of the model's weights are the names in `gpt.ts`). */
  name: string;
  /** TensorFlow op name. */
  op: string;
  /** Input node names. */
  input?: string[];
  /** Attributes in TensorFlow's JSON encoding (`{type: "DT_FLOAT"}`, `{b: true}`, `{i: "0"}`, …). */
  attr?: Record<string, unknown>;
}

/** A Const node's value: one entry of the weights manifest. */
export interface GraphConst {
  /** The Const node's name. */
  name: string;
  /** Element type. */
  dtype: "float32" | "int32";
  /** Shape. */
  shape: number[];
  /** The values; null for a model weight, whose values come from the model at export time. */
  values: Float32Array | Int32Array | null;
}

/** A model as a graph: the nodes (topologically ordered) and the Const values in manifest order. */
export interface GptGraph {
  /** The GraphDef nodes. */
  nodes: GraphNode[];
  /** The Consts, model weights (values null) first in `gptWeightShapes` order, then the graph's own. */
  consts: GraphConst[];
}

const DT = { float32: "DT_FLOAT", int32: "DT_INT32", bool: "DT_BOOL" } as const;
const T_FLOAT = { T: { type: DT.float32 } };
const dims = (shape: number[]) => ({ dim: shape.map((n) => ({ size: String(n) })) });

/** Builds GraphDef nodes with unique names and deduplicated small Consts. */
class GraphBuilder {
  readonly nodes: GraphNode[] = [];
  readonly consts: GraphConst[] = [];
  private readonly names = new Set<string>();
  private readonly small = new Map<string, string>();

  private unique(name: string): string {
    if (!this.names.has(name)) {
      this.names.add(name);
      return name;
    }
    for (let i = 1;; i++) {
      if (!this.names.has(`${name}_${i}`)) {
        this.names.add(`${name}_${i}`);
        return `${name}_${i}`;
      }
    }
  }

  constant(name: string, dtype: "float32" | "int32", shape: number[], values: GraphConst["values"]): string {
    const n = this.unique(name);
    this.nodes.push({
      name: n,
      op: "Const",
      attr: { dtype: { type: DT[dtype] }, value: { tensor: { dtype: DT[dtype], tensorShape: dims(shape) } } },
    });
    this.consts.push({ name: n, dtype, shape, values });
    return n;
  }

  /** A float32 scalar Const, one per distinct value. */
  f32(value: number, name: string): string {
    const key = `f32:${Math.fround(value)}`;
    let n = this.small.get(key);
    if (!n) {
      n = this.constant(`const/${name}`, "float32", [], new Float32Array([value]));
      this.small.set(key, n);
    }
    return n;
  }

  /** An int32 Const (scalar when `scalar`, else 1-D), one per distinct value. */
  i32(values: number[], name: string, scalar = false): string {
    const key = `i32:${scalar}:${values.join(",")}`;
    let n = this.small.get(key);
    if (!n) {
      n = this.constant(`const/${name}`, "int32", scalar ? [] : [values.length], new Int32Array(values));
      this.small.set(key, n);
    }
    return n;
  }

  op(op: string, name: string, input: string[], attr: Record<string, unknown> = T_FLOAT): string {
    const n = this.unique(name);
    this.nodes.push({ name: n, op, input, attr });
    return n;
  }
}

/**
 * The GraphDef of a model config: the forward pass of `Gpt.logits` with batch and sequence length left
 * open (`[-1, -1]` token ids). Attention runs head by head on slices of the fused qkv projection, so that no
 * reshape needs the batch or the length; positions come from an exclusive cumulative sum over the first
 * row of ones, so that neither the position embedding nor the causal mask needs a shape read back at run
 * time (the graph runs with `execute()` on every backend, also on WebGPU).
 *
 * @example
 * ```ts
 * const g = gptGraph({ vocabSize: 64, seqLen: 16, layers: 1, width: 8, heads: 2, tiedEmbeddings: true });
 * console.log(g.nodes.length, g.consts[0].name); // …, "wte"
 * ```
 */
export function gptGraph(config: GptConfig): GptGraph {
  validateGptConfig(config);
  const g = new GraphBuilder();
  const C = config.width, H = config.heads, D = C / H;
  const w = new Map<string, string>();
  for (const [name, shape] of gptWeightShapes(config)) w.set(name, g.constant(name, "float32", shape, null));
  const weight = (name: string) => w.get(name)!;

  const tokens = g.op("Placeholder", GRAPH_INPUT, [], {
    dtype: { type: DT.int32 },
    shape: { shape: dims([-1, -1]) },
  });
  const axis0 = g.i32([0], "axis0", true);
  const gather = (params: string, indices: string, name: string) =>
    g.op("GatherV2", name, [params, indices, axis0], {
      Tparams: { type: DT.float32 },
      Tindices: { type: DT.int32 },
      Taxis: { type: DT.int32 },
      batch_dims: { i: "0" },
    });
  const cast = (x: string, from: keyof typeof DT, to: keyof typeof DT, name: string) =>
    g.op("Cast", name, [x], { SrcT: { type: DT[from] }, DstT: { type: DT[to] }, Truncate: { b: false } });
  const slice = (x: string, begin: number[], size: number[], name: string, dtype: keyof typeof DT) =>
    g.op(
      "Slice",
      name,
      [x, g.i32(begin, `begin_${begin.join("_")}`), g.i32(size, `size_${size.join("_")}`)],
      {
        T: { type: DT[dtype] },
        Index: { type: DT.int32 },
      },
    );
  const matmul = (a: string, b: string, name: string, adjY = false) =>
    g.op("BatchMatMulV2", name, [a, b], { T: { type: DT.float32 }, adj_x: { b: false }, adj_y: { b: adjY } });
  const add = (a: string, b: string, name: string) => g.op("AddV2", name, [a, b]);
  const mul = (a: string, b: string, name: string) => g.op("Mul", name, [a, b]);

  // Positions 0..L-1 of the first row ([1, L]) and the causal mask ([L, L]: −1e9 where j > i, else 0).
  const row = slice(tokens, [0, 0], [1, -1], "positions/row", "int32");
  const ones = g.op("OnesLike", "positions/ones", [row], { T: { type: DT.int32 } });
  const onesF = cast(ones, "int32", "float32", "positions/ones_f");
  const posF = g.op("Cumsum", "positions/cumsum", [onesF, g.i32([1], "axis1", true)], {
    T: { type: DT.float32 },
    Tidx: { type: DT.int32 },
    exclusive: { b: true },
    reverse: { b: false },
  });
  const pos = cast(posF, "float32", "int32", "positions/ids");
  const posCol = g.op("Reshape", "mask/column", [pos, g.i32([-1, 1], "shape_col")], {
    T: { type: DT.int32 },
    Tshape: { type: DT.int32 },
  });
  const future = g.op("Greater", "mask/future", [pos, posCol], { T: { type: DT.int32 } });
  const mask = mul(
    cast(future, "bool", "float32", "mask/future_f"),
    g.f32(-1e9, "mask_value"),
    "mask/causal",
  );

  let x = add(
    gather(weight("wte"), tokens, "embed/tokens"),
    gather(weight("wpe"), pos, "embed/positions"),
    "embed/sum",
  );
  const lastAxis = g.i32([-1], "last_axis");
  const layerNorm = (input: string, prefix: string, scope: string) => {
    const mean = g.op("Mean", `${scope}/mean`, [input, lastAxis], {
      T: { type: DT.float32 },
      Tidx: { type: DT.int32 },
      keep_dims: { b: true },
    });
    const centred = g.op("Sub", `${scope}/centred`, [input, mean]);
    const sq = g.op("Square", `${scope}/square`, [centred]);
    const variance = g.op("Mean", `${scope}/variance`, [sq, lastAxis], {
      T: { type: DT.float32 },
      Tidx: { type: DT.int32 },
      keep_dims: { b: true },
    });
    const rstd = g.op("Rsqrt", `${scope}/rstd`, [add(variance, g.f32(1e-5, "ln_eps"), `${scope}/var_eps`)]);
    const normed = mul(mul(centred, rstd, `${scope}/normed`), weight(prefix + ".g"), `${scope}/scaled`);
    return add(normed, weight(prefix + ".b"), `${scope}/out`);
  };
  const gelu = (input: string, scope: string) => {
    const cube = g.op("Pow", `${scope}/cube`, [input, g.f32(3, "three")]);
    const inner = mul(
      add(input, mul(cube, g.f32(0.044715, "gelu_c"), `${scope}/cube_c`), `${scope}/poly`),
      g.f32(Math.sqrt(2 / Math.PI), "gelu_sqrt_2_pi"),
      `${scope}/inner`,
    );
    const t = add(g.op("Tanh", `${scope}/tanh`, [inner]), g.f32(1, "one"), `${scope}/tanh_1`);
    return mul(mul(input, g.f32(0.5, "half"), `${scope}/half`), t, `${scope}/out`);
  };

  const scale = g.f32(1 / Math.sqrt(D), "attn_scale");
  for (let i = 0; i < config.layers; i++) {
    const p = `h${i}.`, s = `h${i}`;
    const a = layerNorm(x, p + "ln1", `${s}/ln1`);
    const qkv = add(
      matmul(a, weight(p + "attn.wqkv"), `${s}/attn/qkv_mm`),
      weight(p + "attn.bqkv"),
      `${s}/attn/qkv`,
    );
    const heads: string[] = [];
    for (let h = 0; h < H; h++) {
      const part = (j: number, what: string) =>
        slice(qkv, [0, 0, j * C + h * D], [-1, -1, D], `${s}/attn/${what}${h}`, "float32");
      const scores = add(
        mul(matmul(part(0, "q"), part(1, "k"), `${s}/attn/qk${h}`, true), scale, `${s}/attn/scaled${h}`),
        mask,
        `${s}/attn/masked${h}`,
      );
      const probs = g.op("Softmax", `${s}/attn/softmax${h}`, [scores]);
      heads.push(matmul(probs, part(2, "v"), `${s}/attn/head${h}`));
    }
    const merged = H === 1
      ? heads[0]
      : g.op("ConcatV2", `${s}/attn/merged`, [...heads, g.i32([2], "axis2", true)], {
        T: { type: DT.float32 },
        Tidx: { type: DT.int32 },
        N: { i: String(H) },
      });
    const attn = add(
      matmul(merged, weight(p + "attn.wo"), `${s}/attn/out_mm`),
      weight(p + "attn.bo"),
      `${s}/attn/out`,
    );
    x = add(x, attn, `${s}/residual1`);
    const m = layerNorm(x, p + "ln2", `${s}/ln2`);
    const hidden = add(
      matmul(m, weight(p + "mlp.w1"), `${s}/mlp/fc_mm`),
      weight(p + "mlp.b1"),
      `${s}/mlp/fc`,
    );
    const mlp = add(
      matmul(gelu(hidden, `${s}/mlp/gelu`), weight(p + "mlp.w2"), `${s}/mlp/proj_mm`),
      weight(p + "mlp.b2"),
      `${s}/mlp/proj`,
    );
    x = add(x, mlp, `${s}/residual2`);
  }
  const f = layerNorm(x, "lnf", "lnf");
  const logits = config.tiedEmbeddings
    ? matmul(f, weight("wte"), "head/matmul", true)
    : matmul(f, weight("head"), "head/matmul");
  g.op("Identity", GRAPH_OUTPUT, [logits]);
  return { nodes: g.nodes, consts: g.consts };
}

/** A tfjs weights-manifest entry. */
interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: "float32" | "int32";
  quantization?: { dtype: "float16" };
}

/** What {@linkcode exportGraphModel} writes besides the graph. */
export interface ExportGraphOptions {
  /** Storage of the model's weights (the graph's own constants stay float32/int32): default float32. */
  storage?: "float32" | "float16";
  /** Facts recorded under `userDefinedMetadata.sparsekd` (how it was trained, …). */
  metadata?: Record<string, unknown>;
}

/**
 * Builds the model.json object and the weight file of a model's graph export (see {@linkcode gptGraph}).
 *
 * @example
 * ```ts
 * const { json, bytes } = await graphModelArtifacts(model, { storage: "float16" });
 * ```
 */
export async function graphModelArtifacts(
  model: Gpt,
  options: ExportGraphOptions = {},
): Promise<{ json: Record<string, unknown>; bytes: Uint8Array }> {
  const graph = gptGraph(model.config);
  const parts: Uint8Array[] = [];
  const entries: ManifestEntry[] = [];
  for (const c of graph.consts) {
    let values = c.values;
    if (values === null) {
      const v = model.weights.get(c.name);
      if (!v || v.shape.join(",") !== c.shape.join(",")) {
        throw new SparsekdError(`export: the model has no weight ${c.name} of shape [${c.shape}]`);
      }
      values = (await v.data()) as Float32Array;
      if (options.storage === "float16") {
        const h = f32ToF16(values);
        parts.push(new Uint8Array(h.buffer, h.byteOffset, h.byteLength).slice());
        entries.push({ name: c.name, shape: c.shape, dtype: "float32", quantization: { dtype: "float16" } });
        continue;
      }
    }
    parts.push(new Uint8Array(values.buffer, values.byteOffset, values.byteLength).slice());
    entries.push({ name: c.name, shape: c.shape, dtype: c.dtype });
  }
  const bytes = new Uint8Array(parts.reduce((a, b) => a + b.length, 0));
  let o = 0;
  for (const p of parts) {
    bytes.set(p, o);
    o += p.length;
  }
  const tensorInfo = (name: string, dtype: string, shape: number[]) => ({
    name: `${name}:0`,
    dtype,
    tensorShape: dims(shape),
  });
  const json = {
    format: "graph-model",
    generatedBy: "sparsekd",
    convertedBy: `sparsekd graph export v${GRAPH_EXPORT_VERSION}`,
    modelTopology: { node: graph.nodes, library: {}, versions: { producer: 1 } },
    signature: {
      inputs: { [GRAPH_INPUT]: tensorInfo(GRAPH_INPUT, DT.int32, [-1, -1]) },
      outputs: { [GRAPH_OUTPUT]: tensorInfo(GRAPH_OUTPUT, DT.float32, [-1, -1, model.config.vocabSize]) },
    },
    weightsManifest: [{ paths: [GRAPH_WEIGHTS_FILE], weights: entries }],
    userDefinedMetadata: {
      sparsekd: {
        ...options.metadata,
        format: GRAPH_EXPORT_FORMAT,
        version: GRAPH_EXPORT_VERSION,
        model: { ...model.config },
        maxSeqLen: model.config.seqLen,
        input: `${GRAPH_INPUT}: int32 token ids [batch, L], 1 ≤ L ≤ ${model.config.seqLen}`,
        output:
          `${GRAPH_OUTPUT}: float32 [batch, L, ${model.config.vocabSize}]; position t predicts token t+1`,
        weights: options.storage ?? "float32",
      },
    },
  };
  return { json, bytes };
}

/**
 * Writes a model as a tfjs GraphModel under `dir/` of a store: the weight file first, then `model.json`
 * (its presence marks a complete export). Returns the path of model.json inside the store.
 *
 * @example
 * ```ts
 * await exportGraphModel(store, "", model, { metadata: { steps: 200 } });
 * const m = await tf.loadGraphModel("http://…/model.json"); // plain tfjs
 * ```
 */
export async function exportGraphModel(
  store: ObjectStore,
  dir: string,
  model: Gpt,
  options: ExportGraphOptions = {},
): Promise<string> {
  const { json, bytes } = await graphModelArtifacts(model, options);
  await store.writeBytes(join(dir, GRAPH_WEIGHTS_FILE), bytes);
  const path = join(dir, "model.json");
  await store.writeBytes(path, new TextEncoder().encode(JSON.stringify(json) + "\n"));
  return path;
}

/**
 * The largest sequence length a tfjs model.json declares for itself: `userDefinedMetadata.sparsekd.maxSeqLen`
 * of a sparsekd export, else undefined.
 *
 * @example
 * ```ts
 * maxSeqLenOf(JSON.parse(await Deno.readTextFile("student/model.json"))); // e.g. 64
 * ```
 */
export function maxSeqLenOf(json: unknown): number | undefined {
  const meta = (json as { userDefinedMetadata?: { sparsekd?: { maxSeqLen?: unknown } } } | null)
    ?.userDefinedMetadata?.sparsekd;
  const n = meta?.maxSeqLen;
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

function join(dir: string, name: string): string {
  return dir === "" || dir === "." ? name : `${dir.replace(/\/+$/, "")}/${name}`;
}
