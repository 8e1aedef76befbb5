/**
 * Regenerates the committed demo tokenizer `src/data/assets/demo_tokenizer.json`: a byte-level BPE trained
 * deterministically on the train split of the Brown corpus (the held-out split is never seen).
 *
 *     deno run -A tools/build_demo_tokenizer.ts [--vocab 2048] [--out path]
 *
 * @module
 */
import { BpeTokenizer } from "../src/data/bpe.ts";
import { BROWN_VERSION, brownDocuments } from "../src/data/brown.ts";
import { intFlag, parseFlags } from "../src/cli/flags.ts";
import { runMain } from "../src/cli/run_main.ts";
import { dirname } from "node:path";

/**
 * Trains the demo tokenizer on the Brown train split.
 *
 * @example
 * ```ts
 * const bpe = await trainDemoTokenizer(2048);
 * ```
 */
export async function trainDemoTokenizer(vocabSize: number): Promise<BpeTokenizer> {
  const texts = new Map<string, number>();
  for await (const doc of brownDocuments("train")) {
    // Count words rather than whole documents: the trainer splits each key into pre-tokens anyway.
    for (const w of doc.text.split(" ")) texts.set(" " + w, (texts.get(" " + w) ?? 0) + 1);
  }
  return BpeTokenizer.train(texts, vocabSize, `${BROWN_VERSION}, train split (every 10th document held out)`);
}

/**
 * The asset's text: JSON laid out the way `deno fmt` leaves it (one merge per line), so that a regenerated
 * file is byte-identical to the committed one and passes `deno fmt --check`.
 *
 * @example
 * ```ts
 * await Deno.writeTextFile("tok.json", tokenizerFileText(await trainDemoTokenizer(512)));
 * ```
 */
export function tokenizerFileText(bpe: BpeTokenizer): string {
  const j = bpe.toJSON();
  return "{\n" +
    `  "format": ${JSON.stringify(j.format)},\n` +
    `  "vocabSize": ${j.vocabSize},\n` +
    `  "endOfText": ${j.endOfText},\n` +
    `  "trainedOn": ${JSON.stringify(j.trainedOn)},\n` +
    `  "merges": [\n` +
    j.merges.map(([l, r]) => `    [${l}, ${r}]`).join(",\n") +
    "\n  ]\n}\n";
}

if (import.meta.main) {
  await runMain(async () => {
    const { values } = parseFlags(Deno.args, { vocab: { type: "string" }, out: { type: "string" } });
    const vocab = intFlag("vocab", values.vocab, 2048, { min: 257, max: 65536 });
    const out = values.out ?? new URL("../src/data/assets/demo_tokenizer.json", import.meta.url).pathname;
    const t0 = performance.now();
    const bpe = await trainDemoTokenizer(vocab);
    const text = tokenizerFileText(bpe);
    await Deno.mkdir(dirname(out), { recursive: true });
    await Deno.writeTextFile(out, text);
    console.log(`wrote ${out}: vocab ${bpe.vocabSize} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });
}
