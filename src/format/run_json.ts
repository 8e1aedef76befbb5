/**
 * `OUT/run.json`: building, validating, reading, create-only writing, and the compatibility check that
 * refuses a resumed or parallel host given other inputs.
 * @module
 */

import { SparsekdError } from "../errors.ts";
import { ObjectExistsError, type ObjectStore } from "../store/store.ts";
import {
  type Backend,
  FORMAT_VERSION,
  indexDtypeFor,
  MAX_SAMPLE_N,
  RUN_FORMAT,
  type RunJson,
  type SampleSpec,
} from "./types.ts";
import { joinUri } from "./uri.ts";

/** The path of run.json inside OUT. */
export const RUN_JSON_PATH = "run.json";

/** What {@linkcode makeRunJson} needs: run.json's fields less the constants and the implied index dtype. */
export interface RunJsonInput extends Omit<RunJson, "format" | "version" | "indexDtype" | "backend"> {
  /** The backend computing the shards (recorded when given). */
  backend?: Backend;
}

/**
 * Builds a run.json object with the keys in canonical order and the index dtype the vocabulary implies.
 *
 * @example
 * ```ts
 * const run = makeRunJson({ vocabSize: 512, k: 8, seqLen: 64, valueDtype: "f16", lseTemperatures: [1, 2],
 *   sequences: 100, sequencesPerShard: 16, teacher: { fingerprint: "ab" }, data: { fingerprint: "cd" },
 *   backend: "webgpu" });
 * ```
 */
export function makeRunJson(input: RunJsonInput): RunJson {
  const run: RunJson = {
    format: RUN_FORMAT,
    version: FORMAT_VERSION,
    vocabSize: input.vocabSize,
    k: input.k,
    seqLen: input.seqLen,
    indexDtype: indexDtypeFor(input.vocabSize),
    valueDtype: input.valueDtype,
    lseTemperatures: [...input.lseTemperatures],
    sequences: input.sequences,
    sequencesPerShard: input.sequencesPerShard,
    teacher: { ...input.teacher },
    data: { ...input.data },
  };
  if (input.backend !== undefined) run.backend = input.backend;
  if (input.sample !== undefined) {
    // canonical key order; absent when the run stores no samples (such a run.json keeps its v1 bytes)
    run.sample = { n: input.sample.n, temperature: input.sample.temperature, seed: input.sample.seed };
  }
  return validateRunJson(run, "run.json");
}

/** The most sequences a run may have (2^40). */
export const MAX_SEQUENCES = 2 ** 40;
/** The most shards a run may have (2^24). */
export const MAX_SHARDS = 2 ** 24;
/** The largest `bin` of a record, in bytes (1 GiB: well inside bin32 and a typed array). */
const MAX_BIN = 2 ** 30;

/** The largest run.json or manifest read (64 MiB: a manifest of about 400,000 shards). */
export const MAX_JSON_BYTES = 64 << 20;

const BACKENDS: readonly Backend[] = ["webgpu", "cpu"];

const isPosInt = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x) && x > 0;

/**
 * Checks that a parsed object is a valid v1 run.json; throws a one-line {@linkcode SparsekdError} naming
 * `where` and the first bad field.
 *
 * @example
 * ```ts
 * const run = validateRunJson(JSON.parse(text), "out/run.json");
 * ```
 */
export function validateRunJson(x: unknown, where: string): RunJson {
  const bad = (what: string): never => {
    throw new SparsekdError(`${where}: ${what}`);
  };
  if (typeof x !== "object" || x === null || Array.isArray(x)) bad("not a JSON object");
  const r = x as Record<string, unknown>;
  if (r.format !== RUN_FORMAT) bad(`format is ${JSON.stringify(r.format)}, expected "${RUN_FORMAT}"`);
  if (r.version !== FORMAT_VERSION) bad(`version ${JSON.stringify(r.version)} is not supported (only 1)`);
  for (const key of ["vocabSize", "k", "seqLen", "sequences", "sequencesPerShard"]) {
    // k may be 0 in a run that stores sampled targets (samples only)
    if (key === "k" && r.sample !== undefined && r.k === 0) continue;
    if (!isPosInt(r[key])) bad(`${key} must be a positive integer (got ${JSON.stringify(r[key])})`);
  }
  if (r.sample !== undefined) {
    const why = sampleSpecProblem(r.sample);
    if (why) bad(`sample ${why}`);
  }
  if ((r.vocabSize as number) > 2 ** 32) bad(`vocabSize ${r.vocabSize} exceeds 2^32`);
  if ((r.sequences as number) > MAX_SEQUENCES) {
    bad(`sequences ${r.sequences} exceeds ${MAX_SEQUENCES} (2^40)`);
  }
  const shards = Math.ceil((r.sequences as number) / (r.sequencesPerShard as number));
  if (shards > MAX_SHARDS) {
    bad(`sequences / sequencesPerShard gives ${shards} shards, more than ${MAX_SHARDS} (2^24)`);
  }
  if ((r.k as number) > (r.vocabSize as number)) bad(`k ${r.k} exceeds vocabSize ${r.vocabSize}`);
  const wantIdx = indexDtypeFor(r.vocabSize as number);
  if (r.indexDtype !== wantIdx) {
    bad(`indexDtype is ${JSON.stringify(r.indexDtype)}, expected "${wantIdx}" for vocabSize ${r.vocabSize}`);
  }
  if (r.valueDtype !== "f32" && r.valueDtype !== "f16") {
    bad(`valueDtype must be "f32" or "f16" (got ${JSON.stringify(r.valueDtype)})`);
  }
  const temps = r.lseTemperatures;
  if (!Array.isArray(temps) || temps.some((t) => typeof t !== "number" || !(t > 0) || !Number.isFinite(t))) {
    bad(`lseTemperatures must be an array of positive numbers (got ${JSON.stringify(temps)})`);
  }
  if ((temps as number[]).length === 0) bad("lseTemperatures must hold at least one temperature");
  // Each record's largest bin must fit a bin32 (and the typed arrays the reader makes of it).
  const L = r.seqLen as number, K = r.k as number, M = (temps as number[]).length;
  const NS = (r.sample as SampleSpec | undefined)?.n ?? 0;
  if (4 * L * Math.max(K, M, NS) > MAX_BIN) {
    bad(
      `seqLen ${L} × max(k ${K}, temperatures ${M}, sample.n ${NS}) × 4 bytes exceeds a record's limit of ${MAX_BIN} bytes`,
    );
  }
  for (const key of ["teacher", "data"]) {
    const e = r[key] as Record<string, unknown> | null;
    if (typeof e !== "object" || e === null || Array.isArray(e)) bad(`${key} must be an object`);
    if (typeof e!.fingerprint !== "string" || e!.fingerprint === "") {
      bad(`${key}.fingerprint must be a string`);
    }
  }
  if (r.backend !== undefined && !BACKENDS.includes(r.backend as Backend)) {
    bad(`backend must be "webgpu" or "cpu" when present (got ${JSON.stringify(r.backend)})`);
  }
  return r as unknown as RunJson;
}

/**
 * What is wrong with a `sample` entry (run.json or a shard header), or null when it is valid: a map of
 * exactly `n` (1..{@linkcode MAX_SAMPLE_N}), `temperature` (finite, > 0) and `seed` (a safe integer ≥ 0).
 *
 * @example
 * ```ts
 * sampleSpecProblem({ n: 0, temperature: 1, seed: 0 }); // "n must be an integer from 1 to 1024 (got 0)"
 * ```
 */
export function sampleSpecProblem(x: unknown): string | null {
  if (typeof x !== "object" || x === null || Array.isArray(x) || x instanceof Uint8Array) {
    return "must be an object {n, temperature, seed}";
  }
  const s = x as Record<string, unknown>;
  const keys = Object.keys(s);
  if (keys.length !== 3 || !["n", "temperature", "seed"].every((k) => keys.includes(k))) {
    return `must hold exactly n, temperature and seed (got ${keys.join(", ")})`;
  }
  if (typeof s.n !== "number" || !Number.isSafeInteger(s.n) || s.n < 1 || s.n > MAX_SAMPLE_N) {
    return `n must be an integer from 1 to ${MAX_SAMPLE_N} (got ${JSON.stringify(s.n)})`;
  }
  if (typeof s.temperature !== "number" || !Number.isFinite(s.temperature) || !(s.temperature > 0)) {
    return `temperature must be a finite number > 0 (got ${JSON.stringify(s.temperature)})`;
  }
  if (typeof s.seed !== "number" || !Number.isSafeInteger(s.seed) || s.seed < 0) {
    return `seed must be an integer from 0 to 2^53 - 1 (got ${JSON.stringify(s.seed)})`;
  }
  return null;
}

/**
 * The first field in which two runs differ (format, version, fingerprints, shapes, dtypes, temperatures,
 * counts, then the backend), as one line, or null when `wanted` may write into or read from `existing`.
 * A backend absent on either side (a run.json written before it was recorded) is not compared.
 *
 * @example
 * ```ts
 * runDifference(existing, wanted); // "k is 32 there and 64 here"
 * ```
 */
export function runDifference(existing: RunJson, wanted: RunJson): string | null {
  const fields: [string, unknown, unknown][] = [
    ["format", existing.format, wanted.format],
    ["version", existing.version, wanted.version],
    ["teacher.fingerprint", existing.teacher?.fingerprint, wanted.teacher?.fingerprint],
    ["data.fingerprint", existing.data?.fingerprint, wanted.data?.fingerprint],
    ["vocabSize", existing.vocabSize, wanted.vocabSize],
    ["k", existing.k, wanted.k],
    ["seqLen", existing.seqLen, wanted.seqLen],
    ["indexDtype", existing.indexDtype, wanted.indexDtype],
    ["valueDtype", existing.valueDtype, wanted.valueDtype],
    ["lseTemperatures", existing.lseTemperatures, wanted.lseTemperatures],
    ["sequences", existing.sequences, wanted.sequences],
    ["sequencesPerShard", existing.sequencesPerShard, wanted.sequencesPerShard],
    ["sample", existing.sample ?? null, wanted.sample ?? null],
  ];
  if (existing.backend !== undefined && wanted.backend !== undefined) {
    fields.push(["backend", existing.backend, wanted.backend]);
  }
  for (const [name, a, b] of fields) {
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      return `${name} is ${JSON.stringify(a)} there and ${JSON.stringify(b)} here`;
    }
  }
  return null;
}

/**
 * Throws a one-line {@linkcode SparsekdError} naming the first differing field when a run that wants
 * `wanted` meets an OUT whose run.json is `existing`.
 *
 * @example
 * ```ts
 * checkRunCompatible(await readRunJson(store), wanted, store.uri);
 * ```
 */
export function checkRunCompatible(existing: RunJson, wanted: RunJson, where = "OUT"): void {
  const diff = runDifference(existing, wanted);
  if (diff !== null) {
    throw new SparsekdError(
      `${joinUri(where, RUN_JSON_PATH)} belongs to another run: ${diff} (to start over, delete ${where} ` +
        `or write to another output; to continue it, use the inputs and settings it names)`,
    );
  }
}

/**
 * Canonical bytes of run.json (2-space indented JSON plus a newline).
 *
 * @example
 * ```ts
 * const bytes = encodeRunJson(run);
 * ```
 */
export function encodeRunJson(run: RunJson): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(run, null, 2) + "\n");
}

/**
 * Reads and validates `OUT/run.json`; a missing or invalid file is a one-line {@linkcode SparsekdError}.
 *
 * @example
 * ```ts
 * const run = await readRunJson(store);
 * ```
 */
export async function readRunJson(store: ObjectStore): Promise<RunJson> {
  const where = joinUri(store.uri, RUN_JSON_PATH);
  if (!(await store.exists(RUN_JSON_PATH))) throw new SparsekdError(`${where} does not exist`);
  const size = await store.size(RUN_JSON_PATH);
  if (size !== null && size > MAX_JSON_BYTES) {
    throw new SparsekdError(`${where} is ${size} bytes, more than a run.json can be (${MAX_JSON_BYTES})`);
  }
  const bytes = await store.readBytes(RUN_JSON_PATH);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes));
  } catch (err) {
    throw new SparsekdError(`${where} is not valid JSON: ${(err as Error).message.split("\n")[0]}`);
  }
  return validateRunJson(parsed, where);
}

/**
 * Writes `OUT/run.json`, create-only: throws {@linkcode ObjectExistsError} when it already exists.
 *
 * @example
 * ```ts
 * await writeRunJson(store, run);
 * ```
 */
export async function writeRunJson(store: ObjectStore, run: RunJson): Promise<void> {
  validateRunJson(run, "run.json to write");
  await store.writeBytes(RUN_JSON_PATH, encodeRunJson(run));
}

/**
 * Creates `OUT/run.json`, or, when it exists (written earlier or by a parallel host), checks that it is
 * compatible with `wanted`. Returns the run.json now in OUT.
 *
 * @example
 * ```ts
 * const run = await ensureRunJson(store, wanted);
 * ```
 */
export async function ensureRunJson(store: ObjectStore, wanted: RunJson): Promise<RunJson> {
  if (!(await store.exists(RUN_JSON_PATH))) {
    try {
      await writeRunJson(store, wanted);
      return wanted;
    } catch (err) {
      if (!(err instanceof ObjectExistsError)) throw err;
    }
  }
  const existing = await readRunJson(store);
  checkRunCompatible(existing, wanted, store.uri);
  return existing;
}
