/**
 * Escaping of text for HTML and SVG: everything the report prints from its input goes through here.
 * @module
 */

const ENTITIES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/**
 * Escapes `&`, `<`, `>`, `"` and `'` so that `text` is safe both as element content and inside a quoted
 * attribute value, in HTML and in inline SVG.
 *
 * @example
 * ```ts
 * escapeHtml(`<b class="x">Tom & Jerry</b>`); // "&lt;b class=&quot;x&quot;&gt;Tom &amp; Jerry&lt;/b&gt;"
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]);
}
