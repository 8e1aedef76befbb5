import assert from "node:assert/strict";
import tokenizerAsset from "../src/data/assets/demo_tokenizer.json" with { type: "json" };
import type { BpeJson } from "../src/data/bpe.ts";
import { brownDocuments } from "../src/data/brown.ts";
import { demoTokenizer } from "../src/data/demo.ts";
import { openHfTokenizer } from "../src/data/hf_tokenizer.ts";
import {
  byteLevelAlphabet,
  DEMO_HF_TOKENIZER_PATH,
  hfTokenizerFileText,
  hfTokenizerJson,
} from "../tools/build_demo_hf_tokenizer.ts";
import { oneLine, withTempDir } from "./_helpers.ts";
import { withSeed } from "./_rng.ts";

const HF_PATH = DEMO_HF_TOKENIZER_PATH.pathname;

Deno.test("the committed models/demo_teacher/tokenizer.json is what the conversion tool writes", async () => {
  const committed = await Deno.readTextFile(DEMO_HF_TOKENIZER_PATH);
  const made = hfTokenizerFileText(hfTokenizerJson(tokenizerAsset as unknown as BpeJson));
  assert.ok(committed === made, "regenerate with: deno run -A tools/build_demo_hf_tokenizer.ts");
});

Deno.test("the byte-level alphabet maps the 256 bytes to 256 distinct characters, printable ones to themselves", () => {
  const a = byteLevelAlphabet();
  assert.equal(new Set(a).size, 256);
  assert.equal(a["A".charCodeAt(0)], "A");
  assert.equal(a[32], "Ġ"); // GPT-2's space
  assert.equal(a[10], "Ċ"); // GPT-2's newline
});

Deno.test("the Hugging Face library encodes held-out Brown text and random text exactly as the demo BPE", async () => {
  const hf = await openHfTokenizer(HF_PATH);
  const ours = demoTokenizer();
  assert.equal(hf.vocabSize, ours.vocabSize);
  assert.equal(hf.endOfText, ours.endOfText);
  assert.equal(hf.modelType, "BPE");
  let docs = 0;
  for await (const doc of brownDocuments("heldout")) {
    const want = Array.from(ours.encode(doc.text));
    assert.deepEqual(hf.encode(doc.text), want, `document ${doc.id}`);
    assert.equal(hf.decode(want), doc.text);
    if (++docs === 6) break;
  }
  await withSeed("data_text_tokenizer_test", (rng) => {
    // Mixed scripts, digits, punctuation runs, spaces, tabs and line breaks: where pre-tokenizers differ.
    const pieces = [
      " ",
      "  ",
      "\n",
      "\n\n",
      "\t",
      "the",
      "The",
      "jury",
      "42",
      "3.14",
      "--",
      "?!",
      "é",
      "日本",
      "🙂",
      "naïve",
      " ,",
      "'s",
      "don't",
      "\r\n",
      "x",
    ];
    for (let n = 0; n < 40; n++) {
      let text = "";
      const len = 1 + Math.floor(rng.uniform() * 60);
      for (let i = 0; i < len; i++) text += pieces[Math.floor(rng.uniform() * pieces.length)];
      assert.deepEqual(hf.encode(text), Array.from(ours.encode(text)), JSON.stringify(text));
      assert.equal(hf.decode(hf.encode(text)), text);
    }
  });
});

Deno.test("tokenizer files that are missing, not JSON or of an unknown format are one-line errors", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      openHfTokenizer(`${dir}/nope.json`),
      oneLine(/^tokenizer .*nope\.json: does not exist$/),
    );
    await assert.rejects(openHfTokenizer(dir), oneLine(/is not a file/));
    await Deno.writeTextFile(`${dir}/bad.json`, "{ not json");
    await assert.rejects(openHfTokenizer(`${dir}/bad.json`), oneLine(/bad\.json: is not JSON/));
    await Deno.writeTextFile(`${dir}/wl.json`, JSON.stringify({ model: { type: "WordLevel", vocab: {} } }));
    await assert.rejects(
      openHfTokenizer(`${dir}/wl.json`),
      oneLine(
        /wl\.json: unknown tokenizer format: .*model\.type BPE, WordPiece, Unigram \(got "WordLevel"\)/,
      ),
    );
    await Deno.writeTextFile(`${dir}/arr.json`, "[1, 2]");
    await assert.rejects(
      openHfTokenizer(`${dir}/arr.json`),
      oneLine(/unknown tokenizer format.*no model\.type/),
    );
    // sparsekd's own BPE file is a tokenizer, but not a Hugging Face one: the error says how to convert it.
    const own = new URL("../src/data/assets/demo_tokenizer.json", import.meta.url).pathname;
    await assert.rejects(openHfTokenizer(own), oneLine(/unknown tokenizer format.*build_demo_hf_tokenizer/));
  });
});

Deno.test("an end-of-text token the tokenizer lacks is a one-line error naming --eot-token or the token", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      openHfTokenizer(HF_PATH, { eotToken: "</s>" }),
      oneLine(/^eotToken "<\/s>" is not a token of the tokenizer/),
    );
    const hf = JSON.parse(await Deno.readTextFile(HF_PATH));
    hf.added_tokens = [];
    delete hf.model.vocab["<|endoftext|>"];
    await Deno.writeTextFile(`${dir}/noeot.json`, JSON.stringify(hf));
    await assert.rejects(
      openHfTokenizer(`${dir}/noeot.json`),
      oneLine(/noeot\.json: has no "<\|endoftext\|>" token .*--eot-token/),
    );
    // Named explicitly, another token of the vocabulary serves (here the byte "\n", id 10).
    const tok = await openHfTokenizer(`${dir}/noeot.json`, { eotToken: byteLevelAlphabet()[10] });
    assert.equal(tok.endOfText, 10);
    assert.equal(tok.vocabSize, 2048);
  });
});
