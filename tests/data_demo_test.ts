import assert from "node:assert/strict";
import { demoSource, demoTokenizer, demoTokenStream } from "../src/data/demo.ts";
import { brownDocuments, inSplit, normalizeBrown } from "../src/data/brown.ts";
import { BpeTokenizer } from "../src/data/bpe.ts";
import { withSeed } from "./_rng.ts";
import { tokenizerFileText, trainDemoTokenizer } from "../tools/build_demo_tokenizer.ts";
import tokenizerJson from "../src/data/assets/demo_tokenizer.json" with { type: "json" };

Deno.test("demo splits are disjoint, cover all 500 documents and hold out one in ten", async () => {
  const train: string[] = [], heldout: string[] = [];
  for await (const d of brownDocuments("train")) train.push(d.id);
  for await (const d of brownDocuments("heldout")) heldout.push(d.id);
  assert.equal(train.length + heldout.length, 500);
  assert.equal(heldout.length, 50);
  const t = new Set(train);
  for (const id of heldout) assert.ok(!t.has(id), `${id} is in both splits`);
});

Deno.test("demo tokenizer round-trips random corpus text and random printable text", async () => {
  const tok = demoTokenizer();
  await withSeed("demo tokenizer", async ({ uniform: rnd }) => {
    assert.equal(tok.vocabSize, 2048);
    const docs: string[] = [];
    for await (const d of brownDocuments("heldout")) docs.push(d.text);
    for (let i = 0; i < 20; i++) {
      const text = docs[Math.floor(rnd() * docs.length)];
      const a = Math.floor(rnd() * (text.length - 500));
      const piece = text.slice(a, a + 500);
      const ids = tok.encode(piece);
      assert.ok(ids.every((id) => id < tok.vocabSize && id !== tok.endOfText));
      assert.ok(ids.length < piece.length / 2, "BPE should compress corpus text at least 2×");
      assert.equal(tok.decode(ids), piece);
    }
    const chars = Array.from("abcXYZ019 .,;'\"\n\té€😀");
    const random = Array.from({ length: 300 }, () => chars[Math.floor(rnd() * chars.length)]).join("");
    assert.equal(tok.decode(tok.encode(random)), random);
  });
});

Deno.test("demo source windows are the split's token stream cut every seqLen tokens", async () => {
  await withSeed("demo source", async ({ uniform: rnd }) => {
    const seqLen = 16 + Math.floor(rnd() * 200);
    for (const split of ["train", "heldout"] as const) {
      const stream = await demoTokenStream(split);
      const src = await demoSource({ split, seqLen });
      assert.equal(src.seqLen, seqLen);
      assert.equal(src.sequences, Math.floor(stream.length / seqLen));
      for (let i = 0; i < 5; i++) {
        const start = Math.floor(rnd() * (src.sequences - 3));
        const got = await src.read(start, 3);
        assert.deepEqual(Array.from(got), Array.from(stream.subarray(start * seqLen, (start + 3) * seqLen)));
      }
      assert.equal(stream[stream.length - 1], demoTokenizer().endOfText);
    }
    await assert.rejects(async () => {
      const src = await demoSource({ seqLen });
      await src.read(src.sequences - 1, 2);
    });
  });
});

Deno.test("demo fingerprints differ between splits and sequence limits and are stable", async () => {
  await withSeed("data_demo_test", async (rng) => {
    const seqLen = 32 + Math.floor(rng.uniform() * 64);
    const a = await demoSource({ split: "train", seqLen, maxSequences: 100 });
    const b = await demoSource({ split: "train", seqLen, maxSequences: 100 });
    const c = await demoSource({ split: "train", seqLen, maxSequences: 101 });
    const d = await demoSource({ split: "heldout", seqLen, maxSequences: 100 });
    assert.equal(a.sequences, 100);
    assert.equal(a.fingerprint, b.fingerprint);
    assert.match(a.fingerprint, /^[0-9a-f]{64}$/);
    assert.notEqual(a.fingerprint, c.fingerprint);
    assert.notEqual(a.fingerprint, d.fingerprint);
    assert.match(d.description, /heldout/);
  });
});

Deno.test("the committed demo tokenizer is what the deterministic trainer produces", async () => {
  const fresh = await trainDemoTokenizer(tokenizerJson.vocabSize);
  assert.deepEqual(fresh.toJSON().merges, tokenizerJson.merges);
  const committed = await Deno.readTextFile(
    new URL("../src/data/assets/demo_tokenizer.json", import.meta.url),
  );
  assert.equal(
    tokenizerFileText(fresh),
    committed,
    "regenerate with: deno run -A tools/build_demo_tokenizer.ts",
  );
});

Deno.test("BPE training is deterministic and merges the most frequent pair first", () =>
  withSeed("data_demo_test", (rng) => {
    const words = ["low", "lower", "newest", "widest", "lowest", "new", "wide"];
    const texts = new Map<string, number>();
    for (const w of words) texts.set(w, 1 + Math.floor(rng.uniform() * 9));
    const a = BpeTokenizer.train(texts, 280, "t"),
      b = BpeTokenizer.train(new Map([...texts].reverse()), 280, "t");
    assert.deepEqual(a.toJSON().merges, b.toJSON().merges);
    // The first merge is a pair of maximal total count (recount it independently).
    const counts = new Map<string, number>();
    for (const [w, n] of texts) {
      for (let i = 0; i + 1 < w.length; i++) {
        counts.set(w.slice(i, i + 2), (counts.get(w.slice(i, i + 2)) ?? 0) + n);
      }
    }
    const max = Math.max(...counts.values());
    const [l, r] = a.toJSON().merges[0];
    assert.equal(counts.get(String.fromCharCode(l, r)), max);
    for (const w of words) assert.equal(a.decode(a.encode(w)), w);
  }));

Deno.test("Brown normalization strips tags, lower-cases and turns `` and '' into double quotes", () =>
  withSeed("data_demo_test", (rng) => {
    const words = ["The", "Jury", "1/2", "Atlanta's", "``", "''", ",", ".", "over-all", "Mr."];
    const tags = ["at", "nn-tl", "cd", "np$", "``", "''", ",", ".", "jj", "np"];
    const picks = Array.from({ length: 30 }, () => Math.floor(rng.uniform() * words.length));
    const tagged = picks.map((i) => `${words[i]}/${tags[i]}`).join(rng.uniform() < 0.5 ? " " : "\n\n\t");
    const want = picks.map((i) => (words[i] === "``" || words[i] === "''" ? '"' : words[i].toLowerCase()))
      .join(
        " ",
      );
    assert.equal(normalizeBrown("\n\t" + tagged + "\n"), want);
    const i = Math.floor(rng.uniform() * 1000);
    assert.equal(inSplit(i, "heldout"), i % 10 === 9);
    assert.equal(inSplit(i, "train"), !inSplit(i, "heldout"));
  }));
