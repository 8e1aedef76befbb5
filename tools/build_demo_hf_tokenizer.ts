/**
 * Converts the demo byte-level BPE (`src/data/assets/demo_tokenizer.json`, sparsekd's own format) into a
 * Hugging Face `tokenizer.json` (`models/demo_teacher/tokenizer.json`), so that the demo teacher can be run
 * over text with `--data text:… --tokenizer models/demo_teacher/tokenizer.json`:
 *
 *     deno run -A tools/build_demo_hf_tokenizer.ts [--out path]
 *
 * The result is the GPT-2 layout: a `Split` pre-tokenizer with the demo's pre-tokenization regex, then
 * `ByteLevel` (bytes as GPT-2's printable characters, no regex of its own), a BPE model whose vocabulary
 * keeps the demo's ids (0–255 the bytes, 256 `<|endoftext|>` as a special added token, 257… the merges)
 * and whose merges are the demo's in rank order, and a `ByteLevel` decoder. A test checks that the Hugging
 * Face library encodes text to the same ids as the demo tokenizer, and that the committed file is what this
 * tool writes.
 * @module
 */
import tokenizerJson from "../src/data/assets/demo_tokenizer.json" with { type: "json" };
import { type BpeJson, END_OF_TEXT } from "../src/data/bpe.ts";
import { parseFlags } from "../src/cli/flags.ts";
import { runMain } from "../src/cli/run_main.ts";
import { dirname } from "node:path";

/** The demo tokenizer's pre-tokenization regex (`PRETOKEN` of `src/data/bpe.ts`). */
export const DEMO_PRETOKEN_REGEX = String.raw` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;

/**
 * GPT-2's byte → printable character table (`bytes_to_unicode`): printable Latin-1 bytes stand for
 * themselves, the others for U+0100 onwards in byte order.
 *
 * @example
 * ```ts
 * byteLevelAlphabet()[32]; // "Ġ" (a space)
 * ```
 */
export function byteLevelAlphabet(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCodePoint(printable(b) ? b : 256 + n++));
  return out;
}

/**
 * The Hugging Face `tokenizer.json` object of a sparsekd byte-level BPE. Throws when two merges would give
 * the same byte string (a Hugging Face vocabulary maps each string to one id).
 *
 * @example
 * ```ts
 * const hf = hfTokenizerJson(JSON.parse(await Deno.readTextFile("src/data/assets/demo_tokenizer.json")));
 * ```
 */
export function hfTokenizerJson(bpe: BpeJson): Record<string, unknown> {
  const alphabet = byteLevelAlphabet();
  const strings: string[] = [...alphabet, "<|endoftext|>"];
  const vocab: Record<string, number> = {};
  strings.forEach((s, id) => vocab[s] = id);
  const merges: string[] = [];
  bpe.merges.forEach(([l, r], i) => {
    const id = END_OF_TEXT + 1 + i, s = strings[l] + strings[r];
    if (s in vocab) throw new Error(`merge ${i} gives "${s}", already id ${vocab[s]}`);
    strings.push(s);
    vocab[s] = id;
    merges.push(`${strings[l]} ${strings[r]}`);
  });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [{
      id: END_OF_TEXT,
      content: "<|endoftext|>",
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    }],
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: DEMO_PRETOKEN_REGEX }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/**
 * The committed file's text: the JSON with one vocabulary entry or merge per line, so that diffs stay
 * readable and a regenerated file is byte-identical.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile("tokenizer.json", hfTokenizerFileText(hfTokenizerJson(bpeJson)));
 * ```
 */
export function hfTokenizerFileText(hf: Record<string, unknown>): string {
  const model = hf.model as { vocab: Record<string, number>; merges: string[] };
  const head = { ...hf, model: { ...model, vocab: "@VOCAB@", merges: "@MERGES@" } };
  const lines = (xs: string[]) => xs.map((x) => `      ${x}`).join(",\n");
  return JSON.stringify(head, null, 2)
    .replace(
      `"@VOCAB@"`,
      "{\n" + lines(
        Object.entries(model.vocab).sort((a, b) => a[1] - b[1]).map(([s, id]) =>
          `${JSON.stringify(s)}: ${id}`
        ),
      ) + "\n    }",
    )
    .replace(`"@MERGES@"`, "[\n" + lines(model.merges.map((m) => JSON.stringify(m))) + "\n    ]") + "\n";
}

/** Where the converted demo tokenizer is committed (beside the demo teacher). */
export const DEMO_HF_TOKENIZER_PATH = new URL("../models/demo_teacher/tokenizer.json", import.meta.url);

if (import.meta.main) {
  await runMain(() => {
    const { values } = parseFlags(Deno.args, { out: { type: "string" } });
    const out = values.out ?? DEMO_HF_TOKENIZER_PATH.pathname;
    const text = hfTokenizerFileText(hfTokenizerJson(tokenizerJson as unknown as BpeJson));
    Deno.mkdirSync(dirname(out), { recursive: true });
    Deno.writeTextFileSync(out, text);
    console.log(`wrote ${out}: ${text.length} bytes`);
    return Promise.resolve();
  });
}
