/**
 * Line and bar charts as self-contained SVG strings: axes with ticks and labels, a legend, one line per
 * series, optional log scale on y. No script, no external font: the SVG is meant to be inlined in HTML.
 *
 * Each chart carries stable attributes for tests: the `<svg>` has the given `id` and `data-chart`, each line is
 * a `<polyline>` with `data-series` (the series' name), `data-points` (how many points it draws),
 * `data-input-points` (how many drawable points it was given: more than it draws when thinned) and
 * `data-skipped` (points left out as not drawable).
 * @module
 */
import { escapeHtml } from "./escape.ts";
import { formatNumber } from "./number_format.ts";
import { linearTicks, logTicks } from "./ticks.ts";

export { linearTicks, logTicks };

/** Colours given to series in order (Okabe–Ito, readable for the common colour-vision deficiencies). */
export const SERIES_COLORS: readonly string[] = [
  "#0072B2",
  "#D55E00",
  "#009E73",
  "#CC79A7",
  "#E69F00",
  "#56B4E9",
  "#000000",
  "#F0E442",
];

/** A series with more points than this is thinned by {@linkcode lineChart} unless told otherwise. */
export const DEFAULT_MAX_POINTS = 2000;

/** One line of a {@linkcode lineChart}. */
export interface ChartSeries {
  /** Shown in the legend and as `data-series`. */
  name: string;
  /** `[x, y]` pairs in drawing order; points with a non-finite coordinate (or y ≤ 0 on a log scale) are left out. */
  points: ReadonlyArray<readonly [number, number]>;
  /** Stroke colour; by default the series' position in {@linkcode SERIES_COLORS}. */
  color?: string;
}

/** A dashed horizontal line with a label, for example the teacher's perplexity. */
export interface ReferenceLine {
  /** Where it is drawn. */
  y: number;
  /** What it is. */
  label: string;
}

/** Options of {@linkcode lineChart}. */
export interface LineChartOptions {
  /** The `id` of the `<svg>` element. */
  id: string;
  /** Accessible title (the `<title>` element); the caption is left to the surrounding page. */
  title: string;
  /** Label under the x axis. */
  xLabel: string;
  /** Label beside the y axis. */
  yLabel: string;
  /** The lines. */
  series: ChartSeries[];
  /** Logarithmic y axis (default false). */
  logY?: boolean;
  /** Width in CSS pixels of the drawing (default 880). */
  width?: number;
  /** Height in CSS pixels of the drawing (default 340). */
  height?: number;
  /** Draw a dot at each point (default: only for series of 60 points or fewer). */
  markers?: boolean;
  /** A series with more points is thinned to its minimum and maximum per bucket ({@linkcode DEFAULT_MAX_POINTS}). */
  maxPoints?: number;
  /** Dashed horizontal reference lines. */
  referenceLines?: ReferenceLine[];
  /** Fixed x range instead of the data's. */
  xDomain?: [number, number];
  /** Fixed y range instead of the data's (padded by 5%); ignored on a log scale. */
  yDomain?: [number, number];
  /** Draw the dashed diagonal y = x, labelled with this text (for example "perfect calibration"); linear y only. */
  diagonal?: string;
}

/** Keeps the first and last point and, per bucket, the points with the smallest and largest y. */
function thin(points: Array<[number, number]>, maxPoints: number): Array<[number, number]> {
  if (points.length <= maxPoints || maxPoints < 4) return points;
  const buckets = Math.floor((maxPoints - 2) / 2);
  const inner = points.length - 2;
  const out: Array<[number, number]> = [points[0]];
  for (let b = 0; b < buckets; b++) {
    const start = 1 + Math.floor((b * inner) / buckets);
    const end = 1 + Math.floor(((b + 1) * inner) / buckets);
    if (end <= start) continue;
    let lo = start, hi = start;
    for (let i = start; i < end; i++) {
      if (points[i][1] < points[lo][1]) lo = i;
      if (points[i][1] > points[hi][1]) hi = i;
    }
    out.push(points[Math.min(lo, hi)]);
    if (hi !== lo) out.push(points[Math.max(lo, hi)]);
  }
  out.push(points[points.length - 1]);
  return out;
}

const FONT = `font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"`;
const CHAR_W = 7; // estimated width of one 12px character, for laying out the legend

/**
 * Renders a line chart as an SVG string: one `<polyline data-series=… data-points=…>` per series, axes with
 * ticks, axis labels and a legend above the plot.
 *
 * @example
 * ```ts
 * const svg = lineChart({
 *   id: "chart-loss", title: "Training loss", xLabel: "step", yLabel: "loss",
 *   series: [{ name: "student", points: [[0, 5.1], [100, 3.2], [200, 2.9]] }],
 * });
 * ```
 */
export function lineChart(options: LineChartOptions): string {
  const width = options.width ?? 880;
  const height = options.height ?? 340;
  const logY = options.logY ?? false;
  const maxPoints = options.maxPoints ?? DEFAULT_MAX_POINTS;
  const refs = (options.referenceLines ?? []).filter((r) => Number.isFinite(r.y) && (!logY || r.y > 0));

  // Clean the data: drop points that cannot be drawn on this scale.
  const series = options.series.map((s, i) => {
    const valid: Array<[number, number]> = [];
    for (const [x, y] of s.points) {
      if (Number.isFinite(x) && Number.isFinite(y) && (!logY || y > 0)) valid.push([x, y]);
    }
    return {
      name: s.name,
      color: s.color ?? SERIES_COLORS[i % SERIES_COLORS.length],
      skipped: s.points.length - valid.length,
      finite: valid.length,
      points: thin(valid, maxPoints),
    };
  });

  // Legend layout: entries flow left to right, wrapping onto new rows.
  const legendItems: Array<{ x: number; row: number; name: string; color: string }> = [];
  {
    let x = 0, row = 0;
    const avail = width - 90;
    for (const s of series) {
      const w = 28 + s.name.length * CHAR_W + 18;
      if (x > 0 && x + w > avail) {
        x = 0;
        row++;
      }
      legendItems.push({ x, row, name: s.name, color: s.color });
      x += w;
    }
  }
  const legendRows = legendItems.length ? legendItems[legendItems.length - 1].row + 1 : 0;
  const m = { left: 74, right: 24, top: 14 + legendRows * 20 + 8, bottom: 52 };
  const pw = width - m.left - m.right;
  const ph = height - m.top - m.bottom;

  // Domains.
  let xMin = Infinity, xMax = -Infinity, yMin = Infinity, yMax = -Infinity;
  for (const s of series) {
    for (const [x, y] of s.points) {
      xMin = Math.min(xMin, x);
      xMax = Math.max(xMax, x);
      yMin = Math.min(yMin, y);
      yMax = Math.max(yMax, y);
    }
  }
  for (const r of refs) {
    yMin = Math.min(yMin, r.y);
    yMax = Math.max(yMax, r.y);
  }
  const empty = !Number.isFinite(xMin);
  if (options.xDomain) [xMin, xMax] = options.xDomain;
  if (options.yDomain && !logY) [yMin, yMax] = options.yDomain;
  if (!Number.isFinite(xMin)) [xMin, xMax] = [0, 1];
  if (!Number.isFinite(yMin)) [yMin, yMax] = logY ? [1, 10] : [0, 1];
  if (xMax === xMin) [xMin, xMax] = xMin >= 0 && xMin < 1 ? [0, 1] : [xMin - 1, xMax + 1];
  let ty: (v: number) => number; // value → [0, 1] along the axis
  let yTicks: number[];
  if (logY) {
    let [a, b] = [Math.log10(yMin), Math.log10(yMax)];
    if (b - a < 1e-9) [a, b] = [a - 0.05, b + 0.05];
    const pad = (b - a) * 0.05;
    [a, b] = [a - pad, b + pad];
    ty = (v) => (Math.log10(v) - a) / (b - a);
    yTicks = logTicks(10 ** a, 10 ** b, Math.max(2, Math.floor(ph / 32)));
  } else {
    let [a, b] = [yMin, yMax];
    if (b - a < 1e-12 * Math.max(1, Math.abs(a))) {
      [a, b] = [a - Math.max(Math.abs(a) * 0.1, 1), b + Math.max(Math.abs(b) * 0.1, 1)];
    }
    const pad = (b - a) * 0.05;
    [a, b] = [a - pad, b + pad];
    ty = (v) => (v - a) / (b - a);
    yTicks = linearTicks(a, b, Math.max(2, Math.min(6, Math.floor(ph / 50))));
  }
  const integerX = series.every((s) => s.points.every(([x]) => Number.isInteger(x)));
  const xTicks = linearTicks(xMin, xMax, Math.max(2, Math.round(pw / 110)), integerX);
  const px = (x: number) => m.left + ((x - xMin) / (xMax - xMin)) * pw;
  const py = (y: number) => m.top + (1 - ty(y)) * ph;
  const f1 = (v: number) => v.toFixed(1);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" id="${escapeHtml(options.id)}" class="chart" data-chart="line"` +
      ` data-scale-y="${logY ? "log" : "linear"}" data-series-count="${series.length}"` +
      ` viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" ${FONT} font-size="12">`,
  );
  out.push(`<title>${escapeHtml(options.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  // Grid and y ticks.
  out.push(`<g class="axis y-axis" data-axis="y">`);
  for (const t of yTicks) {
    const y = f1(py(t));
    out.push(
      `<g class="tick" data-value="${t}"><line x1="${m.left}" x2="${
        m.left + pw
      }" y1="${y}" y2="${y}" stroke="#e4e4e4"/>` +
        `<line x1="${m.left - 5}" x2="${m.left}" y1="${y}" y2="${y}" stroke="#555"/>` +
        `<text x="${m.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle" fill="#333">${
          escapeHtml(formatNumber(t, 4))
        }</text></g>`,
    );
  }
  out.push(
    `<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" stroke="#555"/>` +
      `<text class="axis-label" transform="translate(16 ${
        f1(m.top + ph / 2)
      }) rotate(-90)" text-anchor="middle"` +
      ` fill="#222">${escapeHtml(options.yLabel)}${logY ? " (log scale)" : ""}</text></g>`,
  );
  // x ticks.
  out.push(`<g class="axis x-axis" data-axis="x">`);
  for (const t of xTicks) {
    const x = f1(px(t));
    out.push(
      `<g class="tick" data-value="${t}"><line x1="${x}" x2="${x}" y1="${m.top}" y2="${
        m.top + ph
      }" stroke="#f0f0f0"/>` +
        `<line x1="${x}" x2="${x}" y1="${m.top + ph}" y2="${m.top + ph + 5}" stroke="#555"/>` +
        `<text x="${x}" y="${m.top + ph + 18}" text-anchor="middle" fill="#333">${
          escapeHtml(formatNumber(t, 6))
        }</text></g>`,
    );
  }
  out.push(
    `<line x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="#555"/>` +
      `<text class="axis-label" x="${f1(m.left + pw / 2)}" y="${
        height - 10
      }" text-anchor="middle" fill="#222">${escapeHtml(options.xLabel)}</text></g>`,
  );
  // Reference lines.
  for (const r of refs) {
    const y = f1(py(r.y));
    out.push(
      `<g class="reference" data-value="${r.y}"><line x1="${m.left}" x2="${
        m.left + pw
      }" y1="${y}" y2="${y}"` +
        ` stroke="#777" stroke-dasharray="6 4" stroke-width="1.2"/>` +
        `<text x="${m.left + pw - 4}" y="${f1(py(r.y) - 5)}" text-anchor="end" fill="#555">${
          escapeHtml(`${r.label} (${formatNumber(r.y)})`)
        }</text></g>`,
    );
  }
  if (options.diagonal !== undefined && !logY) {
    const lo = Math.max(xMin, yMin), hi = Math.min(xMax, yMax);
    if (hi > lo) {
      out.push(
        `<g class="diagonal"><line x1="${f1(px(lo))}" y1="${f1(py(lo))}" x2="${f1(px(hi))}" y2="${
          f1(py(hi))
        }"` +
          ` stroke="#777" stroke-dasharray="6 4" stroke-width="1.2"/><text x="${f1(px(hi) - 4)}" y="${
            f1(py(lo) - 8)
          }"` +
          ` text-anchor="end" fill="#555">${escapeHtml(options.diagonal)}</text></g>`,
      );
    }
  }
  // The lines.
  out.push(`<g class="plot">`);
  series.forEach((s, i) => {
    const pts = s.points.map(([x, y]) => `${f1(px(x))},${f1(py(y))}`).join(" ");
    const name = escapeHtml(s.name);
    out.push(
      `<polyline class="series" data-series="${name}" data-series-index="${i}" data-points="${s.points.length}"` +
        ` data-input-points="${s.finite}" data-skipped="${s.skipped}" points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"` +
        ` stroke-linejoin="round" stroke-linecap="round"><title>${name}</title></polyline>`,
    );
    if (options.markers ?? (s.points.length <= 60)) {
      out.push(`<g class="markers" data-series="${name}">`);
      for (const [x, y] of s.points) {
        out.push(
          `<circle cx="${f1(px(x))}" cy="${f1(py(y))}" r="3" fill="${s.color}"><title>${name}: ${
            escapeHtml(`${options.xLabel} ${formatNumber(x, 6)}, ${options.yLabel} ${formatNumber(y)}`)
          }</title></circle>`,
        );
      }
      out.push(`</g>`);
    }
  });
  out.push(`</g>`);
  if (empty) {
    out.push(
      `<text class="no-data" x="${f1(m.left + pw / 2)}" y="${
        f1(m.top + ph / 2)
      }" text-anchor="middle" fill="#888">no data</text>`,
    );
  }
  // Legend.
  out.push(`<g class="legend">`);
  for (const it of legendItems) {
    const x = m.left + it.x;
    const y = 14 + it.row * 20;
    out.push(
      `<g class="legend-item" data-series="${escapeHtml(it.name)}"><line x1="${x}" x2="${
        x + 22
      }" y1="${y}" y2="${y}"` +
        ` stroke="${it.color}" stroke-width="3"/><text x="${
          x + 28
        }" y="${y}" dominant-baseline="middle" fill="#222">${escapeHtml(it.name)}</text></g>`,
    );
  }
  out.push(`</g></svg>`);
  return out.join("\n");
}

/** One bar of a {@linkcode barChart}. */
export interface Bar {
  /** Label left of the bar. */
  label: string;
  /** Length of the bar (≥ 0). */
  value: number;
  /** Text right of the bar (default: the formatted value). */
  valueText?: string;
  /** Fill colour (default: by position). */
  color?: string;
}

/**
 * Renders horizontal bars on a linear scale starting at zero, each labelled with its value. Each bar is a
 * `<rect data-bar=… data-value=…>`.
 *
 * @example
 * ```ts
 * const svg = barChart("chart-storage", "Bytes per token", [
 *   { label: "top-64 shards", value: 260 },
 *   { label: "float32 logits", value: 32768 },
 * ]);
 * ```
 */
export function barChart(id: string, title: string, bars: Bar[], width = 880): string {
  const labelW = Math.min(
    320,
    Math.max(80, ...bars.map((b) => b.label.length * CHAR_W + 16)),
  );
  const valueW = Math.max(
    80,
    ...bars.map((b) => (b.valueText ?? formatNumber(b.value)).length * CHAR_W + 16),
  );
  const rowH = 30;
  const height = bars.length * rowH + 16;
  const plotW = width - labelW - valueW;
  const max = Math.max(0, ...bars.map((b) => (Number.isFinite(b.value) ? b.value : 0)));
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" id="${escapeHtml(id)}" class="chart" data-chart="bar"` +
      ` viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" ${FONT} font-size="12">`,
  );
  out.push(`<title>${escapeHtml(title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  bars.forEach((b, i) => {
    const y = 8 + i * rowH;
    const v = Number.isFinite(b.value) && b.value > 0 ? b.value : 0;
    const w = max > 0 ? Math.max(v > 0 ? 1.5 : 0, (v / max) * plotW) : 0;
    const label = escapeHtml(b.label);
    out.push(
      `<g class="bar-row"><text x="${labelW - 8}" y="${
        y + rowH / 2 - 3
      }" text-anchor="end" dominant-baseline="middle"` +
        ` fill="#222">${label}</text>` +
        `<rect data-bar="${label}" data-value="${b.value}" x="${labelW}" y="${y + 2}" width="${
          w.toFixed(1)
        }"` +
        ` height="${rowH - 10}" fill="${b.color ?? SERIES_COLORS[i % SERIES_COLORS.length]}"/>` +
        `<text x="${(labelW + w + 6).toFixed(1)}" y="${
          y + rowH / 2 - 3
        }" dominant-baseline="middle" fill="#333">${
          escapeHtml(b.valueText ?? formatNumber(b.value))
        }</text></g>`,
    );
  });
  out.push(`</svg>`);
  return out.join("\n");
}
