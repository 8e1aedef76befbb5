/**
 * Category `bad-input`: a table of bad flags and bad files for save-topk, train and report. Each must end
 * with exactly one `error:` line, a non-zero exit and no stack trace, and write nothing: its fresh output
 * path must not exist afterwards (an empty folder is reported as a note), and an existing OUT must keep its
 * bytes.
 * @module
 */
import { npyBytes } from "../src/data/npy.ts";
import { type CaseResult, type Category, type Ctx, diffHashes, ending, runTask, treeHashes } from "./lib.ts";
import { copyTree, makeFixture, saveArgs, trainArgs } from "./fixtures.ts";

interface Row {
  task: "save_topk" | "train" | "report";
  what: string;
  /** The flags, given the case's fresh output path. */
  args: (out: string) => string[];
  /** An existing OUT that must keep its bytes. */
  keeps?: string;
}

/** The bad-input category. */
export const badInput: Category = {
  name: "bad-input",
  weight: 1,
  async run(ctx: Ctx) {
    const cases: CaseResult[] = [];
    const notes: string[] = [];
    const fx = await makeFixture(`${ctx.tmp}/fx`, ctx.seed, { S: 8, L: 8, V: 96 });
    const refOut = `${ctx.tmp}/ref-topk`;
    const r0 = await runTask("save_topk", saveArgs(ctx, fx, refOut));
    if (ending(r0).kind !== "ok") throw new Error(`the reference save-topk failed: ${r0.stderr.slice(-300)}`);
    const other = `${ctx.tmp}/other-run`;
    await copyTree(refOut, other);
    const d = fx.dir;
    await Deno.writeFile(`${d}/ids_oov.npy`, npyBytes("<i4", [8, 8], new Int32Array(64).fill(96)));
    const nan = new Float32Array(8 * 8 * 96).fill(1);
    nan[5 * 96 + 3] = NaN;
    await Deno.writeFile(`${d}/nan.npy`, npyBytes("<f4", [8, 8, 96], nan));
    await Deno.writeFile(`${d}/garbage.npy`, new TextEncoder().encode("not an npy file at all"));
    await Deno.writeFile(`${d}/a_file`, new Uint8Array(3));
    await Deno.mkdir(`${d}/empty`, { recursive: true });
    await Deno.mkdir(`${d}/report-empty`, { recursive: true });
    await Deno.mkdir(`${d}/report-bad`, { recursive: true });
    await Deno.writeTextFile(`${d}/report-bad/report_input.json`, '{"students": 3}');

    const save = (what: string, extra: string[]): Row => ({
      task: "save_topk",
      what,
      args: (out) => saveArgs(ctx, fx, out, extra),
    });
    const train = (what: string, extra: string[], shards = refOut): Row => ({
      task: "train",
      what,
      args: (out) => trainArgs(ctx, shards, out, extra),
    });
    const table: Row[] = [
      save("unknown flag", ["--nope"]),
      save("--k 0", ["--k", "0"]),
      save("--k not a number", ["--k", "abc"]),
      save("--k above the vocabulary", ["--k", "97"]),
      save("--k 2000", ["--k", "2000"]),
      save("--batch-size 0", ["--batch-size", "0"]),
      save("--sequences-per-shard -1", ["--sequences-per-shard", "-1"]),
      save("--value-dtype f64", ["--value-dtype", "f64"]),
      save("--lse-temperatures 0", ["--lse-temperatures", "0"]),
      save("--lse-temperatures 1,abc", ["--lse-temperatures", "1,abc"]),
      save("--max-sequences 0", ["--max-sequences", "0"]),
      save("--seq-len 0", ["--seq-len", "0"]),
      save("--host-index 2 of 2", ["--host-index", "2", "--host-count", "2"]),
      save("--host-count 0", ["--host-count", "0"]),
      save("missing teacher file", ["--teacher", `npy:${d}/missing.npy`]),
      save("missing data file", ["--data", `npy:${d}/missing.npy`]),
      save("teacher npy that is not npy", ["--teacher", `npy:${d}/garbage.npy`]),
      save("ids as the teacher (2-D int32)", ["--teacher", fx.data]),
      save("logits as the data (3-D f32)", ["--data", fx.teacher]),
      save("unknown teacher scheme", ["--teacher", "nope:x"]),
      save("token id = vocabulary", ["--data", `npy:${d}/ids_oov.npy`]),
      save("NaN logits", ["--teacher", `npy:${d}/nan.npy`]),
      save("invalid bucket name", ["--out", "gs://Bad_Bucket/x", "--gcs-endpoint", "http://127.0.0.1:9"]),
      save("unreachable GCS endpoint", ["--out", "gs://nobucket/x", "--gcs-endpoint", "http://127.0.0.1:9"]),
      save("--out is a file", ["--out", `${d}/a_file`]),
      { ...save("OUT of another run (--k 4 on a k=8 run)", ["--out", other, "--k", "4"]), keeps: other },
      {
        ...save("OUT of another run (other data)", ["--out", other, "--data", `npy:${d}/ids_oov.npy`]),
        keeps: other,
      },
      train("unknown flag", ["--nope"]),
      train("--steps 0", ["--steps", "0"]),
      train("--kd-mode foo", ["--kd-mode", "foo"]),
      train("--alpha 2", ["--alpha", "2"]),
      train("--temperature 0", ["--temperature", "0"]),
      train("--layers 0", ["--layers", "0"]),
      train("--export-dtype f8", ["--export-dtype", "f8"]),
      train("--k above the stored top-k", ["--k", "9"]),
      train("--kd-mode tail at a temperature not stored", ["--kd-mode", "tail", "--temperature", "2"]),
      train("--vocab smaller than the shards'", ["--vocab", "50"]),
      // (--resume with no checkpoint yet is not bad input: the run starts from step 0, as after a kill that
      // came before the first checkpoint.)
      train("--checkpoint-every -1", ["--checkpoint-every", "-1"]),
      train("--data without --ce-only", ["--data", fx.data, "--shards", ""]),
      train("--shards missing", [], `${d}/missing`),
      train("--shards without run.json", [], `${d}/empty`),
      { task: "report", what: "no argument", args: () => [] },
      { task: "report", what: "missing folder", args: (out) => [out] },
      { task: "report", what: "no report_input.json", args: () => [`${d}/report-empty`] },
      { task: "report", what: "report_input.json of the wrong shape", args: () => [`${d}/report-bad`] },
    ];
    // Round-robin over the three commands, so that a short budget tries each of them.
    const byTask = (["save_topk", "train", "report"] as const).map((t) => table.filter((r) => r.task === t));
    const rows: Row[] = [];
    for (let j = 0; rows.length < table.length; j++) {
      for (const l of byTask) if (j < l.length) rows.push(l[j]);
    }
    const keep = new Map<string, Map<string, string>>();
    for (const r of rows) if (r.keeps) keep.set(r.keeps, (await treeHashes(r.keeps)).files);
    const emptyDirs: string[] = [];
    for (let i = 0; i < rows.length && Date.now() < ctx.deadline; i++) {
      const row = rows[i];
      const out = `${ctx.tmp}/case-${i}`;
      const o = await runTask(row.task, row.args(out), { timeoutMs: 60_000 });
      const e = ending(o);
      let lost = e.kind === "bad" ? e.why : e.kind === "ok" ? "exit 0" : "";
      if (!lost) {
        const written = await listTree(out);
        if (written === null) { /* nothing */ }
        else if (written.length === 0) emptyDirs.push(`${row.task} ${row.what}`);
        else lost = `wrote ${written.slice(0, 3).join(", ")}`;
      }
      if (!lost && row.keeps) lost = diffHashes(keep.get(row.keeps)!, (await treeHashes(row.keeps)).files);
      const what = `${row.task} ${row.what}`;
      cases.push({ seed: ctx.seed, what, survived: !lost, detail: lost });
      ctx.log(`${what}: ${lost ? `LOST ${lost}` : `survived (${(e as { line: string }).line})`}`);
    }
    if (emptyDirs.length) {
      notes.push(
        `${emptyDirs.length} cases left an empty output folder (counted as survived): ${
          emptyDirs.join("; ")
        }`,
      );
    }
    return { name: "bad-input", cases, notes };
  },
};

/** Files under `dir` (null when it does not exist). */
async function listTree(dir: string): Promise<string[] | null> {
  try {
    await Deno.stat(dir);
  } catch {
    return null;
  }
  const { files, tmpLeftovers } = await treeHashes(dir);
  return [...files.keys(), ...tmpLeftovers];
}
