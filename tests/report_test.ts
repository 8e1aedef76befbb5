/**
 * The report without a browser: ECE, number formatting, ticks, the SVG line chart, the HTML page, input
 * validation, `writeReport` and `deno task report`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SparsekdError } from "../src/errors.ts";
import { CalibrationAccumulator, expectedCalibrationError } from "../src/report/calibration.ts";
import { renderReport } from "../src/report/html.ts";
import {
  formatBytes,
  formatDuration,
  formatInteger,
  formatNumber,
  formatPercent,
} from "../src/report/number_format.ts";
import { DEFAULT_MAX_POINTS, linearTicks, lineChart, logTicks } from "../src/report/svg_chart.ts";
import { parseReportInput } from "../src/report/validate.ts";
import { writeReport } from "../src/report/write_report.ts";
import { byId, byTag, pointCount, pointsOf, textOf } from "./report_html_query.ts";
import { freshSeed, withSeed } from "./_rng.ts";
import { syntheticReportInput } from "./report_synthetic.ts";

const close = (a: number, b: number, tol = 1e-12) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

// ---------------------------------------------------------------- calibration

Deno.test("ECE equals the hand-computed value when every prediction has its own bin", () => {
  // bins of width 0.1: 0.95 → (0.9,1], 0.85 → (0.8,0.9], 0.55 → (0.5,0.6], 0.35 → (0.3,0.4]
  // ECE = (|1-0.95| + |0-0.85| + |1-0.55| + |0-0.35|) / 4 = (0.05 + 0.85 + 0.45 + 0.35) / 4 = 0.425
  assert.ok(close(expectedCalibrationError([0.95, 0.85, 0.55, 0.35], [1, 0, 1, 0], 10), 0.425));
});

Deno.test("ECE equals the hand-computed value when bins are shared", () => {
  // two bins: (0.5, 1] holds 0.9, 0.8, 0.6 (two right): |2/3 - 2.3/3| = 0.1, weight 3/5 → 0.06
  //           [0, 0.5] holds 0.3, 0.2 (one right):      |1/2 - 0.25|  = 0.25, weight 2/5 → 0.10
  assert.ok(
    close(expectedCalibrationError([0.9, 0.8, 0.6, 0.3, 0.2], [true, true, false, false, true], 2), 0.16),
  );
  // 0.5 sits on the edge and belongs to the lower bin (bins are (lo, hi]); 0 belongs to the first bin
  // lower bin [0, 0.5]: confidences 0.5, 0 (one right): |1/2 - 1/4| = 0.25, weight 2/3 → 1/6
  // upper bin (0.5, 1]: confidence 1 (right): 0
  assert.ok(close(expectedCalibrationError([0.5, 0, 1], [1, 0, 1], 2), 1 / 6));
  // 0.28 · 25 is 7.000000000000001 in floating point, yet 0.28 belongs to (0.24, 0.28], not with 0.29 in
  // (0.28, 0.32]: separate bins give (|1 − 0.28| + |0 − 0.29|) / 2 = 0.505 (shared: |0.5 − 0.285| = 0.215)
  assert.ok(close(expectedCalibrationError([0.28, 0.29], [1, 0], 25), 0.505));
});

Deno.test("ECE of predictions that all share one confidence is |accuracy − confidence|", async () => {
  await withSeed("report_test", ({ uniform: r }) => {
    const n = 1 + Math.floor(r() * 500);
    const c = r();
    const correct = Array.from({ length: n }, () => r() < 0.7);
    const acc = correct.filter(Boolean).length / n;
    const bins = 1 + Math.floor(r() * 30);
    assert.ok(close(expectedCalibrationError(new Array(n).fill(c), correct, bins), Math.abs(acc - c), 1e-9));
  });
});

Deno.test("ECE is the same fed in chunks, in any order, and matches a direct per-bin computation", async () => {
  await withSeed("report_test", ({ uniform: r }) => {
    const n = 1 + Math.floor(r() * 3000);
    const bins = 1 + Math.floor(r() * 20);
    const conf = Float64Array.from({ length: n }, () => r());
    const correct = Uint8Array.from(conf, (c) => (r() < c * 0.9 ? 1 : 0));
    const whole = expectedCalibrationError(conf, correct, bins);
    // direct: group by bin with the (lo, hi] rule written out
    let direct = 0;
    for (let b = 0; b < bins; b++) {
      const idx = [...conf.keys()].filter((i) =>
        b === 0 ? conf[i] <= 1 / bins : conf[i] > b / bins && conf[i] <= (b + 1) / bins
      );
      if (!idx.length) continue;
      const a = idx.reduce((s, i) => s + correct[i], 0) / idx.length;
      const m = idx.reduce((s, i) => s + conf[i], 0) / idx.length;
      direct += (idx.length / n) * Math.abs(a - m);
    }
    assert.ok(close(whole, direct, 1e-9), `${whole} vs ${direct}`);
    const order = [...conf.keys()].sort(() => r() - 0.5);
    const accum = new CalibrationAccumulator(bins);
    for (let i = 0; i < n;) {
      const j = Math.min(n, i + 1 + Math.floor(r() * 100));
      const part = order.slice(i, j);
      accum.add(part.map((p) => conf[p]), part.map((p) => correct[p]));
      i = j;
    }
    assert.equal(accum.count, n);
    assert.ok(close(accum.ece(), whole, 1e-9));
    const stats = accum.binStats();
    assert.equal(stats.reduce((s, b) => s + b.count, 0), n);
  });
});

Deno.test("ECE rejects mismatched lengths, out-of-range confidences, bad bin counts and empty input", () => {
  assert.throws(() => expectedCalibrationError([0.5, 0.5], [1]), SparsekdError);
  assert.throws(() => expectedCalibrationError([1.5], [1]), SparsekdError);
  assert.throws(() => expectedCalibrationError([NaN], [1]), SparsekdError);
  assert.throws(() => expectedCalibrationError([0.5], [1], 0), SparsekdError);
  assert.throws(() => expectedCalibrationError([], []), SparsekdError);
});

// ---------------------------------------------------------------- number formatting

Deno.test("numbers are formatted with grouped thousands, significant digits and no locale surprises", () => {
  assert.equal(formatNumber(1234567.8), "1,234,568");
  assert.equal(formatNumber(0.0123456), "0.01235");
  assert.equal(formatNumber(3.5), "3.5");
  assert.equal(formatNumber(9.99996), "10");
  assert.equal(formatNumber(-42.125, 3), "-42.1");
  assert.equal(formatNumber(3.2e-7), "3.2e-7");
  assert.equal(formatNumber(NaN), "n/a");
  assert.equal(formatNumber(Infinity), "∞");
  assert.equal(formatInteger(1048576), "1,048,576");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(3 * 1024 ** 3), "3 GiB");
  assert.equal(formatPercent(0.8734), "87.3%");
  assert.equal(formatDuration(245), "4 min 05 s");
  assert.equal(formatDuration(0.25), "250 ms");
  assert.equal(formatDuration(7380), "2 h 03 min");
});

Deno.test("formatted numbers read back within their precision", async () => {
  await withSeed("report_test", ({ uniform: r }) => {
    for (let i = 0; i < 200; i++) {
      const x = (r() < 0.5 ? -1 : 1) * 10 ** (r() * 18 - 3);
      const back = Number(formatNumber(x, 4).replaceAll(",", ""));
      assert.ok(
        Math.abs(back - x) <= Math.abs(x) * 5e-4 + 0.5 * (Math.abs(x) >= 1e4 ? 1 : 0),
        `${x} → ${back}`,
      );
    }
  });
});

// ---------------------------------------------------------------- ticks

Deno.test("linear ticks are evenly spaced nice numbers inside the range", async () => {
  await withSeed("report_test", ({ uniform: r }) => {
    for (let i = 0; i < 100; i++) {
      const lo = (r() - 0.5) * 10 ** (r() * 6);
      const hi = lo + 10 ** (r() * 6 - 2);
      const target = 2 + Math.floor(r() * 8);
      const t = linearTicks(lo, hi, target);
      assert.ok(t.length >= 2 && t.length <= target * 2 + 1, `${t.length} ticks for target ${target}`);
      const step = t[1] - t[0];
      const norm = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
      assert.ok([1, 2, 5, 10].some((n) => Math.abs(norm - n) < 1e-6), `step ${step}`);
      t.forEach((v, j) => {
        assert.ok(v >= lo - step * 1e-6 && v <= hi + step * 1e-6, `${v} outside [${lo}, ${hi}]`);
        if (j) assert.ok(Math.abs(t[j] - t[j - 1] - step) <= step * 1e-6);
      });
    }
  });
});

Deno.test("log ticks stay inside the range, increase, and respect the tick budget", async () => {
  await withSeed("report_test", ({ uniform: r }) => {
    for (let i = 0; i < 100; i++) {
      const lo = 10 ** (r() * 8 - 4);
      const hi = lo * 10 ** (0.05 + r() * 12);
      const max = 3 + Math.floor(r() * 10);
      const t = logTicks(lo, hi, max);
      assert.ok(t.length >= 1, `no ticks in [${lo}, ${hi}]`);
      assert.ok(t.length <= max, `${t.length} ticks > ${max} in [${lo}, ${hi}]`);
      t.forEach((v, j) => {
        assert.ok(v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9));
        if (j) assert.ok(v > t[j - 1]);
      });
    }
  });
});

// ---------------------------------------------------------------- line chart

Deno.test("a line chart draws one polyline per series with every finite point inside the plot", async () => {
  await withSeed("report_test", ({ uniform: r }) => {
    const nSeries = 1 + Math.floor(r() * 5);
    const logY = r() < 0.5;
    const series = Array.from({ length: nSeries }, (_, i) => {
      const n = Math.floor(r() * 80);
      const points: Array<[number, number]> = [];
      for (let j = 0; j < n; j++) {
        points.push([j * 10, r() < 0.1 ? NaN : logY ? 10 ** (r() * 3) : r() * 5 - 1]);
      }
      return { name: `s${i} <&>`, points };
    });
    const svg = lineChart({
      id: "c",
      title: "t",
      xLabel: "step",
      yLabel: "y",
      series,
      logY,
      width: 700,
      height: 300,
    });
    const root = byId(svg, "c")!;
    assert.equal(root.attrs["data-scale-y"], logY ? "log" : "linear");
    const lines = byTag(svg, "polyline");
    assert.equal(lines.length, nSeries);
    lines.forEach((l, i) => {
      const finite = series[i].points.filter(([, y]) => Number.isFinite(y)).length;
      assert.equal(l.attrs["data-series"], series[i].name);
      assert.equal(Number(l.attrs["data-points"]), finite);
      assert.equal(pointCount(l.attrs.points), finite);
      for (const [x, y] of pointsOf(l.attrs.points)) assert.ok(x >= 0 && x <= 700 && y >= 0 && y <= 300);
    });
    assert.ok(!svg.includes("<&>"), "series names are escaped");
    assert.equal(byTag(svg, "g").filter((g) => g.attrs.class === "legend-item").length, nSeries);
    const yTicks = byTag(byTag(svg, "g").find((g) => g.attrs["data-axis"] === "y")!.inner, "g");
    assert.ok(yTicks.length >= 2, "the y axis has ticks");
  });
});

Deno.test("a long series is thinned but keeps its extremes", async () => {
  await withSeed("report_test", ({ uniform: r }) => {
    const n = 5000 + Math.floor(r() * 5000);
    const pts: Array<[number, number]> = Array.from({ length: n }, (_, i) => [i, r()]);
    const svg = lineChart({
      id: "c",
      title: "t",
      xLabel: "x",
      yLabel: "y",
      series: [{ name: "a", points: pts }],
      maxPoints: 500,
    });
    const line = byTag(svg, "polyline")[0];
    const drawn = pointsOf(line.attrs.points);
    assert.ok(drawn.length <= 500 && drawn.length >= 250, `${drawn.length} points drawn`);
    // first and last points are kept, so relative x positions map back to indices
    const [x0] = drawn[0], [x1] = drawn[drawn.length - 1];
    const at = (i: number) => x0 + (i / (n - 1)) * (x1 - x0);
    const minIdx = pts.reduce((b, p, i) => (p[1] < pts[b][1] ? i : b), 0);
    const maxIdx = pts.reduce((b, p, i) => (p[1] > pts[b][1] ? i : b), 0);
    const ys = drawn.map(([, y]) => y);
    const top = Math.min(...ys), bottom = Math.max(...ys); // svg y grows downwards
    assert.ok(
      drawn.some(([x, y]) => y === top && Math.abs(x - at(maxIdx)) <= 0.11),
      "the maximum was dropped",
    );
    assert.ok(
      drawn.some(([x, y]) => y === bottom && Math.abs(x - at(minIdx)) <= 0.11),
      "the minimum was dropped",
    );
    for (let i = 1; i < drawn.length; i++) {
      assert.ok(drawn[i][0] >= drawn[i - 1][0], "points stay in x order");
    }
  });
});

// ---------------------------------------------------------------- the page

Deno.test("the report page has every chart and table, the numbers, escaped text and no external resource", async () => {
  await withSeed("report_test", (_rng, seed) => {
    const input = syntheticReportInput(seed);
    const html = renderReport(input);
    for (
      const id of [
        "chart-train-loss",
        "chart-heldout-ppl",
        "chart-heldout-kl",
        "chart-heldout-top1",
        "chart-reliability",
        "chart-storage",
      ]
    ) {
      assert.ok(byId(html, id)?.tag === "svg", `missing chart ${id}`);
    }
    const loss = byId(html, "chart-train-loss")!;
    const lossLines = byTag(loss.inner, "polyline");
    assert.equal(lossLines.length, input.students.length);
    input.students.forEach((s, i) => {
      assert.equal(lossLines[i].attrs["data-series"], s.name);
      const drawn = pointCount(lossLines[i].attrs.points);
      assert.equal(Number(lossLines[i].attrs["data-points"]), drawn);
      assert.equal(Number(lossLines[i].attrs["data-input-points"]), s.train.length);
      if (s.train.length <= DEFAULT_MAX_POINTS) assert.equal(drawn, s.train.length);
      else {assert.ok(
          drawn <= DEFAULT_MAX_POINTS && drawn >= DEFAULT_MAX_POINTS / 2,
          `${drawn} of ${s.train.length} drawn`,
        );}
    });
    const ppl = byId(html, "chart-heldout-ppl")!;
    assert.equal(ppl.attrs["data-scale-y"], "log");
    byTag(ppl.inner, "polyline").forEach((l, i) =>
      assert.equal(pointCount(l.attrs.points), input.students[i].eval.length)
    );
    const rel = byId(html, "chart-reliability")!;
    assert.equal(byTag(rel.inner, "g").filter((g) => g.attrs.class === "diagonal").length, 1);
    byTag(rel.inner, "polyline").forEach((l, i) => {
      assert.equal(
        pointCount(l.attrs.points),
        input.students[i].final.reliability!.filter((b) => b.count > 0).length,
      );
    });
    input.students.forEach((s, i) => {
      const t = byId(html, `student-table-${i}`)!;
      assert.equal(t.attrs["data-student"], s.name);
      const cells = Object.fromEntries(byTag(t.inner, "td").map((td) => [td.attrs["data-metric"], td]));
      assert.equal(Number(cells.ppl.attrs["data-value"]), s.final.ppl);
      assert.equal(textOf(cells.ppl.inner), formatNumber(s.final.ppl));
      assert.equal(Number(cells.kl.attrs["data-value"]), s.final.kl);
      assert.equal(Number(cells.top1.attrs["data-value"]), s.final.top1);
      assert.equal(textOf(cells.top1.inner), formatPercent(s.final.top1, 2));
      assert.equal(Number(cells.ece.attrs["data-value"]), s.final.ece);
    });
    const storage = byId(html, "storage-table")!;
    const cells = Object.fromEntries(byTag(storage.inner, "td").map((td) => [td.attrs["data-metric"], td]));
    assert.equal(Number(cells.bytesPerToken.attrs["data-value"]), input.save.bytesPerToken);
    assert.equal(
      Number(cells.fullLogitsBytesPerToken.attrs["data-value"]),
      input.save.fullLogitsBytesPerToken,
    );
    assert.ok(
      close(
        Number(cells.ratio.attrs["data-value"]),
        input.save.fullLogitsBytesPerToken / input.save.bytesPerToken,
      ),
    );
    const tp = byId(html, "throughput-table")!;
    assert.ok(tp.inner.includes(`data-value="${input.save.tokensPerSecond}"`));
    for (const s of input.students) assert.ok(tp.inner.includes(`data-value="${s.stepsPerSecond}"`));
    // escaping: the synthetic input puts markup characters in a name, the title, a description and a note
    assert.ok(!html.includes("<top-"), "raw '<' from a student name reached the page");
    assert.ok(!html.includes("<seed"), "raw '<' from the title reached the page");
    assert.ok(!html.includes("<for tests>"), "raw '<' from a note reached the page");
    assert.ok(html.includes("&lt;seed"));
    // self-contained: no script, no external reference of any kind
    assert.ok(!/<script|<link|<img|<iframe|@import|url\(|\ssrc=|\shref=/i.test(html));
    const urls = [...html.matchAll(/https?:\/\/[^\s"'<>]+/g)].map((m) => m[0]);
    assert.deepEqual([...new Set(urls)], ["http://www.w3.org/2000/svg"]);
    assert.ok(html.includes(`content="default-src 'none'`));
  });
});

Deno.test("a diverged (NaN) measurement shows as n/a and leaves the rest of the report intact", async () => {
  await withSeed("report_test", (_rng, seed) => {
    const input = syntheticReportInput(seed);
    const json = JSON.parse(JSON.stringify(input));
    json.students[0].final.kl = null;
    json.students[0].train[json.students[0].train.length - 1].loss = null;
    const html = renderReport(parseReportInput(json));
    const cells = byTag(byId(html, "student-table-0")!.inner, "td");
    assert.equal(textOf(cells.find((c) => c.attrs["data-metric"] === "kl")!.inner), "n/a");
    const line = byTag(byId(html, "chart-train-loss")!.inner, "polyline")[0];
    assert.equal(Number(line.attrs["data-input-points"]), input.students[0].train.length - 1);
    assert.equal(line.attrs["data-skipped"], "1");
  });
});

Deno.test("a malformed report input is a one-line error naming the field", async () => {
  await withSeed("report_test", (_rng, seed) => {
    const good = JSON.parse(JSON.stringify(syntheticReportInput(seed)));
    assert.doesNotThrow(() => parseReportInput(good));
    // deno-lint-ignore no-explicit-any -- mutating arbitrary JSON
    const cases: Array<[(j: any) => void, RegExp]> = [
      [
        (j) => (j.students[1].final.ppl = "12"),
        /students\[1\]\.final\.ppl must be a number or null \(got "12"\)/,
      ],
      [(j) => delete j.save.k, /save\.k must be a number ≥ 0 \(got nothing\)/],
      [(j) => (j.students[0].train[2].step = 1.5), /students\[0\]\.train\[2\]\.step must be an integer/],
      [(j) => (j.students = {}), /students must be an array/],
      [(j) => (j.students[1].name = j.students[0].name), /students\[1\]\.name must be unique/],
      [(j) => (j.notes = [3]), /notes\[0\] must be a string/],
    ];
    for (const [mutate, re] of cases) {
      const j = structuredClone(good);
      mutate(j);
      assert.throws(() => parseReportInput(j, "x.json"), (err: unknown) => {
        assert.ok(err instanceof SparsekdError);
        assert.match(err.message, re);
        assert.ok(err.message.startsWith("x.json: ") && !err.message.includes("\n"));
        return true;
      });
    }
  });
});

// ---------------------------------------------------------------- writing it

Deno.test("writeReport writes report.html beside report_input.json and explains a missing folder or input", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparsekd_report_" });
  try {
    await withSeed("report_test", async (_rng, seed) => {
      await assert.rejects(
        writeReport(join(dir, "nope")),
        (e: unknown) => e instanceof SparsekdError && /not found/.test(e.message),
      );
      await assert.rejects(
        writeReport(dir),
        (e: unknown) => e instanceof SparsekdError && /no report_input\.json/.test(e.message),
      );
      await Deno.writeTextFile(join(dir, "report_input.json"), "{ not json");
      await assert.rejects(
        writeReport(dir),
        (e: unknown) => e instanceof SparsekdError && /not valid JSON/.test(e.message),
      );
      const input = syntheticReportInput(seed);
      await Deno.writeTextFile(join(dir, "report_input.json"), JSON.stringify(input));
      const path = await writeReport(dir);
      assert.equal(path, join(dir, "report.html"));
      assert.equal(await Deno.readTextFile(path), renderReport(input));
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
        "report.html",
        "report_input.json",
      ]);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task report prints the report's path, and a missing folder is one line on stderr", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparsekd_report_" });
  try {
    await Deno.writeTextFile(
      join(dir, "report_input.json"),
      JSON.stringify(syntheticReportInput(freshSeed())),
    );
    const run = (arg: string) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("../tasks/report.ts", import.meta.url).pathname, arg],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const ok = await run(dir);
    assert.equal(ok.code, 0, new TextDecoder().decode(ok.stderr));
    assert.equal(new TextDecoder().decode(ok.stdout).trim(), join(dir, "report.html"));
    assert.ok((await Deno.stat(join(dir, "report.html"))).size > 0);
    const bad = await run(join(dir, "missing"));
    assert.equal(bad.code, 2);
    const err = new TextDecoder().decode(bad.stderr).trim();
    assert.match(err, /^error: run folder not found: /);
    assert.equal(err.split("\n").length, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
