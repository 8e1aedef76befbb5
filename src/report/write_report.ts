/**
 * Reads `<run folder>/report_input.json`, renders the report and writes `<run folder>/report.html`.
 * @module
 */
import { join } from "node:path";
import { SparsekdError } from "../errors.ts";
import { renderReport } from "./html.ts";
import { parseReportInput } from "./validate.ts";

/** Name of the input file inside a run folder. */
export const REPORT_INPUT_FILE = "report_input.json";
/** Name of the report written into a run folder. */
export const REPORT_FILE = "report.html";

/**
 * Renders `<runFolder>/report_input.json` into `<runFolder>/report.html` and returns the report's path. The
 * page is written to a temporary file first and renamed, so a reader never sees half a report. A missing
 * folder, a missing or malformed input is a one-line {@linkcode SparsekdError}.
 *
 * @example
 * ```ts
 * const path = await writeReport("runs/demo");
 * console.log(path); // runs/demo/report.html
 * ```
 */
export async function writeReport(runFolder: string): Promise<string> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(runFolder);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new SparsekdError(`run folder not found: ${runFolder}`);
    throw err;
  }
  if (!info.isDirectory) throw new SparsekdError(`not a folder: ${runFolder}`);
  const inputPath = join(runFolder, REPORT_INPUT_FILE);
  let text: string;
  try {
    text = await Deno.readTextFile(inputPath);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new SparsekdError(`no ${REPORT_INPUT_FILE} in ${runFolder} (the demo writes it after training)`);
    }
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new SparsekdError(`${inputPath} is not valid JSON: ${msg}`);
  }
  const html = renderReport(parseReportInput(json, inputPath));
  const outPath = join(runFolder, REPORT_FILE);
  const tmpPath = `${outPath}.tmp-${crypto.randomUUID()}`;
  try {
    await Deno.writeTextFile(tmpPath, html);
    await Deno.rename(tmpPath, outPath);
  } catch (err) {
    await Deno.remove(tmpPath).catch(() => {});
    throw err;
  }
  return outPath;
}
