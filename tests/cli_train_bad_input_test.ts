import assert from "node:assert/strict";
import { trainCommand } from "../src/cli/train_flags.ts";
import { withSeed } from "./_rng.ts";
import { quietly, TINY_MODEL, trainRejects, writePatternShards } from "./_train_fixtures.ts";

const small = [
  ...TINY_MODEL,
  "--batch-size",
  "2",
  "--quiet",
];

async function withShards(body: (dir: string) => Promise<void>) {
  await withSeed("cli_train_bad_input_test", async (_rng, seed) => {
    const dir = await Deno.makeTempDir();
    try {
      await writePatternShards(`${dir}/topk`, { seed, sequences: 16, seqLen: 8, vocab: 24, k: 4 });
      await body(dir);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("α outside [0, 1], T ≤ 0 and an unknown KD mode are one-line errors", async () => {
  await trainRejects(["--alpha", "1.5"], /--alpha must be in \[0, 1\] \(got 1\.5\)/);
  await trainRejects(["--alpha=-0.1"], /--alpha must be in \[0, 1\]/);
  await trainRejects(["--temperature", "0"], /--temperature must be > 0/);
  await trainRejects(["--temperature=-2"], /--temperature must be > 0/);
  await trainRejects(["--kd-mode", "full"], /--kd-mode must be topk, renorm, tail or sampled/);
});

Deno.test("shards whose vocabulary or sequence length disagree with the student are refused", async () => {
  await withShards(async (dir) => {
    const shards = ["--shards", `${dir}/topk`, "--out", `${dir}/out`, ...small];
    await trainRejects(
      [...shards, "--seq-len", "16"],
      /--seq-len: the shards hold sequences of 8 tokens, not 16/,
    );
    await trainRejects(
      [...shards, "--vocab", "48"],
      /vocabulary \(24\) is smaller than the student's \(48\)/,
    );
    await trainRejects(
      [...shards, "--vocab", "20"],
      /--vocab-pad: the shards' vocabulary \(24\) is larger than the student's \(20\)/,
    );
    await trainRejects([...shards, "--vocab-pad", "maybe"], /--vocab-pad must be error or drop/);
  });
});

Deno.test("a teacher vocabulary with padding rows needs --vocab-pad drop, which then trains", async () => {
  await withSeed("cli_train_bad_input_test", async (_rng, seed) => {
    const dir = await Deno.makeTempDir();
    try {
      await writePatternShards(`${dir}/topk`, {
        seed,
        sequences: 16,
        seqLen: 8,
        vocab: 20,
        teacherVocab: 24,
        k: 6,
      });
      const args = ["--shards", `${dir}/topk`, "--vocab", "20", "--steps", "2", "--log-every", "1", ...small];
      await trainRejects(
        [...args, "--out", `${dir}/a`],
        /vocabulary \(24\) is larger than the student's \(20\)/,
      );
      await quietly(() => trainCommand([...args, "--out", `${dir}/b`, "--vocab-pad", "drop"]));
      const lines = (await Deno.readTextFile(`${dir}/b/metrics.jsonl`)).trim().split("\n").map((l) =>
        JSON.parse(l)
      );
      assert.ok(lines.filter((l) => l.kind === "train").every((l) => Number.isFinite(l.loss)));
      const evals = lines.filter((l) => l.kind === "eval");
      assert.equal(evals.length, 1);
      assert.ok(Number.isFinite(evals[0].kl));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("--kd-mode tail on shards without the logsumexp at T is refused", async () => {
  await withShards(async (dir) => {
    await trainRejects(
      ["--shards", `${dir}/topk`, "--out", `${dir}/out`, "--kd-mode", "tail", "--temperature", "2", ...small],
      /^error: --kd-mode tail needs the teacher's logsumexp at temperature 2; .* has it at 1 only: re-run save-topk with --lse-temperatures 1,2$/,
    );
  });
});

Deno.test("a truncated shard is an error naming the shard and the byte offset", async () => {
  await withShards(async (dir) => {
    const path = `${dir}/topk/shards/s000000.msgpack`;
    const bytes = await Deno.readFile(path);
    await Deno.writeFile(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await trainRejects(
      ["--shards", `${dir}/topk`, "--out", `${dir}/out`, "--steps", "3", ...small],
      /s000000\.msgpack.*(offset|byte)/,
    );
  });
});

Deno.test("a NaN loss stops the run naming the step and keeps the last good checkpoint", async () => {
  await withShards(async (dir) => {
    const out = `${dir}/out`;
    await trainRejects(
      [
        "--shards",
        `${dir}/topk`,
        "--out",
        out,
        "--ce-only",
        "--steps",
        "6",
        "--lr",
        "1e38",
        "--warmup",
        "0",
        "--clip",
        "0",
        "--weight-decay",
        "0",
        "--log-every",
        "1",
        "--checkpoint-every",
        "1",
        ...small,
      ],
      /the loss is (NaN|Infinity|-Infinity) at step (\d+).*last good checkpoint .*ckpt-\d+ is kept/,
    );
    const names = [];
    for await (const e of Deno.readDir(out)) if (e.name.startsWith("ckpt-")) names.push(e.name);
    assert.ok(names.length >= 1, "a checkpoint of the good steps is kept");
    for (const n of names) assert.ok((await Deno.stat(`${out}/${n}/state.json`)).isFile);
  });
});

Deno.test("missing demo shards say which command makes them", async () => {
  const dir = await Deno.makeTempDir();
  const cwd = Deno.cwd();
  Deno.chdir(dir);
  try {
    await trainRejects(
      [],
      /runs\/demo\/topk has no run\.json: make the demo shards first with `deno task save-topk`/,
    );
  } finally {
    Deno.chdir(cwd);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the train task prints one error line and exits non-zero on bad input", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../tasks/train.ts", import.meta.url).pathname, "--alpha", "7"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.notEqual(out.code, 0);
  const err = new TextDecoder().decode(out.stderr).trim().split("\n").filter((l) =>
    !/XDG_RUNTIME_DIR/.test(l)
  );
  assert.deepEqual(err, ["error: --alpha must be in [0, 1] (got 7)"]);
});

Deno.test("--heldout-sequences above half the data is a one-line error, not a silent cap", async () => {
  await withShards(async (dir) => {
    await trainRejects(
      ["--shards", `${dir}/topk`, "--out", `${dir}/out`, ...small, "--heldout-sequences", "9"],
      /^error: --heldout-sequences must be at most half of the 16 sequences of .*topk \(8; got 9\)$/,
    );
  });
});

Deno.test("an out or export path that cannot be written is one error line before training", async () => {
  await withShards(async (dir) => {
    await Deno.writeTextFile(`${dir}/file`, "not a folder");
    await trainRejects(
      ["--shards", `${dir}/topk`, "--out", `${dir}/file/out`, ...small],
      /^error: --out: cannot write to .*file\/out: /,
    );
    await trainRejects(
      ["--shards", `${dir}/topk`, "--out", `${dir}/out`, "--export", `${dir}/file/model`, ...small],
      /^error: --export: cannot write to .*file\/model: /,
    );
    await assert.rejects(Deno.stat(`${dir}/out/metrics.jsonl`), Deno.errors.NotFound, "nothing trained");
    await Deno.mkdir(`${dir}/out2/metrics.jsonl`, { recursive: true });
    await trainRejects(
      ["--shards", `${dir}/topk`, "--out", `${dir}/out2`, ...small],
      /^error: --out: cannot write to .*out2\/metrics\.jsonl: /,
    );
  });
});
