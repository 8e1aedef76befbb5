/**
 * AdamW (decoupled weight decay) with global-norm gradient clipping, written with tfjs ops. Its moments are
 * `tf.Variable`s so that they can be checkpointed; nothing is read back from the GPU.
 * @module
 */
import * as tf from "../deps/tfjs_core.ts";

/** Hyper-parameters of {@linkcode createAdamW}. */
export interface AdamWOptions {
  /** β1 (default 0.9). */
  beta1?: number;
  /** β2 (default 0.95). */
  beta2?: number;
  /** ε (default 1e-8). */
  epsilon?: number;
  /** Decoupled weight decay, applied to matrices only (default 0.1). */
  weightDecay?: number;
  /** Clip the global gradient norm to this value; 0 disables clipping (default 1). */
  clipNorm?: number;
}

/** An AdamW optimizer over a fixed list of named variables. */
export interface AdamW {
  /** Number of updates applied so far. */
  step: number;
  /** The moment variables by name (`<weight>/m`, `<weight>/v`), in a fixed order, for checkpoints. */
  readonly state: Map<string, tf.Variable>;
  /**
   * Applies one update with learning rate `lr`. Returns the global gradient norm before clipping, as a
   * scalar tensor that the caller owns (read it back in batches).
   */
  apply(grads: Record<string, tf.Tensor>, lr: number): tf.Scalar;
  /** Frees the moments. */
  dispose(): void;
}

/**
 * Creates AdamW for `weights` (the model's named variables).
 *
 * @example
 * ```ts
 * const opt = createAdamW(model.weights, { weightDecay: 0.1, clipNorm: 1 });
 * const { value, grads } = tf.variableGrads(() => loss(), [...model.weights.values()]);
 * const norm = opt.apply(byName(grads), 1e-3);
 * ```
 */
export function createAdamW(weights: Map<string, tf.Variable>, options: AdamWOptions = {}): AdamW {
  const b1 = options.beta1 ?? 0.9;
  const b2 = options.beta2 ?? 0.95;
  const eps = options.epsilon ?? 1e-8;
  const wd = options.weightDecay ?? 0.1;
  const clip = options.clipNorm ?? 1;
  const state = new Map<string, tf.Variable>();
  for (const [name, v] of weights) {
    for (const s of ["m", "v"]) {
      const zeros = tf.zerosLike(v);
      state.set(`${name}/${s}`, tf.variable(zeros, false));
      zeros.dispose(); // the variable holds the data now
    }
  }
  const opt: AdamW = {
    step: 0,
    state,
    apply(grads, lr) {
      opt.step++;
      const t = opt.step;
      const c1 = 1 / (1 - Math.pow(b1, t));
      const c2 = 1 / (1 - Math.pow(b2, t));
      return tf.tidy(() => {
        const names = [...weights.keys()];
        const squares = names.map((n) => tf.sum(tf.square(grads[n])));
        // tf.stack, not tf.addN: tfjs-webgpu's AddN binds one storage buffer per input, past the limit of some
        // adapters (the GL path); its concat splits the inputs into groups that fit.
        const norm = tf.sqrt(tf.sum(tf.stack(squares))) as tf.Scalar;
        const scale = clip > 0 ? tf.div(clip, tf.maximum(norm, clip)) : tf.scalar(1);
        for (const n of names) {
          const p = weights.get(n)!;
          const m = state.get(`${n}/m`)!;
          const v = state.get(`${n}/v`)!;
          const g = tf.mul(grads[n], scale);
          const m2 = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
          const v2 = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2));
          m.assign(m2);
          v.assign(v2);
          const update = tf.div(tf.mul(m2, c1), tf.add(tf.sqrt(tf.mul(v2, c2)), eps));
          const decayed = wd > 0 && p.rank >= 2 ? tf.mul(p, 1 - lr * wd) : p;
          p.assign(tf.sub(decayed, tf.mul(update, lr)));
        }
        return tf.keep(norm);
      });
    },
    dispose() {
      for (const v of state.values()) v.dispose();
    },
  };
  return opt;
}
