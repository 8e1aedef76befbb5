/**
 * sparsekd: offline knowledge distillation of language models on WebGPU.
 *
 * A teacher's logits are reduced on the GPU to their top-k per token position (plus the full-vocabulary
 * logsumexp), stored as MessagePack shards, and a student is trained later from those shards.
 *
 * @example
 * ```ts
 * import { createRuntime, topK } from "./mod.ts";
 * const rt = await createRuntime();
 * const { indices, values, logsumexp } = await topK(rt, new Float32Array([1, 3, 2, 0]), 1, 4, 2);
 * ```
 * @module
 */
export { createRuntime, gpuRuntime, loadShader } from "./src/gpu/runtime.ts";
export type { AdapterSummary, PipelineOptions, Runtime, RuntimeOptions } from "./src/gpu/runtime.ts";
export { readBack } from "./src/gpu/readback.ts";
export type { ReadRegion } from "./src/gpu/readback.ts";
export { SparsekdError } from "./src/errors.ts";
export { runMain } from "./src/cli/run_main.ts";
export {
  dtypeBytes,
  FORMAT_VERSION,
  indexDtypeFor,
  MANIFEST_FORMAT,
  RUN_FORMAT,
  SHARD_FORMAT,
} from "./src/format/types.ts";
export { manifestPath, shardCount, shardPath, shardRange } from "./src/format/layout.ts";
export type {
  Fingerprinted,
  IndexDtype,
  Manifest,
  ManifestEntry,
  RunJson,
  ShardHeader,
  ShardRecord,
  ShardTrailer,
  ValueDtype,
} from "./src/format/types.ts";
export { f16ToF32, f32ToF16 } from "./src/format/f16.ts";
export { Crc32c, crc32c, crc32cFromBase64, crc32cToBase64, crc32cUpdate } from "./src/format/crc32c.ts";
export { createShardWriter, encodeShardRecord, shardWriterOptions } from "./src/format/shard_writer.ts";
export type { ShardRecordInput, ShardWriterOptions } from "./src/format/shard_writer.ts";
export { decodeShard, readShard, readShards } from "./src/format/shard_reader.ts";
export type {
  DecodeShardOptions,
  ReadShardOptions,
  ReadShardsOptions,
  ShardsRecord,
  ShardSummary,
} from "./src/format/shard_reader.ts";
export {
  checkRunCompatible,
  ensureRunJson,
  makeRunJson,
  readRunJson,
  runDifference,
  validateRunJson,
  writeRunJson,
} from "./src/format/run_json.ts";
export type { RunJsonInput } from "./src/format/run_json.ts";
export { makeManifest, readManifests, writeManifest } from "./src/format/manifest.ts";
export { LocalStore, openLocalStore } from "./src/store/local.ts";
export type { LocalStoreOptions } from "./src/store/local.ts";
export { openStore, parseStoreUri } from "./src/store/open_store.ts";
export type { OpenStoreOptions, ParsedStoreUri } from "./src/store/open_store.ts";
export { ObjectExistsError } from "./src/store/store.ts";
export type { ObjectInfo, ObjectStore, ObjectWriter, ReadOptions } from "./src/store/store.ts";
export { demoSource, demoTokenizer, demoTokenStream } from "./src/data/demo.ts";
export type { DemoSourceOptions, DemoSplit, DemoTokenizer } from "./src/data/demo.ts";
export { BpeTokenizer, END_OF_TEXT } from "./src/data/bpe.ts";
export type { BpeJson } from "./src/data/bpe.ts";
export { npyBytes, NpyFile, parseNpyHeader } from "./src/data/npy.ts";
export type { NpyExpect, NpyHeader } from "./src/data/npy.ts";
export { npySource } from "./src/data/npy_source.ts";
export {
  decodeTokenFileHeader,
  encodeTokenFileHeader,
  TOKEN_FILE_HEADER_BYTES,
  TOKEN_FILE_MAGIC,
  tokenFileSource,
  TokenFileWriter,
} from "./src/data/token_file.ts";
export type { TokenFileHeader, TokenFileWriterOptions } from "./src/data/token_file.ts";
export { checkTokenIds, withVocabCheck } from "./src/data/check_tokens.ts";
export { hostFromEnv, ownsShard, shardsForHost } from "./src/data/hosts.ts";
export type { HostAssignment } from "./src/data/hosts.ts";
export { openSource } from "./src/data/open_source.ts";
export type { OpenSourceOptions } from "./src/data/open_source.ts";
export { sha256File, sha256Hex } from "./src/data/sha256.ts";
export type { TokenSource } from "./src/data/source.ts";
export { npyTeacher } from "./src/teacher/npy.ts";
export { loadTfjsArtifacts, tfjsTeacher } from "./src/teacher/tfjs_model.ts";
export type { LoadedArtifacts } from "./src/teacher/tfjs_model.ts";
export { openTeacher } from "./src/teacher/open_teacher.ts";
export type { Teacher, TeacherLogits } from "./src/teacher/teacher.ts";
export { CalibrationAccumulator, expectedCalibrationError } from "./src/report/calibration.ts";
export type { CalibrationBin } from "./src/report/calibration.ts";
export { renderReport } from "./src/report/html.ts";
export { parseReportInput } from "./src/report/validate.ts";
export { REPORT_FILE, REPORT_INPUT_FILE, writeReport } from "./src/report/write_report.ts";
export type {
  EvalPoint,
  FinalMetrics,
  ReliabilityBin,
  ReportInput,
  ReportSave,
  ReportStudent,
  ReportTeacher,
  TrainPoint,
} from "./src/report/types.ts";
export { NonFiniteLogitsError, topK, topKFromBuffer, topKReference } from "./src/kernels/topk.ts";
export type { TopKOptions, TopKResult } from "./src/kernels/topk.ts";
export { GCS_CHUNK_QUANTUM, GcsStore, openGcsStore } from "./src/store/gcs.ts";
export type { GcsStoreOptions } from "./src/store/gcs.ts";
export { startEmulator, UPLOAD_GRANULARITY } from "./testing/gcs_emulator/server.ts";
export type { EmulatorOptions, RunningEmulator } from "./testing/gcs_emulator/server.ts";
export { FaultInjector } from "./testing/gcs_emulator/faults.ts";
export type { FaultDecision, FaultHit, FaultRule } from "./testing/gcs_emulator/faults.ts";
export { EmulatorState } from "./testing/gcs_emulator/model.ts";
export {
  encodeSparseKd,
  encodeSparseKdSync,
  packRowInfo,
  prepareSparseKd,
  sparseKdLoss,
} from "./src/kernels/sparse_kd.ts";
export type { SparseKdGpuArgs, SparseKdPipelines } from "./src/kernels/sparse_kd.ts";
export {
  checkSparseKd,
  sparseKdLossReference,
  sparseKdLossReference64,
} from "./src/kernels/sparse_kd_reference.ts";
export type {
  CheckedSparseKd,
  SparseKdMode,
  SparseKdOptions,
  SparseKdResult,
  SparseKdTeacher,
} from "./src/kernels/sparse_kd_reference.ts";
export { createSparseKdLossOp } from "./src/train/kd_loss_op.ts";
export type { KdOpOptions, KdOpTeacher, SparseKdLossOp } from "./src/train/kd_loss_op.ts";
export {
  emptyGpuTensor,
  flushTfjs,
  tensorGpuBuffer,
  tfjsGpuBackend,
  useTfjsOnRuntime,
} from "./src/gpu/tfjs_backend.ts";
export { createGpt, gptWeightShapes, tuneTfjsForAdapter, validateGptConfig } from "./src/model/gpt.ts";
export type { Gpt, GptConfig } from "./src/model/gpt.ts";
export {
  checkpointDir,
  latestCheckpoint,
  loadCheckpoint,
  loadModel,
  saveCheckpoint,
  saveModel,
} from "./src/model/checkpoint.ts";
export type { ModelJson, TrainState, WeightEntry } from "./src/model/checkpoint.ts";
export { createRng, hashSeed } from "./src/model/rng.ts";
export type { Rng } from "./src/model/rng.ts";
export { createAdamW } from "./src/train/adamw.ts";
export type { AdamW, AdamWOptions } from "./src/train/adamw.ts";
export { learningRate } from "./src/train/schedule.ts";
export type { LrSchedule } from "./src/train/schedule.ts";
export { crossEntropy, nextTokenTargets } from "./src/train/ce_loss.ts";
export { prefetchBatches, shuffledRecords, tokenRecords, windowPermutation } from "./src/train/batches.ts";
export type { RecordSource } from "./src/train/batches.ts";
export { evaluate } from "./src/train/evaluate.ts";
export type { EvalResult } from "./src/train/evaluate.ts";
export { trainLoop } from "./src/train/trainer.ts";
export type { TrainLoopOptions, TrainLoopResult } from "./src/train/trainer.ts";
export type { TrainMode, TrainRecord } from "./src/train/records.ts";
export { DEFAULT_STUDENT, train, validateTrainOptions } from "./src/train/train.ts";
export type { TrainOptions, TrainResult } from "./src/train/train.ts";
export { parseTrainFlags, TRAIN_FLAGS, TRAIN_HELP, trainCommand } from "./src/cli/train_flags.ts";
export { kdModeHelp, LOSS_MODES, lseIndexFor, shardMode } from "./src/loss/modes.ts";
export type { LossMode, LossModeName } from "./src/loss/modes.ts";
export { createDemoTeacher } from "./src/teacher/builtin.ts";
export { createProgress } from "./src/cli/progress.ts";
export type { Progress, ProgressOptions } from "./src/cli/progress.ts";
export { saveTopK } from "./src/save/save_topk.ts";
export type { SaveProgress, SaveSummary, SaveTopKOptions } from "./src/save/save_topk.ts";
export { runDemo } from "./src/demo/run_demo.ts";
export type { DemoOptions } from "./src/demo/run_demo.ts";
export { finalEvaluation } from "./src/demo/final_eval.ts";
export type { FinalEvalOptions } from "./src/demo/final_eval.ts";
export { fullKdLoss } from "./src/train/full_kd_loss.ts";
export type { FullKdLossOptions } from "./src/train/full_kd_loss.ts";
export { runStudy, studyMarkdown } from "./src/demo/run_study.ts";
export type { StudyOptions, StudyResult, StudyRow } from "./src/demo/run_study.ts";
export {
  describeTeacherAndShards,
  evaluateStudent,
  readMetrics,
  saveDemoShards,
  stage,
  trainStudent,
} from "./src/demo/stages.ts";
export type { SaveNumbers, StudentRun } from "./src/demo/stages.ts";
export { teacherTopKMass } from "./src/demo/run_study.ts";
