/**
 * Hugging Face tokenizers (`tokenizer.json`) for `--data text:…`, through `@huggingface/tokenizers`
 * (Tokenizers.js, Hugging Face's pure-JS implementation: no native addon, no dependencies). Opening checks
 * the file (exists, size, JSON, a known model type, loadable) and finds the end-of-text token; every
 * failure is one line naming the file.
 * @module
 */
import { Tokenizer } from "../deps/hf_tokenizers.ts";
import { SparsekdError } from "../errors.ts";
import { sha256Hex } from "./sha256.ts";

/** The largest tokenizer.json read (256 MiB; real ones are 1–35 MB). */
export const MAX_TOKENIZER_BYTES = 256 << 20;
/** The end-of-text token looked up when none is named (GPT-2's and many others'). */
export const DEFAULT_EOT_TOKEN = "<|endoftext|>";
/** The model types of `tokenizer.json` that Tokenizers.js implements. */
const MODEL_TYPES = ["BPE", "WordPiece", "Unigram"];

/** An opened Hugging Face tokenizer. */
export interface HfTokenizer {
  /** The file it came from. */
  readonly path: string;
  /** SHA-256 (hex) of the tokenizer.json bytes. */
  readonly sha256: string;
  /** 1 + the largest id of the vocabulary and the added tokens. */
  readonly vocabSize: number;
  /** The end-of-text token's id. */
  readonly endOfText: number;
  /** Its text (e.g. `<|endoftext|>`). */
  readonly endOfTextToken: string;
  /** The model type (`BPE`, `WordPiece`, `Unigram`). */
  readonly modelType: string;
  /** Text → ids, without the tokenizer's special-token template (no BOS/EOS added). */
  encode(text: string): number[];
  /** Ids → text (special tokens kept, no clean-up of spaces). */
  decode(ids: ArrayLike<number>): string;
}

/** Options of {@linkcode openHfTokenizer}. */
export interface OpenHfTokenizerOptions {
  /** The end-of-text token's text (default `<|endoftext|>`); it must be in the vocabulary. */
  eotToken?: string;
}

/**
 * Opens a Hugging Face `tokenizer.json`. A missing or oversized file, one that is not JSON, not a
 * tokenizer.json (no known `model.type`) or that the library cannot load, and an end-of-text token that is
 * not in the vocabulary are one-line {@linkcode SparsekdError}s about the option `tokenizer` (or
 * `eotToken`).
 *
 * @example
 * ```ts
 * const tok = await openHfTokenizer("models/demo_teacher/tokenizer.json");
 * const ids = tok.encode("the jury said"); // ids < tok.vocabSize
 * console.log(tok.endOfText, tok.decode(ids));
 * ```
 */
export async function openHfTokenizer(
  path: string,
  options: OpenHfTokenizerOptions = {},
): Promise<HfTokenizer> {
  const fail = (what: string, option = "tokenizer"): never => {
    throw new SparsekdError(`tokenizer ${path}: ${what}`, { option });
  };
  let size = 0;
  try {
    const st = await Deno.stat(path);
    if (!st.isFile) fail("is not a file");
    size = st.size;
  } catch (err) {
    if (err instanceof SparsekdError) throw err;
    fail(
      err instanceof Deno.errors.NotFound ? "does not exist" : String((err as Error).message).split("\n")[0],
    );
  }
  if (size > MAX_TOKENIZER_BYTES) {
    fail(`is ${size} bytes, more than a tokenizer.json can be (${MAX_TOKENIZER_BYTES})`);
  }
  const bytes = await Deno.readFile(path);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    return fail(
      `is not JSON (${
        String((err as Error).message).split("\n")[0]
      }); expected a Hugging Face tokenizer.json`,
    );
  }
  const model = (json && typeof json === "object" && !Array.isArray(json) ? json.model : undefined) as
    | Record<string, unknown>
    | undefined;
  const modelType = typeof model?.type === "string"
    ? model.type
    : model && typeof model.vocab === "object" && Array.isArray(model.merges)
    ? "BPE" // older files leave out the BPE model's type
    : undefined;
  if (modelType === undefined || !MODEL_TYPES.includes(modelType)) {
    const hint = (json as { format?: unknown })?.format === "sparsekd-byte-bpe-v1"
      ? " (this is sparsekd's own BPE format: tools/build_demo_hf_tokenizer.ts converts it)"
      : "";
    fail(
      `unknown tokenizer format: expected a Hugging Face tokenizer.json with model.type ${
        MODEL_TYPES.join(", ")
      }` +
        ` (got ${modelType === undefined ? "no model.type" : JSON.stringify(modelType)})${hint}`,
    );
  }
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(json, {});
  } catch (err) {
    return fail(
      `cannot be loaded as a Hugging Face tokenizer: ${String((err as Error).message).split("\n")[0]}`,
    );
  }
  let vocabSize = 0;
  for (const id of tok.get_vocab(true).values()) if (id + 1 > vocabSize) vocabSize = id + 1;
  if (vocabSize < 1) fail("has an empty vocabulary");
  const eotToken = options.eotToken ?? DEFAULT_EOT_TOKEN;
  const endOfText = tok.token_to_id(eotToken);
  if (endOfText === undefined) {
    if (options.eotToken !== undefined) {
      throw new SparsekdError(
        `eotToken ${JSON.stringify(eotToken)} is not a token of the tokenizer ${path}`,
        { option: "eotToken" },
      );
    }
    fail(
      `has no ${JSON.stringify(eotToken)} token to put between documents; name the tokenizer's end-of-text ` +
        "token with --eot-token",
    );
  }
  return {
    path,
    sha256: sha256Hex(bytes),
    vocabSize,
    endOfText: endOfText!,
    endOfTextToken: eotToken,
    modelType: modelType!,
    encode: (text) => tok.encode(text, { add_special_tokens: false }).ids,
    decode: (ids) =>
      ids.length === 0 ? "" : tok.decode(Array.from(ids), { clean_up_tokenization_spaces: false }),
  };
}
