import assert from "node:assert/strict";
import { gunzipSync, gzipSync } from "node:zlib";
import { demoTokenizer } from "../src/data/demo.ts";
import { openSource } from "../src/data/open_source.ts";
import { listTextFiles, textPieces } from "../src/data/text_files.ts";
import { textSource } from "../src/data/text_source.ts";
import { DEMO_HF_TOKENIZER_PATH } from "../tools/build_demo_hf_tokenizer.ts";
import { oneLine, withTempDir } from "./_helpers.ts";
import { withSeed } from "./_rng.ts";

const TOKENIZER = DEMO_HF_TOKENIZER_PATH.pathname;
const CORPUS = new URL("./fixtures/text", import.meta.url).pathname;
const EOT = 256;

/** The fixture's documents, read without the library (node:zlib, JSON.parse by hand), in sorted file order. */
function fixtureDocuments(): string[] {
  const text = (name: string) => {
    const bytes = Deno.readFileSync(`${CORPUS}/${name}`);
    return new TextDecoder().decode(name.endsWith(".gz") ? gunzipSync(bytes) : bytes);
  };
  const jsonl = (name: string) =>
    text(name).split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l).text as string).filter((
      t,
    ) => t !== "");
  return [
    text("a_river.txt"),
    ...jsonl("b_letters.jsonl"),
    ...jsonl("c_news.jsonl.gz"),
    text("nested/d_story.txt.gz"),
  ];
}

/** The packed stream the demo BPE (our own implementation) gives for documents: each followed by EOT. */
function packed(docs: string[]): number[] {
  const tok = demoTokenizer();
  return docs.flatMap((d) => [...tok.encode(d), EOT]);
}

Deno.test("a folder's .txt/.jsonl files (gzip too) are read recursively in sorted order, others skipped", async () => {
  const files = await listTextFiles(CORPUS);
  assert.deepEqual(files.map((f) => f.name), [
    "a_river.txt",
    "b_letters.jsonl",
    "c_news.jsonl.gz",
    "nested/d_story.txt.gz",
  ]);
  assert.deepEqual(files.map((f) => [f.kind, f.gzip]), [["text", false], ["jsonl", false], ["jsonl", true], [
    "text",
    true,
  ]]);
  const docs: string[] = [];
  for await (const p of textPieces(files)) {
    assert.ok(p.end, "small files come whole");
    docs.push(p.text);
  }
  assert.deepEqual(docs, fixtureDocuments());
});

Deno.test("text: packs the documents with end-of-text between them into the Hugging Face tokenizer's ids", async () => {
  await withTempDir(async (cache) => {
    const want = packed(fixtureDocuments());
    for (const seqLen of [16, 64]) {
      const src = await textSource(CORPUS, {
        tokenizer: TOKENIZER,
        seqLen,
        vocabSize: 2048,
        cacheDir: cache,
      });
      assert.equal(src.tokens, want.length);
      assert.equal(src.documents, fixtureDocuments().length);
      assert.equal(src.sequences, Math.floor(want.length / seqLen));
      assert.equal(src.boundaryToken, EOT);
      assert.equal(src.vocabSize, 2048);
      assert.deepEqual([...await src.read(0, src.sequences)], want.slice(0, src.sequences * seqLen));
      assert.deepEqual([...await src.read(2, 3)], want.slice(2 * seqLen, 5 * seqLen));
      await assert.rejects(src.read(src.sequences - 1, 2), RangeError);
    }
  });
});

Deno.test("the tokenized stream is cached and reused; the fingerprint follows tokens, tokenizer, length, boundaries", async () => {
  await withTempDir(async (dir) => {
    const cache = `${dir}/cache`;
    await Deno.mkdir(`${dir}/c`);
    await Deno.writeTextFile(`${dir}/c/a.txt`, "the cat sat on the mat .\nthe dog sat on the log .\n");
    await Deno.writeTextFile(`${dir}/c/b.jsonl`, JSON.stringify({ text: "a second document ." }) + "\n");
    const open = (o: Partial<Parameters<typeof textSource>[1]> = {}) =>
      textSource(`${dir}/c`, { tokenizer: TOKENIZER, seqLen: 4, cacheDir: cache, ...o });
    const first = await open();
    assert.equal(first.cached, false);
    const again = await open();
    assert.equal(again.cached, true);
    assert.equal(again.fingerprint, first.fingerprint);
    assert.deepEqual(await again.read(0, again.sequences), await first.read(0, first.sequences));
    assert.match(first.fingerprint, /^[0-9a-f]{64}$/);
    // A damaged cache (same size, one byte changed) is tokenized again, not served.
    const ids = [];
    for await (const e of Deno.readDir(cache)) if (e.name.endsWith(".ids")) ids.push(`${cache}/${e.name}`);
    assert.equal(ids.length, 1);
    const bytes = await Deno.readFile(ids[0]);
    bytes[3] ^= 1;
    await Deno.writeFile(ids[0], bytes);
    const rebuilt = await open();
    assert.equal(rebuilt.cached, false);
    assert.deepEqual(await rebuilt.read(0, rebuilt.sequences), await first.read(0, first.sequences));

    const cross = await open({ crossDocuments: true });
    assert.equal(cross.boundaryToken, undefined);
    assert.notEqual(cross.fingerprint, first.fingerprint);
    assert.notEqual((await open({ seqLen: 5 })).fingerprint, first.fingerprint);
    // Another tokenizer file (the same tokenizer, other bytes) is another fingerprint.
    await Deno.writeTextFile(`${dir}/tok.json`, (await Deno.readTextFile(TOKENIZER)) + " ");
    assert.notEqual((await open({ tokenizer: `${dir}/tok.json` })).fingerprint, first.fingerprint);
    // Other text: the cache is not reused, the fingerprint changes.
    await Deno.writeTextFile(`${dir}/c/a.txt`, "the cat sat on the hat .\nthe dog sat on the log .\n");
    const edited = await open();
    assert.equal(edited.cached, false);
    assert.notEqual(edited.fingerprint, first.fingerprint);
    // openSource's sequence limit keeps the boundary token and the tokenizer's vocabulary.
    const limited = await openSource(`text:${dir}/c`, { tokenizer: TOKENIZER, seqLen: 4, maxSequences: 2 });
    assert.equal(limited.sequences, 2);
    assert.equal(limited.boundaryToken, EOT);
    assert.equal(limited.vocabSize, 2048);
  });
});

Deno.test("a long text file is encoded in pieces cut before non-space lines, as the whole document would be", async () => {
  await withSeed("data_text_source_test", async (rng) => {
    await withTempDir(async (dir) => {
      const words = ["the", "jury", "said", ",", "42", "évidence", "  indented", "\tx", "", " ", "end ."];
      let text = "";
      for (let line = 0; line < 400; line++) {
        const n = Math.floor(rng.uniform() * 8);
        const ws: string[] = [];
        for (let i = 0; i < n; i++) ws.push(words[Math.floor(rng.uniform() * words.length)]);
        text += ws.join(" ") + (rng.uniform() < 0.1 ? "\r\n" : "\n");
      }
      await Deno.writeFile(`${dir}/long.txt.gz`, gzipSync(new TextEncoder().encode(text)));
      const files = await listTextFiles(`${dir}/long.txt.gz`);
      const pieces = [];
      for await (const p of textPieces(files, 200)) pieces.push(p);
      assert.ok(pieces.length > 5, `${pieces.length} pieces`);
      assert.deepEqual(pieces.map((p) => p.end), pieces.map((_, i) => i === pieces.length - 1));
      assert.equal(pieces.map((p) => p.text).join(""), text);
      for (const p of pieces.slice(1)) assert.match(p.text, /^\S/u);
      const src = await textSource(`${dir}/long.txt.gz`, {
        tokenizer: TOKENIZER,
        seqLen: 8,
        cacheDir: `${dir}/cache`,
        pieceChars: 200,
      });
      const want = packed([text]);
      assert.equal(src.documents, 1);
      assert.deepEqual([...await src.read(0, src.sequences)], want.slice(0, src.sequences * 8));

      // Lines longer than the chunks a file is read in (64 KiB) come whole, and so do JSONL records.
      const long = Array.from(
        { length: 5 },
        (_, i) => "word ".repeat(5000 + 20000 * i * rng.uniform()) + "\n",
      );
      await Deno.writeTextFile(`${dir}/long-lines.txt`, long.join(""));
      const got = [];
      for await (const p of textPieces(await listTextFiles(`${dir}/long-lines.txt`), 1000)) got.push(p.text);
      // Each line holds ≥ 1000 characters and the next starts with a letter: every line is a piece of its own.
      assert.deepEqual(got, long);
      await Deno.writeTextFile(`${dir}/long.jsonl`, long.map((l) => JSON.stringify({ text: l })).join("\n"));
      const records = [];
      for await (const p of textPieces(await listTextFiles(`${dir}/long.jsonl`))) records.push(p.text);
      assert.deepEqual(records, long);
    });
  });
});

Deno.test("empty input, a missing path, and a tokenizer larger than the teacher's vocabulary are one-line errors", async () => {
  await withTempDir(async (dir) => {
    const o = { tokenizer: TOKENIZER, seqLen: 16, cacheDir: `${dir}/cache` };
    await assert.rejects(textSource(`${dir}/missing`, o), oneLine(/^data text:.*missing: does not exist$/));
    await Deno.mkdir(`${dir}/none`);
    await Deno.writeTextFile(`${dir}/none/readme.md`, "not a corpus file");
    await assert.rejects(textSource(`${dir}/none`, o), oneLine(/empty input: no \.txt or \.jsonl files/));
    await Deno.mkdir(`${dir}/blank`);
    await Deno.writeTextFile(`${dir}/blank/a.txt`, "");
    await Deno.writeTextFile(`${dir}/blank/b.jsonl`, '{"text": ""}\n\n');
    await assert.rejects(textSource(`${dir}/blank`, o), oneLine(/empty input: no text in 2 file/));
    await Deno.writeTextFile(`${dir}/short.txt`, "two words");
    await assert.rejects(
      textSource(`${dir}/short.txt`, o),
      oneLine(/\d+ tokens \(1 documents\), fewer than one sequence of 16/),
    );
    await assert.rejects(
      textSource(CORPUS, { ...o, vocabSize: 1000 }),
      oneLine(/^tokenizer .* has a vocabulary of 2048 tokens, more than the teacher's 1000$/),
    );
    await assert.rejects(
      textSource(`${dir}/short.txt`, { ...o, tokenizer: `${dir}/no-tokenizer.json` }),
      oneLine(/^tokenizer .*no-tokenizer\.json: does not exist$/),
    );
  });
});

Deno.test("bad JSONL, invalid UTF-8 and a damaged gzip file are one-line errors naming the file", async () => {
  await withTempDir(async (dir) => {
    const o = { tokenizer: TOKENIZER, seqLen: 4, cacheDir: `${dir}/cache` };
    const write = (name: string, data: string | Uint8Array) =>
      typeof data === "string"
        ? Deno.writeTextFile(`${dir}/${name}`, data)
        : Deno.writeFile(`${dir}/${name}`, data);
    await write("a.jsonl", '{"text": "fine"}\n{"text": 3}\n');
    await assert.rejects(
      textSource(`${dir}/a.jsonl`, o),
      oneLine(/a\.jsonl:2: expected a JSON object with a string "text"/),
    );
    await write("b.jsonl", '{"text": "fine"}\n\n{"text": "cut\n');
    await assert.rejects(textSource(`${dir}/b.jsonl`, o), oneLine(/b\.jsonl:3: not JSON/));
    await write("c.txt", Uint8Array.of(0x61, 0x20, 0xff, 0xfe, 0x62));
    await assert.rejects(textSource(`${dir}/c.txt`, o), oneLine(/c\.txt: is not valid UTF-8/));
    const gz = gzipSync(
      new TextEncoder().encode("some text that is long enough to be cut short ".repeat(20)),
    );
    await write("d.txt.gz", gz.subarray(0, gz.length - 12));
    await assert.rejects(textSource(`${dir}/d.txt.gz`, o), oneLine(/d\.txt\.gz: is not a valid gzip file/));
    await write("e.txt.gz", "plain text, not gzip");
    await assert.rejects(textSource(`${dir}/e.txt.gz`, o), oneLine(/e\.txt\.gz: is not a valid gzip file/));
    // Nothing of a failed pass is left in the cache.
    const left = [];
    for await (const e of Deno.readDir(`${dir}/cache`)) left.push(e.name);
    assert.deepEqual(left, []);
  });
});

Deno.test("--data text: needs --tokenizer and --seq-len; --tokenizer is refused for other data", async () => {
  await assert.rejects(
    openSource(`text:${CORPUS}`, { seqLen: 8 }),
    oneLine(/^tokenizer must be given for text:/),
  );
  await assert.rejects(
    openSource(`text:${CORPUS}`, { tokenizer: TOKENIZER }),
    oneLine(/needs a sequence length/),
  );
  await assert.rejects(openSource("text:", { tokenizer: TOKENIZER, seqLen: 8 }), oneLine(/needs a path/));
  await assert.rejects(
    openSource("builtin:demo", { seqLen: 8, tokenizer: TOKENIZER }),
    oneLine(/^tokenizer is only for text: data/),
  );
  await assert.rejects(
    openSource("npy:x.npy", { eotToken: "</s>" }),
    oneLine(/^eotToken is only for text: data/),
  );
});
