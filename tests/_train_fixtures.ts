// Shared fixtures of the model and training tests (a file without `_test` so it is not run itself): a
// learnable synthetic token source, a synthetic CPU teacher, shards written with save-topk, and seeds that
// are printed when a test fails.
import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import type { TokenSource } from "../src/data/source.ts";
import { errorLine } from "../src/cli/run_main.ts";
import { TRAIN_FLAGS, trainCommand } from "../src/cli/train_flags.ts";
import { createRuntime, type Runtime } from "../src/gpu/runtime.ts";
import { useTfjsOnRuntime } from "../src/gpu/tfjs_backend.ts";
import { createRng } from "../src/model/rng.ts";
import { saveTopK } from "../src/save/save_topk.ts";
import { openStore } from "../src/store/open_store.ts";
import type { Teacher } from "../src/teacher/teacher.ts";

/** The flags of the smallest student the train tests use: 1 layer, width 8, 2 heads, 4 held-out sequences. */
export const TINY_MODEL: readonly string[] = [
  "--layers",
  "1",
  "--width",
  "8",
  "--heads",
  "2",
  "--heldout-sequences",
  "4",
];

let runtime: Promise<Runtime> | undefined;

/**
 * The runtime of the tests: WebGPU when there is an adapter (tfjs on its device), else the CPU.
 *
 * @example
 * ```ts
 * const rt = await testRuntime();
 * ```
 */
export function testRuntime(): Promise<Runtime> {
  runtime ??= (async () => {
    const rt = await createRuntime({ quiet: true, cpu: Deno.env.get("SPARSEKD_TEST_CPU") === "1" });
    await useTfjsOnRuntime(rt);
    return rt;
  })();
  return runtime;
}

/**
 * A token source of `sequences` sequences whose tokens follow next = (a·prev + b) mod V with probability
 * `1 − noise` (else random): learnable by a tiny model.
 *
 * @example
 * ```ts
 * const src = patternSource(7, { sequences: 64, seqLen: 16, vocab: 32 });
 * ```
 */
export function patternSource(
  seed: number,
  o: { sequences: number; seqLen: number; vocab: number; noise?: number },
): TokenSource {
  const rng = createRng(seed);
  const ids = new Uint32Array(o.sequences * o.seqLen);
  const a = 5, b = 3;
  for (let s = 0; s < o.sequences; s++) {
    let prev = rng.int(o.vocab);
    for (let t = 0; t < o.seqLen; t++) {
      ids[s * o.seqLen + t] = prev;
      prev = rng.uniform() < (o.noise ?? 0.1) ? rng.int(o.vocab) : (a * prev + b) % o.vocab;
    }
  }
  return {
    sequences: o.sequences,
    seqLen: o.seqLen,
    fingerprint: `pattern-${seed}-${o.sequences}-${o.seqLen}-${o.vocab}`,
    description: "synthetic pattern",
    read(start, count) {
      if (start + count > o.sequences) return Promise.reject(new RangeError("past the end"));
      return Promise.resolve(ids.slice(start * o.seqLen, (start + count) * o.seqLen));
    },
  };
}

/**
 * A CPU teacher that knows the pattern of {@linkcode patternSource}: high logits on the next token, noise
 * elsewhere.
 *
 * @example
 * ```ts
 * const teacher = patternTeacher(32);
 * ```
 */
export function patternTeacher(vocab: number, seed = 1): Teacher {
  const rng = createRng(seed);
  return {
    vocabSize: vocab,
    fingerprint: `pattern-teacher-${vocab}-${seed}`,
    description: "synthetic pattern teacher",
    forward(tokens, _start, count, L) {
      const out = new Float32Array(count * L * vocab);
      for (let r = 0; r < count * L; r++) {
        for (let v = 0; v < vocab; v++) out[r * vocab + v] = rng.normal();
        out[r * vocab + (5 * tokens[r] + 3) % vocab] += 6;
      }
      return Promise.resolve({ kind: "cpu", array: out });
    },
    dispose() {},
  };
}

/**
 * Writes top-k shards of the pattern data with the pattern teacher into `dir` (save-topk on the CPU).
 *
 * @example
 * ```ts
 * await writePatternShards(dir, { seed: 1, sequences: 40, seqLen: 16, vocab: 32, k: 8 });
 * ```
 */
export async function writePatternShards(
  dir: string,
  o: {
    seed: number;
    sequences: number;
    seqLen: number;
    vocab: number;
    k: number;
    lseTemperatures?: number[];
    teacherVocab?: number;
  },
): Promise<void> {
  const rt = await createRuntime({ quiet: true, cpu: true });
  const store = await openStore(dir, { create: true });
  await saveTopK({
    rt,
    teacher: patternTeacher(o.teacherVocab ?? o.vocab, o.seed),
    source: patternSource(o.seed, o),
    store,
    k: o.k,
    batchSize: 4,
    sequencesPerShard: 8,
    valueDtype: "f32",
    lseTemperatures: o.lseTemperatures ?? [1],
    host: { index: 0, count: 1 },
  });
}

/**
 * Runs `f` with console.log and console.error silenced (the trainer's progress and summary lines).
 *
 * @example
 * ```ts
 * await quietly(() => trainCommand(["--steps", "2"]));
 * ```
 */
export async function quietly<T>(f: () => Promise<T>): Promise<T> {
  const log = console.log, error = console.error;
  console.log = () => {};
  console.error = () => {};
  try {
    return await f();
  } finally {
    console.log = log;
    console.error = error;
  }
}

/**
 * Asserts that `deno task train` with `args` fails with a one-line {@linkcode SparsekdError} whose line as
 * the command prints it (`error: …`, options named by their flags) matches `pattern`.
 *
 * @example
 * ```ts
 * await trainRejects(["--alpha", "2"], /--alpha must be in \[0, 1\]/);
 * ```
 */
export async function trainRejects(args: string[], pattern: RegExp): Promise<void> {
  await assert.rejects(
    () => quietly(() => trainCommand(args)),
    (e: Error) => {
      assert.ok(e instanceof SparsekdError, `not a SparsekdError: ${e.stack}`);
      assert.ok(!e.message.includes("\n"), "one line");
      assert.match(errorLine(e as SparsekdError, TRAIN_FLAGS), pattern);
      return true;
    },
  );
}
