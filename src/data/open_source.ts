/**
 * Parses a `--data` spec and opens the token source: `builtin:demo` (the default) | `builtin:tslib` |
 * `npy:<path>` | `tokens:<path>` (the binary token file of docs/data.md) | `text:<file or folder>` (with a
 * Hugging Face `tokenizer`).
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { withVocabCheck } from "./check_tokens.ts";
import type { DemoSplit } from "./brown.ts";
import type { TokenSource } from "./source.ts";
import { sha256Hex } from "./sha256.ts";

/**
 * The names of the built-in data sources (`builtin:<name>`): `demo` (the Brown corpus) and `tslib` (the
 * TypeScript library declarations, a low-entropy corpus).
 */
export const BUILTIN_DATA: readonly string[] = ["demo", "tslib"];

/** Options of {@linkcode openSource}. */
export interface OpenSourceOptions {
  /** Tokens per sequence: required for `builtin:*`; for files it must match the file when given. */
  seqLen?: number;
  /** Use at most this many sequences (the first ones). */
  maxSequences?: number;
  /** When given, every read is checked: an id ≥ vocabSize is a one-line error naming sequence and position. */
  vocabSize?: number;
  /** Split of `builtin:*` (default `train`; files have no split). */
  split?: DemoSplit;
  /** `text:` data: the Hugging Face tokenizer.json (required there, refused elsewhere). */
  tokenizer?: string;
  /** `text:` data: the end-of-text token put between documents (default `<|endoftext|>`). */
  eotToken?: string;
  /** `text:` data: let targets cross document boundaries (training masks no position). */
  crossDocuments?: boolean;
  /** Whose vocabulary `vocabSize` is, for the errors (default `the teacher's`). */
  vocabOwner?: string;
}

/**
 * Opens the token source a `--data` spec names. Bad specs are one-line {@linkcode SparsekdError}s about the
 * option `data` (a command maps it to its flag through `runMain`).
 *
 * @example
 * ```ts
 * const src = await openSource("builtin:demo", { seqLen: 64, vocabSize: 2048 });
 * const other = await openSource("npy:./ids.npy", { vocabSize: 50257 });
 * const text = await openSource("text:corpus/", { tokenizer: "tokenizer.json", seqLen: 1024 });
 * ```
 */
export async function openSource(spec: string, options: OpenSourceOptions = {}): Promise<TokenSource> {
  const colon = spec.indexOf(":");
  const kind = colon < 0 ? spec : spec.slice(0, colon);
  const arg = colon < 0 ? "" : spec.slice(colon + 1);
  let source: TokenSource;
  if (kind !== "text") {
    for (const [option, v] of [["tokenizer", options.tokenizer], ["eotToken", options.eotToken]] as const) {
      if (v !== undefined) {
        throw new SparsekdError(`${option} is only for text: data (the data is ${spec})`, { option });
      }
    }
  }
  if (kind === "text") {
    if (arg === "") {
      throw new SparsekdError("data text: needs a path (text:<file or folder>)", { option: "data" });
    }
    if (options.tokenizer === undefined) {
      throw new SparsekdError(`tokenizer must be given for ${spec} (a Hugging Face tokenizer.json)`, {
        option: "tokenizer",
      });
    }
    if (options.split !== undefined && options.split !== "train") {
      throw new SparsekdError(`data ${spec}: text has no ${options.split} split`, { option: "data" });
    }
    if (options.seqLen === undefined) {
      throw new SparsekdError(`data ${spec} needs a sequence length (--seq-len)`, { option: "data" });
    }
    const { textSource } = await import("./text_source.ts");
    source = await textSource(arg, {
      tokenizer: options.tokenizer,
      eotToken: options.eotToken,
      seqLen: options.seqLen,
      crossDocuments: options.crossDocuments,
      vocabSize: options.vocabSize,
      vocabOwner: options.vocabOwner,
    });
    if (options.maxSequences !== undefined && options.maxSequences < source.sequences) {
      source = limit(source, options.maxSequences);
    }
  } else if (kind === "builtin") {
    if (!BUILTIN_DATA.includes(arg)) {
      throw new SparsekdError(
        `data builtin:${arg}: the built-in data are ${BUILTIN_DATA.map((n) => `builtin:${n}`).join(" and ")}`,
        { option: "data" },
      );
    }
    if (options.seqLen === undefined) {
      throw new SparsekdError(`data builtin:${arg} needs a sequence length`, { option: "data" });
    }
    const opts = { split: options.split, seqLen: options.seqLen, maxSequences: options.maxSequences };
    source = arg === "demo"
      ? await (await import("./demo.ts")).demoSource(opts)
      : await (await import("./tslib.ts")).tslibSource(opts);
  } else if (kind === "npy" || kind === "tokens") {
    if (arg === "") {
      throw new SparsekdError(`data ${kind}: needs a path (${kind}:<path>)`, { option: "data" });
    }
    if (options.split !== undefined && options.split !== "train") {
      throw new SparsekdError(`data ${spec}: a file has no ${options.split} split`, { option: "data" });
    }
    if (kind === "npy") {
      const { npySource } = await import("./npy_source.ts");
      source = await npySource(arg);
    } else {
      const { tokenFileSource } = await import("./token_file.ts");
      source = await tokenFileSource(arg);
    }
    if (options.seqLen !== undefined && options.seqLen !== source.seqLen) {
      throw new SparsekdError(`${arg}: sequences are ${source.seqLen} tokens long, not ${options.seqLen}`);
    }
    if (options.maxSequences !== undefined && options.maxSequences < source.sequences) {
      source = limit(source, options.maxSequences);
    }
  } else {
    throw new SparsekdError(
      `data "${spec}": expected builtin:demo, builtin:tslib, npy:<path>, tokens:<path> or text:<path>`,
      {
        option: "data",
      },
    );
  }
  return options.vocabSize === undefined ? source : withVocabCheck(source, options.vocabSize);
}

function limit(source: TokenSource, maxSequences: number): TokenSource {
  if (!(Number.isInteger(maxSequences) && maxSequences >= 1)) {
    throw new SparsekdError(`maxSequences must be ≥ 1 (got ${maxSequences})`, { option: "maxSequences" });
  }
  return {
    sequences: maxSequences,
    seqLen: source.seqLen,
    // Another limit is other data: it must not resume a run made with a different one.
    fingerprint: sha256Hex(new TextEncoder().encode(`${source.fingerprint}:first${maxSequences}`)),
    description: `${source.description} (first ${maxSequences} sequences)`,
    boundaryToken: source.boundaryToken,
    vocabSize: source.vocabSize,
    read(start: number, count: number): Promise<Uint32Array> {
      if (start + count > maxSequences) {
        return Promise.reject(new RangeError(`read(${start}, ${count}) past the ${maxSequences} sequences`));
      }
      return source.read(start, count);
    },
  };
}
