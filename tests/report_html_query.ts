/**
 * Just enough HTML querying for the report tests: elements by id or tag, their attributes and text. It reads
 * both the report as written and Chromium's `--dump-dom` serialization of it.
 * @module
 */

/** One element found in an HTML string. */
export interface Found {
  /** Lower-case tag name. */
  tag: string;
  /** Attributes, entity-decoded. */
  attrs: Record<string, string>;
  /** The markup between the opening and closing tags. */
  inner: string;
}

const VOID = new Set(["meta", "link", "br", "img", "input", "hr", "col", "area", "base", "source", "wbr"]);

/**
 * Decodes the entities the report and Chromium's serializer produce.
 *
 * @example
 * ```ts
 * decodeEntities("a &lt;b&gt; &amp; c"); // "a <b> & c"
 * ```
 */
export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos|nbsp);/gi, (_, e: string) => {
    const l = e.toLowerCase();
    if (l === "amp") return "&";
    if (l === "lt") return "<";
    if (l === "gt") return ">";
    if (l === "quot") return '"';
    if (l === "apos") return "'";
    if (l === "nbsp") return "\u00a0";
    return String.fromCodePoint(l.startsWith("#x") ? parseInt(l.slice(2), 16) : parseInt(l.slice(1), 10));
  });
}

function parseAttrs(open: string): Record<string, string> {
  const attrs: Record<string, string> = {};
  const body = open.replace(/^<[^\s>/]+/, "");
  for (const m of body.matchAll(/([^\s=/>]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    attrs[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? "");
  }
  return attrs;
}

/** Parses the element whose opening tag starts at `start`. */
function elementAt(html: string, start: number): Found & { end: number } {
  const openEnd = html.indexOf(">", start);
  const open = html.slice(start, openEnd + 1);
  const tag = /^<([^\s>/]+)/.exec(open)![1].toLowerCase();
  const attrs = parseAttrs(open);
  if (VOID.has(tag) || open.endsWith("/>")) return { tag, attrs, inner: "", end: openEnd + 1 };
  const re = new RegExp(`<(/?)${tag}(?=[\\s>/])[^>]*?(/?)>`, "gi");
  re.lastIndex = openEnd + 1;
  let depth = 1;
  for (let m = re.exec(html); m; m = re.exec(html)) {
    if (m[1]) depth--;
    else if (!m[2]) depth++;
    if (depth === 0) {
      return { tag, attrs, inner: html.slice(openEnd + 1, m.index), end: m.index + m[0].length };
    }
  }
  throw new Error(`no closing tag for <${tag}> at ${start}`);
}

/**
 * The element with `id`, or undefined.
 *
 * @example
 * ```ts
 * byId(`<svg id="c"><g></g></svg>`, "c")?.tag; // "svg"
 * ```
 */
export function byId(html: string, id: string): Found | undefined {
  const re = /<[a-zA-Z][^>]*?\sid\s*=\s*"([^"]*)"[^>]*>/g;
  for (const m of html.matchAll(re)) {
    if (decodeEntities(m[1]) === id) return elementAt(html, m.index!);
  }
  return undefined;
}

/**
 * All elements with tag `tag` inside `html`, in document order (nested ones included).
 *
 * @example
 * ```ts
 * byTag(`<td data-metric="ppl">3</td>`, "td")[0].attrs["data-metric"]; // "ppl"
 * ```
 */
export function byTag(html: string, tag: string): Found[] {
  const out: Found[] = [];
  const re = new RegExp(`<${tag}(?=[\\s>/])`, "gi");
  for (const m of html.matchAll(re)) out.push(elementAt(html, m.index!));
  return out;
}

/**
 * The text of a fragment: tags removed, entities decoded, whitespace collapsed.
 *
 * @example
 * ```ts
 * textOf("<b>4.2</b> &amp; more"); // "4.2 & more"
 * ```
 */
export function textOf(fragment: string): string {
  return decodeEntities(fragment.replace(/<title>[\s\S]*?<\/title>/g, "").replace(/<[^>]*>/g, ""))
    .replace(/\s+/g, " ").trim();
}

/**
 * The number of `x,y` pairs in an SVG `points` attribute.
 *
 * @example
 * ```ts
 * pointCount("1,2 3,4"); // 2
 * ```
 */
export function pointCount(points: string): number {
  const nums = points.trim().split(/[\s,]+/).filter((s) => s !== "");
  if (nums.length % 2 !== 0) throw new Error(`odd number of coordinates in points="${points.slice(0, 60)}…"`);
  return nums.length / 2;
}

/**
 * The `[x, y]` pairs of an SVG `points` attribute.
 *
 * @example
 * ```ts
 * pointsOf("1,2 3,4"); // [[1, 2], [3, 4]]
 * ```
 */
export function pointsOf(points: string): Array<[number, number]> {
  const nums = points.trim().split(/[\s,]+/).filter((s) => s !== "").map(Number);
  const out: Array<[number, number]> = [];
  for (let i = 0; i + 1 < nums.length; i += 2) out.push([nums[i], nums[i + 1]]);
  return out;
}
