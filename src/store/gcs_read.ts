/**
 * Media reads of the `gs://` store, on `fetch` with a bounded retry of our own.
 *
 * The official client's read path (`createReadStream`, `download`) cannot be used under Deno: its retry of a
 * failed download (on 429, 5xx or a dropped connection) crashes the process with `TypeError: k is not a
 * constructor` from inside `teeny-request`. Here every read is an `alt=media` GET that is retried with
 * exponential back-off on 408, 429, 5xx, network errors and timeouts (also a body that stalls); a body cut
 * short is resumed with a `Range` request at the byte reached, pinned to the generation of the first response,
 * so the bytes handed out are never repeated or skipped. A whole-object read is checked against the object's CRC32C
 * (`x-goog-hash`) and size at its end.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { Crc32c } from "../format/crc32c.ts";

/** How a media read reaches the object and how it retries. */
export interface MediaReadConfig {
  /** The object's JSON API URL without query, e.g. `http://127.0.0.1:4443/storage/v1/b/bkt/o/a%2Fb`. */
  url: string;
  /** The object as `gs://bucket/name`, for messages. */
  where: string;
  /** Headers of each request (the authorization, when there is one). */
  headers: () => Promise<HeadersInit>;
  /** Retries after consecutive failures without progress (a request that delivers bytes resets the count). */
  maxRetries: number;
  /** Longest wait between two retries, in seconds; the first wait is 1–2 s, then doubling. */
  maxRetryDelaySeconds: number;
  /** Time limit for a request to get its response headers, and for each piece of its body, in milliseconds. */
  requestTimeoutMs: number;
}

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

/** Resolved when the read is known to be empty (a range past the end). */
const EMPTY = Symbol("empty");

/** One line from an error body of the JSON API (`{"error": {"message": …}}`), or the status text. */
async function errorText(res: Response): Promise<string> {
  let text = "";
  try {
    text = await res.text();
  } catch { /* the body is lost: the status says enough */ }
  try {
    const msg = (JSON.parse(text) as { error?: { message?: unknown } })?.error?.message;
    if (typeof msg === "string" && msg !== "") text = msg;
  } catch { /* not JSON */ }
  text = text.split("\n")[0].trim();
  if (text.length > 200) text = text.slice(0, 200) + "…";
  return `HTTP ${res.status}${text ? `: ${text}` : ""}`;
}

function oneLine(err: unknown): string {
  const e = err as { message?: unknown; name?: unknown } | null;
  const msg = typeof e?.message === "string" ? e.message : String(err);
  return msg.split("\n")[0];
}

/** The CRC32C in an `x-goog-hash` header (`crc32c=…,md5=…`), or null. */
function crcOf(header: string | null): string | null {
  const m = /(?:^|,)\s*crc32c=([A-Za-z0-9+/=]+)/.exec(header ?? "");
  return m ? m[1] : null;
}

/**
 * Streams `[start, end)` of an object (to its end when `end` is undefined), retrying and resuming as the module
 * describes. A missing object is a {@linkcode SparsekdError} here, before the stream is returned; a read that
 * still fails after its retries errors the stream with one.
 *
 * @example
 * ```ts ignore
 * const stream = await readMedia({ url, where, headers: async () => ({}), maxRetries: 8,
 *   maxRetryDelaySeconds: 32, requestTimeoutMs: 300_000 }, 0, undefined);
 * ```
 */
export async function readMedia(
  cfg: MediaReadConfig,
  start: number,
  end: number | undefined,
): Promise<ReadableStream<Uint8Array>> {
  const whole = start === 0 && end === undefined;
  let reached = start; // the next byte to hand out
  let stop = end; // one past the last byte to hand out, once known
  let generation: string | null = null;
  let expectedCrc: string | null = null;
  const crc = whole ? new Crc32c() : null;
  let failures = 0;
  let controller: AbortController | null = null;
  let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  let skip = 0; // bytes of the current body before `reached` (a server that ignored the Range header)

  const backoff = async (why: string) => {
    if (failures >= cfg.maxRetries) {
      throw new SparsekdError(`cannot read ${cfg.where}: ${why} (after ${failures + 1} attempts)`);
    }
    const delay = Math.min(2 ** failures * 1000 + Math.random() * 1000, cfg.maxRetryDelaySeconds * 1000);
    failures++;
    await new Promise((resolve) => setTimeout(resolve, delay));
  };

  /** Sends one GET from `reached`; retries until it has a body to read (or knows the read is empty). */
  const open = async (): Promise<typeof EMPTY | void> => {
    for (;;) {
      const query = new URLSearchParams({ alt: "media" });
      if (generation !== null) query.set("generation", generation);
      const headers = new Headers(await cfg.headers());
      if (reached > 0 || stop !== undefined) {
        headers.set("range", `bytes=${reached}-${stop === undefined ? "" : stop - 1}`);
      }
      controller = new AbortController();
      const timer = setTimeout(() => controller?.abort(), cfg.requestTimeoutMs);
      let res: Response;
      try {
        res = await fetch(`${cfg.url}?${query}`, { headers, signal: controller.signal });
      } catch (err) {
        await backoff(controller.signal.aborted ? "no response in time" : oneLine(err));
        continue;
      } finally {
        clearTimeout(timer);
      }
      if (res.status === 404) {
        await res.body?.cancel();
        throw new SparsekdError(`${cfg.where} does not exist`);
      }
      if (res.status === 416) {
        await res.body?.cancel();
        return EMPTY;
      }
      if (res.status !== 200 && res.status !== 206) {
        const why = await errorText(res);
        if (!RETRYABLE.has(res.status)) throw new SparsekdError(`cannot read ${cfg.where}: ${why}`);
        await backoff(why);
        continue;
      }
      generation ??= res.headers.get("x-goog-generation");
      if (whole) expectedCrc ??= crcOf(res.headers.get("x-goog-hash"));
      skip = 0;
      if (res.status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get("content-range") ?? "");
        if (!m || Number(m[1]) !== reached) {
          await res.body?.cancel();
          throw new SparsekdError(`cannot read ${cfg.where}: the server answered another range than asked`);
        }
        // The server clamps a range that runs past the end; the object's size bounds it too.
        stop = Math.min(stop ?? Infinity, Number(m[2]) + 1, m[3] === "*" ? Infinity : Number(m[3]));
      } else {
        skip = reached; // a 200 is the whole object
        const length = res.headers.get("content-length");
        if (length !== null && /^\d+$/.test(length)) stop = Math.min(stop ?? Infinity, Number(length));
      }
      if (!res.body) {
        if (stop === undefined || reached >= stop) return;
        await backoff("the response has no body");
        continue;
      }
      reader = res.body.getReader();
      return;
    }
  };

  const finish = (c: ReadableStreamDefaultController<Uint8Array>) => {
    if (crc && expectedCrc !== null && crc.base64 !== expectedCrc) {
      throw new SparsekdError(
        `cannot read ${cfg.where}: CRC32C mismatch (got ${crc.base64}, the object has ${expectedCrc})`,
      );
    }
    c.close();
  };

  try {
    if ((await open()) === EMPTY) return new ReadableStream<Uint8Array>({ start: (c) => c.close() });
  } catch (err) {
    throw err instanceof SparsekdError ? err : new SparsekdError(`cannot read ${cfg.where}: ${oneLine(err)}`);
  }

  return new ReadableStream<Uint8Array>({
    async pull(c) {
      try {
        for (;;) {
          if (stop !== undefined && reached >= stop) {
            await reader?.cancel().catch(() => {});
            reader = null;
            return finish(c);
          }
          if (reader === null) {
            if ((await open()) === EMPTY) return finish(c);
            continue;
          }
          let r: ReadableStreamReadResult<Uint8Array>;
          // A body that stalls is given up after the request timeout without data, and resumed. The read is
          // raced against the timer: aborting the request does not always settle a read already waiting
          // (seen once in about 30 runs of the stall test, under load: the read never returned).
          const request = controller;
          let idle: ReturnType<typeof setTimeout> | undefined;
          const stalled = new Promise<never>((_, reject) => {
            idle = setTimeout(() => {
              request?.abort();
              reject(new Error(`no data for ${cfg.requestTimeoutMs} ms`));
            }, cfg.requestTimeoutMs);
          });
          try {
            r = await Promise.race([reader.read(), stalled]);
          } catch (err) {
            const given = reader;
            reader = null;
            given.cancel().catch(() => {});
            await backoff(request?.signal.aborted ? `no data for ${cfg.requestTimeoutMs} ms` : oneLine(err));
            continue;
          } finally {
            clearTimeout(idle);
          }
          if (r.done) {
            reader = null;
            if (stop === undefined) return finish(c); // no length known: the end of the body is the end
            await backoff(`the response ended at byte ${reached} of ${stop}`);
            continue;
          }
          let chunk = r.value;
          if (skip > 0) {
            const drop = Math.min(skip, chunk.length);
            skip -= drop;
            chunk = chunk.subarray(drop);
          }
          if (stop !== undefined && reached + chunk.length > stop) chunk = chunk.subarray(0, stop - reached);
          if (chunk.length === 0) continue;
          reached += chunk.length;
          failures = 0;
          crc?.update(chunk);
          c.enqueue(chunk);
          return;
        }
      } catch (err) {
        await reader?.cancel().catch(() => {});
        throw err instanceof SparsekdError
          ? err
          : new SparsekdError(`cannot read ${cfg.where}: ${oneLine(err)}`, { cause: err });
      }
    },
    async cancel() {
      controller?.abort();
      await reader?.cancel().catch(() => {});
    },
  }, { highWaterMark: 0 });
}

/**
 * Reads a whole object into memory through {@linkcode readMedia} (for small objects: run.json, manifests).
 *
 * @example
 * ```ts ignore
 * const bytes = await readMediaBytes(cfg);
 * ```
 */
export async function readMediaBytes(cfg: MediaReadConfig): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const part of await readMedia(cfg, 0, undefined)) {
    parts.push(part);
    total += part.length;
  }
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
