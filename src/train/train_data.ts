/**
 * The data of a training run: the training records and the held-out set, from save-topk's shards or from a
 * token source, checked against the student's vocabulary and the loss mode, plus the facts a resume must
 * find unchanged.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { openSource } from "../data/open_source.ts";
import { readRunJson } from "../format/run_json.ts";
import { lseIndexFor, sampleLseIndexFor, shardMode } from "../loss/modes.ts";
import type { ObjectStore } from "../store/store.ts";
import { type RecordSource, tokenRecords } from "./batches.ts";
import type { TrainMode, TrainRecord } from "./records.ts";
import { shardRecord, type ShardRow, shardStream } from "./shard_records.ts";

/** The default number of held-out sequences, capped at half the data when not given explicitly. */
export const DEFAULT_HELDOUT = 64;

/** What {@linkcode openTrainData} needs. */
export interface TrainDataOptions {
  /** The loss. */
  mode: TrainMode;
  /** KD temperature (mode `tail` needs the stored logsumexp at it). */
  temperature: number;
  /** Held-out sequences; undefined: {@linkcode DEFAULT_HELDOUT}, capped at half the data. */
  heldoutSequences?: number;
  /** The student's vocabulary (default: the shards' or the data's). */
  vocab?: number;
  /** Teacher ids ≥ the student's vocabulary: refuse them (`error`) or drop them. */
  vocabPad: "error" | "drop";
  /** Top-k entries to use (default: all stored). */
  k?: number;
  /** Tokens per sequence (must match the shards when given). */
  seqLen?: number;
  /** `text:` data: the Hugging Face tokenizer.json. */
  tokenizer?: string;
  /** `text:` data: the end-of-text token (default `<|endoftext|>`). */
  eotToken?: string;
  /** Let targets cross document boundaries: mask no end-of-text position (text data or its shards). */
  crossDocuments?: boolean;
}

/** The opened data. */
export interface TrainData {
  /** The training records. */
  data: RecordSource<TrainRecord>;
  /** The held-out records (kept in memory). */
  heldout: TrainRecord[];
  /** Tokens per sequence. */
  seqLen: number;
  /** The student's vocabulary. */
  vocab: number;
  /** Top-k entries used per position (0 without shards). */
  k: number;
  /** Top-k entries stored per position (0 without shards). */
  storedK: number;
  /** Facts recorded in each checkpoint and checked on resume. */
  identity: Record<string, unknown>;
  /** Mode `sampled`: the temperature t the shards' samples were drawn at. */
  sampleTemperature?: number;
  /** Positions holding this id are masked in training (document boundaries of text data). */
  boundaryToken?: number;
}

/** Resolves the held-out count against `total` sequences: the rule of {@linkcode TrainDataOptions}. */
function heldoutCount(given: number | undefined, total: number, where: string): number {
  const half = Math.floor(total / 2);
  if (given === undefined) return Math.min(DEFAULT_HELDOUT, half);
  if (given > half) {
    throw new SparsekdError(
      `heldoutSequences must be at most half of the ${total} sequences of ${where} (${half}; got ${given})`,
      { option: "heldoutSequences" },
    );
  }
  return given;
}

/**
 * Opens a token source (`builtin:demo`, `builtin:tslib`, `npy:…`, `tokens:…`) for training without shards.
 * The held-out sequences are the corpus's held-out split for `builtin:*`, else the last ones of the data.
 *
 * @example
 * ```ts
 * const d = await openTokenData("builtin:demo", { mode: "ce", temperature: 1, vocabPad: "error" });
 * ```
 */
export async function openTokenData(spec: string, o: TrainDataOptions): Promise<TrainData> {
  // The built-in corpora have a held-out split of their own and the vocabulary of their tokenizer (2,048).
  const demo = spec === "builtin:demo" || spec === "builtin:tslib";
  const source = await openSource(spec, {
    seqLen: o.seqLen ?? (spec.startsWith("builtin:") ? 64 : undefined),
    tokenizer: o.tokenizer,
    eotToken: o.eotToken,
    crossDocuments: o.crossDocuments,
    ...(spec.startsWith("text:") && o.vocab !== undefined
      ? { vocabSize: o.vocab, vocabOwner: "the student's" }
      : {}),
  });
  const seqLen = source.seqLen;
  const vocab = o.vocab ?? source.vocabSize ?? (demo ? 2048 : 0);
  if (!(vocab >= 1)) {
    throw new SparsekdError(`vocab must be given for ${spec} (the student's vocabulary)`, {
      option: "vocab",
    });
  }
  const tokens = tokenRecords(source);
  let data: RecordSource<TrainRecord> = {
    sequences: source.sequences,
    stream: (from) => mapAsync(tokens.stream(from), (t) => ({ tokens: t })),
  };
  const heldout: TrainRecord[] = [];
  const toRecords = (ids: Uint32Array, n: number) => {
    for (let i = 0; i < n; i++) heldout.push({ tokens: ids.slice(i * seqLen, (i + 1) * seqLen) });
  };
  if (demo) {
    const n = o.heldoutSequences ?? DEFAULT_HELDOUT;
    if (n > 0) {
      const h = await openSource(spec, { seqLen, split: "heldout", maxSequences: n });
      toRecords(await h.read(0, h.sequences), h.sequences);
    }
  } else {
    const n = heldoutCount(o.heldoutSequences, source.sequences, spec);
    if (n > 0) {
      toRecords(await source.read(source.sequences - n, n), n);
      data = { sequences: source.sequences - n, stream: data.stream };
    }
  }
  checkHeldout(heldout, vocab);
  return {
    data,
    heldout,
    seqLen,
    vocab,
    k: 0,
    storedK: 0,
    identity: { data: source.description, fingerprint: source.fingerprint },
    boundaryToken: source.boundaryToken,
  };
}

/**
 * Opens save-topk's shards in `store` for training: the last held-out sequences are the evaluation set (with
 * every stored top-k entry, so runs with another `k` are scored alike), the others the training records.
 *
 * @example
 * ```ts
 * const d = await openShardData(store, { mode: "topk", temperature: 1, vocabPad: "error" });
 * ```
 */
export async function openShardData(store: ObjectStore, o: TrainDataOptions): Promise<TrainData> {
  const uri = store.uri;
  const run = await readRunJson(store);
  const seqLen = run.seqLen;
  const sparse = o.mode !== "ce" && o.mode !== "full";
  const mode = sparse ? shardMode(o.mode) : null;
  const sampleIndex = mode ? sampleLseIndexFor(mode, run.sample, run.lseTemperatures, uri) : -1;
  if (mode?.needsSamples && o.k !== undefined) {
    throw new SparsekdError(`k selects top-k entries: kdMode ${mode.name} trains from the sampled targets`, {
      option: "k",
    });
  }
  if (mode && !mode.needsSamples && run.k === 0) {
    throw new SparsekdError(
      `kdMode ${mode.name} needs top-k targets; ${uri} holds sampled targets only (k = 0): use kdMode sampled`,
      { option: "kdMode" },
    );
  }
  const k = o.k ?? run.k;
  if (k > run.k) {
    throw new SparsekdError(
      `k must be at most ${run.k} (got ${k}): ${uri} holds the top-${run.k} per position`,
      {
        option: "k",
      },
    );
  }
  const vocab = o.vocab ?? run.vocabSize;
  if (o.seqLen !== undefined && o.seqLen !== run.seqLen) {
    throw new SparsekdError(`seqLen: the shards hold sequences of ${run.seqLen} tokens, not ${o.seqLen}`, {
      option: "seqLen",
    });
  }
  if (vocab > run.vocabSize) {
    throw new SparsekdError(
      `vocab: the shards' vocabulary (${run.vocabSize}) is smaller than the student's (${vocab})`,
      {
        option: "vocab",
      },
    );
  }
  if (vocab < run.vocabSize && o.vocabPad === "error" && o.mode !== "ce") {
    throw new SparsekdError(
      `vocabPad: the shards' vocabulary (${run.vocabSize}) is larger than the student's (${vocab}): drop teacher ids ≥ ${vocab} to train`,
      { option: "vocabPad" },
    );
  }
  const tempIndex = mode ? lseIndexFor(mode, o.temperature, run.lseTemperatures, uri) : -1;
  const held = heldoutCount(o.heldoutSequences, run.sequences, uri);
  const trainCount = run.sequences - held;
  const toRecord = (kept: number) => (r: ShardRow) =>
    shardRecord(r, run, kept, vocab, tempIndex, seqLen, o.vocabPad, sampleIndex);
  const data: RecordSource<TrainRecord> = {
    sequences: trainCount,
    stream: (from) =>
      shardStream(store, run, from, trainCount, sparse ? toRecord(k) : (r) => ({ tokens: r.tokens })),
  };
  const heldout: TrainRecord[] = [];
  for await (const r of shardStream(store, run, trainCount, run.sequences, toRecord(run.k))) heldout.push(r);
  checkHeldout(heldout, vocab);
  const identity: Record<string, unknown> = { shards: uri, teacher: run.teacher, data: run.data, k: run.k };
  if (k < run.k) identity.kUsed = k;
  if (sampleIndex >= 0) identity.sample = run.sample;
  const boundary = run.data.boundaryToken;
  if (boundary !== undefined && !(Number.isSafeInteger(boundary) && (boundary as number) >= 0)) {
    throw new SparsekdError(
      `${uri}/run.json: data.boundaryToken must be a token id (got ${JSON.stringify(boundary)})`,
    );
  }
  if (boundary !== undefined && o.crossDocuments) identity.crossDocuments = true;
  const boundaryToken = o.crossDocuments ? undefined : boundary as number | undefined;
  return {
    data,
    heldout,
    seqLen,
    vocab,
    k,
    storedK: run.k,
    identity,
    sampleTemperature: sampleIndex >= 0 ? run.sample!.temperature : undefined,
    boundaryToken,
  };
}

function checkHeldout(heldout: TrainRecord[], vocab: number): void {
  for (const h of heldout) {
    for (const t of h.tokens) {
      if (t >= vocab) throw new SparsekdError(`token id ${t} is outside the student's vocabulary (${vocab})`);
    }
  }
}

async function* mapAsync<A, B>(it: AsyncIterable<A>, f: (a: A) => B): AsyncGenerator<B> {
  for await (const a of it) yield f(a);
}
