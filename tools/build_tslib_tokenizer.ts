/**
 * Regenerates the committed tokenizer of `builtin:tslib`, `src/data/assets/tslib_tokenizer.json`: a
 * byte-level BPE trained deterministically on the train split of the TypeScript library declarations (the
 * held-out split is never seen).
 *
 *     deno run -A tools/build_tslib_tokenizer.ts [--vocab 2048] [--out path]
 *
 * @module
 */
import { BpeTokenizer } from "../src/data/bpe.ts";
import { TSLIB_VERSION, tslibDocuments } from "../src/data/tslib_corpus.ts";
import { intFlag, parseFlags } from "../src/cli/flags.ts";
import { runMain } from "../src/cli/run_main.ts";
import { tokenizerFileText } from "./build_demo_tokenizer.ts";
import { dirname } from "node:path";

/**
 * Trains the tslib tokenizer on the train split (each line, with its line end, is one key of the frequency
 * table; the trainer splits keys into pre-tokens).
 *
 * @example
 * ```ts
 * const bpe = await trainTslibTokenizer(2048);
 * ```
 */
export async function trainTslibTokenizer(vocabSize: number): Promise<BpeTokenizer> {
  const texts = new Map<string, number>();
  for await (const doc of tslibDocuments("train")) {
    for (const line of doc.text.split("\n")) texts.set(line + "\n", (texts.get(line + "\n") ?? 0) + 1);
  }
  return BpeTokenizer.train(
    texts,
    vocabSize,
    `${TSLIB_VERSION} lib/lib.*.d.ts without the worker libraries, train split (every 10th document held out)`,
  );
}

if (import.meta.main) {
  await runMain(async () => {
    const { values } = parseFlags(Deno.args, { vocab: { type: "string" }, out: { type: "string" } });
    const vocab = intFlag("vocab", values.vocab, 2048, { min: 257, max: 65536 });
    const out = values.out ?? new URL("../src/data/assets/tslib_tokenizer.json", import.meta.url).pathname;
    const t0 = performance.now();
    const bpe = await trainTslibTokenizer(vocab);
    await Deno.mkdir(dirname(out), { recursive: true });
    await Deno.writeTextFile(out, tokenizerFileText(bpe));
    console.log(`wrote ${out}: vocab ${bpe.vocabSize} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  });
}
