/**
 * The GPT-style decoder-only transformer shared by the demo teacher and the student: learned token and
 * position embeddings, pre-LayerNorm blocks of causal multi-head self-attention and a GELU MLP, a final
 * LayerNorm, and an output projection tied to the token embedding or separate. Written with tfjs-core ops on
 * `tf.variable` weights, so it runs on whichever tfjs backend is active (webgpu or cpu).
 * @module
 */
import * as tf from "../deps/tfjs_core.ts";
import { SparsekdError } from "../errors.ts";
import { createRng } from "./rng.ts";

/** The shape of a model. */
export interface GptConfig {
  /** Vocabulary size V. */
  vocabSize: number;
  /** Context length (number of learned positions). */
  seqLen: number;
  /** Number of transformer blocks. */
  layers: number;
  /** Model width (embedding size); a multiple of `heads`. */
  width: number;
  /** Number of attention heads. */
  heads: number;
  /** True: the output projection is the transposed token embedding. */
  tiedEmbeddings: boolean;
}

/** A model: its config, its named weights (in a fixed order) and its forward pass. */
export interface Gpt {
  /** The config it was built from. */
  readonly config: GptConfig;
  /**
   * The weights (tfjs variables), by name, in creation order (the order of checkpoints).
   * @ignore
   */
  readonly weights: Map<string, tf.Variable>;
  /**
   * Logits for a batch of token ids `[B, L]` (int32, L ≤ seqLen): a `[B*L, V]` float32 tensor, row-major
   * (position t of sequence b is row b*L+t). Predictions at position t are for token t+1.
   * @ignore
   */
  logits(tokens: tf.Tensor2D): tf.Tensor2D;
  /** Number of weights (scalars). */
  parameterCount(): number;
  /** Frees the weights. */
  dispose(): void;
}

/**
 * Checks a config and turns a bad one into a one-line {@linkcode SparsekdError}.
 *
 * @example
 * ```ts
 * validateGptConfig({ vocabSize: 2048, seqLen: 64, layers: 2, width: 64, heads: 4, tiedEmbeddings: true });
 * ```
 */
export function validateGptConfig(c: GptConfig): void {
  for (const key of ["vocabSize", "seqLen", "layers", "width", "heads"] as const) {
    const v = c[key];
    if (!Number.isInteger(v) || v < 1) {
      throw new SparsekdError(`model ${key} must be a positive integer (got ${v})`);
    }
  }
  if (c.width % c.heads !== 0) {
    throw new SparsekdError(`model width (${c.width}) must be a multiple of heads (${c.heads})`);
  }
}

/**
 * The names and shapes of a config's weights, in creation order.
 *
 * @example
 * ```ts
 * const shapes = gptWeightShapes({ vocabSize: 16, seqLen: 8, layers: 1, width: 8, heads: 2, tiedEmbeddings: true });
 * ```
 */
export function gptWeightShapes(c: GptConfig): [string, number[]][] {
  const C = c.width;
  const out: [string, number[]][] = [["wte", [c.vocabSize, C]], ["wpe", [c.seqLen, C]]];
  for (let i = 0; i < c.layers; i++) {
    const p = `h${i}.`;
    out.push(
      [p + "ln1.g", [C]],
      [p + "ln1.b", [C]],
      [p + "attn.wqkv", [C, 3 * C]],
      [p + "attn.bqkv", [3 * C]],
      [p + "attn.wo", [C, C]],
      [p + "attn.bo", [C]],
      [p + "ln2.g", [C]],
      [p + "ln2.b", [C]],
      [p + "mlp.w1", [C, 4 * C]],
      [p + "mlp.b1", [4 * C]],
      [p + "mlp.w2", [4 * C, C]],
      [p + "mlp.b2", [C]],
    );
  }
  out.push(["lnf.g", [C]], ["lnf.b", [C]]);
  if (!c.tiedEmbeddings) out.push(["head", [C, c.vocabSize]]);
  return out;
}

/**
 * Builds a model with deterministic seeded initial weights (the same seed gives the same weights on every
 * backend): normal(0, 0.02) matrices, residual output projections scaled by 1/√(2·layers), position
 * embeddings normal(0, 0.01), LayerNorm gains 1, biases 0. With `init: false` all weights start at zero
 * (for loading a checkpoint into).
 *
 * @example
 * ```ts
 * const model = createGpt({ vocabSize: 2048, seqLen: 64, layers: 2, width: 64, heads: 4, tiedEmbeddings: true }, 1);
 * const logits = model.logits(tf.tensor2d([[1, 2, 3]], [1, 3], "int32")); // [3, 2048]
 * ```
 */
export function createGpt(config: GptConfig, seed = 0, init = true): Gpt {
  validateGptConfig(config);
  const c = { ...config };
  const rng = createRng(seed);
  const weights = new Map<string, tf.Variable>();
  const residualStd = 0.02 / Math.sqrt(2 * c.layers);
  for (const [name, shape] of gptWeightShapes(c)) {
    const size = shape.reduce((a, b) => a * b, 1);
    const values = new Float32Array(size);
    if (init) {
      const last = name.split(".").pop()!;
      if (last === "g") values.fill(1);
      else if (name === "wpe") { for (let i = 0; i < size; i++) values[i] = 0.01 * rng.normal(); }
      else if (shape.length === 2) {
        const std = last === "wo" || last === "w2" ? residualStd : 0.02;
        for (let i = 0; i < size; i++) values[i] = std * rng.normal();
      }
    }
    const t = tf.tensor(values, shape, "float32");
    weights.set(name, tf.variable(t, true, `${name}_${uid()}`));
    t.dispose(); // the variable holds the data now
  }
  const w = (name: string) => weights.get(name)!;
  const masks = new Map<number, tf.Tensor>();
  const causalMask = (L: number) => {
    let m = masks.get(L);
    if (!m) {
      const v = new Float32Array(L * L);
      for (let i = 0; i < L; i++) for (let j = i + 1; j < L; j++) v[i * L + j] = -1e9;
      m = tf.keep(tf.tensor2d(v, [L, L]));
      masks.set(L, m);
    }
    return m;
  };
  const H = c.heads;
  const C = c.width;
  const D = C / H;
  const layerNorm = (x: tf.Tensor2D, prefix: string) => {
    const { mean, variance } = tf.moments(x, -1, true);
    return tf.add(
      tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, 1e-5))), w(prefix + ".g")),
      w(prefix + ".b"),
    );
  };
  const gelu = (x: tf.Tensor2D) => {
    const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  };
  return {
    config: c,
    weights,
    logits(tokens) {
      return tf.tidy(() => {
        const [B, L] = tokens.shape;
        if (L > c.seqLen) {
          throw new SparsekdError(`sequence length ${L} exceeds the model's context ${c.seqLen}`);
        }
        const N = B * L;
        const pos = L === c.seqLen ? w("wpe") : tf.slice(w("wpe"), [0, 0], [L, C]);
        let x = tf.reshape(
          tf.add(tf.reshape(tf.gather(w("wte"), tf.reshape(tokens, [N])), [B, L, C]), pos),
          [N, C],
        ) as tf.Tensor2D;
        const mask = causalMask(L);
        const heads = (t: tf.Tensor2D) =>
          tf.reshape(tf.transpose(tf.reshape(t, [B, L, H, D]), [0, 2, 1, 3]), [B * H, L, D]);
        for (let i = 0; i < c.layers; i++) {
          const p = `h${i}.`;
          const a = layerNorm(x, p + "ln1");
          const qkv = tf.add(tf.matMul(a, w(p + "attn.wqkv")), w(p + "attn.bqkv"));
          const [q, k, v] = tf.split(qkv, 3, 1) as tf.Tensor2D[];
          const scores = tf.add(tf.mul(tf.matMul(heads(q), heads(k), false, true), 1 / Math.sqrt(D)), mask);
          const att = tf.matMul(tf.softmax(scores), heads(v)) as tf.Tensor3D;
          const merged = tf.reshape(tf.transpose(tf.reshape(att, [B, H, L, D]), [0, 2, 1, 3]), [
            N,
            C,
          ]) as tf.Tensor2D;
          x = tf.add(x, tf.add(tf.matMul(merged, w(p + "attn.wo")), w(p + "attn.bo")));
          const m = layerNorm(x, p + "ln2");
          const hidden = gelu(tf.add(tf.matMul(m, w(p + "mlp.w1")), w(p + "mlp.b1")));
          x = tf.add(x, tf.add(tf.matMul(hidden, w(p + "mlp.w2")), w(p + "mlp.b2")));
        }
        const f = layerNorm(x, "lnf");
        // An explicit transpose and a plain matmul is faster than a transposed-B matmul on tfjs-webgpu.
        return c.tiedEmbeddings ? tf.matMul(f, tf.transpose(w("wte"))) : tf.matMul(f, w("head"));
      });
    },
    parameterCount() {
      let n = 0;
      for (const v of weights.values()) n += v.size;
      return n;
    },
    dispose() {
      for (const v of weights.values()) v.dispose();
      for (const m of masks.values()) m.dispose();
      masks.clear();
    },
  };
}

/**
 * On a software adapter (llvmpipe, lavapipe, …) makes tfjs-webgpu use its packed matmul program for every
 * shape: the programs it otherwise picks for small outputs or a split K are several times slower there.
 * Does nothing on other adapters or backends.
 *
 * @example
 * ```ts
 * tuneTfjsForAdapter(rt);
 * ```
 */
export function tuneTfjsForAdapter(rt: { adapter: { software: boolean } | null }): void {
  if (!rt.adapter?.software) return;
  try {
    tf.env().set("WEBGPU_MATMUL_PROGRAM_TYPE", 3);
  } catch {
    // the flag is registered by tfjs-backend-webgpu; without it there is nothing to tune
  }
}

let counter = 0;
function uid(): number {
  return ++counter;
}
