/**
 * The loss-mode registry: the KD terms a student can be trained with (`topk`, `renorm`, `tail`, `full`)
 * and which of them sparse shards can serve.
 *
 * @example The registered modes
 * ```ts
 * import { LOSS_MODES, shardMode } from "./mod.ts";
 *
 * if (Object.keys(LOSS_MODES).join() !== "topk,renorm,tail,full") throw new Error("four modes");
 * if (shardMode("tail") !== LOSS_MODES.tail) throw new Error("tail is served from shards");
 * ```
 * @module
 */
export { checkDivergence, kdModeHelp, LOSS_MODES, lseIndexFor, shardMode } from "./modes.ts";
export type { LossMode, LossModeName, LossReference } from "./modes.ts";
