/**
 * The tokenizer beside an exported student: `sparsekd_tokenizer.json`, a note of what data the student was
 * trained on (the data's description and fingerprint, the shards and their teacher) and which tokenizer maps
 * text to its token ids, plus a copy of that tokenizer: the demo BPE (`demo_tokenizer.json`, sparsekd's
 * byte-level BPE format) when the data was `builtin:demo`, or the file given as `exportTokenizer`
 * (`tokenizer.json`, a Hugging Face tokenizer or a sparsekd BPE file), whose ids must fit the vocabulary.
 * @module
 */
import demoTokenizerJson from "../data/assets/demo_tokenizer.json" with { type: "json" };
import { createHash } from "node:crypto";
import { SparsekdError } from "../errors.ts";
import type { ObjectStore } from "../store/store.ts";

/** The note's file name, beside model.json. */
export const TOKENIZER_NOTE = "sparsekd_tokenizer.json";
/** `format` of the note. */
export const TOKENIZER_NOTE_FORMAT = "sparsekd.tokenizer-note";
/** The largest tokenizer file accepted (Hugging Face tokenizer.json files of large vocabularies are ~10–35 MB). */
export const MAX_TOKENIZER_BYTES = 256 << 20;

/** A tokenizer file read and checked by {@linkcode readTokenizerFile}. */
export interface TokenizerFile {
  /** Where it was read from. */
  path: string;
  /** Its bytes, copied verbatim. */
  bytes: Uint8Array;
  /** `huggingface` (a tokenizers `tokenizer.json`) or `sparsekd-byte-bpe-v1`. */
  kind: "huggingface" | "sparsekd-byte-bpe-v1";
  /** The largest token id it can produce. */
  maxId: number;
}

/** The largest id of a Hugging Face tokenizer.json: its model's vocabulary and its added tokens. */
function hfMaxId(json: Record<string, unknown>): number | null {
  const model = json.model as { vocab?: unknown } | undefined;
  let max = -1;
  const vocab = model?.vocab;
  if (Array.isArray(vocab)) max = vocab.length - 1; // Unigram: [piece, score] pairs, id = index
  else if (vocab && typeof vocab === "object") {
    for (const id of Object.values(vocab as Record<string, unknown>)) {
      if (typeof id === "number" && Number.isSafeInteger(id)) max = Math.max(max, id);
    }
  } else return null;
  if (Array.isArray(json.added_tokens)) {
    for (const t of json.added_tokens as { id?: unknown }[]) {
      if (typeof t?.id === "number" && Number.isSafeInteger(t.id)) max = Math.max(max, t.id);
    }
  }
  return max;
}

/**
 * Reads a tokenizer file for the export (option `exportTokenizer`) and checks it: a Hugging Face
 * `tokenizer.json` (an object with a `model.vocab`) or a sparsekd BPE JSON file, whose largest id is below
 * `vocabSize` when given. A missing, oversized or unrecognised file is a one-line {@linkcode SparsekdError}.
 *
 * @example
 * ```ts
 * const tok = await readTokenizerFile("tokenizer.json", 2048);
 * ```
 */
export async function readTokenizerFile(path: string, vocabSize?: number): Promise<TokenizerFile> {
  const fail = (why: string): never => {
    throw new SparsekdError(`exportTokenizer ${path}: ${why}`, { option: "exportTokenizer" });
  };
  let size = 0;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) fail("not a file");
    size = info.size;
  } catch (err) {
    if (err instanceof SparsekdError) throw err;
    fail(err instanceof Deno.errors.NotFound ? "no such file" : String(err).split("\n")[0]);
  }
  if (size > MAX_TOKENIZER_BYTES) fail(`${size} bytes, more than the ${MAX_TOKENIZER_BYTES} accepted`);
  const bytes = await Deno.readFile(path);
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    fail("not valid JSON");
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) fail("not a JSON object");
  let kind: TokenizerFile["kind"];
  let maxId: number;
  if (json.format === "sparsekd-byte-bpe-v1" && Number.isSafeInteger(json.vocabSize)) {
    kind = "sparsekd-byte-bpe-v1";
    maxId = (json.vocabSize as number) - 1;
  } else {
    const m = hfMaxId(json);
    if (m === null) {
      return fail("neither a Hugging Face tokenizer.json (no model.vocab) nor a sparsekd BPE file");
    }
    kind = "huggingface";
    maxId = m;
  }
  if (vocabSize !== undefined && maxId >= vocabSize) {
    fail(`its token ids go up to ${maxId}, beyond the student's vocabulary of ${vocabSize}`);
  }
  return { path, bytes, kind, maxId };
}

/** The data's description in a training run's identity (token data: a string; shards: run.json's `data`). */
function dataDescription(identity: Record<string, unknown>): string | undefined {
  const d = identity.data;
  if (typeof d === "string") return d;
  const desc = (d as { description?: unknown } | undefined)?.description;
  return typeof desc === "string" ? desc : undefined;
}

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Writes the tokenizer note (and the tokenizer's copy) beside an export under `dir/` of a store. Returns the
 * note. With neither a tokenizer file nor demo data, the note still records the data, with `tokenizer: null`.
 *
 * @example
 * ```ts
 * await writeTokenizerNote(store, "", { identity: { data: "builtin:demo (…)", fingerprint: "ab…" } });
 * ```
 */
export async function writeTokenizerNote(
  store: ObjectStore,
  dir: string,
  o: { identity: Record<string, unknown>; tokenizer?: TokenizerFile },
): Promise<Record<string, unknown>> {
  const description = dataDescription(o.identity);
  const data = typeof o.identity.data === "string"
    ? { description, fingerprint: o.identity.fingerprint ?? null }
    : { ...(o.identity.data as Record<string, unknown> | undefined) };
  let tokenizer: Record<string, unknown> | null = null;
  if (o.tokenizer) {
    await store.writeBytes(join(dir, "tokenizer.json"), o.tokenizer.bytes);
    tokenizer = {
      file: "tokenizer.json",
      kind: o.tokenizer.kind,
      maxId: o.tokenizer.maxId,
      sha256: sha256(o.tokenizer.bytes),
      copiedFrom: o.tokenizer.path,
    };
  } else if (description?.startsWith("builtin:demo")) {
    const bytes = new TextEncoder().encode(JSON.stringify(demoTokenizerJson) + "\n");
    await store.writeBytes(join(dir, "demo_tokenizer.json"), bytes);
    tokenizer = {
      file: "demo_tokenizer.json",
      kind: "sparsekd-byte-bpe-v1",
      maxId: (demoTokenizerJson as { vocabSize: number }).vocabSize - 1,
      sha256: sha256(bytes),
      copiedFrom: "sparsekd src/data/assets/demo_tokenizer.json (the builtin:demo tokenizer)",
    };
  }
  const note: Record<string, unknown> = {
    format: TOKENIZER_NOTE_FORMAT,
    version: 1,
    data,
    ...(o.identity.shards !== undefined ? { shards: o.identity.shards } : {}),
    ...(o.identity.teacher !== undefined ? { teacher: o.identity.teacher } : {}),
    tokenizer,
    note: tokenizer
      ? `token ids are ${tokenizer.file}'s (${tokenizer.kind})`
      : "the tokenizer is not known to sparsekd: use the one that made the data above (train --export-tokenizer FILE copies it here)",
  };
  await store.writeBytes(
    join(dir, TOKENIZER_NOTE),
    new TextEncoder().encode(JSON.stringify(note, null, 2) + "\n"),
  );
  return note;
}

function join(dir: string, name: string): string {
  return dir === "" || dir === "." ? name : `${dir.replace(/\/+$/, "")}/${name}`;
}
