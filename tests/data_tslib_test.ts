import assert from "node:assert/strict";
import { openSource } from "../src/data/open_source.ts";
import { openTokenData } from "../src/train/train_data.ts";
import { tslibSource, tslibTokenizer, tslibTokenStream } from "../src/data/tslib.ts";
import {
  isTslibFile,
  normalizeTslib,
  TSLIB_DOC_LINES,
  tslibDocuments,
  tslibFileNames,
  tslibInSplit,
} from "../src/data/tslib_corpus.ts";
import { demoTokenizer } from "../src/data/demo.ts";
import { oneLine } from "./_helpers.ts";
import { withSeed } from "./_rng.ts";

Deno.test("tslib corpus files: lib.*.d.ts without the worker libraries, in name order", async () => {
  assert.ok(isTslibFile("lib.es5.d.ts"));
  assert.ok(isTslibFile("lib.dom.d.ts"));
  assert.ok(isTslibFile("lib.es2015.iterable.d.ts"));
  for (
    const n of ["lib.webworker.d.ts", "lib.webworker.iterable.d.ts", "lib.scripthost.js", "typescript.d.ts"]
  ) {
    assert.ok(!isTslibFile(n), n);
  }
  const names = await tslibFileNames();
  assert.ok(names.includes("lib.es5.d.ts") && names.includes("lib.dom.d.ts"));
  assert.ok(names.every(isTslibFile));
  assert.deepEqual(names, [...names].sort());
});

Deno.test("normalizeTslib drops the licence comment, CRs, trailing blanks and repeated blank lines", () => {
  const text = '/*! ****\nCopyright (c) Microsoft\n**** */\r\n\r\n\r\n/// <reference lib="es5" />  \r\n' +
    "\n\n\n\ninterface A {\n    x: number;\t\n}\n\n";
  assert.equal(normalizeTslib(text), '/// <reference lib="es5" />\n\ninterface A {\n    x: number;\n}');
  assert.equal(normalizeTslib("/* not the licence */\nx"), "/* not the licence */\nx");
});

Deno.test("tslib splits are disjoint, cover every document once and hold out one in ten", async () => {
  const train: string[] = [], heldout: string[] = [];
  for await (const d of tslibDocuments("train")) {
    train.push(d.id);
    assert.ok(d.text.split("\n").length - 1 <= TSLIB_DOC_LINES, d.id);
  }
  for await (const d of tslibDocuments("heldout")) heldout.push(d.id);
  const all = train.length + heldout.length;
  assert.ok(all > 200, `${all} documents`);
  assert.equal(heldout.length, Math.floor(all / 10));
  const t = new Set(train);
  assert.equal(t.size, train.length);
  for (const id of heldout) assert.ok(!t.has(id), `${id} is in both splits`);
  assert.ok(tslibInSplit(9, "heldout") && tslibInSplit(8, "train") && !tslibInSplit(19, "train"));
});

Deno.test("tslib text is tokenized by the demo BPE: round trips, at least 1.5 characters per token", async () => {
  const tok = tslibTokenizer();
  assert.equal(tok, demoTokenizer());
  assert.equal(tok.vocabSize, 2048);
  const docs: string[] = [];
  for await (const d of tslibDocuments("heldout")) docs.push(d.text);
  await withSeed("tslib tokenizer", (rng) => {
    for (let i = 0; i < 20; i++) {
      const text = docs[rng.int(docs.length)];
      const a = rng.int(Math.max(1, text.length - 600));
      const piece = text.slice(a, a + 600);
      const ids = tok.encode(piece);
      assert.ok(ids.every((id) => id < tok.vocabSize && id !== tok.endOfText));
      assert.equal(tok.decode(ids), piece);
    }
  });
  const chars = docs.reduce((n, d) => n + d.length, 0);
  const tokens = (await tslibTokenStream("heldout")).length - docs.length; // without the end-of-text tokens
  assert.ok(chars / tokens > 1.5, `${chars} characters → ${tokens} tokens`);
});

Deno.test("tslib source windows are the split's token stream cut every seqLen tokens", async () => {
  await withSeed("tslib source", async (rng) => {
    const seqLen = 16 + rng.int(200);
    for (const split of ["train", "heldout"] as const) {
      const stream = await tslibTokenStream(split);
      const src = await tslibSource({ split, seqLen });
      assert.equal(src.sequences, Math.floor(stream.length / seqLen));
      for (let i = 0; i < 5; i++) {
        const start = rng.int(src.sequences - 3);
        const got = await src.read(start, 3);
        assert.deepEqual(Array.from(got), Array.from(stream.subarray(start * seqLen, (start + 3) * seqLen)));
      }
      assert.equal(stream[stream.length - 1], tslibTokenizer().endOfText);
      await assert.rejects(src.read(src.sequences - 1, 2), RangeError);
    }
  });
});

Deno.test("tslib fingerprints: stable, and different for another split, limit or corpus", async () => {
  await withSeed("tslib fingerprint", async (rng) => {
    const seqLen = 32 + rng.int(64);
    const a = await tslibSource({ split: "train", seqLen, maxSequences: 100 });
    const b = await openSource("builtin:tslib", { seqLen, maxSequences: 100 });
    const c = await tslibSource({ split: "train", seqLen, maxSequences: 101 });
    const d = await tslibSource({ split: "heldout", seqLen, maxSequences: 100 });
    const demo = await openSource("builtin:demo", { seqLen, maxSequences: 100 });
    assert.equal(a.sequences, 100);
    assert.match(a.fingerprint, /^[0-9a-f]{64}$/);
    assert.equal(a.fingerprint, b.fingerprint);
    assert.deepEqual(await a.read(7, 3), await b.read(7, 3));
    assert.notEqual(a.fingerprint, c.fingerprint);
    assert.notEqual(a.fingerprint, d.fingerprint);
    assert.notEqual(a.fingerprint, demo.fingerprint);
    assert.match(d.description, /^builtin:tslib \(typescript@[\d.]+ .*heldout split, demo byte-BPE 2048\)$/);
  });
});

Deno.test("builtin:tslib bad input: no sequence length, bad split, bad limit, a window longer than the data", async () => {
  await assert.rejects(openSource("builtin:tslib"), oneLine(/builtin:tslib needs a sequence length/));
  await assert.rejects(
    tslibSource({ seqLen: 64, split: "test" as "train" }),
    oneLine(/split must be "train" or "heldout"/),
  );
  await assert.rejects(tslibSource({ seqLen: 0 }), oneLine(/seqLen must be ≥ 1/));
  await assert.rejects(tslibSource({ seqLen: 64, maxSequences: 0 }), oneLine(/maxSequences must be ≥ 1/));
  await assert.rejects(tslibSource({ seqLen: 10_000_000, split: "heldout" }), oneLine(/longer than/));
});

Deno.test("train --data builtin:tslib evaluates on the corpus's held-out split, not on train sequences", async () => {
  const d = await openTokenData("builtin:tslib", {
    mode: "ce",
    temperature: 1,
    vocabPad: "error",
    heldoutSequences: 3,
  });
  const train = await tslibSource({ split: "train", seqLen: 64 });
  const held = await tslibSource({ split: "heldout", seqLen: 64, maxSequences: 3 });
  assert.equal(d.vocab, 2048);
  assert.equal(d.seqLen, 64);
  assert.equal(d.data.sequences, train.sequences);
  assert.deepEqual(d.heldout.map((r) => Array.from(r.tokens)).flat(), Array.from(await held.read(0, 3)));
  assert.equal(d.identity.fingerprint, train.fingerprint);
});
