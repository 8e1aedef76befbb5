/**
 * Gathers one run of `bench/device/run.sh`: the bench JSON files in `<jsonDir>` (the `bench/results/*.json`
 * the run wrote), `<out>/adapter.json` and `<out>/steps.tsv` (one line per step: name, status, seconds).
 * Writes `<out>/results.json` (every record, keyed by its file name: the device tool brings back at most 8
 * files, so the bench files travel as one) and `<out>/summary.md` (the steps, the adapter, then one table per
 * bench with the columns its console table has, all shapes of a bench in one table).
 * Run: `deno run -A bench/device/summarize.ts <jsonDir> <out>`.
 * @module
 */

type Obj = Record<string, unknown>;
type Cells = Record<string, string>;

const num = (v: unknown, digits = 3): string =>
  typeof v !== "number" || !Number.isFinite(v)
    ? "-"
    : Number.isInteger(v) || Math.abs(v) >= 10 ** digits
    ? String(Math.round(v))
    : v.toPrecision(digits);
const ms = (t: unknown): number | undefined => (t as { ms?: number } | null)?.ms;
const gbs = (bytes: number, m: number | undefined) => m ? num(bytes / 1e6 / m) : "-";
const yes = (v: unknown) => v === null || v === undefined ? "-" : v ? "yes" : "NO";

/** Scalar cells of one result: numbers, strings and booleans, and `x.ms` / `x.medianMs` of nested objects. */
function genericCells(r: Obj): Cells {
  const out: Cells = {};
  for (const [key, v] of Object.entries(r)) {
    if (typeof v === "number") out[key] = num(v, 4);
    else if (typeof v === "string" || typeof v === "boolean") out[key] = String(v);
    else if (v && typeof v === "object" && !Array.isArray(v)) {
      const o = v as Obj;
      if (typeof o.ms === "number") out[`${key} ms`] = `${num(o.ms, 4)}${o.method ? ` (${o.method})` : ""}`;
      if (typeof o.medianMs === "number") out[`${key} ms`] = num(o.medianMs, 4);
    }
  }
  return out;
}

/** One table row per result, by kind of bench (the file name before its time stamp). */
const ROWS: Record<string, (r: Obj) => Cells> = {
  roofline: (r) => {
    const bytes = r.bytes as number;
    return {
      "MiB": num(bytes / 2 ** 20),
      "timing": String((r.read as Obj)?.method ?? "-"),
      "read ms": num(ms(r.read)),
      "read GB/s": gbs(bytes, ms(r.read)),
      "copy ms": num(ms(r.copy)),
      "copy GB/s (r+w)": gbs(2 * bytes, ms(r.copy)),
      "sum checked (GPU = CPU)": `${num(r.gpuSum, 7)} = ${num(r.cpuSum, 7)}`,
    };
  },
  "topk-compare": (r) => {
    const bytes = (r.rows as number) * (r.vocab as number) * 4;
    const [wg, rx] = [ms(r.wg), ms(r.radix)];
    return {
      "rows x vocab x k": `${r.rows} x ${r.vocab} x ${r.k}`,
      "timing": String((r.radix as Obj)?.method ?? "-"),
      "wg ms": num(wg),
      "radix ms": num(rx),
      "wg GB/s": gbs(bytes, wg),
      "radix GB/s": gbs(bytes, rx),
      "wg / radix": wg && rx ? num(wg / rx) : "-",
      "wg 1 call ms": num(r.wgCallMs),
      "radix 1 call ms": num(r.radixCallMs),
      "agree": yes(r.agree),
    };
  },
  topk: (r) => {
    const bytes = (r.rows as number) * (r.vocab as number) * 4;
    const kernel = ms(r.kernel);
    const roof = r.roofline as [Obj, Obj] | undefined;
    const read = roof ? ms(roof[0].read) : undefined;
    const tf = ms(r.tfWebgpu);
    return {
      "rows x vocab x k": `${r.rows} x ${r.vocab} x ${r.k}`,
      "timing": String((r.kernel as Obj)?.method ?? "-"),
      "kernel ms": num(kernel),
      "kernel GB/s": gbs(bytes, kernel),
      "1 call + read-back ms": num((r.topk as Obj)?.medianMs),
      "stream ms (1x / 2nd size)": roof ? `${num(read)} / ${num(ms(roof[1].read))}` : "-",
      "stream GB/s": gbs(bytes, read),
      "% of roofline": r.rooflineValid && read && kernel ? num((100 * read) / kernel) : "n/a (roofline flat)",
      "tf-webgpu ms/call": num(tf),
      "x tf-webgpu": tf && kernel ? num(tf / kernel) : "-",
      "tf values agree": yes(r.tfWebgpuAgrees),
    };
  },
  "sparse-kd": (r) => ({
    "mode": String(r.mode),
    "rows x vocab": `${r.rows} x ${r.vocab}`,
    "timing": String((r.timing as Obj)?.method ?? "-"),
    "kernel ms": num((r.seconds as number) * 1e3),
    "reads": num(r.reads),
    "GB/s (reads + 1 write)": num(r.gbPerSecond),
    "roofline ms": num((r.rooflineSeconds as number) * 1e3),
    "read ms (1x / 2nd size)": ((r.rooflineReadMs ?? []) as number[]).map((x) => num(x)).join(" / "),
    "% of roofline": typeof r.rooflineFraction === "number"
      ? num(100 * r.rooflineFraction)
      : "n/a (roofline flat)",
    "2-read ms": typeof r.twoReadSeconds === "number" ? num(r.twoReadSeconds * 1e3) : "-",
    "bounded ms": typeof r.boundedSeconds === "number"
      ? `${num(r.boundedSeconds * 1e3)} (${r.rowsInFlight} rows)`
      : "-",
    "tfjs ms": typeof r.tfjsSeconds === "number" ? num(r.tfjsSeconds * 1e3) : "-",
    "x tfjs": num(r.speedupVsTfjs),
  }),
};

/** A markdown table of rows of cells (columns in order of first appearance). */
function table(rows: Cells[]): string[] {
  const heads = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return [
    `| ${heads.join(" | ")} |`,
    `| ${heads.map(() => "---").join(" | ")} |`,
    ...rows.map((r) => `| ${heads.map((h) => r[h] ?? "").join(" | ")} |`),
  ];
}

/**
 * The kind of a bench file: its name before the time stamp.
 *
 * @example
 * ```ts
 * kindOf("topk-compare-2026-12-02T08-08-30-165Z.json"); // "topk-compare"
 * ```
 */
export function kindOf(name: string): string {
  return name.replace(/\.json$/, "").replace(/-\d{4}-\d\d-\d\dT.*$/, "");
}

/** The adapter's lines: description, fallback flag, subgroup sizes, the limits the kernels depend on. */
function adapterLines(a: Obj): string[] {
  const info = (a.info ?? {}) as Obj, limits = (a.limits ?? {}) as Obj;
  const keys = [
    "maxBufferSize",
    "maxStorageBufferBindingSize",
    "minStorageBufferOffsetAlignment",
    "maxComputeWorkgroupsPerDimension",
    "maxComputeWorkgroupStorageSize",
    "maxComputeInvocationsPerWorkgroup",
  ];
  return [
    `- ${info.description || "?"} (vendor ${info.vendor ?? "?"}, architecture ${info.architecture || "-"}, ` +
    `fallback ${info.isFallbackAdapter ?? "?"}, subgroups ${info.subgroupMinSize ?? "?"}–${
      info.subgroupMaxSize ?? "?"
    })`,
    `- limits: ${keys.map((k) => `${k} ${limits[k] ?? "?"}`).join(", ")}`,
    `- features: ${((a.features ?? []) as string[]).join(", ") || "none"}`,
  ];
}

/**
 * The summary's markdown: the steps (name, status, seconds), the adapter, then per kind of bench one table
 * of every file's results and the bench's note once.
 *
 * @example
 * ```ts
 * const md = summaryOf({ "topk-2026-12-02T08-09-08-759Z.json": { results: [] } }, null, "tests\t0\t42\n");
 * ```
 */
export function summaryOf(records: Record<string, Obj>, adapter: Obj | null, steps: string): string {
  const lines = ["# sparsekd device run", ""];
  const stepRows = steps.split("\n").filter((l) => l.trim()).map((l) => {
    const [step, status, seconds] = l.split("\t");
    return { step, status: status === "0" ? "ok" : status, seconds: seconds ?? "" };
  });
  if (stepRows.length) lines.push("## steps", "", ...table(stepRows), "");
  if (adapter) lines.push("## adapter", "", ...adapterLines(adapter), "");
  const kinds = new Map<string, string[]>();
  for (const name of Object.keys(records).sort()) {
    const k = kindOf(name);
    kinds.set(k, [...(kinds.get(k) ?? []), name]);
  }
  const order = ["roofline", "topk-compare", "topk", "sparse-kd"];
  const sorted = [...kinds.keys()].sort((a, b) =>
    (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b)
  );
  for (const kind of sorted) {
    const names = kinds.get(kind)!;
    const first = records[names[0]];
    lines.push(`## ${kind}`, "", `files: ${names.join(", ")}`, "");
    if (typeof first.autoPicks === "string") {
      lines.push(`top-k kernel \`auto\` picks here: ${first.autoPicks}`, "");
    }
    const rows: Cells[] = [];
    for (const n of names) {
      const j = records[n];
      const list = (j.results ?? j.points ?? j.rows) as Obj[] | undefined;
      for (const r of Array.isArray(list) ? list : []) rows.push((ROWS[kind] ?? genericCells)(r));
    }
    if (rows.length) lines.push(...table(rows), "");
    else lines.push("(no results)", "");
    if (typeof first.note === "string") lines.push(`<sub>${first.note}</sub>`, "");
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const [jsonDir, out] = Deno.args;
  if (!jsonDir || !out) throw new Error("usage: summarize.ts <jsonDir> <out>");
  const read = (path: string) => {
    try {
      return Deno.readTextFileSync(path);
    } catch {
      return null;
    }
  };
  const records: Record<string, Obj> = {};
  const names = [...Deno.readDirSync(jsonDir)].map((e) => e.name).filter((n) => n.endsWith(".json")).sort();
  for (const n of names) {
    try {
      records[n] = JSON.parse(read(`${jsonDir}/${n}`) ?? "null");
    } catch (e) {
      records[n] = { unreadable: String(e) };
    }
  }
  let adapter: Obj | null = null;
  try {
    adapter = JSON.parse(read(`${out}/adapter.json`) ?? "null");
  } catch { /* no adapter: the probe failed, as the steps say */ }
  const steps = read(`${out}/steps.tsv`) ?? "";
  Deno.writeTextFileSync(`${out}/results.json`, JSON.stringify({ adapter, steps, records }, null, 1) + "\n");
  Deno.writeTextFileSync(`${out}/summary.md`, summaryOf(records, adapter, steps));
  console.log(`written: ${out}/summary.md and ${out}/results.json (${names.length} bench files)`);
}
