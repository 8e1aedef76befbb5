/**
 * The report of a `deno task train --out` folder: the loss and held-out curves from `metrics.jsonl` and the
 * run's settings from the newest checkpoint's `state.json`. Both files are untrusted: a malformed line is a
 * one-line {@linkcode SparsekdError} naming the file and the line.
 *
 * Stable hooks for tests: the charts `chart-train-loss`, `chart-heldout-ppl`, `chart-heldout-kl`,
 * `chart-heldout-top1` (the last three when the evaluations carry them) and `chart-lr`; the tables
 * `train-summary-table` (number cells with `data-metric`) and `settings-table` (rows with `data-setting`).
 * @module
 */
import { basename, join, resolve } from "node:path";
import { SparsekdError } from "../errors.ts";
import { escapeHtml } from "./escape.ts";
import { formatInteger, formatNumber, formatPercent } from "./number_format.ts";
import { chartFigure, htmlPage, numCell, settingsTable, trainLossFigure } from "./page.ts";
import { lineChart } from "./svg_chart.ts";

/** The metrics file of a train folder. */
export const METRICS_FILE = "metrics.jsonl";

/** One training line of metrics.jsonl. */
export interface TrainMetric {
  /** Optimizer step (1-based). */
  step: number;
  /** Training loss (NaN when written as null). */
  loss: number;
  /** Learning rate at the step, when logged. */
  lr?: number;
  /** Wall time per step around this read-back, ms, when logged. */
  msPerStep?: number;
}

/** One held-out evaluation line of metrics.jsonl. */
export interface EvalMetric {
  /** Optimizer step of the evaluation. */
  step: number;
  /** Held-out cross-entropy, nats per token. */
  ce: number;
  /** Held-out perplexity. */
  ppl: number;
  /** KL to the teacher's sparse distribution, when the data had one. */
  kl?: number;
  /** Top-1 agreement with the teacher, when the data had one. */
  top1?: number;
}

/** What {@linkcode readTrainFolder} finds in a train folder. */
export interface TrainFolder {
  /** The folder as given. */
  dir: string;
  /** Training lines by step (the last line of a step wins, after a resume). */
  train: TrainMetric[];
  /** Evaluations by step. */
  eval: EvalMetric[];
  /** The newest checkpoint's step, or null when there is none. */
  checkpointStep: number | null;
  /** Its `state.json` settings (the trainer's identity: model, optimizer, loss, data), flattened to text. */
  settings: [string, string][];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** The lines of a text file, streamed, each with whether it ended with a newline (a line over 1 MiB is refused). */
async function* textLines(path: string): AsyncGenerator<{ line: string; complete: boolean }> {
  const file = await Deno.open(path);
  let rest = "";
  for await (const chunk of file.readable.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    const lines = rest.split("\n");
    rest = lines.pop()!;
    for (const line of lines) yield { line, complete: true };
    if (rest.length > 1 << 20) throw new SparsekdError(`${path} has a line longer than 1 MiB`);
  }
  if (rest !== "") yield { line: rest, complete: false };
}

function num(o: Obj, key: string, where: string, optional = false): number | undefined {
  const v = o[key];
  if (v === null) return NaN;
  if (v === undefined && optional) return undefined;
  if (typeof v !== "number") {
    throw new SparsekdError(
      `${where}: ${key} must be a number or null (got ${JSON.stringify(v) ?? "nothing"})`,
    );
  }
  return v;
}

function stepOf(o: Obj, where: string): number {
  if (typeof o.step !== "number" || !Number.isSafeInteger(o.step) || o.step < 0) {
    throw new SparsekdError(
      `${where}: step must be an integer ≥ 0 (got ${JSON.stringify(o.step) ?? "nothing"})`,
    );
  }
  return o.step;
}

/** Flattens `state.json` into `[key, value]` rows: nested objects as dotted keys, values as JSON text. */
function flatten(value: unknown, prefix: string, out: [string, string][]): void {
  if (isObj(value) && prefix.split(".").length < 4) {
    for (const [k, v] of Object.entries(value)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (out.length < 200) {
    out.push([prefix, typeof value === "string" ? value : JSON.stringify(value) ?? String(value)]);
  }
}

/**
 * Reads a train folder: `metrics.jsonl` streamed line by line (unknown kinds are skipped; a last line cut
 * short by a killed run is ignored) and the newest `ckpt-*` folder's `state.json`. A folder with neither is a
 * {@linkcode SparsekdError}.
 *
 * @example
 * ```ts
 * const run = await readTrainFolder("runs/demo/students/ce-only");
 * console.log(run.train.length, run.settings);
 * ```
 */
export async function readTrainFolder(dir: string): Promise<TrainFolder> {
  const train = new Map<number, TrainMetric>();
  const evals = new Map<number, EvalMetric>();
  const path = join(dir, METRICS_FILE);
  let hasMetrics = true;
  try {
    let n = 0;
    for await (const { line, complete } of textLines(path)) {
      n++;
      if (!line.trim()) continue;
      const where = `${path}:${n}`;
      let o: unknown;
      try {
        o = JSON.parse(line);
      } catch {
        if (!complete) break; // the last line, cut short by a killed run
        throw new SparsekdError(`${where} is not a JSON line`);
      }
      if (!isObj(o)) throw new SparsekdError(`${where} is not a JSON object`);
      if (o.kind === "train") {
        const m: TrainMetric = { step: stepOf(o, where), loss: num(o, "loss", where)! };
        const lr = num(o, "lr", where, true), ms = num(o, "msPerStep", where, true);
        if (lr !== undefined) m.lr = lr;
        if (ms !== undefined) m.msPerStep = ms;
        train.set(m.step, m);
      } else if (o.kind === "eval") {
        const m: EvalMetric = {
          step: stepOf(o, where),
          ce: num(o, "ce", where)!,
          ppl: num(o, "perplexity", where)!,
        };
        const kl = num(o, "kl", where, true), top1 = num(o, "top1", where, true);
        if (kl !== undefined && !(o.kl === null)) m.kl = kl;
        if (top1 !== undefined && !(o.top1 === null)) m.top1 = top1;
        evals.set(m.step, m);
      }
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    hasMetrics = false;
  }
  let checkpointStep: number | null = null;
  for await (const e of Deno.readDir(dir)) {
    const m = /^ckpt-(\d{8})$/.exec(e.name);
    if (!m || !e.isDirectory) continue;
    const step = Number(m[1]);
    if (step > (checkpointStep ?? -1)) {
      try {
        await Deno.stat(join(dir, e.name, "state.json"));
        checkpointStep = step;
      } catch { /* an incomplete checkpoint (no state.json) does not count */ }
    }
  }
  if (!hasMetrics && checkpointStep === null) {
    throw new SparsekdError(`${dir} is not a train folder: it has no ${METRICS_FILE} and no checkpoint`);
  }
  const settings: [string, string][] = [];
  if (checkpointStep !== null) {
    const statePath = join(dir, `ckpt-${String(checkpointStep).padStart(8, "0")}`, "state.json");
    if ((await Deno.stat(statePath)).size > 1 << 20) {
      throw new SparsekdError(`${statePath} is larger than 1 MiB: not a state.json of sparsekd`);
    }
    let state: unknown;
    try {
      state = JSON.parse(await Deno.readTextFile(statePath));
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err;
      throw new SparsekdError(`${statePath} is not valid JSON`);
    }
    if (!isObj(state)) throw new SparsekdError(`${statePath} is not a JSON object`);
    const { identity, ...rest } = state;
    flatten(rest, "", settings);
    if (isObj(identity)) flatten(identity, "", settings);
  }
  const byStep = <T extends { step: number }>(m: Map<number, T>) =>
    [...m.values()].sort((a, b) => a.step - b.step);
  return { dir, train: byStep(train), eval: byStep(evals), checkpointStep, settings };
}

/**
 * Renders the report of a train folder as one self-contained HTML page.
 *
 * @example
 * ```ts
 * const html = renderTrainReport(await readTrainFolder("runs/s1"));
 * ```
 */
export function renderTrainReport(run: TrainFolder): string {
  const name = basename(resolve(run.dir));
  const title = `sparsekd train report: ${name}`;
  const series = (points: ReadonlyArray<readonly [number, number]>) => [{ name, points }];
  const charts = [
    trainLossFigure(series(run.train.map((p) => [p.step, p.loss] as const))),
  ];
  const evalChart = (
    id: string,
    caption: string,
    hint: string,
    y: string,
    pick: (e: EvalMetric) => number | undefined,
    logY = false,
  ) => {
    const points = run.eval.filter((e) => pick(e) !== undefined).map((e) => [e.step, pick(e)!] as const);
    if (points.length === 0) return;
    charts.push(
      chartFigure(
        id,
        caption,
        hint,
        lineChart({
          id,
          title: `${caption} per step`,
          xLabel: "step",
          yLabel: y,
          logY,
          markers: true,
          series: series(points),
        }),
      ),
    );
  };
  evalChart(
    "chart-heldout-ppl",
    "Held-out perplexity",
    "per evaluation step, log scale",
    "perplexity",
    (e) => e.ppl,
    true,
  );
  evalChart(
    "chart-heldout-kl",
    "KL to the teacher",
    "held-out, nats per token (teacher's top-k renormalized)",
    "KL (nats/token)",
    (e) => e.kl,
  );
  evalChart(
    "chart-heldout-top1",
    "Top-1 agreement with the teacher",
    "held-out, percent",
    "top-1 agreement (%)",
    (e) => e.top1 === undefined ? undefined : 100 * e.top1,
  );
  if (run.train.some((p) => p.lr !== undefined)) {
    charts.push(chartFigure(
      "chart-lr",
      "Learning rate",
      "warm-up and cosine decay",
      lineChart({
        id: "chart-lr",
        title: "Learning rate per step",
        xLabel: "step",
        yLabel: "learning rate",
        series: series(run.train.filter((p) => p.lr !== undefined).map((p) => [p.step, p.lr!] as const)),
      }),
    ));
  }

  const lastTrain = run.train.at(-1), lastEval = run.eval.at(-1);
  const ms = run.train.map((p) => p.msPerStep).filter((x): x is number => x !== undefined && x > 0);
  const rows: [string, string, number, string][] = [];
  const row = (metric: string, label: string, v: number | undefined, text: (v: number) => string) => {
    if (v !== undefined) rows.push([metric, label, v, text(v)]);
  };
  row("lastStep", "Last logged step", lastTrain?.step, formatInteger);
  row("checkpointStep", "Newest checkpoint", run.checkpointStep ?? undefined, formatInteger);
  row("loss", "Last training loss (nats/token)", lastTrain?.loss, (v) => formatNumber(v));
  row("ppl", `Held-out perplexity at step ${lastEval?.step}`, lastEval?.ppl, (v) => formatNumber(v));
  row("ce", "Held-out cross-entropy (nats/token)", lastEval?.ce, (v) => formatNumber(v));
  row("kl", "Held-out KL to the teacher (nats/token)", lastEval?.kl, (v) => formatNumber(v));
  row("top1", "Held-out top-1 agreement", lastEval?.top1, (v) => formatPercent(v, 2));
  row(
    "msPerStep",
    "Mean time per step (ms)",
    ms.length ? ms.reduce((a, b) => a + b, 0) / ms.length : undefined,
    (v) => formatNumber(v),
  );
  const summary = `<div class="card"><table id="train-summary-table"><caption>Summary<span class="desc">${
    formatInteger(run.train.length)
  } logged steps, ${formatInteger(run.eval.length)} evaluations</span></caption><tbody>${
    rows.map(([m, label, v, text]) =>
      `<tr><th scope="row">${escapeHtml(label)}</th>${numCell(m, v, text)}</tr>`
    ).join("")
  }</tbody></table></div>`;
  const settings = run.settings.length
    ? settingsTable(
      "settings-table",
      `Settings (state.json of checkpoint ${run.checkpointStep})`,
      run.settings,
    )
    : `<p id="settings-missing" class="meta">No checkpoint yet: the settings are written with the first one.</p>`;
  return htmlPage(
    title,
    `<main id="report" data-kind="train">
<header><h1>${escapeHtml(title)}</h1><p class="meta">${escapeHtml(resolve(run.dir))}</p></header>
<section id="summary"><h2>Summary</h2>${summary}</section>
<section id="curves"><h2>Training curves</h2>
${
      run.train.length || run.eval.length
        ? charts.join("\n")
        : `<p class="meta">metrics.jsonl has no lines yet.</p>`
    }
</section>
<section id="settings"><h2>Settings</h2>${settings}</section>
`,
  );
}
