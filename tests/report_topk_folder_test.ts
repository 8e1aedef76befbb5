/**
 * The report of a save-topk OUT (src/report/topk_folder.ts, through writeReport and `deno task report`): a
 * tiny run of the real save-topk task on a random npy teacher, its bytes per position from the shard files,
 * and the teacher's top-K mass against a float64 softmax of the teacher's logits.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SparsekdError } from "../src/errors.ts";
import { massKs } from "../src/report/topk_folder.ts";
import { topKMass } from "../src/report/topk_mass.ts";
import { writeReport } from "../src/report/write_report.ts";
import { openLocalStore } from "../src/store/local.ts";
import { byId, byTag, pointCount, textOf } from "./report_html_query.ts";
import { type Fixture, fixture, run, save } from "./_save_fixtures.ts";

const S = 4, L = 8, V = 50, K = 12;

/** The teacher's mean softmax mass (T = 1) in its top-k, for each k of `ks`, in float64 from the logits. */
function expectedMass(f: Fixture, ks: number[]): number[] {
  const sums = ks.map(() => 0);
  for (let p = 0; p < S * L; p++) {
    const row = Array.from(f.logits.subarray(p * V, (p + 1) * V)).sort((a, b) => b - a);
    const max = row[0];
    const z = row.reduce((s, v) => s + Math.exp(v - max), 0);
    ks.forEach((k, i) => {
      sums[i] += row.slice(0, k).reduce((s, v) => s + Math.exp(v - max), 0) / z;
    });
  }
  return sums.map((s) => s / (S * L));
}

/** The number cells of table `id`, by their data-metric (the first of each). */
function cells(html: string, id: string): Record<string, number> {
  const table = byId(html, id);
  assert.ok(table, `no table #${id}`);
  const out: Record<string, number> = {};
  for (const td of byTag(table.inner, "td")) {
    const m = td.attrs["data-metric"];
    if (m !== undefined && !(m in out)) out[m] = Number(td.attrs["data-value"]);
  }
  return out;
}

async function shardBytes(out: string): Promise<number> {
  let bytes = 0;
  for await (const e of Deno.readDir(join(out, "shards"))) {
    bytes += (await Deno.stat(join(out, "shards", e.name))).size;
  }
  return bytes;
}

Deno.test("the report of a save-topk folder shows run.json, bytes per position and the teacher's top-K mass", async () => {
  const f = await fixture(S, L, V);
  try {
    const out = join(f.dir, "out");
    const saved = await run(save(f, out, ["--k", String(K), "--sequences-per-shard", "2", "--cpu"]));
    assert.equal(saved.code, 0, saved.stderr);

    const report = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL("../tasks/report.ts", import.meta.url).pathname, out],
      stdout: "piped",
      stderr: "piped",
    });
    const r = await run(report);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), join(out, "report.html"));
    const html = await Deno.readTextFile(join(out, "report.html"));
    assert.equal(byId(html, "report")?.attrs["data-kind"], "save-topk");

    const storage = cells(html, "storage-table");
    assert.equal(storage.positions, S * L);
    assert.equal(storage.bytes, await shardBytes(out));
    assert.equal(storage.bytesPerPosition, storage.bytes / (S * L));
    assert.equal(storage.fullBytesPerPosition, 4 * V);

    const ks = massKs(K);
    assert.deepEqual(ks, [1, 2, 4, 8, 12]);
    const want = expectedMass(f, ks);
    const massCells = byTag(byId(html, "mass-table")!.inner, "td");
    assert.deepEqual(massCells.map((c) => Number(c.attrs["data-k"])), ks);
    massCells.forEach((c, i) => {
      const got = Number(c.attrs["data-value"]);
      assert.ok(Math.abs(got - want[i]) <= 1e-5, `mass at K=${ks[i]}: ${got} vs ${want[i]}`);
    });
    for (let i = 1; i < ks.length; i++) assert.ok(want[i] > want[i - 1]);
    const line = byTag(byId(html, "chart-topk-mass")!.inner, "polyline")[0];
    assert.equal(pointCount(line.attrs.points), ks.length);

    const runTable = byId(html, "run-table")!;
    const setting = (key: string) =>
      textOf(
        byTag(byTag(runTable.inner, "tr").find((tr) => tr.attrs["data-setting"] === key)!.inner, "td")[0]
          .inner,
      );
    assert.equal(setting("k"), String(K));
    assert.equal(setting("vocabSize"), String(V));
    assert.equal(setting("teacher.description"), `npy:${f.dir}/logits.npy`);
    assert.ok(byId(html, "chart-storage"));
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("a save-topk folder missing a shard is reported as incomplete; without T = 1 the mass is unknown", async () => {
  const f = await fixture(S, L, V);
  try {
    const out = join(f.dir, "out");
    const saved = await run(
      save(f, out, ["--k", "4", "--sequences-per-shard", "2", "--lse-temperatures", "2", "--cpu"]),
    );
    assert.equal(saved.code, 0, saved.stderr);
    const before = await shardBytes(out);
    await Deno.remove(join(out, "shards", "s000001.msgpack"));
    const report = join(f.dir, "elsewhere.html");
    assert.equal(await writeReport(out, { out: report }), report);
    const html = await Deno.readTextFile(report);
    const storage = cells(html, "storage-table");
    assert.equal(storage.positions, 2 * L);
    assert.equal(storage.bytes, await shardBytes(out));
    assert.ok(storage.bytes < before);
    assert.match(
      textOf(byId(html, "storage-table")!.inner),
      /1 of 2 shards present \(the run is not complete\)/,
    );
    assert.ok(byId(html, "mass-missing"));
    assert.equal(byId(html, "chart-topk-mass"), undefined);
    // Nothing was written into the OUT: the report went to --out.
    assert.deepEqual([...Deno.readDirSync(out)].map((e) => e.name).sort(), [
      "manifests",
      "run.json",
      "shards",
    ]);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("topKMass refuses K values that are not ascending or exceed the run's k", async () => {
  const f = await fixture(2, 4, 16);
  try {
    const out = join(f.dir, "out");
    assert.equal((await run(save(f, out, ["--k", "4", "--cpu"]))).code, 0);
    const store = await openLocalStore(out);
    for (const ks of [[5], [2, 2], [0], [1.5]]) {
      await assert.rejects(
        topKMass(store, ks),
        (e: unknown) => e instanceof SparsekdError && e.option === "ks",
      );
    }
    const [all] = await topKMass(store, [4]);
    assert.ok(all > 0 && all <= 1);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});
