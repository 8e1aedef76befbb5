/**
 * The report of a train `--out` folder (src/report/train_folder.ts, through writeReport): a tiny real run of
 * the trainer on the CPU from tiny shards, its curves and settings; malformed metrics.jsonl lines; a folder
 * of no known kind.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SparsekdError } from "../src/errors.ts";
import { readTrainFolder } from "../src/report/train_folder.ts";
import { writeReport } from "../src/report/write_report.ts";
import { trainCommand } from "../src/cli/train_flags.ts";
import { byId, byTag, pointsOf, textOf } from "./report_html_query.ts";
import { quietly, writePatternShards } from "./_train_fixtures.ts";

/** A tiny real train run: shards of a pattern teacher, then 4 steps of KD on the CPU. */
async function trainTiny(dir: string) {
  const shards = join(dir, "shards");
  const out = join(dir, "student");
  await writePatternShards(shards, { seed: 3, sequences: 12, seqLen: 8, vocab: 16, k: 4 });
  await quietly(() =>
    trainCommand([
      "--shards",
      shards,
      "--out",
      out,
      "--steps",
      "4",
      "--batch-size",
      "2",
      "--eval-every",
      "2",
      "--checkpoint-every",
      "2",
      "--log-every",
      "1",
      "--heldout-sequences",
      "4",
      "--kd-mode",
      "tail",
      "--alpha",
      "0.5",
      "--width",
      "8",
      "--heads",
      "1",
      "--cpu",
      "--quiet",
    ])
  );
  const metricsText = await Deno.readTextFile(join(out, "metrics.jsonl"));
  return { shards, out, metricsText, metrics: metricsText.trim().split("\n").map((l) => JSON.parse(l)) };
}

function settingOf(html: string, key: string): string | undefined {
  const tr = byTag(byId(html, "settings-table")!.inner, "tr").find((t) => t.attrs["data-setting"] === key);
  return tr && textOf(byTag(tr.inner, "td")[0].inner);
}

function summaryOf(html: string): Record<string, number> {
  const cells = byTag(byId(html, "train-summary-table")!.inner, "td");
  return Object.fromEntries(cells.map((c) => [c.attrs["data-metric"], Number(c.attrs["data-value"])]));
}

Deno.test("the report of a train folder: curves, settings, malformed metrics, unknown folders", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "sparsekd_report_train_" });
  try {
    const { shards, out, metricsText, metrics } = await trainTiny(dir);
    await t.step(
      "metrics.jsonl's curves and the newest checkpoint's settings are drawn and listed",
      async () => {
        const path = await writeReport(out);
        assert.equal(path, join(out, "report.html"));
        const html = await Deno.readTextFile(path);
        assert.equal(byId(html, "report")?.attrs["data-kind"], "train");
        const trains = metrics.filter((m) => m.kind === "train"),
          evals = metrics.filter((m) => m.kind === "eval");
        assert.deepEqual(trains.map((m) => m.step), [1, 2, 3, 4]);
        assert.deepEqual(evals.map((m) => m.step), [2, 4]);

        const line = (id: string) => byTag(byId(html, id)!.inner, "polyline")[0];
        assert.equal(Number(line("chart-train-loss").attrs["data-points"]), 4);
        assert.equal(Number(line("chart-heldout-ppl").attrs["data-points"]), 2);
        assert.equal(Number(line("chart-heldout-kl").attrs["data-points"]), 2);
        assert.equal(Number(line("chart-heldout-top1").attrs["data-points"]), 2);
        assert.equal(Number(line("chart-lr").attrs["data-points"]), 4);
        // Higher loss is drawn higher (smaller SVG y).
        const ys = pointsOf(line("chart-train-loss").attrs.points).map(([, y]) => y);
        for (let i = 0; i < 4; i++) {
          for (let j = 0; j < 4; j++) if (trains[i].loss > trains[j].loss) assert.ok(ys[i] < ys[j]);
        }

        const s = summaryOf(html);
        assert.equal(s.loss, trains[3].loss);
        assert.equal(s.ppl, evals[1].perplexity);
        assert.equal(s.kl, evals[1].kl);
        assert.equal(s.top1, evals[1].top1);
        assert.equal(s.checkpointStep, 4);

        assert.equal(settingOf(html, "step"), "4");
        assert.equal(settingOf(html, "seed"), "1");
        assert.equal(settingOf(html, "mode"), "tail");
        assert.equal(settingOf(html, "alpha"), "0.5");
        assert.equal(settingOf(html, "model.width"), "8");
        assert.equal(settingOf(html, "shards"), shards);
      },
    );
    await t.step(
      "a malformed metrics.jsonl line is one error naming it; a last line cut short is ignored",
      async () => {
        const copy = join(dir, "copy");
        await Deno.mkdir(copy);
        try {
          const path = join(copy, "metrics.jsonl");
          await Deno.writeTextFile(path, metricsText + '{"kind":"train","st');
          const cut = await readTrainFolder(copy);
          assert.equal(cut.train.length, 4);
          assert.equal(cut.checkpointStep, null);
          const html = await Deno.readFile(await writeReport(copy)).then((b) => new TextDecoder().decode(b));
          assert.ok(byId(html, "settings-missing"), "no checkpoint: the settings are said to be missing");

          const lines = metricsText.trim().split("\n");
          for (
            const [bad, pattern] of [
              ["{not json", /metrics\.jsonl:3 is not a JSON line$/],
              ['{"kind":"train","step":"3","loss":1}', /metrics\.jsonl:3: step must be an integer/],
              [
                '{"kind":"eval","step":3,"ce":"x","perplexity":1}',
                /metrics\.jsonl:3: ce must be a number or null/,
              ],
              ["[1,2]", /metrics\.jsonl:3 is not a JSON object/],
            ] as const
          ) {
            await Deno.writeTextFile(path, [...lines.slice(0, 2), bad, ...lines.slice(2)].join("\n") + "\n");
            await assert.rejects(
              writeReport(copy),
              (e: unknown) =>
                e instanceof SparsekdError && !e.message.includes("\n") && pattern.test(e.message),
            );
          }
          // A diverged loss written as null is read as NaN, not refused.
          await Deno.writeTextFile(path, '{"kind":"train","step":1,"loss":null}\n');
          assert.ok(Number.isNaN((await readTrainFolder(copy)).train[0].loss));
        } finally {
          await Deno.remove(copy, { recursive: true });
        }
      },
    );
    await t.step(
      "a folder of no known kind, or a missing one, is one error line from deno task report",
      async () => {
        const empty = join(dir, "empty");
        await Deno.mkdir(empty);
        await Deno.writeTextFile(join(empty, "notes.txt"), "hello");
        const task = (arg: string) =>
          new Deno.Command(Deno.execPath(), {
            args: ["run", "-A", new URL("../tasks/report.ts", import.meta.url).pathname, arg],
            stdout: "piped",
            stderr: "piped",
          }).output();
        for (
          const [arg, pattern] of [
            [empty, /^error: .*empty is not a run folder: it holds no report_input\.json/],
            [join(dir, "nope"), /^error: run folder not found: /],
            [join(empty, "notes.txt"), /^error: not a folder: /],
            ["gs://bucket/run1", /^error: the report reads local folders only \(got gs:\/\/bucket\/run1\)/],
          ] as const
        ) {
          const r = await task(arg);
          const err = new TextDecoder().decode(r.stderr).trim();
          assert.equal(r.code, 2, err);
          assert.match(err, pattern);
          assert.equal(err.split("\n").length, 1, err);
        }
        assert.deepEqual([...Deno.readDirSync(empty)].map((e) => e.name), ["notes.txt"]);
      },
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
