import assert from "node:assert/strict";
import { runStudy, type StudyRow, teacherTopKMass } from "../src/demo/run_study.ts";
import { studyMarkdown } from "../src/demo/study_markdown.ts";
import { studentFolder, studyMethods, topKBytesPerPosition } from "../src/demo/study_methods.ts";
import { meanSe } from "../src/demo/study_stats.ts";
import { readManifests } from "../src/format/manifest.ts";
import { readShards } from "../src/format/shard_reader.ts";
import { openLocalStore } from "../src/store/local.ts";
import { withSeed } from "./_rng.ts";
import { runTask, withTempDir } from "./_helpers.ts";
import { writePatternShards } from "./_train_fixtures.ts";

const settings = { steps: 100, batchSize: 16, seeds: [1, 2, 3], ks: [8, 64] };

const row = (teacher: string, id: string, ppl: number[], extra: Partial<StudyRow> = {}): StudyRow => ({
  teacher,
  alpha: 1,
  id,
  method: id,
  k: /-k(\d+)$/.test(id) ? Number(id.match(/-k(\d+)$/)![1]) : null,
  n: /^sampled-n(\d+)$/.test(id) ? Number(id.match(/n(\d+)$/)![1]) : null,
  bytesPerPosition: null,
  distinctPerPosition: null,
  seeds: ppl.map((_, i) => i + 1),
  ppl: meanSe(ppl),
  kl: meanSe(ppl.map(() => 0.5)),
  top1: meanSe(ppl.map(() => 0.3)),
  ece: meanSe(ppl.map(() => 0.01)),
  gapClosed: null,
  msPerStep: 1000,
  ...extra,
});

Deno.test("the study's methods: CE-only once per seed for every α, every other method per α and seed", () => {
  const methods = studyMethods({
    teacher: "builtin:demo",
    ks: [8, 64],
    samples: [16, 64],
    beta: 0.5,
    divergenceSupport: "tail",
  });
  assert.deepEqual(methods.map((m) => m.id), [
    "ce-only",
    "online-full",
    "topk-k8",
    "renorm-k8",
    "tail-k8",
    "topk-k64",
    "renorm-k64",
    "tail-k64",
    "sampled-n16",
    "sampled-n64",
    "reverse-tail-k64",
    "jsd-tail-k64",
  ]);
  assert.equal(studentFolder(methods[0], 0.5, 2), "ce-only-s2");
  assert.equal(studentFolder(methods[7], 0.5, 2), "tail-k64-a0.5-s2");
  assert.deepEqual(methods[11].options(0.5), {
    kdMode: "tail",
    k: 64,
    alpha: 0.5,
    divergence: "jsd",
    beta: 0.5,
  });
  assert.equal(methods[9].targets, "sample64");
  assert.deepEqual(methods[1].options(1), { onlineTeacher: "builtin:demo", alpha: 1 });
});

Deno.test("bytes per position of a smaller K, derived from shards saved at the largest K, match shards saved at it", async () => {
  await withTempDir(async (dir) => {
    const perPosition = async (d: string) => {
      let bytes = 0, tokens = 0;
      for (const e of (await readManifests(await openLocalStore(d))).values()) {
        bytes += e.bytes;
        tokens += e.tokens;
      }
      return bytes / tokens;
    };
    const o = { seed: 3, sequences: 16, seqLen: 16, vocab: 300 };
    await writePatternShards(`${dir}/k64`, { ...o, k: 64 });
    await writePatternShards(`${dir}/k8`, { ...o, k: 8 });
    const derived = topKBytesPerPosition(await perPosition(`${dir}/k64`), 64, 8, 2 + 4); // u16 ids, f32 values
    const measured = await perPosition(`${dir}/k8`);
    // MessagePack's length prefixes differ by a few bytes per record: a record is 16 positions here.
    assert.ok(Math.abs(derived - measured) < 0.5, `derived ${derived} vs measured ${measured}`);
  });
});

Deno.test("the study's tables show mean ± standard error and the seeds, and each goal says met, NOT met or not measured", () => {
  const rows: StudyRow[] = [
    row("builtin:tslib", "ce-only", [600, 610, 620]),
    row("builtin:tslib", "online-full", [500, 505, 510], { kl: meanSe([0.3, 0.3, 0.3]) }),
    row("builtin:tslib", "tail-k64", [515, 520, 525], {
      bytesPerPosition: 392.6,
      kl: meanSe([0.32, 0.32, 0.32]),
      gapClosed: { mean: 0.85, se: 0.05 },
    }),
    row("builtin:demo", "ce-only", [600, 610]),
    row("builtin:demo", "online-full", [500, 510]),
    row("builtin:demo", "sampled-n64", [650, 640], { bytesPerPosition: 411.3, distinctPerPosition: 50 }),
  ];
  const md = studyMarkdown(rows, [
    { spec: "builtin:tslib", heldoutPpl: 20, ks: [1, 64], topKMass: [0.5, 0.95] },
    { spec: "builtin:demo", heldoutPpl: 308.7, ks: [1, 64], topKMass: [0.079, 0.515] },
  ], settings);
  assert.match(
    md,
    /\| tail-k64 \| 64 \| 392\.6 \| — \| 520\.0 ± 2\.9 \| 0\.3200 ± 0\.0000 \| 30\.0 ± 0\.0 % \|/,
  );
  assert.match(md, /\| 85 ± 5 % \| 1,2,3 \|/);
  assert.match(md, /\| sampled-n64 \| 64 \| 411\.3 \| 50\.0 \| 645\.0 ± 5\.0 \|/);
  assert.match(md, /top-1 50\.0 %, top-64 95\.0 %/);
  assert.match(
    md,
    /builtin:tslib\), α = 1: .* tail-k64 \(64\), closing 85 ± 5 % of the gap over 3 seeds \(goal ≥ 80 %: met\); its KL to the teacher is 6.7 % above .*within 10 %: met\)/,
  );
  assert.match(
    md,
    /sampled N=64 reaches perplexity 645\.0 against CE-only's 605\.0 \(goal: lower; NOT met, by 40\.0\)/,
  );
  const worseOnline = studyMarkdown(
    [
      row("builtin:tslib", "ce-only", [56, 57]),
      row("builtin:tslib", "online-full", [70, 71], { kl: meanSe([1.56, 1.56]) }),
      row("builtin:tslib", "tail-k64", [72, 73], { kl: meanSe([1.56, 1.56]) }),
    ],
    [],
    settings,
  );
  assert.match(
    worseOnline,
    /online KD \(perplexity 70\.5\) does not beat CE-only \(56\.5\) .* undefined .* tail-k64 \(64\), reaches perplexity 72\.5, and its KL to the teacher is 0\.0 % above .*within 10 %: met\)/,
  );
  const partial = studyMarkdown(rows.slice(3), [], settings);
  assert.match(partial, /Representative teacher, α = 1, .*: not measured yet\./);
});

Deno.test("deno task study rejects bad flags with one line and a non-zero exit", async () => {
  for (
    const [args, pattern] of [
      [["--ks", "8,zero"], /--ks must be an integer/],
      [["--samples", "0"], /--samples must be ≥ 1/],
      [["--samples", "2000"], /--samples must be ≤ 1024/],
      [["--alphas", "2"], /--alphas must be ≤ 1/],
      [["--beta", "1.5"], /--beta must be ≤ 1/],
      [["--seeds", "1,x"], /--seeds must be an integer/],
      [["--methods", "tail-k65"], /--methods: unknown method "tail-k65"/],
      [
        ["--teachers", "builtin:gpt2"],
        /--teachers must be a built-in teacher \(builtin:demo or builtin:tslib\)/,
      ],
    ] as const
  ) {
    const r = await runTask("study", ...args);
    const err = r.stderr.split("\n").filter((l) => l && !l.includes("XDG_RUNTIME_DIR"));
    assert.notEqual(r.code, 0);
    assert.equal(err.length, 1, err.join("\n"));
    assert.match(err[0], pattern);
  }
});

Deno.test("the teacher's top-K mass is computed from the stored logits and logsumexp, rising to 1 at K = V", async () => {
  await withSeed("demo_run_study_test", async (_rng, seed) => {
    await withTempDir(async (dir) => {
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
    });
  });
});

Deno.test("a tiny study runs every method, resumes without training again, and tabulates what is finished", async () => {
  await withTempDir(async (dir) => {
    const o = {
      dir,
      teachers: ["builtin:demo"],
      sequences: 16,
      steps: 2,
      batchSize: 4,
      ks: [2],
      samples: [3],
      alphas: [1],
      seeds: [1, 2],
      heldoutSequences: 2,
      cpu: true,
    };
    const first = await runStudy({
      ...o,
      methods: ["ce-only", "online-full", "tail-k2", "sampled-n3", "jsd-tail-k2"],
    });
    assert.equal(first.trained, 10);
    const tail = first.rows.find((r) => r.id === "tail-k2")!;
    assert.deepEqual(tail.seeds, [1, 2]);
    assert.ok(Number.isFinite(tail.ppl.se) && tail.bytesPerPosition! > 0);
    const sampled = first.rows.find((r) => r.id === "sampled-n3")!;
    assert.ok(sampled.distinctPerPosition! >= 1 && sampled.distinctPerPosition! <= 3);
    assert.deepEqual(first.rows.find((r) => r.id === "topk-k2")!.seeds, []); // not asked for yet
    assert.equal(first.missing, 6);
    const html = await Deno.readTextFile(first.reports[0]);
    assert.match(html, /id="chart-gap-closed"/);
    // The kept scores stand for a student whose checkpoints are gone (a study carried over to a new session).
    for await (const e of Deno.readDir(`${dir}/demo/students/tail-k2-a1-s1`)) {
      if (e.name.startsWith("ckpt-")) {
        await Deno.remove(`${dir}/demo/students/tail-k2-a1-s1/${e.name}`, { recursive: true });
      }
    }
    const resumed = await runStudy({ ...o, methods: ["tail-k2"] });
    assert.equal(resumed.trained, 0);
    const again = await runStudy({ ...o, tableOnly: true });
    assert.equal(again.trained, 0);
    assert.deepEqual(again.rows.find((r) => r.id === "tail-k2")!.ppl, tail.ppl); // kept scores
    const json = JSON.parse(await Deno.readTextFile(`${dir}/study.json`));
    assert.equal(json.rows.length, 8);
  });
});
