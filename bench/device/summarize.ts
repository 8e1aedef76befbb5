/**
 * Writes `$OUT/summary.md` from the JSON files in `$OUT` (bench results and `adapter.json`): one markdown
 * table per file, one line per result, its scalar fields and the `ms` of nested timings as columns.
 * Run: `deno run -A bench/device/summarize.ts $OUT`.
 * @module
 */

type Obj = Record<string, unknown>;

/** Scalar cells of one result: numbers, strings and booleans, and `x.ms` / `x.medianMs` of nested objects. */
function cells(r: Obj): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(r)) {
    if (typeof v === "number") out[key] = Number.isInteger(v) ? String(v) : v.toPrecision(4);
    else if (typeof v === "string" || typeof v === "boolean") out[key] = String(v);
    else if (v && typeof v === "object" && !Array.isArray(v)) {
      const o = v as Obj;
      if (typeof o.ms === "number") {
        out[`${key} ms`] = `${o.ms.toPrecision(4)}${o.method ? ` (${o.method})` : ""}`;
      }
      if (typeof o.medianMs === "number") out[`${key} ms`] = o.medianMs.toPrecision(4);
    } else if (Array.isArray(v) && v.every((x) => typeof x === "number")) {
      out[key] = v.map((x) => x.toPrecision(4)).join(" / ");
    }
  }
  return out;
}

/**
 * The markdown of one JSON record.
 *
 * @example
 * ```ts
 * markdownOf("topk.json", { results: [{ rows: 1, kernel: { ms: 2, method: "timestamps" } }] });
 * ```
 */
export function markdownOf(name: string, json: Obj): string {
  const list = (json.results ?? json.points ?? json.rows) as Obj[] | undefined;
  const lines = [`## ${name}`, ""];
  if (typeof json.adapter === "object" && json.adapter) {
    lines.push(`adapter: ${JSON.stringify(json.adapter)}`, "");
  }
  if (typeof json.note === "string") lines.push(json.note, "");
  if (Array.isArray(list) && list.length > 0) {
    const rows = list.map(cells);
    const heads = [...new Set(rows.flatMap((r) => Object.keys(r)))];
    lines.push(`| ${heads.join(" | ")} |`, `| ${heads.map(() => "---").join(" | ")} |`);
    for (const r of rows) lines.push(`| ${heads.map((h) => r[h] ?? "").join(" | ")} |`);
  } else {
    lines.push("```json", JSON.stringify(json, null, 2).slice(0, 4000), "```");
  }
  return lines.join("\n") + "\n";
}

if (import.meta.main) {
  const dir = Deno.args[0] ?? Deno.env.get("OUT");
  if (!dir) throw new Error("usage: summarize.ts <dir>");
  const parts = ["# sparsekd device run", ""];
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".json")).sort();
  for (const n of names) {
    try {
      parts.push(markdownOf(n, JSON.parse(Deno.readTextFileSync(`${dir}/${n}`))));
    } catch (e) {
      parts.push(`## ${n}\n\nunreadable: ${e}\n`);
    }
  }
  Deno.writeTextFileSync(`${dir}/summary.md`, parts.join("\n"));
  console.log(`written: ${dir}/summary.md (${names.length} files)`);
}
