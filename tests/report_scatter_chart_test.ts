import assert from "node:assert/strict";
import { scatterChart } from "../src/report/scatter_chart.ts";

const chart = () =>
  scatterChart({
    id: "chart-gap",
    title: "Gap closed against stored bytes",
    xLabel: "bytes per position",
    yLabel: "gap closed",
    series: [
      {
        name: "flat teacher",
        points: [
          { x: 40, y: -0.5, err: 0.2, label: "topk K=8" },
          { x: 388, y: 0.3, err: 0.1, label: "tail K=64" },
          { x: 0, y: 1, label: "bad x" },
          { x: 100, y: NaN, label: "bad y" },
        ],
      },
      { name: "sharp teacher", points: [{ x: 120, y: 0.9, label: "sampled N=16 <&>" }] },
    ],
    referenceLines: [{ y: 0, label: "CE-only" }, { y: 1, label: "online KD" }],
  });

Deno.test("scatterChart: one point element per drawable point, the undrawable ones counted as skipped", () => {
  const svg = chart();
  assert.equal(svg.match(/<g class="point"/g)?.length, 3);
  assert.match(svg, /data-series="flat teacher" data-points="2" data-skipped="2"/);
  assert.match(svg, /data-series="sharp teacher" data-points="1" data-skipped="0"/);
  assert.match(svg, /data-label="tail K=64" data-x="388" data-y="0.3" data-err="0.1"/);
});

Deno.test("scatterChart: x is logarithmic (equal ratios, equal distances) and labels are escaped", () => {
  const svg = scatterChart({
    id: "c",
    title: "t",
    xLabel: "x",
    yLabel: "y",
    series: [{ name: "s", points: [10, 100, 1000].map((x) => ({ x, y: 0, label: `p${x}` })) }],
  });
  const cx = [...svg.matchAll(/<circle cx="([\d.]+)"/g)].map((m) => Number(m[1])).slice(0, 3);
  assert.ok(Math.abs((cx[1] - cx[0]) - (cx[2] - cx[1])) < 0.2, `${cx}`);
  assert.match(chart(), /sampled N=16 &lt;&amp;&gt;/);
  assert.doesNotMatch(chart(), /<&>/);
});

Deno.test("scatterChart: the y range holds the error bars and the reference lines", () => {
  const svg = chart();
  const ticks = [...svg.matchAll(/<g class="tick" data-value="([-\d.e]+)"><line x1="74"/g)].map((m) =>
    Number(m[1])
  );
  assert.ok(Math.min(...ticks) <= -0.6 && Math.max(...ticks) >= 1, `${ticks}`);
  assert.equal(svg.match(/<g class="reference"/g)?.length, 2);
});

Deno.test("scatterChart: yClamp keeps the axis within its limits and draws a far point on the edge, marked off scale", () => {
  const svg = scatterChart({
    id: "c",
    title: "t",
    xLabel: "x",
    yLabel: "y",
    series: [{
      name: "s",
      points: [
        { x: 10, y: 0.5, err: 0.1, label: "near" },
        { x: 100, y: -17.8, err: 0.4, label: "far" },
      ],
    }],
    referenceLines: [{ y: 0, label: "CE" }, { y: 1, label: "online" }],
    yClamp: [-1, 1.5],
  });
  const ticks = [...svg.matchAll(/<g class="tick" data-value="([-\d.e]+)"><line x1="74"/g)].map((m) =>
    Number(m[1])
  );
  assert.ok(Math.min(...ticks) >= -1.2 && Math.max(...ticks) <= 1.5, `${ticks}`);
  assert.match(svg, /data-label="far" data-x="100" data-y="-17.8" data-err="0.4" data-clamped="true"/);
  assert.match(svg, /far \(-17\.8, off scale\)/);
  assert.doesNotMatch(svg, /data-label="near"[^>]*data-clamped/);
  // The far point sits on the bottom edge: below the near one and below the CE line.
  const cy = [...svg.matchAll(/<circle cx="[\d.]+" cy="([\d.]+)"/g)].map((m) => Number(m[1]));
  const ceY = Number(
    /<g class="reference" data-value="0"><line x1="74" x2="[\d.]+" y1="([\d.]+)"/.exec(svg)![1],
  );
  assert.ok(cy[1] > cy[0] && cy[1] > ceY, `${cy} ${ceY}`);
});
