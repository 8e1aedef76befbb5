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
