/**
 * `deno task report`'s work: tells a run folder's kind from what it holds, renders its report and writes
 * `<run folder>/report.html` (or another path).
 * @module
 */
import { join } from "node:path";
import { SparsekdError } from "../errors.ts";
import { RUN_JSON_PATH } from "../format/run_json.ts";
import { renderReport } from "./html.ts";
import { readTopKFolder, renderTopKReport } from "./topk_folder.ts";
import { METRICS_FILE, readTrainFolder, renderTrainReport } from "./train_folder.ts";
import { parseReportInput } from "./validate.ts";

/** Name of the input file inside a demo or study run folder. */
export const REPORT_INPUT_FILE = "report_input.json";
/** Name of the report written into a run folder. */
export const REPORT_FILE = "report.html";

/** What `deno task report --help` prints. */
export const REPORT_HELP = `deno task report <run folder> [--out FILE]

Renders the HTML report of a local run folder into <run folder>/${REPORT_FILE}, and prints its path. The
folder's kind is told from what it holds:

  ${REPORT_INPUT_FILE}   a demo or study folder (deno task demo / study): students, storage, throughput
  ${RUN_JSON_PATH}            a save-topk --out folder: run.json, bytes per token position and the teacher's
                      mean probability mass in its top-K, from the shards and the stored logsumexp
  ${METRICS_FILE}       a train --out folder: loss and held-out curves, and the run's settings from its
                      newest checkpoint

  --out FILE          write the report to FILE instead
  --help              this text`;

/** The kinds of run folder that {@linkcode writeReport} renders. */
export type RunFolderKind = "demo" | "save-topk" | "train";

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/**
 * The kind of a run folder: `demo` when it holds `report_input.json` (demo and study folders), `save-topk`
 * when it holds `run.json`, `train` when it holds `metrics.jsonl` or a `ckpt-*` folder. A missing folder, a
 * file, or a folder of none of these kinds is a one-line {@linkcode SparsekdError}.
 *
 * @example
 * ```ts
 * await runFolderKind("runs/demo/topk"); // "save-topk"
 * ```
 */
export async function runFolderKind(runFolder: string): Promise<RunFolderKind> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(runFolder)) {
    throw new SparsekdError(
      `the report reads local folders only (got ${runFolder}): copy the folder here first`,
    );
  }
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(runFolder);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new SparsekdError(`run folder not found: ${runFolder}`);
    throw err;
  }
  if (!info.isDirectory) throw new SparsekdError(`not a folder: ${runFolder}`);
  if (await isFile(join(runFolder, REPORT_INPUT_FILE))) return "demo";
  if (await isFile(join(runFolder, RUN_JSON_PATH))) return "save-topk";
  if (await isFile(join(runFolder, METRICS_FILE))) return "train";
  for await (const e of Deno.readDir(runFolder)) {
    if (e.isDirectory && /^ckpt-\d{8}$/.test(e.name)) return "train";
  }
  throw new SparsekdError(
    `${runFolder} is not a run folder: it holds no ${REPORT_INPUT_FILE} (demo, study), ${RUN_JSON_PATH} ` +
      `(save-topk) or ${METRICS_FILE} (train)`,
  );
}

async function renderDemo(runFolder: string): Promise<string> {
  const inputPath = join(runFolder, REPORT_INPUT_FILE);
  const text = await Deno.readTextFile(inputPath);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new SparsekdError(`${inputPath} is not valid JSON: ${msg}`);
  }
  return renderReport(parseReportInput(json, inputPath));
}

/** Options of {@linkcode writeReport}. */
export interface WriteReportOptions {
  /** Where the page goes (default `<runFolder>/report.html`); its folder must exist. */
  out?: string;
}

/**
 * Renders the report of a run folder of any kind ({@linkcode runFolderKind}) and returns the path written.
 * The page is written to a temporary file beside it first and renamed, so a reader never sees half a
 * report. A missing, unknown or malformed folder is a one-line {@linkcode SparsekdError}; nothing in the
 * run folder but the report is written.
 *
 * @example
 * ```ts
 * const path = await writeReport("runs/demo");
 * console.log(path); // runs/demo/report.html
 * ```
 */
export async function writeReport(runFolder: string, options: WriteReportOptions = {}): Promise<string> {
  const kind = await runFolderKind(runFolder);
  const html = kind === "demo"
    ? await renderDemo(runFolder)
    : kind === "save-topk"
    ? renderTopKReport(await readTopKFolder(runFolder))
    : renderTrainReport(await readTrainFolder(runFolder));
  const outPath = options.out ?? join(runFolder, REPORT_FILE);
  const tmpPath = `${outPath}.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.writeTextFile(tmpPath, html);
    await Deno.rename(tmpPath, outPath);
  } catch (err) {
    await Deno.remove(tmpPath).catch(() => {});
    const known = err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied ||
      err instanceof Deno.errors.IsADirectory;
    if (!known) throw err;
    const why = err instanceof Deno.errors.NotFound
      ? "its folder does not exist"
      : err.message.split("\n")[0];
    throw options.out === undefined
      ? new SparsekdError(`cannot write ${outPath}: ${why}`)
      : new SparsekdError(`out: cannot write ${outPath}: ${why}`, { option: "out" });
  }
  return outPath;
}
