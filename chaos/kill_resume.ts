/**
 * Category `kill`: save-topk and train are killed with SIGKILL at random moments (once or twice per case),
 * then run again (train with `--resume` once a checkpoint exists) to the end; every file must then have the
 * sha256 of an uninterrupted reference run (train: the checkpoints' weights, optimizer state and state.json,
 * and the metrics rows without their timing, each step exactly once). Right after each kill, every shard that
 * exists must already be byte-equal to the reference's (never a partial shard).
 * @module
 */
import {
  type CaseResult,
  caseSeeds,
  type Category,
  type Ctx,
  diffHashes,
  ending,
  rng,
  runTask,
  treeHashes,
} from "./lib.ts";
import { makeFixture, metricsRows, saveArgs, trainArgs } from "./fixtures.ts";

/** Cases of each kind (save-topk, train) a full budget aims for. */
const TARGET = 20;

/** The kill-and-resume category. */
export const killResume: Category = {
  name: "kill",
  weight: 4,
  async run(ctx: Ctx) {
    const cases: CaseResult[] = [];
    const notes: string[] = [];
    const fx = await makeFixture(`${ctx.tmp}/fx`, ctx.seed, { S: 24, L: 8, V: 96 });
    const refOut = `${ctx.tmp}/ref-topk`;
    const ref = await runTask("save_topk", saveArgs(ctx, fx, refOut));
    if (ending(ref).kind !== "ok") {
      throw new Error(`the reference save-topk failed: ${ref.stderr.slice(-300)}`);
    }
    const refFiles = (await treeHashes(refOut)).files;

    const trainRef = async (out: string) => {
      const o = await runTask("train", trainArgs(ctx, refOut, out));
      if (ending(o).kind !== "ok") throw new Error(`the reference train failed: ${o.stderr.slice(-300)}`);
      return o.ms;
    };
    const trainMs = await trainRef(`${ctx.tmp}/ref-train`);
    await trainRef(`${ctx.tmp}/ref-train2`);
    const trainFiles = (await treeHashes(`${ctx.tmp}/ref-train`)).files;
    const trainFiles2 = (await treeHashes(`${ctx.tmp}/ref-train2`)).files;
    const unstable = [...trainFiles.keys()].filter((p) =>
      p !== "metrics.jsonl" && trainFiles2.get(p) !== trainFiles.get(p)
    );
    if (unstable.length) {
      notes.push(`two uninterrupted train runs differ in ${unstable.join(", ")}: not compared`);
    }
    const trainMetrics = await metricsRows(`${ctx.tmp}/ref-train/metrics.jsonl`);
    const ignore = new RegExp(
      `^(metrics\\.jsonl${unstable.map((p) => `|${p.replace(/\./g, "\\.")}`).join("")})$`,
    );

    const nextSeed = caseSeeds(ctx, "kill");
    let kills = 0, landed = 0, tmpLeft = 0;
    for (let i = 0; i < 2 * TARGET && Date.now() < ctx.deadline; i++) {
      const seed = nextSeed();
      const r = rng(seed);
      const isTrain = i % 2 === 1;
      const out = `${ctx.tmp}/case-${i}`;
      const nKills = 1 + (r.next() < 0.3 ? 1 : 0);
      const moments: number[] = [];
      let lost = "";
      const refMs = isTrain ? trainMs : ref.ms;
      for (let k = 0; k < nKills && !lost; k++) {
        const at = Math.round(refMs * (0.1 + 0.7 * r.next()));
        moments.push(at);
        const o = isTrain
          ? await runTask("train", trainArgs(ctx, refOut, out, await resumeFlag(out)), { killAtMs: at })
          : await runTask("save_topk", saveArgs(ctx, fx, out), { killAtMs: at });
        kills++;
        if (o.killed) landed++;
        else if (ending(o).kind === "bad") lost = `before the kill: ${(ending(o) as { why: string }).why}`;
        if (!isTrain && !lost) lost = await partialShards(out, refFiles);
      }
      const what = `${isTrain ? "train" : "save-topk"} killed at ${moments.map((m) => `${m} ms`).join(", ")}`;
      if (!lost) {
        // train: --resume whenever a ckpt-* folder exists, as a user restarting the job would; a folder
        // without a complete checkpoint makes the run start over (each step once in metrics.jsonl).
        const o = isTrain
          ? await runTask("train", trainArgs(ctx, refOut, out, await resumeFlag(out)))
          : await runTask("save_topk", saveArgs(ctx, fx, out));
        const e = ending(o);
        if (e.kind !== "ok") lost = `the resumed run ended with ${e.kind === "error" ? e.line : e.why}`;
        else {
          const got = await treeHashes(out);
          tmpLeft += got.tmpLeftovers.length;
          lost = diffHashes(isTrain ? trainFiles : refFiles, got.files, isTrain ? ignore : undefined);
          if (!lost && isTrain) lost = await compareMetrics(`${out}/metrics.jsonl`, trainMetrics);
        }
      }
      cases.push({ seed, what, survived: !lost, detail: lost });
      ctx.log(`${what}: ${lost ? `LOST ${lost}` : "survived"}`);
      await Deno.remove(out, { recursive: true }).catch(() => {});
    }
    notes.push(
      `${kills} kills (${landed} landed while the command ran); ${tmpLeft} hidden .tmp leftovers`,
    );
    return { name: "kill", cases, notes };
  },
};

/** `--resume` when `out` holds a checkpoint folder (what a user restarting the job would pass). */
async function resumeFlag(out: string): Promise<string[]> {
  try {
    for await (const e of Deno.readDir(out)) {
      if (e.isDirectory && e.name.startsWith("ckpt-")) return ["--resume"];
    }
  } catch { /* no folder yet */ }
  return [];
}

/** "" when every shard present in `out` equals the reference's; else which is not. */
async function partialShards(out: string, ref: Map<string, string>): Promise<string> {
  const { files } = await treeHashes(out);
  for (const [p, h] of files) {
    if (p.startsWith("shards/") && ref.get(p) !== h) return `after the kill ${p} exists but is not complete`;
  }
  return "";
}

/** "" when the metrics rows equal the reference's (without timings) and no step is there twice. */
async function compareMetrics(path: string, want: { rows: string }): Promise<string> {
  const got = await metricsRows(path);
  if (got.duplicates.length) return `metrics.jsonl has rows twice: ${got.duplicates.slice(0, 4).join(", ")}`;
  if (got.rows !== want.rows) {
    const a = want.rows.split("\n"), b = got.rows.split("\n");
    const i = a.findIndex((row, j) => row !== b[j]);
    return `metrics.jsonl differs from the reference at row ${
      i < 0 ? a.length : i
    } (${b.length} rows, want ${a.length})`;
  }
  return "";
}
