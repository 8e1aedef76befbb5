/**
 * The demo report as one self-contained HTML page: inline CSS and inline SVG charts, no script, no font, no
 * image, nothing fetched (a Content-Security-Policy of `default-src 'none'` says so to the browser too).
 *
 * Stable hooks for tests: the charts are `<svg id="chart-train-loss">`, `chart-heldout-ppl` (log scale),
 * `chart-heldout-kl` and `chart-heldout-top1` (when the evaluations carry them), `chart-reliability` (when the
 * final metrics carry reliability bins) and `chart-storage`; the tables
 * are `student-table-<i>` (with `data-student`), `storage-table` and `throughput-table`; every number cell has
 * `data-metric` and `data-value` (the unformatted number).
 * @module
 */
import { escapeHtml } from "./escape.ts";
import { chartFigure, htmlPage, numCell, trainLossFigure } from "./page.ts";
import { scatterChart } from "./scatter_chart.ts";
import { formatBytes, formatDuration, formatInteger, formatNumber, formatPercent } from "./number_format.ts";
import { barChart, lineChart, SERIES_COLORS } from "./svg_chart.ts";
import type { GapPoint, ReportInput, ReportStudent } from "./types.ts";

/** The metrics of the per-student tables: which way is better, and how each is shown. */
const STUDENT_METRICS: Array<{
  key: "ppl" | "ce" | "kl" | "top1" | "ece";
  label: string;
  unit: string;
  lowerIsBetter: boolean;
  format: (v: number) => string;
}> = [
  { key: "ppl", label: "Held-out perplexity", unit: "", lowerIsBetter: true, format: (v) => formatNumber(v) },
  {
    key: "kl",
    label: "KL to the teacher",
    unit: "nats/token",
    lowerIsBetter: true,
    format: (v) => formatNumber(v),
  },
  {
    key: "top1",
    label: "Top-1 agreement with the teacher",
    unit: "",
    lowerIsBetter: false,
    format: (v) => formatPercent(v, 2),
  },
  {
    key: "ece",
    label: "Expected calibration error",
    unit: "",
    lowerIsBetter: true,
    format: (v) => formatNumber(v, 3),
  },
  {
    key: "ce",
    label: "Held-out cross-entropy",
    unit: "nats/token",
    lowerIsBetter: true,
    format: (v) => formatNumber(v),
  },
];

function bestIndex(
  students: ReportStudent[],
  key: (typeof STUDENT_METRICS)[number]["key"],
  lower: boolean,
): number {
  if (students.length < 2) return -1;
  let best = -1;
  students.forEach((s, i) => {
    const v = s.final[key];
    if (!Number.isFinite(v)) return;
    if (best < 0 || (lower ? v < students[best].final[key] : v > students[best].final[key])) best = i;
  });
  return best;
}

function studentTable(input: ReportInput, s: ReportStudent, i: number): string {
  const color = SERIES_COLORS[i % SERIES_COLORS.length];
  const rows: string[] = [];
  for (const m of STUDENT_METRICS) {
    const best = bestIndex(input.students, m.key, m.lowerIsBetter) === i;
    rows.push(
      `<tr><th scope="row">${escapeHtml(m.label)}${
        m.unit ? ` <span class="unit">${m.unit}</span>` : ""
      }</th>${numCell(m.key, s.final[m.key], m.format(s.final[m.key]), best ? "best" : "")}</tr>`,
    );
  }
  rows.push(
    `<tr><th scope="row">Parameters</th>${numCell("params", s.params, formatInteger(s.params))}</tr>`,
  );
  rows.push(
    `<tr><th scope="row">Optimizer steps</th>${numCell("steps", s.steps, formatInteger(s.steps))}</tr>`,
  );
  rows.push(
    `<tr><th scope="row">Training throughput <span class="unit">tokens/s</span></th>${
      numCell("tokensPerSecond", s.tokensPerSecond, formatNumber(s.tokensPerSecond))
    }</tr>`,
  );
  return `<div class="card"><table id="student-table-${i}" class="student-table" data-student="${
    escapeHtml(s.name)
  }">` +
    `<caption><span class="swatch" style="background:${color}"></span>${escapeHtml(s.name)}` +
    `<span class="desc">${escapeHtml(s.description)}</span></caption><tbody>${
      rows.join("")
    }</tbody></table></div>`;
}

function storageSection(input: ReportInput): string {
  const s = input.save;
  const ratio = s.bytesPerToken > 0 ? s.fullLogitsBytesPerToken / s.bytesPerToken : NaN;
  const fullTotal = s.fullLogitsBytesPerToken * s.tokens;
  const shardLabel = `Top-${s.k} shards (values ${s.valueDtype}, indices ${s.indexDtype})`;
  const fullLabel = `Full-vocabulary float32 logits (vocabulary ${formatInteger(s.vocabSize)})`;
  const table = `<table id="storage-table" class="card-table">
<caption>Storage per token position<span class="desc">${
    formatInteger(s.tokens)
  } token positions saved</span></caption>
<thead><tr><th>Representation</th><th class="num">Bytes per token</th><th class="num">Total</th></tr></thead>
<tbody>
<tr data-row="shards"><th scope="row">${escapeHtml(shardLabel)}</th>${
    numCell("bytesPerToken", s.bytesPerToken, formatNumber(s.bytesPerToken))
  }${numCell("bytes", s.bytes, formatBytes(s.bytes))}</tr>
<tr data-row="full"><th scope="row">${escapeHtml(fullLabel)}</th>${
    numCell("fullLogitsBytesPerToken", s.fullLogitsBytesPerToken, formatNumber(s.fullLogitsBytesPerToken))
  }${numCell("fullBytes", fullTotal, formatBytes(fullTotal))}</tr>
<tr data-row="ratio"><th scope="row">Saving factor (full ÷ shards)</th>${
    numCell("ratio", ratio, `×${formatNumber(ratio, 3)}`)
  }<td></td></tr>
</tbody></table>`;
  const chart = barChart("chart-storage", "Bytes per token position", [
    {
      label: `top-${s.k} shards`,
      value: s.bytesPerToken,
      valueText: `${formatNumber(s.bytesPerToken)} B`,
      color: "#2a9d8f",
    },
    {
      label: "float32 logits",
      value: s.fullLogitsBytesPerToken,
      valueText: `${formatNumber(s.fullLogitsBytesPerToken)} B`,
      color: "#9a4c5e",
    },
  ]);
  return `<section id="storage"><h2>Storage</h2>
<p class="callout">The shards keep the top ${formatInteger(s.k)} of ${
    formatInteger(s.vocabSize)
  } logits per position ` +
    `and take <strong>${
      escapeHtml(formatNumber(ratio, 3))
    }× less space</strong> than the float32 logits they replace.</p>
<figure id="fig-storage"><figcaption>Bytes per token position</figcaption>${chart}</figure>
<div class="card">${table}</div></section>`;
}

function throughputSection(input: ReportInput): string {
  const s = input.save;
  const gpuShare = s.wallSeconds > 0 ? s.gpuWaitSeconds / s.wallSeconds : NaN;
  const rows = [
    `<tr data-row="save-topk"><th scope="row">save-topk (teacher → shards)</th>${
      numCell("tokensPerSecond", s.tokensPerSecond, formatNumber(s.tokensPerSecond))
    }<td class="num">—</td>${numCell("wallSeconds", s.wallSeconds, formatDuration(s.wallSeconds))}${
      numCell(
        "gpuWaitSeconds",
        s.gpuWaitSeconds,
        `${formatDuration(s.gpuWaitSeconds)} (${formatPercent(gpuShare, 0)})`,
      )
    }</tr>`,
    ...input.students.map((st, i) =>
      `<tr data-row="train" data-student="${
        escapeHtml(st.name)
      }" data-student-index="${i}"><th scope="row">train ${escapeHtml(st.name)}</th>${
        numCell("tokensPerSecond", st.tokensPerSecond, formatNumber(st.tokensPerSecond))
      }${
        numCell("stepsPerSecond", st.stepsPerSecond, formatNumber(st.stepsPerSecond))
      }<td class="num">—</td><td class="num">—</td></tr>`
    ),
  ];
  return `<section id="throughput"><h2>Throughput</h2><div class="card"><table id="throughput-table">
<thead><tr><th>Stage</th><th class="num">Tokens/s</th><th class="num">Steps/s</th><th class="num">Wall time</th>` +
    `<th class="num">GPU wait</th></tr></thead>
<tbody>${rows.join("\n")}</tbody></table></div></section>`;
}

/**
 * Renders the report as one self-contained HTML page (see the module documentation for its ids).
 * All text from `input` is escaped.
 *
 * @example
 * ```ts
 * import { parseReportInput } from "./validate.ts";
 * const input = parseReportInput(JSON.parse(await Deno.readTextFile("runs/demo/report_input.json")));
 * await Deno.writeTextFile("runs/demo/report.html", renderReport(input));
 * ```
 */
export function renderReport(input: ReportInput): string {
  const students = input.students;
  const t = input.teacher;
  const charts: string[] = [];
  charts.push(
    trainLossFigure(
      students.map((s) => ({ name: s.name, points: s.train.map((p) => [p.step, p.loss] as const) })),
    ),
  );
  charts.push(chartFigure(
    "chart-heldout-ppl",
    "Held-out perplexity",
    "per evaluation step, log scale" + (t.heldoutPpl !== undefined ? "; dashed: the teacher" : ""),
    lineChart({
      id: "chart-heldout-ppl",
      title: "Held-out perplexity per step",
      xLabel: "step",
      yLabel: "perplexity",
      logY: true,
      markers: true,
      series: students.map((s) => ({ name: s.name, points: s.eval.map((p) => [p.step, p.ppl] as const) })),
      referenceLines: t.heldoutPpl !== undefined ? [{ y: t.heldoutPpl, label: "teacher" }] : [],
    }),
  ));
  if (students.some((s) => s.eval.some((p) => p.kl !== undefined))) {
    charts.push(chartFigure(
      "chart-heldout-kl",
      "KL to the teacher",
      "held-out, nats per token",
      lineChart({
        id: "chart-heldout-kl",
        title: "Held-out KL(teacher ‖ student) per step",
        xLabel: "step",
        yLabel: "KL (nats/token)",
        markers: true,
        series: students.map((s) => ({
          name: s.name,
          points: s.eval.filter((p) => p.kl !== undefined).map((p) => [p.step, p.kl!] as const),
        })),
      }),
    ));
  }
  if (students.some((s) => s.eval.some((p) => p.top1 !== undefined))) {
    charts.push(chartFigure(
      "chart-heldout-top1",
      "Top-1 agreement with the teacher",
      "held-out, percent",
      lineChart({
        id: "chart-heldout-top1",
        title: "Held-out top-1 agreement with the teacher per step",
        xLabel: "step",
        yLabel: "top-1 agreement (%)",
        markers: true,
        series: students.map((s) => ({
          name: s.name,
          points: s.eval.filter((p) => p.top1 !== undefined).map((p) => [p.step, p.top1! * 100] as const),
        })),
      }),
    ));
  }
  if (students.some((s) => s.final.reliability?.some((b) => b.count > 0))) {
    charts.push(chartFigure(
      "chart-reliability",
      "Reliability",
      "held-out accuracy of the top-1 prediction against its confidence, per confidence bin; dashed: perfect calibration",
      lineChart({
        id: "chart-reliability",
        title: "Reliability diagram",
        xLabel: "confidence",
        yLabel: "accuracy",
        markers: true,
        xDomain: [0, 1],
        yDomain: [0, 1],
        diagonal: "perfect calibration",
        series: students.map((s, i) => ({
          name: s.name,
          color: SERIES_COLORS[i % SERIES_COLORS.length],
          points: (s.final.reliability ?? []).filter((b) => b.count > 0).map((b) =>
            [b.confidence, b.accuracy] as const
          ),
        })),
      }),
    ));
  }

  const teacherBits = [
    t.params !== undefined ? `${formatInteger(t.params)} parameters` : "",
    t.heldoutPpl !== undefined ? `held-out perplexity ${formatNumber(t.heldoutPpl)}` : "",
  ].filter(Boolean);
  const teacherLine = `<p id="teacher" class="meta" data-params="${t.params ?? ""}" data-heldout-ppl="${
    t.heldoutPpl ?? ""
  }"><strong>Teacher:</strong> ${escapeHtml(t.description)}${
    teacherBits.length ? ` (${escapeHtml(teacherBits.join(", "))})` : ""
  }</p>`;
  const created = escapeHtml(input.createdAt);
  const gap = input.gapPoints?.length ? gapSection(input.gapPoints) : "";
  const notes = input.notes?.length
    ? `<section id="notes"><h2>Notes</h2><ul class="notes">${
      input.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")
    }</ul></section>`
    : "";

  return htmlPage(
    input.title,
    `<main id="report" data-students="${students.length}">
<header>
<h1>${escapeHtml(input.title)}</h1>
<p class="meta">Created <time datetime="${created}">${created}</time> · ${students.length} student${
      students.length === 1 ? "" : "s"
    }</p>
${teacherLine}
</header>
${gap}<section id="students"><h2>Students</h2>
<p class="meta">Final held-out metrics. ★ marks the best student on each metric.</p>
<div class="tables">${students.map((s, i) => studentTable(input, s, i)).join("\n")}</div>
</section>
<section id="curves"><h2>Training curves</h2>
${charts.join("\n")}
</section>
${storageSection(input)}
${throughputSection(input)}
${notes}
`,
  );
}

/** The study's chart: gap closed (y) against stored bytes per position (x, log scale), a series per teacher. */
function gapSection(points: GapPoint[]): string {
  const teachers = [...new Set(points.map((p) => p.teacher))];
  const svg = scatterChart({
    id: "chart-gap-closed",
    title: "Gap closed against stored bytes per position",
    xLabel: "stored bytes per position",
    yLabel: "gap closed (CE-only 0, online KD 1)",
    series: teachers.map((t) => ({
      name: t,
      points: points.filter((p) => p.teacher === t).map((p) => ({
        x: p.bytesPerPosition,
        y: p.gapClosed,
        err: p.gapClosedSe,
        label: p.label,
      })),
    })),
    referenceLines: [{ y: 0, label: "CE-only" }, { y: 1, label: "online full KD" }, {
      y: 0.8,
      label: "goal 80 %",
    }],
    yClamp: [-1, 1.5], // top-K modes far below CE-only (−1,800 %) would flatten the others
  });
  return `<section id="gap"><h2>What each method buys</h2>
${
    chartFigure(
      "chart-gap-closed",
      "Share of the CE-only → online-KD perplexity gap closed, against the bytes stored per position",
      "Higher is better, further left is cheaper; bars are ± one standard error over the seeds.",
      svg,
    )
  }
</section>`;
}
