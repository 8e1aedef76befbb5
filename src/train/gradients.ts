/**
 * Registers tfjs's gradient functions. The Node bundle of tfjs-core that `@tensorflow/tfjs-core` resolves to
 * in Deno does not register any gradients (the `@tensorflow/tfjs` union package normally does); the
 * tfjs-layers bundle registers all of them into tfjs's global gradient registry on import, so importing it
 * is the way to get autograd from the pinned packages. Import this module for its side effect.
 *
 * @example
 * ```ts
 * import "./gradients.ts";
 * const { value, grads } = tf.variableGrads(() => loss(), vars);
 * ```
 * @module
 */
import "../deps/tfjs_layers.ts";
