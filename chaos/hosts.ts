/**
 * Category `hosts`: 2–3 save-topk hosts at once into one OUT, the same host index started twice at once, and
 * a one-host run killed and finished by 2 or 3 hosts. Every host must end with exit 0 (or, for a duplicate
 * host, one `error:` line); the shards and run.json must be byte-equal to a one-host run, the manifests must
 * together list exactly the one-host run's entries, and train must read the result and produce the weights
 * and metrics of a train on the one-host run.
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
  sha256,
  treeHashes,
} from "./lib.ts";
import { makeFixture, metricsRows, saveArgs, trainArgs } from "./fixtures.ts";

/** Cases a full budget aims for. */
const TARGET = 12;

/** The several-hosts category. */
export const severalHosts: Category = {
  name: "hosts",
  weight: 2,
  async run(ctx: Ctx) {
    const cases: CaseResult[] = [];
    const fx = await makeFixture(`${ctx.tmp}/fx`, ctx.seed, { S: 16, L: 8, V: 96 });
    const refOut = `${ctx.tmp}/ref-topk`;
    const r0 = await runTask("save_topk", saveArgs(ctx, fx, refOut));
    if (ending(r0).kind !== "ok") throw new Error(`the reference save-topk failed: ${r0.stderr.slice(-300)}`);
    const ref = (await treeHashes(refOut)).files;
    const refEntries = await manifestEntries(refOut);
    const t0 = await runTask("train", trainArgs(ctx, refOut, `${ctx.tmp}/ref-train`));
    if (ending(t0).kind !== "ok") throw new Error(`the reference train failed: ${t0.stderr.slice(-300)}`);
    const refTrain = await trainedWeights(`${ctx.tmp}/ref-train`);

    const nextSeed = caseSeeds(ctx, "hosts");
    const kinds = ["concurrent-2", "concurrent-3", "same-index-twice", "resume-1to2", "resume-1to3"] as const;
    for (let i = 0; i < TARGET && Date.now() < ctx.deadline; i++) {
      const seed = nextSeed();
      const r = rng(seed);
      const kind = kinds[i % kinds.length];
      const out = `${ctx.tmp}/case-${i}`;
      const host = (h: number, n: number) =>
        saveArgs(ctx, fx, out, ["--host-index", `${h}`, "--host-count", `${n}`]);
      let what = kind;
      let lost = "";
      const runAll = async (args: string[][], allowOneError: boolean) => {
        const outs = await Promise.all(args.map((a) => runTask("save_topk", a)));
        const ends = outs.map(ending);
        const bad = ends.find((e) => e.kind === "bad");
        if (bad) return (bad as { why: string }).why;
        const errs = ends.filter((e) => e.kind === "error") as { line: string }[];
        if (errs.length > (allowOneError ? 1 : 0) || errs.length === ends.length) {
          return `a host ended with ${errs[0].line}`;
        }
        return "";
      };
      if (kind === "concurrent-2" || kind === "concurrent-3") {
        const n = kind === "concurrent-2" ? 2 : 3;
        lost = await runAll(Array.from({ length: n }, (_, h) => host(h, n)), false);
      } else if (kind === "same-index-twice") {
        lost = await runAll([host(0, 1), host(0, 1)], true);
        // A host that lost the race with one error line is started again, as its job scheduler would.
        if (!lost) lost = await runAll([host(0, 1)], false);
      } else {
        const n = kind === "resume-1to2" ? 2 : 3;
        const at = Math.round(r0.ms * (0.2 + 0.8 * r.next()));
        what += ` (one host killed at ${at} ms)`;
        const k = await runTask("save_topk", host(0, 1), { killAtMs: at });
        if (!k.killed && ending(k).kind === "bad") lost = (ending(k) as { why: string }).why;
        if (!lost) lost = await runAll(Array.from({ length: n }, (_, h) => host(h, n)), false);
      }
      if (!lost) lost = await checkSet(out, ref, refEntries);
      if (!lost) {
        const t = await runTask("train", trainArgs(ctx, out, `${out}-train`));
        const e = ending(t);
        if (e.kind !== "ok") lost = `train on the result ended with ${e.kind === "error" ? e.line : e.why}`;
        else {
          const got = await trainedWeights(`${out}-train`);
          if (got !== refTrain) lost = "train on the result differs from train on a one-host run";
        }
      }
      cases.push({ seed, what, survived: !lost, detail: lost });
      ctx.log(`${what}: ${lost ? `LOST ${lost}` : "survived"}`);
      await Deno.remove(out, { recursive: true }).catch(() => {});
      await Deno.remove(`${out}-train`, { recursive: true }).catch(() => {});
    }
    return { name: "hosts", cases, notes: [] };
  },
};

/** Shards and run.json as in the one-host run; the manifests' entries, merged, equal its manifest's. */
async function checkSet(out: string, ref: Map<string, string>, refEntries: string): Promise<string> {
  const got = (await treeHashes(out)).files;
  // A shard's header names the host that wrote it (docs/format.md §3.1), so a shard of host h differs from
  // the one-host run's in that one byte: compare with the host set to 0.
  for (const p of got.keys()) {
    if (!p.startsWith("shards/")) continue;
    const b = await Deno.readFile(`${out}/${p}`);
    const at = indexOfHost(b);
    if (at >= 0 && b[at] < 0x80) b[at] = 0;
    got.set(p, sha256(b));
  }
  const d = diffHashes(ref, got, /^manifests\//);
  if (d) return d;
  const entries = await manifestEntries(out);
  return entries === refEntries ? "" : "the manifests do not list exactly the one-host run's shards";
}

/** Every manifest entry under out/manifests, sorted by shard, as one string (a shard listed twice shows). */
async function manifestEntries(out: string): Promise<string> {
  const all: { shard: number }[] = [];
  for await (const e of Deno.readDir(`${out}/manifests`)) {
    const m = JSON.parse(await Deno.readTextFile(`${out}/manifests/${e.name}`));
    // The CRC32C covers the host byte; train checks it against the shard's bytes.
    all.push(...m.shards.map((x: { crc32c?: string }) => ({ ...x, crc32c: undefined })));
  }
  all.sort((a, b) => a.shard - b.shard);
  return JSON.stringify(all);
}

/** The offset of the header's host value: the byte after the key "host" (a4 68 6f 73 74). */
function indexOfHost(b: Uint8Array): number {
  for (let i = 0; i + 5 < Math.min(b.length, 200); i++) {
    if (b[i] === 0xa4 && b[i + 1] === 0x68 && b[i + 2] === 0x6f && b[i + 3] === 0x73 && b[i + 4] === 0x74) {
      return i + 5;
    }
  }
  return -1;
}

/** The final weights, optimizer state and metrics rows of a train run (not state.json: it names --shards). */
async function trainedWeights(dir: string): Promise<string> {
  const { files } = await treeHashes(dir);
  const parts = [...files].filter(([p]) => /weights\.bin$/.test(p)).sort().map(([p, h]) => `${p}=${h}`);
  return parts.join(",") + (await metricsRows(`${dir}/metrics.jsonl`)).rows;
}
