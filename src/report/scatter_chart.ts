/**
 * A scatter chart with vertical error bars and a logarithmic x axis, as a self-contained SVG string: the
 * study's "gap closed against stored bytes per position" chart, one point per method, one series (marker
 * shape and colour) per teacher.
 *
 * Stable attributes for tests: the `<svg>` has `data-chart="scatter"`, each point is a `<g class="point">`
 * with `data-series`, `data-label`, `data-x`, `data-y` and `data-err`.
 * @module
 */
import { escapeHtml } from "./escape.ts";
import { formatNumber } from "./number_format.ts";
import { linearTicks, logTicks } from "./ticks.ts";
import { type ReferenceLine, SERIES_COLORS } from "./svg_chart.ts";

/** One point of a {@linkcode scatterChart}. */
export interface ScatterPoint {
  /** x (> 0: the axis is logarithmic). */
  x: number;
  /** y. */
  y: number;
  /** Half-length of the vertical error bar (omit or NaN for none). */
  err?: number;
  /** A short label written beside the point (e.g. `tail K=64`). */
  label: string;
}

/** One series (drawn with one colour and one marker shape) of a {@linkcode scatterChart}. */
export interface ScatterSeries {
  /** Shown in the legend. */
  name: string;
  /** The points; those with a non-finite coordinate or x ≤ 0 are left out (counted in `data-skipped`). */
  points: ScatterPoint[];
}

/** Options of {@linkcode scatterChart}. */
export interface ScatterChartOptions {
  /** The `id` of the `<svg>`. */
  id: string;
  /** Accessible title. */
  title: string;
  /** Label under the (logarithmic) x axis. */
  xLabel: string;
  /** Label beside the y axis. */
  yLabel: string;
  /** The series. */
  series: ScatterSeries[];
  /** Dashed horizontal reference lines (e.g. 0 = CE-only, 1 = online KD). */
  referenceLines?: ReferenceLine[];
  /** Width in CSS pixels (default 880). */
  width?: number;
  /** Height in CSS pixels (default 420). */
  height?: number;
  /**
   * Limits of the y axis: points beyond them are drawn on the edge, their label saying their value and
   * "off scale" (`data-clamped="true"`), so that one far outlier does not flatten the rest (default: none).
   */
  yClamp?: [number, number];
}

const FONT = `font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"`;

/** The marker of series i: circle, square, triangle, diamond, … */
function marker(i: number, x: number, y: number, color: string): string {
  const f = (v: number) => v.toFixed(1);
  switch (i % 4) {
    case 0:
      return `<circle cx="${f(x)}" cy="${f(y)}" r="4.5" fill="${color}"/>`;
    case 1:
      return `<rect x="${f(x - 4)}" y="${f(y - 4)}" width="8" height="8" fill="${color}"/>`;
    case 2:
      return `<path d="M${f(x)} ${f(y - 5)}L${f(x + 5)} ${f(y + 4)}L${f(x - 5)} ${
        f(y + 4)
      }Z" fill="${color}"/>`;
    default:
      return `<path d="M${f(x)} ${f(y - 5)}L${f(x + 5)} ${f(y)}L${f(x)} ${f(y + 5)}L${f(x - 5)} ${
        f(y)
      }Z" fill="${color}"/>`;
  }
}

/**
 * Renders the scatter chart: log-x axis, linear y axis with the error bars included in its range, reference
 * lines, labelled points and a legend.
 *
 * @example
 * ```ts
 * const svg = scatterChart({
 *   id: "chart-gap", title: "Gap closed", xLabel: "bytes per position", yLabel: "gap closed",
 *   series: [{ name: "flat teacher", points: [{ x: 388, y: 0.4, err: 0.1, label: "tail K=64" }] }],
 *   referenceLines: [{ y: 0, label: "CE-only" }, { y: 1, label: "online KD" }],
 * });
 * ```
 */
export function scatterChart(options: ScatterChartOptions): string {
  const width = options.width ?? 880;
  const height = options.height ?? 420;
  const refs = (options.referenceLines ?? []).filter((r) => Number.isFinite(r.y));
  const series = options.series.map((s, i) => {
    const valid = s.points.filter((p) => Number.isFinite(p.x) && p.x > 0 && Number.isFinite(p.y));
    return {
      ...s,
      color: SERIES_COLORS[i % SERIES_COLORS.length],
      valid,
      skipped: s.points.length - valid.length,
    };
  });
  const all = series.flatMap((s) => s.valid);
  const err = (p: ScatterPoint) => (p.err !== undefined && Number.isFinite(p.err) ? Math.abs(p.err) : 0);
  let xMin = Math.min(...all.map((p) => p.x)), xMax = Math.max(...all.map((p) => p.x));
  let yMin = Math.min(...all.map((p) => p.y - err(p)), ...refs.map((r) => r.y));
  let yMax = Math.max(...all.map((p) => p.y + err(p)), ...refs.map((r) => r.y));
  if (!Number.isFinite(xMin)) [xMin, xMax] = [1, 10];
  if (!Number.isFinite(yMin)) [yMin, yMax] = [0, 1];
  const [lo, hi] = options.yClamp ?? [-Infinity, Infinity];
  [yMin, yMax] = [Math.max(Math.min(yMin, hi), lo), Math.min(Math.max(yMax, lo), hi)];
  const clampY = (y: number) => Math.min(Math.max(y, yMin), yMax);
  let [a, b] = [Math.log10(xMin), Math.log10(xMax)];
  if (b - a < 0.2) [a, b] = [a - 0.1, b + 0.1];
  [a, b] = [a - (b - a) * 0.06, b + (b - a) * 0.06];
  if (yMax - yMin < 1e-9) [yMin, yMax] = [yMin - 0.5, yMax + 0.5];
  [yMin, yMax] = [yMin - (yMax - yMin) * 0.06, yMax + (yMax - yMin) * 0.06];

  const legendRows = Math.ceil(series.length / 4);
  const m = { left: 74, right: 24, top: 14 + legendRows * 20 + 8, bottom: 52 };
  const pw = width - m.left - m.right, ph = height - m.top - m.bottom;
  const px = (x: number) => m.left + ((Math.log10(x) - a) / (b - a)) * pw;
  const py = (y: number) => m.top + (1 - (y - yMin) / (yMax - yMin)) * ph;
  const f1 = (v: number) => v.toFixed(1);

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" id="${
      escapeHtml(options.id)
    }" class="chart" data-chart="scatter"` +
      ` data-scale-x="log" data-series-count="${series.length}" viewBox="0 0 ${width} ${height}"` +
      ` width="${width}" height="${height}" role="img" ${FONT} font-size="12">`,
  );
  out.push(`<title>${escapeHtml(options.title)}</title>`);
  out.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(`<g class="axis y-axis" data-axis="y">`);
  for (const t of linearTicks(yMin, yMax, Math.max(2, Math.min(8, Math.floor(ph / 45))))) {
    const y = f1(py(t));
    out.push(
      `<g class="tick" data-value="${t}"><line x1="${m.left}" x2="${m.left + pw}" y1="${y}" y2="${y}"` +
        ` stroke="#e4e4e4"/><text x="${m.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle"` +
        ` fill="#333">${escapeHtml(formatNumber(t, 4))}</text></g>`,
    );
  }
  out.push(
    `<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" stroke="#555"/>` +
      `<text class="axis-label" transform="translate(16 ${f1(m.top + ph / 2)}) rotate(-90)"` +
      ` text-anchor="middle" fill="#222">${escapeHtml(options.yLabel)}</text></g>`,
  );
  out.push(`<g class="axis x-axis" data-axis="x">`);
  for (const t of logTicks(10 ** a, 10 ** b, Math.max(2, Math.floor(pw / 70)))) {
    const x = f1(px(t));
    out.push(
      `<g class="tick" data-value="${t}"><line x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + ph}"` +
        ` stroke="#f0f0f0"/><text x="${x}" y="${m.top + ph + 18}" text-anchor="middle" fill="#333">${
          escapeHtml(formatNumber(t, 6))
        }</text></g>`,
    );
  }
  out.push(
    `<line x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="#555"/>` +
      `<text class="axis-label" x="${f1(m.left + pw / 2)}" y="${height - 10}" text-anchor="middle"` +
      ` fill="#222">${escapeHtml(options.xLabel)} (log scale)</text></g>`,
  );
  for (const r of refs) {
    const y = f1(py(r.y));
    out.push(
      `<g class="reference" data-value="${r.y}"><line x1="${m.left}" x2="${m.left + pw}" y1="${y}"` +
        ` y2="${y}" stroke="#777" stroke-dasharray="6 4" stroke-width="1.2"/><text x="${m.left + 4}"` +
        ` y="${f1(py(r.y) - 5)}" fill="#555">${escapeHtml(r.label)}</text></g>`,
    );
  }
  out.push(`<g class="plot">`);
  series.forEach((s, i) => {
    const name = escapeHtml(s.name);
    out.push(
      `<g class="series" data-series="${name}" data-points="${s.valid.length}" data-skipped="${s.skipped}">`,
    );
    for (const p of s.valid) {
      const x = px(p.x), y = py(clampY(p.y)), e = err(p);
      const clamped = clampY(p.y) !== p.y;
      const label = clamped ? `${p.label} (${formatNumber(p.y, 3)}, off scale)` : p.label;
      const tip = `${s.name}, ${p.label}: ${options.yLabel} ${formatNumber(p.y, 3)}` +
        (e > 0 ? ` ± ${formatNumber(e, 2)}` : "") + `, ${options.xLabel} ${formatNumber(p.x, 4)}`;
      out.push(
        `<g class="point" data-series="${name}" data-label="${escapeHtml(p.label)}" data-x="${p.x}"` +
          ` data-y="${p.y}" data-err="${e}"${clamped ? ` data-clamped="true"` : ""}><title>${
            escapeHtml(tip)
          }</title>` +
          (e > 0
            ? `<line x1="${f1(x)}" x2="${f1(x)}" y1="${f1(py(clampY(p.y - e)))}" y2="${
              f1(py(clampY(p.y + e)))
            }"` +
              ` stroke="${s.color}" stroke-width="1.5"/>`
            : "") +
          marker(i, x, y, s.color) +
          `<text x="${f1(x + 7)}" y="${f1(y - 6)}" fill="${s.color}" font-size="10">${
            escapeHtml(label)
          }</text></g>`,
      );
    }
    out.push(`</g>`);
  });
  out.push(`</g>`);
  if (all.length === 0) {
    out.push(
      `<text class="no-data" x="${f1(m.left + pw / 2)}" y="${f1(m.top + ph / 2)}" text-anchor="middle"` +
        ` fill="#888">no data</text>`,
    );
  }
  out.push(`<g class="legend">`);
  series.forEach((s, i) => {
    const x = m.left + (i % 4) * 200, y = 14 + Math.floor(i / 4) * 20;
    out.push(
      `<g class="legend-item" data-series="${escapeHtml(s.name)}">${marker(i, x + 8, y, s.color)}` +
        `<text x="${x + 20}" y="${y}" dominant-baseline="middle" fill="#222">${
          escapeHtml(s.name)
        }</text></g>`,
    );
  });
  out.push(`</g></svg>`);
  return out.join("\n");
}
