/**
 * The report of a `deno task save-topk --out` folder: the run.json summary, bytes per token position (the
 * shards as stored, against full float32 logits) and the teacher's mean probability mass in its top-K,
 * computed from the shards with the stored logsumexp ({@linkcode topKMass}). Every shard present is read
 * and checked (size, CRC32C against the host manifests), streamed one shard at a time.
 *
 * Stable hooks for tests: the tables `run-table` (rows with `data-setting`), `storage-table` and
 * `mass-table` (number cells with `data-metric`; mass cells also carry `data-k`), the charts
 * `chart-storage` and `chart-topk-mass`.
 * @module
 */
import { resolve } from "node:path";
import type { RunJson } from "../format/types.ts";
import { shardCount } from "../format/layout.ts";
import { readRunJson } from "../format/run_json.ts";
import { openLocalStore } from "../store/local.ts";
import { escapeHtml } from "./escape.ts";
import { formatBytes, formatInteger, formatNumber, formatPercent } from "./number_format.ts";
import { chartFigure, htmlPage, numCell, settingsTable } from "./page.ts";
import { barChart, lineChart } from "./svg_chart.ts";
import { topKMass } from "./topk_mass.ts";

/** What {@linkcode readTopKFolder} finds in a save-topk OUT. */
export interface TopKFolder {
  /** The folder as given. */
  dir: string;
  /** Its run.json. */
  run: RunJson;
  /** Shards present, and how many the run has in all. */
  shards: number;
  /** Shards the finished run will have. */
  shardsExpected: number;
  /** Token positions in the shards present. */
  positions: number;
  /** Bytes of the shards present. */
  bytes: number;
  /** The K at which the mass was computed: 1, 2, 4, … and the run's k. */
  ks: number[];
  /** The teacher's mean probability mass in its top-K, for each of `ks` (NaN without a logsumexp at T = 1). */
  mass: number[];
}

/**
 * The K of the mass table: the powers of two below `k`, and `k` (none for a samples-only run, k = 0).
 *
 * @example
 * ```ts
 * massKs(48); // [1, 2, 4, 8, 16, 32, 48]
 * ```
 */
export function massKs(k: number): number[] {
  const ks: number[] = [];
  if (k === 0) return ks;
  for (let x = 1; x < k; x *= 2) ks.push(x);
  ks.push(k);
  return ks;
}

/**
 * Reads a local save-topk OUT: its run.json, then every shard present (a run still in progress or split
 * over hosts may lack some), checking each and summing bytes, positions and the top-K mass.
 *
 * @example
 * ```ts
 * const out = await readTopKFolder("runs/demo/topk");
 * console.log(out.bytes / out.positions, out.mass.at(-1));
 * ```
 */
export async function readTopKFolder(dir: string): Promise<TopKFolder> {
  const store = await openLocalStore(dir);
  const run = await readRunJson(store);
  const ks = massKs(run.k);
  let shards = 0, positions = 0, bytes = 0;
  const mass = await topKMass(store, ks, {
    skipMissing: true,
    onShard: (s) => {
      shards++;
      positions += s.tokens;
      bytes += s.bytes;
    },
  });
  return {
    dir,
    run,
    shards,
    shardsExpected: shardCount(run.sequences, run.sequencesPerShard),
    positions,
    bytes,
    ks,
    mass,
  };
}

/** run.json's fields as rows, nested `teacher`/`data` entries as dotted keys. */
function runRows(run: RunJson): [string, string][] {
  const rows: [string, string][] = [];
  for (const [k, v] of Object.entries(run)) {
    if (typeof v === "object" && v !== null && !Array.isArray(v)) {
      for (const [k2, v2] of Object.entries(v)) {
        rows.push([`${k}.${k2}`, typeof v2 === "string" ? v2 : JSON.stringify(v2) ?? String(v2)]);
      }
    } else rows.push([k, typeof v === "string" ? v : JSON.stringify(v)]);
  }
  return rows;
}

/**
 * Renders the report of a save-topk OUT as one self-contained HTML page.
 *
 * @example
 * ```ts
 * const html = renderTopKReport(await readTopKFolder("runs/demo/topk"));
 * ```
 */
export function renderTopKReport(out: TopKFolder): string {
  const r = out.run;
  const title = `sparsekd save-topk report: ${resolve(out.dir)}`;
  const perPosition = out.positions > 0 ? out.bytes / out.positions : NaN;
  const full = 4 * r.vocabSize;
  const ratio = full / perPosition;
  const complete = out.shards === out.shardsExpected;
  const storage = `<div class="card"><table id="storage-table"><caption>Shards<span class="desc">${
    formatInteger(out.shards)
  } of ${formatInteger(out.shardsExpected)} shards present${
    complete ? "" : " (the run is not complete)"
  }</span></caption>
<tbody>
<tr><th scope="row">Token positions</th>${
    numCell("positions", out.positions, formatInteger(out.positions))
  }</tr>
<tr><th scope="row">Bytes</th>${numCell("bytes", out.bytes, formatBytes(out.bytes))}</tr>
<tr><th scope="row">Bytes per token position (top-${r.k}, values ${r.valueDtype}, indices ${r.indexDtype})</th>${
    numCell("bytesPerPosition", perPosition, formatNumber(perPosition))
  }</tr>
<tr><th scope="row">Full-vocabulary float32 logits per position (vocabulary ${
    formatInteger(r.vocabSize)
  })</th>${numCell("fullBytesPerPosition", full, formatNumber(full))}</tr>
<tr><th scope="row">Saving factor (full ÷ shards)</th>${
    numCell("ratio", ratio, `×${formatNumber(ratio, 3)}`)
  }</tr>
</tbody></table></div>`;
  const storageChart = barChart("chart-storage", "Bytes per token position", [
    {
      label: `top-${r.k} shards`,
      value: perPosition,
      valueText: `${formatNumber(perPosition)} B`,
      color: "#2a9d8f",
    },
    { label: "float32 logits", value: full, valueText: `${formatNumber(full)} B`, color: "#9a4c5e" },
  ]);
  const hasMass = out.mass.some((m) => Number.isFinite(m));
  const massTable =
    `<div class="card"><table id="mass-table"><caption>The teacher's mean probability mass in its top-K` +
    `<span class="desc">at T = 1, from the stored logits and full-vocabulary logsumexp, over ${
      formatInteger(out.positions)
    } positions</span></caption><thead><tr><th>K</th><th class="num">Mass</th></tr></thead><tbody>${
      out.ks.map((k, i) =>
        `<tr data-k="${k}"><th scope="row">${k}</th>${
          numCell("mass", out.mass[i], formatPercent(out.mass[i], 1)).replace("<td ", `<td data-k="${k}" `)
        }</tr>`
      ).join("")
    }</tbody></table></div>`;
  const massChart = hasMass
    ? chartFigure(
      "chart-topk-mass",
      "Top-K mass",
      "the share of the teacher's probability that an offline top-K run sees, percent",
      lineChart({
        id: "chart-topk-mass",
        title: "The teacher's mean probability mass in its top-K",
        xLabel: "K",
        yLabel: "mass (%)",
        markers: true,
        yDomain: [0, 100],
        series: [{ name: "teacher", points: out.ks.map((k, i) => [k, 100 * out.mass[i]] as const) }],
      }),
    )
    : `<p id="mass-missing" class="meta">run.json stores no logsumexp at T = 1 (lseTemperatures ${
      escapeHtml(JSON.stringify(r.lseTemperatures))
    }): the mass is not known.</p>`;
  return htmlPage(
    title,
    `<main id="report" data-kind="save-topk">
<header><h1>${escapeHtml(title)}</h1><p class="meta">Teacher ${
      escapeHtml(String(r.teacher.description ?? r.teacher.fingerprint))
    }; data ${escapeHtml(String(r.data.description ?? r.data.fingerprint))}</p></header>
<section id="storage"><h2>Storage</h2>
<figure id="fig-storage"><figcaption>Bytes per token position</figcaption>${storageChart}</figure>
${storage}</section>
<section id="mass"><h2>Top-K mass</h2>${massChart}
${massTable}</section>
<section id="run"><h2>run.json</h2>${settingsTable("run-table", "run.json", runRows(r))}</section>
`,
  );
}
