import assert from "node:assert/strict";
import { studyMarkdown, type StudyRow, teacherTopKMass } from "../src/demo/run_study.ts";
import { readShards } from "../src/format/shard_reader.ts";
import { withSeed } from "./_rng.ts";
import { writePatternShards } from "./_train_fixtures.ts";

const row = (
  name: string,
  method: StudyRow["method"],
  k: number | null,
  ppl: number,
  gap: number | null,
): StudyRow => ({
  name,
  method,
  k,
  ppl,
  kl: 1,
  top1: 0.25,
  ece: 0.01,
  gapClosed: gap,
  pplPerSeed: [ppl],
  msPerStep: 1000,
});

const settings = { steps: 100, batchSize: 16, ks: [8, 64], alpha: 1 };

Deno.test("the study's verdict names the best offline mode at the largest K and whether it closes 80 % of the gap", () => {
  const rows = [
    row("ce-only", "ce-only", null, 600, 0),
    row("online-full", "online full KD", null, 500, 1),
    row("tail-k8", "offline tail", 8, 450, 1.5), // better, but not at the largest K
    row("topk-k64", "offline topk", 64, 590, 0.1),
    row("tail-k64", "offline tail", 64, 515, 0.85),
  ];
  const md = studyMarkdown(rows, 308.7, settings);
  assert.match(md, /Best offline mode at K=64: offline tail, closing 85 % .* the 80 % goal is met\./);
  assert.match(
    md,
    /\| tail-k64 \| offline tail \| 64 \| 515\.0 \| 1\.0000 \| 25\.0 % \| 0\.0100 \| 85 % \| 1000 \|/,
  );
  const worse = studyMarkdown(
    [...rows.slice(0, 4), row("tail-k64", "offline tail", 64, 540, 0.6)],
    308.7,
    settings,
  );
  assert.match(worse, /closing 60 % .* the 80 % goal is NOT met\./);
});

Deno.test("with several seeds the study's table shows each seed's perplexity beside the mean", () => {
  const rows = [
    { ...row("ce-only", "ce-only", null, 600, 0), pplPerSeed: [590, 610] },
    { ...row("online-full", "online full KD", null, 500, 1), pplPerSeed: [495, 505] },
    { ...row("tail-k64", "offline tail", 64, 520, 0.8), pplPerSeed: [510, 530] },
  ];
  const md = studyMarkdown(rows, 308.7, { ...settings, seeds: [1, 2] });
  assert.match(md, /seeds 1, 2 \(means over the seeds\)/);
  assert.match(md, /\| held-out ppl \(mean\) \| ppl per seed \|/);
  assert.match(md, /\| tail-k64 \| offline tail \| 64 \| 520\.0 \| 510\.0 \/ 530\.0 \| 1\.0000 \|/);
});

Deno.test("the study says so plainly when online KD does not beat CE-only", () => {
  const rows = [
    row("ce-only", "ce-only", null, 600, null),
    row("online-full", "online full KD", null, 650, null),
    row("tail-k64", "offline tail", 64, 620, null),
  ];
  const md = studyMarkdown(rows, 308.7, settings);
  assert.match(md, /Online full KD did not beat CE-only .* "gap closed" is undefined/);
  assert.match(md, /\| tail-k64 \| offline tail \| 64 \| 620\.0 .* \| n\/a \|/);
});

Deno.test("deno task study rejects a bad --ks, --alpha, --seeds or --teacher with one line and a non-zero exit", async () => {
  for (
    const [args, pattern] of [
      [["--ks", "8,zero"], /--ks must be an integer/],
      [["--ks", "0"], /--ks must be ≥ 1/],
      [["--alpha", "2"], /--alpha must be ≤ 1/],
      [["--seeds", "1,x"], /--seeds must be an integer/],
      [
        ["--teacher", "builtin:gpt2"],
        /--teacher must be a built-in teacher \(builtin:demo or builtin:tslib\)/,
      ],
      [["--teacher", "tfjs:m.json"], /--teacher must be a built-in teacher/],
    ] as const
  ) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../tasks/study.ts", import.meta.url).pathname, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr).split("\n").filter((l) =>
      l && !l.includes("XDG_RUNTIME_DIR")
    );
    assert.notEqual(out.code, 0);
    assert.equal(err.length, 1, err.join("\n"));
    assert.match(err[0], pattern);
  }
});

Deno.test("the teacher's top-K mass is computed from the stored logits and logsumexp, rising to 1 at K = V", async () => {
  await withSeed("demo_run_study_test", async (_rng, seed) => {
    const dir = await Deno.makeTempDir();
    try {
      const V = 24;
      await writePatternShards(`${dir}/topk`, { seed, sequences: 12, seqLen: 8, vocab: V, k: V });
      const ks = [1, 5, V];
      const got = await teacherTopKMass(dir, ks);
      // Independently: with k = V the shards hold every logit, so the softmax can be formed from them alone.
      const want = ks.map(() => 0);
      let n = 0;
      for await (const r of readShards(`${dir}/topk`)) {
        for (let p = 0; p < 8; p++) {
          const z = Array.from(r.val.subarray(p * V, (p + 1) * V));
          const m = Math.max(...z);
          const total = z.reduce((a, x) => a + Math.exp(x - m), 0);
          ks.forEach((k, i) => want[i] += z.slice(0, k).reduce((a, x) => a + Math.exp(x - m), 0) / total);
          n++;
        }
      }
      ks.forEach((k, i) =>
        assert.ok(Math.abs(got[i] - want[i] / n) < 1e-5, `K=${k}: ${got[i]} vs ${want[i] / n}`)
      );
      assert.ok(got[0] < got[1] && got[1] < got[2]);
      assert.ok(Math.abs(got[2] - 1) < 1e-5);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
