// End to end on text: `save-topk --data text:… --tokenizer …` with the demo teacher (the task, as a child
// process), then `train` on those shards and on the text itself; document boundaries masked alike in both.
import assert from "node:assert/strict";
import { readShards } from "../src/format/shard_reader.ts";
import { textSource } from "../src/data/text_source.ts";
import { nextTokenTargets } from "../src/train/ce_loss.ts";
import { train } from "../src/train/train.ts";
import { DEMO_HF_TOKENIZER_PATH } from "../tools/build_demo_hf_tokenizer.ts";
import { expectOneLineError, run } from "./_save_fixtures.ts";
import { withTempDir } from "./_helpers.ts";
import { withSeed } from "./_rng.ts";
import { quietly, testRuntime, trainRejects } from "./_train_fixtures.ts";

const TASK = new URL("../tasks/save_topk.ts", import.meta.url).pathname;
const TOKENIZER = DEMO_HF_TOKENIZER_PATH.pathname;
const CORPUS = new URL("./fixtures/text", import.meta.url).pathname;
const EOT = 256;

function saveTopk(args: string[]): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", TASK, "--cpu", ...args],
    stdout: "piped",
    stderr: "piped",
  });
}

/** Scored positions of held-out sequences: all but each last one, and, unless crossing, those holding EOT. */
function scored(tokens: Uint32Array[], L: number, cross: boolean): number {
  let n = 0;
  for (const t of tokens) for (let i = 0; i + 1 < L; i++) if (cross || t[i] !== EOT) n++;
  return n;
}

async function evalTokens(out: string): Promise<number> {
  const rows = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
  return rows.filter((r) => r.kind === "eval").at(-1).tokens;
}

Deno.test("positions holding the boundary token are masked: their target starts the next document", () => {
  withSeed("data_text_save_train_test", (rng) => {
    const B = 3, L = 10;
    const tokens = new Uint32Array(B * L).map(
      () => (rng.uniform() < 0.2 ? EOT : Math.floor(rng.uniform() * 50)),
    );
    const plain = nextTokenTargets(tokens, B, L);
    const masked = nextTokenTargets(tokens, B, L, EOT);
    assert.deepEqual(masked.targets, plain.targets);
    for (let i = 0; i < B * L; i++) {
      const last = i % L === L - 1;
      assert.equal(plain.mask[i], last ? 0 : 1);
      assert.equal(masked.mask[i], last || tokens[i] === EOT ? 0 : 1, `position ${i}`);
    }
  });
});

Deno.test("save-topk on text with a tokenizer.json writes the text's tokens; train masks the same positions from the shards and from the text", async () => {
  const rt = await testRuntime();
  await withTempDir(async (dir) => {
    const out = `${dir}/topk`;
    const r = await run(saveTopk([
      "--data",
      `text:${CORPUS}`,
      "--tokenizer",
      TOKENIZER,
      "--out",
      out,
      "--k",
      "8",
      "--sequences-per-shard",
      "3",
    ]));
    assert.equal(r.code, 0, r.stderr);
    const runJson = JSON.parse(await Deno.readTextFile(`${out}/run.json`));
    const src = await textSource(CORPUS, { tokenizer: TOKENIZER, seqLen: 64, cacheDir: `${dir}/cache` });
    assert.equal(runJson.data.fingerprint, src.fingerprint);
    assert.equal(runJson.data.boundaryToken, EOT);
    assert.equal(runJson.sequences, src.sequences);
    const want = await src.read(0, src.sequences);
    const tokens: Uint32Array[] = [];
    for await (const rec of readShards(out)) {
      assert.deepEqual(
        [...rec.tokens],
        [...want.subarray(rec.seq * 64, (rec.seq + 1) * 64)],
        `sequence ${rec.seq}`,
      );
      tokens[rec.seq] = rec.tokens;
    }
    assert.equal(tokens.length, src.sequences);

    const held = 3;
    const heldTokens = tokens.slice(-held);
    assert.ok(
      heldTokens.some((t) => t.subarray(0, 63).includes(EOT)),
      "the held-out sequences cross a document",
    );
    const common = {
      rt,
      steps: 2,
      batchSize: 2,
      layers: 1,
      width: 8,
      heads: 2,
      heldoutSequences: held,
      quiet: true,
      log: () => {},
    };
    for (const cross of [false, true]) {
      const o = `${dir}/shards-${cross}`;
      const t = await quietly(() => train({ ...common, shards: out, out: o, crossDocuments: cross }));
      assert.equal(t.status, "finished");
      assert.equal(await evalTokens(o), scored(heldTokens, 64, cross), `from the shards, cross ${cross}`);
    }
    // The text itself (cross-entropy only): the same held-out sequences, the same mask.
    const o = `${dir}/text`;
    const t = await quietly(() =>
      train({
        ...common,
        data: `text:${CORPUS}`,
        tokenizer: TOKENIZER,
        seqLen: 64,
        ceOnly: true,
        out: o,
        export: `${dir}/export`,
      })
    );
    assert.equal(t.status, "finished");
    assert.equal(await evalTokens(o), scored(heldTokens, 64, false), "from the text");
    // The export records the tokenizer the text was read with, byte for byte.
    assert.deepEqual(await Deno.readFile(`${dir}/export/tokenizer.json`), await Deno.readFile(TOKENIZER));
  });
});

Deno.test("save-topk --data text: bad input ends with one error line naming the flag", async () => {
  await withTempDir(async (dir) => {
    const out = `${dir}/out`;
    const text = ["--data", `text:${CORPUS}`, "--out", out];
    await expectOneLineError(saveTopk(text), /^error: --tokenizer must be given for text:/);
    await expectOneLineError(
      saveTopk([...text, "--tokenizer", `${dir}/missing.json`]),
      /^error: --tokenizer .*missing\.json: does not exist$/,
    );
    await Deno.writeTextFile(`${dir}/wl.json`, JSON.stringify({ model: { type: "WordLevel", vocab: {} } }));
    await expectOneLineError(
      saveTopk([...text, "--tokenizer", `${dir}/wl.json`]),
      /^error: --tokenizer .*wl\.json: unknown tokenizer format/,
    );
    // The demo tokenizer with one more added token, id 4999: a vocabulary of 5000 > the teacher's 2048.
    const big = JSON.parse(await Deno.readTextFile(TOKENIZER));
    big.added_tokens.push({ ...big.added_tokens[0], id: 4999, content: "<|pad|>" });
    await Deno.writeTextFile(`${dir}/big.json`, JSON.stringify(big));
    await expectOneLineError(
      saveTopk([...text, "--tokenizer", `${dir}/big.json`]),
      /^error: --tokenizer .*big\.json has a vocabulary of 5000 tokens, more than the teacher's 2048$/,
    );
    await Deno.mkdir(`${dir}/empty`);
    await expectOneLineError(
      saveTopk(["--data", `text:${dir}/empty`, "--tokenizer", TOKENIZER, "--out", out]),
      /^error: --data text:.*empty: empty input/,
    );
    await expectOneLineError(
      saveTopk([...text, "--tokenizer", TOKENIZER, "--eot-token", "</s>"]),
      /^error: --eot-token "<\/s>" is not a token of the tokenizer/,
    );
    await expectOneLineError(
      saveTopk(["--tokenizer", TOKENIZER, "--out", out]),
      /^error: --tokenizer is only for text: data \(the data is builtin:demo\)$/,
    );
    // Nothing was claimed: no run.json, no shard.
    await assert.rejects(Deno.stat(`${out}/run.json`), Deno.errors.NotFound);
    // train --data text: the student's vocabulary bounds the tokenizer's the same way.
    await trainRejects(
      [
        "--ce-only",
        "--data",
        `text:${CORPUS}`,
        "--tokenizer",
        TOKENIZER,
        "--seq-len",
        "16",
        "--vocab",
        "1000",
      ],
      /^error: --tokenizer .* has a vocabulary of 2048 tokens, more than the student's 1000$/,
    );
    await trainRejects(
      ["--ce-only", "--data", `text:${CORPUS}`, "--seq-len", "16"],
      /^error: --tokenizer must be given/,
    );
  });
});

Deno.test("save-topk --cross-documents records no boundary token, and its data is other data", async () => {
  await withTempDir(async (dir) => {
    const args = ["--data", `text:${CORPUS}`, "--tokenizer", TOKENIZER, "--k", "4", "--max-sequences", "2"];
    for (const cross of [false, true]) {
      const r = await run(
        saveTopk([...args, "--out", `${dir}/${cross}`, ...(cross ? ["--cross-documents"] : [])]),
      );
      assert.equal(r.code, 0, r.stderr);
    }
    const [plain, cross] = await Promise.all(
      [false, true].map(async (c) => JSON.parse(await Deno.readTextFile(`${dir}/${c}/run.json`))),
    );
    assert.equal(plain.data.boundaryToken, EOT);
    assert.equal("boundaryToken" in cross.data, false);
    assert.notEqual(plain.data.fingerprint, cross.data.fingerprint);
    // Resuming one with the other's setting is refused (its data fingerprint differs).
    await expectOneLineError(
      saveTopk([...args, "--out", `${dir}/false`, "--cross-documents"]),
      /belongs to another run: data\.fingerprint/,
    );
  });
});
