/**
 * sparsekd: offline knowledge distillation of language models on WebGPU.
 *
 * A teacher's logits are reduced on the GPU to their top-k per token position (plus the full-vocabulary
 * logsumexp), stored as MessagePack shards ({@linkcode saveTopK}), and a student is trained later from
 * those shards ({@linkcode train}) with a sparse-KD loss. This module is the short public API; everything
 * else is reachable through the subpath exports (`/format`, `/store`, `/teacher`, `/data`, `/kernels`,
 * `/train`, `/model`, `/loss`, `/save`, `/gpu`, `/cli`, `/demo`, `/report`, `/testing/gcs-emulator`).
 *
 * @example The top-k kernel and the sparse-KD loss (the CPU path here; drop `cpu: true` to use WebGPU)
 * ```ts
 * import { createRuntime, sparseKdLoss, topK } from "./mod.ts";
 *
 * const rt = await createRuntime({ cpu: true, quiet: true });
 * const teacher = await topK(rt, new Float32Array([1, 3, 2, 0]), 1, 4, 2);
 * if (teacher.indices[0] !== 1 || teacher.indices[1] !== 2) throw new Error("top-2 of [1, 3, 2, 0]");
 * const { loss } = await sparseKdLoss(rt, new Float32Array([0, 2, 1, 0]), 1, 4, {
 *   indices: teacher.indices,
 *   values: teacher.values,
 *   logsumexp: teacher.logsumexp,
 *   k: 2,
 * }, { mode: "tail", temperature: 1 });
 * if (!(loss[0] > 0)) throw new Error("a student unlike its teacher has a positive KD loss");
 * ```
 *
 * @example Stores: open one by URI; objects are written once, never overwritten; reading shards of a run
 * that is not there is one {@linkcode SparsekdError}
 * ```ts
 * import { ObjectExistsError, openStore, readShards, SparsekdError } from "./mod.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const store = await openStore(dir, { create: true });
 * await store.writeBytes("notes/a.txt", new TextEncoder().encode("hello"));
 * if (new TextDecoder().decode(await store.readBytes("notes/a.txt")) !== "hello") throw new Error("read back");
 * const again = await store.writeBytes("notes/a.txt", new Uint8Array(1)).catch((e) => e);
 * if (!(again instanceof ObjectExistsError)) throw new Error("a second write of one object is refused");
 * const none = await readShards(store).next().catch((e) => e);
 * if (!(none instanceof SparsekdError)) throw new Error("no run.json: a one-line error");
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */

// Runtime: a WebGPU device, or the CPU path.
export { createRuntime } from "./src/gpu/runtime.ts";
export type { AdapterSummary, Runtime, RuntimeOptions } from "./src/gpu/runtime.ts";

// Errors: bad input is one SparsekdError with a one-line message.
export { SparsekdError } from "./src/errors.ts";

// Saving a teacher's top-k to shards.
export { runSaveTopK } from "./src/save/run_save_topk.ts";
export type { RunSaveTopKOptions } from "./src/save/run_save_topk.ts";
export { saveTopK } from "./src/save/save_topk.ts";
export type { SaveProgress, SaveSummary, SaveTopKOptions } from "./src/save/save_topk.ts";

// Training a student from shards.
export { DEFAULT_STUDENT, train } from "./src/train/train.ts";
export type { TrainOptions, TrainResult } from "./src/train/train.ts";
export type { GptConfig } from "./src/model/gpt.ts";

// Loss modes and the kernels.
export { LOSS_MODES } from "./src/loss/modes.ts";
export type { LossMode, LossModeName, LossReference } from "./src/loss/modes.ts";
export { NonFiniteLogitsError, topK } from "./src/kernels/topk.ts";
export type { TopKOptions, TopKResult } from "./src/kernels/topk.ts";
export { sparseKdLoss } from "./src/kernels/sparse_kd.ts";
export type { SparseKdLossOptions } from "./src/kernels/sparse_kd.ts";
export type {
  SparseKdMode,
  SparseKdOptions,
  SparseKdResult,
  SparseKdTeacher,
} from "./src/kernels/sparse_kd_reference.ts";

// Reading shards and run.json.
export { readShards } from "./src/format/shard_reader.ts";
export type { ReadShardsOptions, ShardsRecord } from "./src/format/shard_reader.ts";
export { readRunJson } from "./src/format/run_json.ts";
export type { Backend, RunJson, ShardRecord } from "./src/format/types.ts";

// Stores: local folders, gs:// buckets, http(s) (read-only).
export { openStore } from "./src/store/open_store.ts";
export type { OpenStoreOptions } from "./src/store/open_store.ts";
export { ObjectExistsError } from "./src/store/store.ts";
export type {
  ObjectInfo,
  ObjectStore,
  ObjectWriter,
  ReadOptions,
  StoreOpener,
  StoreOpenOptions,
} from "./src/store/store.ts";
export { STORES } from "./src/store/registry.ts";
export type { StoreEntry } from "./src/store/registry.ts";

// Teachers: builtin:demo, tfjs:<model.json>, npy:<path>.
export { openTeacher } from "./src/teacher/open_teacher.ts";
export type { SparseTargets, SparseTeacher, Teacher, TeacherLogits } from "./src/teacher/teacher.ts";
export { TEACHERS } from "./src/teacher/registry.ts";
export type { TeacherEntry, TeacherOpener, TeacherOpenOptions } from "./src/teacher/registry.ts";

// Data: token sources.
export { openSource } from "./src/data/open_source.ts";
export type { OpenSourceOptions } from "./src/data/open_source.ts";
export type { TokenSource } from "./src/data/source.ts";
export type { DemoSplit } from "./src/data/demo.ts";
