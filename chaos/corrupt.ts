/**
 * Category `corrupt`: random truncations and bit flips of a shard, run.json, a manifest or a report input,
 * fed to the readers (train, save-topk resuming the run, report). Survived: one `error:` line, or a correct
 * result (exit 0 is correct only when the damaged file still means the same: a JSON file that parses to the
 * same value; a damaged shard must always be refused). Lost: a stack trace, a hang, or success on damaged data.
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import { syntheticReportInput } from "../tests/report_synthetic.ts";
import {
  type CaseResult,
  caseSeeds,
  type Category,
  type Ctx,
  diffHashes,
  ending,
  type Rng,
  rng,
  runTask,
  treeHashes,
} from "./lib.ts";
import { copyTree, makeFixture, saveArgs, trainArgs } from "./fixtures.ts";

/** Cases a full budget aims for. */
const TARGET = 40;

/** The corrupt-inputs category. */
export const corruptInputs: Category = {
  name: "corrupt",
  weight: 1.5,
  async run(ctx: Ctx) {
    const cases: CaseResult[] = [];
    const fx = await makeFixture(`${ctx.tmp}/fx`, ctx.seed, { S: 16, L: 8, V: 96 });
    const refOut = `${ctx.tmp}/ref-topk`;
    const r0 = await runTask("save_topk", saveArgs(ctx, fx, refOut));
    if (ending(r0).kind !== "ok") throw new Error(`the reference save-topk failed: ${r0.stderr.slice(-300)}`);
    const ref = (await treeHashes(refOut)).files;
    const nextSeed = caseSeeds(ctx, "corrupt");
    for (let i = 0; i < TARGET && Date.now() < ctx.deadline; i++) {
      const seed = nextSeed();
      const r = rng(seed);
      const target = r.pick(["shard", "shard", "run.json", "manifest", "report"] as const);
      const how = r.next() < 0.5 ? "truncate" : "flip";
      const dir = `${ctx.tmp}/case-${i}`;
      let lost = "", what = "";
      if (target === "report") {
        await Deno.mkdir(dir, { recursive: true });
        const input = new TextEncoder().encode(JSON.stringify(syntheticReportInput(seed), null, 1));
        const bad = damage(input, how, r);
        await Deno.writeFile(`${dir}/report_input.json`, bad.bytes);
        what = `report on report_input.json ${bad.what}`;
        const e = ending(await runTask("report", [dir]));
        if (e.kind === "bad") lost = e.why;
        else if (e.kind === "ok" && !(await exists(`${dir}/report.html`))) lost = "exit 0 but no report.html";
      } else {
        await copyTree(refOut, dir);
        const file = target === "shard"
          ? `shards/s00000${r.int(8)}.msgpack`
          : target === "run.json"
          ? "run.json"
          : "manifests/h00000.json";
        const before = await Deno.readFile(`${dir}/${file}`);
        const bad = damage(before, how, r);
        await Deno.writeFile(`${dir}/${file}`, bad.bytes);
        const reader = r.pick(["train", "train", "resume"] as const);
        what = `${reader} on ${file} ${bad.what}`;
        const o = reader === "train"
          ? await runTask("train", trainArgs(ctx, dir, `${dir}-train`))
          : await runTask("save_topk", saveArgs(ctx, fx, dir));
        const e = ending(o);
        const same = file.endsWith(".json") && sameJson(before, bad.bytes);
        if (e.kind === "bad") lost = e.why;
        else if (e.kind === "ok" && !same) {
          // A resume that repairs what it may (a manifest) and ends with the reference's set is correct.
          const diff = reader === "resume" ? diffHashes(ref, (await treeHashes(dir)).files) : "";
          if (reader === "train") lost = `train accepted the damaged ${file} and trained on it (exit 0)`;
          else if (diff) lost = `save-topk resume accepted the damaged ${file} (exit 0; ${diff})`;
        }
      }
      cases.push({ seed, what, survived: !lost, detail: lost });
      ctx.log(`${what}: ${lost ? `LOST ${lost}` : "survived"}`);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(`${dir}-train`, { recursive: true }).catch(() => {});
    }
    return { name: "corrupt", cases, notes: [] };
  },
};

/** Truncates `b` at a random length, or flips 1–3 random bits; says what it did. */
function damage(b: Uint8Array, how: "truncate" | "flip", r: Rng): { bytes: Uint8Array; what: string } {
  if (how === "truncate") {
    const n = r.int(b.length);
    return { bytes: b.slice(0, n), what: `truncated to ${n} of ${b.length} bytes` };
  }
  const out = b.slice();
  const bits: string[] = [];
  for (let j = 1 + r.int(3); j > 0; j--) {
    const at = r.int(out.length), bit = r.int(8);
    out[at] ^= 1 << bit;
    bits.push(`${at}.${bit}`);
  }
  if (out.every((x, i) => x === b[i])) out[0] ^= 1; // two flips of the same bit: still damage it
  return { bytes: out, what: `with bits flipped at ${bits.join(",")}` };
}

/** Whether two JSON texts parse to the same value (a flip in whitespace changes nothing). */
function sameJson(a: Uint8Array, b: Uint8Array): boolean {
  try {
    const dec = new TextDecoder("utf-8", { fatal: true });
    // Free-form descriptions are not part of what a run is (docs/format.md §2): a flip there harms nothing.
    const strip = (t: string) => JSON.parse(t, (k, v) => (k === "description" ? undefined : v));
    return isDeepStrictEqual(strip(dec.decode(a)), strip(dec.decode(b)));
  } catch {
    return false;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}
