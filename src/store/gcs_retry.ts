/**
 * Retry rules and error descriptions for the `gs://` store: which client errors are worth retrying, the fix
 * for the client's resumable-upload status query, the HTTP status an error carries and its one-line summary.
 * @module
 */
import type { File } from "../deps/gcs.ts";

/** The client module's type (loaded on demand by `gcs.ts`). */
export type GcsModule = typeof import("../deps/gcs.ts");

/** The client's retry rule, plus dropped connections and timeouts as Deno reports them. */
export const retryRule = (gcs: GcsModule) => (err: unknown): boolean => {
  if (gcs.RETRYABLE_ERR_FN_DEFAULT(err as Parameters<GcsModule["RETRYABLE_ERR_FN_DEFAULT"]>[0])) return true;
  // Errors from gaxios (the upload path) carry the HTTP status in `status`, not in `code`.
  const status = statusOf(err);
  if (status !== undefined && [408, 429, 500, 502, 503, 504].includes(status)) return true;
  const e = err as { code?: unknown; type?: unknown; message?: unknown; cause?: { code?: unknown } } | null;
  if (!e) return false;
  const codes = [e.code, e.cause?.code].filter((c): c is string => typeof c === "string").map((c) =>
    c.toUpperCase()
  );
  if (
    codes.some((c) =>
      ["ECONNRESET", "EPIPE", "ECONNABORTED", "ETIMEDOUT", "EAI_AGAIN", "UND_ERR_SOCKET"].includes(c)
    )
  ) {
    return true;
  }
  if (e.type === "request-timeout") return true;
  const msg = typeof e.message === "string" ? e.message.toLowerCase() : "";
  return msg.includes("socket hang up") || msg.includes("network timeout") ||
    msg.includes("connection reset");
};

/** How the status query of a resumed upload (and a read) is retried. */
export interface StatusQueryRetry {
  maxRetries: number;
  maxRetryDelay: number;
  isRetryable: (err: unknown) => boolean;
}

/** The parts of the client's (internal) resumable `Upload` that {@linkcode steadyStatusQueries} replaces. */
interface UploadInternals {
  offset?: number;
  destroyed: boolean;
  checkUploadStatus(
    config: { retry?: boolean },
  ): Promise<{ status: number; headers: Record<string, unknown> }>;
  getAndSetOffset(): Promise<void>;
  continueUploading(): Promise<void>;
  startUploading(): Promise<void>;
  destroy(err?: unknown): void;
}

/**
 * Makes a failing status query part of the retries. After a failed chunk, the client asks the server how many
 * bytes it holds; in @google-cloud/storage 7.19 a retryable failure of that query (another 503, a reset)
 * schedules a retry but also carries on at once from offset 0, which ends the upload with "The offset is lower
 * than the number of bytes written". Here the query itself is retried with the same back-off and limit, and a
 * destroyed upload does not carry on. Applied per file, to the upload its write stream creates; when the client's
 * internals are not as expected nothing is changed.
 */
export function steadyStatusQueries(file: File, retry: StatusQueryRetry): void {
  const f = file as unknown as {
    startResumableUpload_: (dup: { _writable?: unknown }, options?: unknown) => void;
  };
  const original = f.startResumableUpload_;
  if (typeof original !== "function") return;
  f.startResumableUpload_ = function (this: unknown, dup, options) {
    original.call(this, dup, options);
    const upload = dup?._writable as UploadInternals | undefined;
    if (
      !upload || typeof upload.checkUploadStatus !== "function" ||
      typeof upload.getAndSetOffset !== "function" ||
      typeof upload.continueUploading !== "function" || typeof upload.startUploading !== "function"
    ) return;
    upload.getAndSetOffset = async function (this: UploadInternals) {
      for (let attempt = 0;; attempt++) {
        try {
          const resp = await this.checkUploadStatus({ retry: false });
          const range = resp.headers.range;
          this.offset = resp.status === 308 && typeof range === "string"
            ? Number(range.split("-")[1]) + 1
            : 0;
          return;
        } catch (err) {
          if (this.destroyed) return;
          if (attempt >= retry.maxRetries || !retry.isRetryable(err)) {
            this.destroy(err);
            return;
          }
          const delay = Math.min(2 ** attempt * 1000 + Math.random() * 1000, retry.maxRetryDelay * 1000);
          await new Promise((resolve) => setTimeout(resolve, delay));
          if (this.destroyed) return;
        }
      }
    };
    upload.continueUploading = async function (this: UploadInternals) {
      if (this.offset === undefined || this.offset === null) await this.getAndSetOffset();
      if (this.destroyed) return;
      return await this.startUploading();
    };
  };
}

/** The HTTP status an error from the client carries, if any. */
export function statusOf(err: unknown): number | undefined {
  const e = err as {
    code?: unknown;
    status?: unknown;
    response?: { status?: unknown };
    errors?: Array<{ code?: unknown }>;
  } | null;
  for (const v of [e?.code, e?.status, e?.response?.status, e?.errors?.[0]?.code]) {
    const n = typeof v === "number" ? v : typeof v === "string" && /^\d{3}$/.test(v) ? Number(v) : NaN;
    if (n >= 100 && n < 600) return n;
  }
  return undefined;
}

/** One line about an error from the client. */
export function describe(err: unknown): string {
  const status = statusOf(err);
  const e = err as { message?: unknown; code?: unknown } | null;
  let msg = typeof e?.message === "string" ? e.message : String(err);
  const json = /"message"\s*:\s*"([^"]*)"/.exec(msg);
  if (json) msg = json[1];
  msg = msg.split("\n")[0].trim();
  if (msg.length > 300) msg = msg.slice(0, 300) + "…";
  const code = typeof e?.code === "string" && !/^\d+$/.test(e.code) && !msg.includes(e.code)
    ? ` (${e.code})`
    : "";
  return `${status !== undefined && !msg.startsWith(String(status)) ? `HTTP ${status}: ` : ""}${msg}${code}`;
}
