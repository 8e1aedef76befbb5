/**
 * The student model: a small GPT in tfjs, its checkpoints, its export as a tfjs GraphModel, and the seeded
 * random numbers it uses.
 *
 * @example One seed gives one sequence of random numbers
 * ```ts
 * import { createRng } from "./mod.ts";
 *
 * const a = createRng(42), b = createRng(42);
 * if (a.uniform() !== b.uniform() || a.int(10) !== b.int(10)) throw new Error("same seed, same numbers");
 * ```
 * @module
 */
export { createGpt, gptWeightShapes, tuneTfjsForAdapter, validateGptConfig } from "./gpt.ts";
export type { Gpt, GptConfig } from "./gpt.ts";
export { checkpointDir, latestCheckpoint, loadModel, saveModel } from "./checkpoint.ts";
export type { ModelJson, TrainState, WeightEntry } from "./checkpoint.ts";
export {
  exportGraphModel,
  gptGraph,
  GRAPH_EXPORT_FORMAT,
  GRAPH_INPUT,
  GRAPH_OUTPUT,
  GRAPH_WEIGHTS_FILE,
  graphModelArtifacts,
  maxSeqLenOf,
} from "./graph_export.ts";
export type { ExportGraphOptions, GptGraph, GraphConst, GraphNode } from "./graph_export.ts";
export { readTokenizerFile, TOKENIZER_NOTE, writeTokenizerNote } from "./export_tokenizer.ts";
export type { TokenizerFile } from "./export_tokenizer.ts";
export { createRng, hashSeed } from "./rng.ts";
export type { Rng } from "./rng.ts";
