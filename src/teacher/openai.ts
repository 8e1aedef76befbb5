/**
 * `openai:<base URL>` (and `sglang:<base URL>`): a teacher served by an OpenAI-compatible completions server
 * that returns the top-k log-probabilities of every prompt position — vLLM's `/v1/completions` with
 * `prompt_logprobs`, or SGLang's native `/generate` with `return_logprob`. It is a {@linkcode SparseTeacher}:
 * save-topk stores what it returns without running the top-k kernel.
 *
 * Stored values are log-probabilities `log p_v` (normalized over the full vocabulary at T = 1), and the stored
 * logsumexp at T = 1 is 0: `exp(val − lse)` is the teacher's probability, as for every teacher
 * (docs/format.md). Other temperatures cannot be recovered from log-probabilities and are refused.
 *
 * One request per sequence, at most `concurrency` in flight, results in sequence order; 408, 429, 5xx, dropped
 * connections, cut or invalid answers and timeouts are retried with exponential backoff; anything else, or a
 * request that keeps failing, is one {@linkcode SparsekdError}.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import type { Runtime } from "../gpu/runtime.ts";
import type { RemoteTeacherOptions, SparseTargets, SparseTeacher, TeacherOpenOptions } from "./teacher.ts";
import {
  AnswerProblem,
  errorMessage,
  logprobCap,
  readAnswer,
  requestBody,
  type TeacherProtocol,
} from "./openai_response.ts";

/** Default requests in flight. */
export const DEFAULT_CONCURRENCY = 4;
/** Default time limit of one request, in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 300_000;
/** Default tries of one request. */
export const DEFAULT_TRIES = 8;
/** Largest vocabulary accepted (ids are stored as u32; a bigger claim is a misconfiguration). */
const MAX_SERVED_VOCAB = 1 << 24;

/** Options of {@linkcode openaiTeacher}. */
export interface OpenAITeacherOptions extends RemoteTeacherOptions {
  /** Top-k entries per position to ask for and store. */
  k: number;
  /** Temperatures of the stored logsumexps: only `[1]` can be served (default [1]). */
  lseTemperatures?: readonly number[];
  /** `vllm` (`/v1/completions`, the default) or `sglang` (`/generate`). */
  protocol?: TeacherProtocol;
}

const bad = (option: string, what: string): never => {
  throw new SparsekdError(`${option} ${what}`, { option });
};

/**
 * Opens a served teacher: checks every setting, finds the model and the vocabulary size (flags first, else
 * `GET /v1/models`) and returns a {@linkcode SparseTeacher}. Nothing is sent when a setting is bad.
 *
 * @example
 * ```ts ignore
 * const teacher = await openaiTeacher("http://127.0.0.1:8000", { k: 20, vocabSize: 151936 });
 * const { ids, values, logsumexp } = await teacher.forwardSparse(tokens, 0, 1, tokens.length);
 * ```
 */
export async function openaiTeacher(baseUrl: string, o: OpenAITeacherOptions): Promise<SparseTeacher> {
  const protocol = o.protocol ?? "vllm";
  const prefix = protocol === "sglang" ? "sglang" : "openai";
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    return bad(
      "teacher",
      `${prefix}:${baseUrl}: expected ${prefix}:<base URL>, e.g. ${prefix}:http://127.0.0.1:8000`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    bad("teacher", `${prefix}:${baseUrl}: the base URL must be http:// or https://`);
  }
  const base = url.href.replace(/\/+$/, "").replace(/\/v1$/, "");
  const temps = o.lseTemperatures ?? [1];
  if (temps.some((t) => t !== 1)) {
    bad(
      "lseTemperatures",
      `must be 1 with a served teacher (${prefix}:): it returns log-probabilities at temperature 1, and the ` +
        `logsumexp at another temperature needs the full logits, which it does not send (got ${
          temps.join(",")
        })`,
    );
  }
  const int = (x: number | undefined, min: number) =>
    x === undefined || (Number.isSafeInteger(x) && x >= min);
  if (!int(o.k, 1)) bad("k", `must be an integer ≥ 1 (got ${o.k})`);
  if (!int(o.concurrency, 1) || (o.concurrency ?? 1) > 1024) {
    bad("teacherConcurrency", `must be an integer from 1 to 1024 (got ${o.concurrency})`);
  }
  if (!int(o.timeoutMs, 1)) bad("teacherTimeout", `must be > 0 (got ${o.timeoutMs} ms)`);
  if (!int(o.tries, 1)) bad("teacherTries", `must be an integer ≥ 1 (got ${o.tries})`);
  if (o.backoffMs !== undefined && !(Number.isFinite(o.backoffMs) && o.backoffMs >= 0)) {
    bad("teacherBackoff", `must be ≥ 0 (got ${o.backoffMs})`);
  }
  if (o.vocabSize !== undefined && (!int(o.vocabSize, 2) || o.vocabSize > MAX_SERVED_VOCAB)) {
    bad("vocabSize", `must be an integer from 2 to ${MAX_SERVED_VOCAB} (got ${o.vocabSize})`);
  }
  const keyEnv = o.apiKeyEnv ?? "OPENAI_API_KEY";
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(keyEnv)) {
    bad("teacherApiKeyEnv", `must be an environment variable name (got ${JSON.stringify(keyEnv)})`);
  }
  const key = Deno.env.get(keyEnv);
  if (o.apiKeyEnv !== undefined && !key) {
    bad("teacherApiKeyEnv", `names ${keyEnv}, which is not set (it holds the teacher server's API key)`);
  }
  const client = new Client(base, key, keyEnv, {
    timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    tries: o.tries ?? DEFAULT_TRIES,
    backoffMs: o.backoffMs ?? 500,
  });

  // SGLang's /generate takes no model name: only the vocabulary size may need the model list there.
  let model = o.model ?? (protocol === "sglang" && o.vocabSize !== undefined ? "default" : undefined);
  let vocabSize = o.vocabSize;
  if (model === undefined || vocabSize === undefined) {
    const listed = await client.models();
    if (model === undefined) {
      if (listed.length !== 1) {
        bad(
          "teacherModel",
          listed.length === 0
            ? `is needed: ${base}/v1/models lists no model`
            : `is needed: ${base} serves ${listed.length} models (${listed.map((m) => m.id).join(", ")})`,
        );
      }
      model = listed[0].id;
    }
    const entry = listed.find((m) => m.id === model);
    if (entry === undefined && listed.length > 0) {
      bad(
        "teacherModel",
        `${model} is not served by ${base} (it serves ${listed.map((m) => m.id).join(", ")})`,
      );
    }
    vocabSize ??= entry?.vocabSize;
    if (vocabSize === undefined) {
      bad(
        "vocabSize",
        `is needed: ${base} does not report its vocabulary size (give the teacher's logits width)`,
      );
    }
    if (!int(vocabSize, 2) || vocabSize! > MAX_SERVED_VOCAB) {
      throw new SparsekdError(`the teacher server ${base} reports a vocabulary size of ${vocabSize}`);
    }
  }
  if (o.k > vocabSize!) bad("k", `must be at most the teacher's vocabulary size ${vocabSize} (got ${o.k})`);
  const bytes = new TextEncoder().encode(JSON.stringify({ served: protocol, model, vocabSize }));
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return new ServedTeacher(client, protocol, model!, vocabSize!, o.k, o.concurrency ?? DEFAULT_CONCURRENCY, {
    fingerprint: Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join(""),
    description: `${prefix}:${base} (${model})`,
  });
}

/** A model `GET /v1/models` lists. */
interface ListedModel {
  id: string;
  vocabSize?: number;
}

/** Retry settings of the client. */
interface ClientSettings {
  timeoutMs: number;
  tries: number;
  backoffMs: number;
}

/** A request that may be tried again (why, for the last error line) after at least `waitMs`. */
class Retryable extends Error {
  constructor(message: string, readonly waitMs = 0) {
    super(message);
  }
}

/** The HTTP side: JSON requests with a time limit, size limits and retries. */
class Client {
  constructor(
    readonly base: string,
    readonly key: string | undefined,
    readonly keyEnv: string,
    readonly s: ClientSettings,
  ) {}

  /** `GET /v1/models`: the served models (an answer of another shape lists none). */
  async models(): Promise<ListedModel[]> {
    const body = await this.request("GET", "/v1/models", undefined, 1 << 20, "the model list", undefined);
    const data = typeof body === "object" && body !== null ? (body as { data?: unknown }).data : undefined;
    if (!Array.isArray(data)) return [];
    return data.flatMap((m) => {
      if (typeof m !== "object" || m === null || typeof m.id !== "string") return [];
      const v = m.vocab_size;
      return [{ id: m.id, vocabSize: typeof v === "number" ? v : undefined }];
    });
  }

  /**
   * One JSON request, tried up to `tries` times. `what` names it in errors ("sequence 12"). An answer longer
   * than `maxBytes` is an error; `signal` cancels it (another request of the batch failed).
   */
  async request(
    method: "GET" | "POST",
    path: string,
    body: unknown,
    maxBytes: number,
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.key) headers.authorization = `Bearer ${this.key}`;
    const text = body === undefined ? undefined : JSON.stringify(body);
    for (let attempt = 1;; attempt++) {
      let why: Retryable;
      try {
        return await this.once(method, path, headers, text, maxBytes, what, signal);
      } catch (err) {
        if (!(err instanceof Retryable)) throw err;
        why = err;
      }
      if (attempt >= this.s.tries) {
        throw new SparsekdError(
          `the teacher server ${this.base} failed ${what} ${attempt} times in a row (last: ${why.message}); ` +
            `the shards written so far are kept, and running the same command again resumes`,
        );
      }
      const backoff = Math.min(30_000, this.s.backoffMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      await sleep(Math.max(backoff, Math.min(why.waitMs, 60_000)), signal);
    }
  }

  async once(
    method: string,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
    maxBytes: number,
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    if (signal?.aborted) throw signal.reason;
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort(new Error("timeout"));
    }, this.s.timeoutMs);
    const cancel = () => ac.abort(signal!.reason);
    signal?.addEventListener("abort", cancel);
    try {
      let res: Response;
      try {
        res = await fetch(this.base + path, { method, headers, body, signal: ac.signal });
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        throw new Retryable(
          timedOut ? `no answer within ${this.s.timeoutMs} ms` : `connection failed: ${oneLine(err)}`,
        );
      }
      let text: string;
      try {
        text = await readLimited(res, res.ok ? maxBytes : 1 << 16, this.base + path);
      } catch (err) {
        if (err instanceof SparsekdError || signal?.aborted) throw signal?.aborted ? signal.reason : err;
        throw new Retryable(
          timedOut
            ? `no complete answer within ${this.s.timeoutMs} ms`
            : `the answer was cut: ${oneLine(err)}`,
        );
      }
      if (res.ok) {
        try {
          return JSON.parse(text);
        } catch {
          throw new Retryable(`an answer that is not complete JSON (${text.length} bytes)`);
        }
      }
      const status = res.status;
      if (status === 408 || status === 429 || status >= 500) {
        const after = Number(res.headers.get("retry-after"));
        throw new Retryable(`HTTP ${status}`, Number.isFinite(after) && after > 0 ? after * 1000 : 0);
      }
      throw this.refusal(status, errorMessage(text), what);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", cancel);
    }
  }

  /** The one line for an answer that trying again will not change (4xx other than 408 and 429). */
  refusal(status: number, message: string, what: string): SparsekdError {
    const cap = logprobCap(message);
    if (status === 400 && cap !== null) {
      return new SparsekdError(
        `k is more than the ${cap} log-probabilities per position that the teacher server ${this.base} allows: ` +
          `restart it with a higher limit (vLLM: --max-logprobs N with N ≥ k) or lower k (server: "${message}")`,
        { option: "k" },
      );
    }
    if (status === 401 || status === 403) {
      return new SparsekdError(
        `the teacher server ${this.base} refused ${what} (HTTP ${status}: ${message}): ` +
          (this.key ? `check the API key in ${this.keyEnv}` : `it needs an API key: set ${this.keyEnv}`),
      );
    }
    return new SparsekdError(`the teacher server ${this.base} refused ${what} (HTTP ${status}: ${message})`);
  }
}

/** A response body as text, refused past `maxBytes`. */
async function readLimited(res: Response, maxBytes: number, where: string): Promise<string> {
  if (res.body === null) return "";
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > maxBytes) {
        throw new SparsekdError(`the teacher server's answer from ${where} is longer than ${maxBytes} bytes`);
      }
      parts.push(value);
    }
  } catch (err) {
    await reader.cancel().catch(() => {});
    throw err;
  }
  const all = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return new TextDecoder().decode(all);
}

function oneLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0].slice(0, 200);
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const done = () => {
      signal?.removeEventListener("abort", stop);
      resolve();
    };
    const timer = setTimeout(done, ms);
    const stop = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", stop, { once: true });
  });
}

/** At most `n` tasks at once, started in the order asked. */
class Limiter {
  #free: number;
  #waiting: (() => void)[] = [];
  constructor(n: number) {
    this.#free = n;
  }
  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

class ServedTeacher implements SparseTeacher {
  readonly kind = "sparse" as const;
  readonly lseTemperatures: readonly number[] = [1];
  readonly fingerprint: string;
  readonly description: string;
  readonly #limiter: Limiter;

  constructor(
    readonly client: Client,
    readonly protocol: TeacherProtocol,
    readonly model: string,
    readonly vocabSize: number,
    readonly k: number,
    readonly concurrency: number,
    names: { fingerprint: string; description: string },
  ) {
    this.fingerprint = names.fingerprint;
    this.description = names.description;
    this.#limiter = new Limiter(concurrency);
  }

  async forwardSparse(
    tokens: Uint32Array,
    start: number,
    count: number,
    seqLen: number,
  ): Promise<SparseTargets> {
    const k = this.k, L = seqLen, rows = count * L;
    const out = {
      ids: new Uint32Array(rows * k),
      values: new Float32Array(rows * k),
      logsumexp: new Float32Array(rows),
    };
    const ac = new AbortController();
    const path = this.protocol === "sglang" ? "/generate" : "/v1/completions";
    // An answer lists at most k + 1 entries per position, each well under 256 bytes of JSON.
    const maxBytes = (1 << 20) + (L + 2) * (k + 2) * 256;
    const one = async (i: number) => {
      const seq = tokens.subarray(i * L, (i + 1) * L);
      const what = `sequence ${start + i}`;
      const body = await this.#limiter.run(() =>
        this.client.request(
          "POST",
          path,
          requestBody(this.protocol, this.model, seq, k),
          maxBytes,
          what,
          ac.signal,
        )
      );
      try {
        readAnswer(this.protocol, body, seq, k, this.vocabSize, {
          ids: out.ids,
          values: out.values,
          row: i * L,
        });
      } catch (err) {
        if (!(err instanceof AnswerProblem)) throw err;
        throw new SparsekdError(
          err.kind === "mismatch"
            ? `the teacher server ${this.client.base} does not see the tokens sent for ${what}: ${err.message} ` +
              `(it tokenizes differently, e.g. another tokenizer or an added BOS token)`
            : `the teacher server ${this.client.base} answered ${what} without what was asked for: ${err.message}`,
        );
      }
    };
    try {
      await Promise.all(Array.from({ length: count }, (_, i) => one(i)));
    } catch (err) {
      ac.abort(new Error("cancelled: another request of the batch failed"));
      throw err;
    }
    return out;
  }

  dispose(): void {}
}

function opener(protocol: TeacherProtocol) {
  return (arg: string, _rt: Runtime, options: TeacherOpenOptions): Promise<SparseTeacher> => {
    const prefix = protocol === "sglang" ? "sglang" : "openai";
    if (options.dense) {
      throw new SparsekdError(
        `teacher ${prefix}:${arg} returns top-k log-probabilities, not the full logits needed here (online ` +
          `distillation): save its top-k with save-topk --teacher ${prefix}:… and train on the shards`,
        { option: "teacher" },
      );
    }
    return openaiTeacher(arg, {
      ...options.remote,
      k: options.k ?? 64,
      lseTemperatures: options.lseTemperatures,
      protocol,
    });
  };
}

/**
 * The registry's opener of `openai:<base URL>` (vLLM-shaped `/v1/completions`); see {@linkcode openaiTeacher}.
 *
 * @example
 * ```ts ignore
 * const t = await teacherOpener("http://127.0.0.1:8000", rt, { k: 20, remote: { vocabSize: 32000 } });
 * ```
 */
export const teacherOpener = opener("vllm");

/**
 * The registry's opener of `sglang:<base URL>` (SGLang's native `/generate`); see {@linkcode openaiTeacher}.
 *
 * @example
 * ```ts ignore
 * const t = await sglangTeacherOpener("http://127.0.0.1:30000", rt, { k: 20, remote: { vocabSize: 32000 } });
 * ```
 */
export const sglangTeacherOpener = opener("sglang");
