/**
 * A parser for the `multipart/related` bodies of the JSON API's multipart uploads (metadata part, media part).
 * @module
 */

/** One part of a multipart body. */
export interface BodyPart {
  /** Part headers, lower-cased names. */
  headers: Record<string, string>;
  /** Part bytes. */
  body: Uint8Array;
}

/**
 * Splits a `multipart/related` body into its parts; returns null when the body or the boundary is malformed.
 *
 * @example
 * ```ts
 * const body = new TextEncoder().encode('--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b--');
 * const parts = parseMultipartRelated('multipart/related; boundary=b', body);
 * // parts![0].headers["content-type"] === "application/json"
 * ```
 */
export function parseMultipartRelated(contentType: string, body: Uint8Array): BodyPart[] | null {
  const m = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!m) return null;
  const boundary = new TextEncoder().encode(`--${m[1] ?? m[2]}`);
  const parts: BodyPart[] = [];
  let at = indexOf(body, boundary, 0);
  if (at < 0) return null;
  while (true) {
    let start = at + boundary.length;
    if (body[start] === 0x2d && body[start + 1] === 0x2d) return parts; // closing "--boundary--"
    if (body[start] === 0x0d && body[start + 1] === 0x0a) start += 2;
    const next = indexOf(body, boundary, start);
    if (next < 0) return null;
    let end = next;
    if (body[end - 2] === 0x0d && body[end - 1] === 0x0a) end -= 2;
    const part = body.subarray(start, end);
    const sep = indexOf(part, new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a]), 0);
    const headerText = new TextDecoder().decode(sep < 0 ? part : part.subarray(0, sep));
    const headers: Record<string, string> = {};
    for (const line of headerText.split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    parts.push({ headers, body: sep < 0 ? new Uint8Array(0) : part.subarray(sep + 4) });
    at = next;
  }
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  const last = hay.length - needle.length;
  outer: for (let i = hay.indexOf(first, from); i !== -1 && i <= last; i = hay.indexOf(first, i + 1)) {
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
