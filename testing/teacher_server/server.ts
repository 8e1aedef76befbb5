/**
 * The teacher server: any dense sparsekd teacher (`builtin:demo`, `tfjs:<model.json>`, `npy:`) behind the part of
 * the OpenAI-compatible API that `save-topk --teacher openai:` and `sglang:` use, answered as vLLM and SGLang
 * answer it:
 *
 * - `GET /v1/models`: the one model, with its `vocab_size` (which vLLM does not report);
 * - `POST /v1/completions` with `prompt` a list of token ids, `echo`, `prompt_logprobs`, `logprobs`,
 *   `max_tokens` ≤ 1, `return_tokens_as_token_ids` (vLLM's shape: `choices[0].prompt_logprobs` and
 *   `choices[0].logprobs`); more log-probabilities than `maxLogprobs` is vLLM's 400 error;
 * - `POST /generate` with `input_ids`, `return_logprob`, `logprob_start_len`, `top_logprobs_num` (SGLang's
 *   native shape, `meta_info.input_top_logprobs` …);
 * - `/_teacher_server/faults`: `POST` a rule or a list of rules (the GCS emulator's vocabulary: `status`,
 *   `reset`, `stall`, plus `{ kind: "slow", delayMs }`), `GET` the pending rules and the faults that happened,
 *   `DELETE` the pending rules.
 *
 * The generated token is the most likely one (the sampling settings are accepted and ignored). It listens on
 * 127.0.0.1 only unless told otherwise.
 * @module
 */
import { SparsekdError } from "../../src/errors.ts";
import type { Teacher } from "../../src/teacher/teacher.ts";
import { topKReference } from "../../src/kernels/topk_reference.ts";
import { FaultInjector, type FaultRule } from "../gcs_emulator/faults.ts";

/** A fault rule of the teacher server: the GCS emulator's ({@linkcode FaultRule}) or a slow answer. */
export type TeacherFaultRule = FaultRule | SlowRule;

/** Delays matching answers by `delayMs` (the first `skip` pass, the next `count`, default 1, are slow). */
export interface SlowRule {
  /** `slow`. */
  kind: "slow";
  /** The delay, in milliseconds. */
  delayMs: number;
  /** HTTP method to match (any when absent). */
  method?: string;
  /** Substring of the path and query to match (any when absent). */
  path?: string;
  /** Matching requests to let through first (default 0). */
  skip?: number;
  /** Requests to delay (default 1). */
  count?: number;
}

/** An answer that a `slow` rule delayed. */
export interface SlowHit {
  /** Request method. */
  method: string;
  /** Request path and query. */
  path: string;
  /** The delay, in milliseconds. */
  delayMs: number;
}

/** Options of {@linkcode startTeacherServer}. */
export interface TeacherServerOptions {
  /** The teacher it serves (dense: it needs full logits). The server does not dispose it. */
  teacher: Teacher;
  /** TCP port (0, the default: any free port). */
  port?: number;
  /** Address to listen on (default 127.0.0.1). */
  hostname?: string;
  /** The model name it serves (default: the teacher's description). */
  model?: string;
  /** Most log-probabilities per position a request may ask for, as vLLM's `--max-logprobs` (default 20). */
  maxLogprobs?: number;
  /** Prepend this token id to every prompt, as a server that tokenizes differently would (for tests). */
  addBos?: number;
  /** Require `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Called with one line per request (method, path, status). */
  log?: (line: string) => void;
}

/** A running teacher server. */
export interface RunningTeacherServer {
  /** Base URL, e.g. `http://127.0.0.1:8000`: use `--teacher openai:<url>`. */
  readonly url: string;
  /** The port it listens on. */
  readonly port: number;
  /** The model name it serves. */
  readonly model: string;
  /** Fault rules (status, reset, stall) and the log of the faults that happened. */
  readonly faults: FaultInjector;
  /** The answers a `slow` rule delayed, in order. */
  readonly slowHits: readonly SlowHit[];
  /** Adds fault rules, including `slow` ones; a malformed rule is a {@linkcode SparsekdError}. */
  addFaults(rules: TeacherFaultRule | TeacherFaultRule[]): void;
  /** Completion and generate requests answered (any status), faults included. */
  readonly requests: number;
  /** Stops the server, ending stalled answers. */
  close(): Promise<void>;
}

interface LiveSlow {
  delayMs: number;
  method?: string;
  path?: string;
  skip: number;
  count: number;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly param?: string) {
    super(message);
  }
}

/**
 * Starts the teacher server.
 *
 * @example
 * ```ts ignore
 * const rt = await createRuntime({ cpu: true });
 * const server = await startTeacherServer({ teacher: await openTeacher("builtin:demo", rt), maxLogprobs: 64 });
 * server.addFaults({ method: "POST", path: "/v1/completions", status: 503, count: 2 });
 * // save-topk --teacher openai:${server.url} …
 * await server.close();
 * ```
 */
export async function startTeacherServer(o: TeacherServerOptions): Promise<RunningTeacherServer> {
  const teacher = o.teacher;
  const model = o.model ?? teacher.description;
  const maxLogprobs = o.maxLogprobs ?? 20;
  if (!Number.isSafeInteger(maxLogprobs) || maxLogprobs < 0) {
    throw new SparsekdError(`maxLogprobs must be an integer ≥ 0 (got ${maxLogprobs})`, {
      option: "maxLogprobs",
    });
  }
  if (
    o.addBos !== undefined &&
    !(Number.isSafeInteger(o.addBos) && o.addBos >= 0 && o.addBos < teacher.vocabSize)
  ) {
    throw new SparsekdError(`addBos must be a token id below ${teacher.vocabSize} (got ${o.addBos})`, {
      option: "addBos",
    });
  }
  const faults = new FaultInjector();
  let slow: LiveSlow[] = [];
  const stalled = new Set<ReadableStreamDefaultController<Uint8Array>>();
  let requests = 0;
  const slowHits: SlowHit[] = [];

  const addFaults = (rules: TeacherFaultRule | TeacherFaultRule[]) => {
    for (const rule of Array.isArray(rules) ? rules : [rules]) {
      if (typeof rule === "object" && rule !== null && rule.kind === "slow") {
        const int = (name: string, v: unknown, fallback: number, min: number) => {
          if (v === undefined) return fallback;
          if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
            throw new SparsekdError(
              `fault rule "${name}" must be an integer ≥ ${min} (got ${JSON.stringify(v)})`,
            );
          }
          return v;
        };
        slow.push({
          delayMs: int("delayMs", rule.delayMs ?? -1, 0, 0),
          method: rule.method,
          path: rule.path,
          skip: int("skip", rule.skip, 0, 0),
          count: int("count", rule.count, 1, 1),
        });
      } else if (typeof rule === "object" && rule !== null && rule.kind === "corrupt") {
        throw new SparsekdError(
          `the teacher server has no "corrupt" faults (a flipped digit cannot be detected)`,
        );
      } else if (typeof rule === "object" && rule !== null && (rule as FaultRule).afterBytes !== undefined) {
        throw new SparsekdError(`the teacher server cuts answers, not requests: use "afterResponseBytes"`);
      } else {
        faults.add(rule as FaultRule);
      }
    }
  };

  const slowFor = (method: string, path: string): number => {
    let chosen: LiveSlow | null = null;
    for (const r of slow) {
      if (r.count <= 0) continue;
      if (r.method && r.method.toUpperCase() !== method) continue;
      if (r.path && !path.includes(r.path)) continue;
      if (r.skip > 0) r.skip--;
      else chosen ??= r;
    }
    if (!chosen) return 0;
    chosen.count--;
    slowHits.push({ method, path, delayMs: chosen.delayMs });
    return chosen.delayMs;
  };

  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });

  /** An answer whose connection is cut after `bytes` (reset) or that stops there (stall). */
  const cut = (bytes: Uint8Array<ArrayBuffer>, kind: "reset" | "stall") =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          if (bytes.length > 0) c.enqueue(bytes);
          if (kind === "reset") c.error(new Error("connection reset (injected)"));
          else stalled.add(c);
        },
      }),
      { status: 200, headers: { "content-type": "application/json" } },
    );

  const handler = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const method = req.method.toUpperCase(), path = url.pathname + url.search;
    if (url.pathname === "/_teacher_server/faults") {
      if (method === "GET") {
        return json(200, { pending: faults.pending(), slow, hits: faults.hits, slowHits });
      }
      if (method === "DELETE") {
        faults.clear();
        slow = [];
        return json(200, {});
      }
      if (method === "POST") {
        try {
          addFaults(await req.json());
        } catch (err) {
          return json(400, { message: (err as Error).message });
        }
        return json(200, { pending: faults.pending() });
      }
      return json(405, { message: "GET, POST or DELETE" });
    }
    if (o.apiKey !== undefined && req.headers.get("authorization") !== `Bearer ${o.apiKey}`) {
      await req.body?.cancel();
      return json(401, { error: { message: "Unauthorized", type: "invalid_request_error", code: 401 } });
    }
    if (method === "GET" && url.pathname === "/v1/models") {
      return json(200, {
        object: "list",
        data: [{
          id: model,
          object: "model",
          created: 0,
          owned_by: "sparsekd",
          root: model,
          max_model_len: teacher.seqLen ?? null,
          vocab_size: teacher.vocabSize,
        }],
      });
    }
    const route = method === "POST" && url.pathname === "/v1/completions"
      ? completions
      : method === "POST" && url.pathname === "/generate"
      ? generate
      : null;
    if (route === null) {
      await req.body?.cancel();
      return json(404, { object: "error", message: `no route ${method} ${url.pathname}`, code: 404 });
    }
    requests++;
    const decision = faults.atStart(method, path);
    if (decision?.kind === "status") {
      await req.body?.cancel();
      return json(decision.status, { object: "error", message: "injected fault", code: decision.status });
    }
    if (decision?.kind === "reset") {
      await req.body?.cancel();
      return cut(new Uint8Array(0), "reset");
    }
    const delay = slowFor(method, path);
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      const body = await req.json().catch(() => {
        throw new HttpError(400, "the request body is not JSON");
      });
      bytes = new TextEncoder().encode(JSON.stringify(await route(body)));
    } catch (err) {
      if (err instanceof HttpError) {
        return json(err.status, {
          object: "error",
          message: err.message,
          type: "BadRequestError",
          param: err.param ?? null,
          code: err.status,
        });
      }
      if (err instanceof SparsekdError) {
        return json(400, {
          object: "error",
          message: err.message,
          type: "BadRequestError",
          param: null,
          code: 400,
        });
      }
      throw err;
    }
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const cutAt = faults.responseResetOffset(method, path);
    if (cutAt !== null && bytes.length > cutAt) {
      const kind = faults.cutResponse(method, path, cutAt);
      if (kind !== null) return cut(bytes.subarray(0, cutAt), kind);
    }
    return new Response(bytes, { status: 200, headers: { "content-type": "application/json" } });
  };

  /** The prompt as the teacher reads it (with the BOS token when asked), checked. */
  const promptOf = (ids: unknown, param: string): Uint32Array => {
    const flat = Array.isArray(ids) && ids.length === 1 && Array.isArray(ids[0]) ? ids[0] : ids;
    if (!Array.isArray(flat) || flat.length === 0) {
      throw new HttpError(
        400,
        `${param} must be a non-empty list of token ids (this server takes no text)`,
        param,
      );
    }
    const out = new Uint32Array(flat.length + (o.addBos === undefined ? 0 : 1));
    if (o.addBos !== undefined) out[0] = o.addBos;
    flat.forEach((x, i) => {
      if (!Number.isInteger(x) || x < 0 || x >= teacher.vocabSize) {
        throw new HttpError(
          400,
          `${param}[${i}] = ${JSON.stringify(x)} is not a token id below ${teacher.vocabSize}`,
          param,
        );
      }
      out[out.length - flat.length + i] = x;
    });
    return out;
  };

  /** The teacher's logits of one prompt, `[L, V]`. */
  const logitsOf = async (tokens: Uint32Array): Promise<Float32Array> => {
    const L = tokens.length;
    if (teacher.forwardTensor) {
      const t = await teacher.forwardTensor(tokens, 0, 1, L);
      try {
        return new Float32Array(await t.data());
      } finally {
        t.dispose();
      }
    }
    const y = await teacher.forward(tokens, 0, 1, L);
    if (y.kind !== "cpu") {
      y.release();
      throw new HttpError(500, "this teacher returns its logits on the GPU, which the server cannot read");
    }
    return y.array;
  };

  /** Count of log-probabilities asked for, checked against the cap as vLLM does. */
  const count = (x: unknown, param: string, what: string): number | null => {
    if (x === undefined || x === null || x === false) return null;
    if (x === true) return 0;
    if (!Number.isInteger(x) || (x as number) < 0) {
      throw new HttpError(400, `${param} must be an integer ≥ 0`, param);
    }
    if ((x as number) > maxLogprobs) {
      throw new HttpError(
        400,
        `Requested ${what} logprobs of ${x}, which is greater than max allowed: ${maxLogprobs}`,
        param,
      );
    }
    return x as number;
  };

  /** Per row of the prompt's logits: top-n (ids, log-probabilities) and the log-probability of any id. */
  const analyse = (logits: Float32Array, L: number, n: number) => {
    const V = teacher.vocabSize;
    const top = topKReference(logits, L, V, Math.max(1, Math.min(n, V)), { temperatures: [1] });
    const kk = Math.max(1, Math.min(n, V));
    return {
      top: (r: number) =>
        Array.from({ length: Math.min(n, V) }, (_, i) => ({
          id: top.indices[r * kk + i],
          logprob: top.values[r * kk + i] - top.logsumexp[r],
          rank: i + 1,
        })),
      logprob: (r: number, id: number) => logits[r * V + id] - top.logsumexp[r],
      rank: (r: number, id: number) => {
        let above = 0;
        const z = logits[r * V + id];
        for (let v = 0; v < V; v++) if (logits[r * V + v] > z || (logits[r * V + v] === z && v < id)) above++;
        return above + 1;
      },
      argmax: (r: number) => top.indices[r * kk],
    };
  };

  const completions = async (b: Record<string, unknown>) => {
    if (b.model !== undefined && b.model !== model) {
      throw new HttpError(404, `The model \`${b.model}\` does not exist.`, "model");
    }
    if (b.stream) throw new HttpError(400, "this server does not stream", "stream");
    const maxTokens = b.max_tokens ?? 16;
    if (maxTokens !== 0 && maxTokens !== 1) {
      throw new HttpError(400, "this server generates at most one token (max_tokens 0 or 1)", "max_tokens");
    }
    const nSample = count(b.logprobs, "logprobs", "sample");
    const nPrompt = count(b.prompt_logprobs, "prompt_logprobs", "prompt");
    const tokens = promptOf(b.prompt, "prompt");
    const L = tokens.length, echo = b.echo === true;
    const a = analyse(await logitsOf(tokens), L, Math.max(nSample ?? 0, nPrompt ?? 0));
    const name = (id: number) => b.return_tokens_as_token_ids === true ? `token_id:${id}` : `<${id}>`;
    const gen = a.argmax(L - 1);
    // The map of position r (the distribution after tokens[..r]), with the actual token `id` added.
    const promptMap = (r: number, id: number, n: number) => {
      const m: Record<string, { logprob: number; rank: number; decoded_token: string }> = {};
      const add = (tid: number, logprob: number, rank: number) =>
        m[String(tid)] = { logprob, rank, decoded_token: name(tid) };
      add(id, a.logprob(r, id), a.rank(r, id));
      for (const c of a.top(r).slice(0, n)) add(c.id, c.logprob, c.rank);
      return m;
    };
    const textMap = (r: number, id: number, n: number) => {
      const m: Record<string, number> = { [name(id)]: a.logprob(r, id) };
      for (const c of a.top(r).slice(0, n)) m[name(c.id)] = c.logprob;
      return m;
    };
    const positions = maxTokens === 1 ? [...tokens, gen] : [...tokens];
    let logprobs = null;
    if (nSample !== null) {
      const from = echo ? 0 : L;
      const ids = positions.slice(from);
      logprobs = {
        text_offset: ids.map((_, i) => i),
        token_logprobs: ids.map((id, i) => (from + i === 0 ? null : a.logprob(from + i - 1, id))),
        tokens: ids.map(name),
        top_logprobs: ids.map((id, i) => (from + i === 0 ? null : textMap(from + i - 1, id, nSample))),
      };
    }
    return {
      id: `cmpl-${crypto.randomUUID()}`,
      object: "text_completion",
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{
        index: 0,
        text: maxTokens === 1 ? name(gen) : "",
        logprobs,
        finish_reason: "length",
        stop_reason: null,
        prompt_logprobs: nPrompt === null
          ? null
          : Array.from(tokens, (id, t) => (t === 0 ? null : promptMap(t - 1, id, nPrompt))),
      }],
      usage: { prompt_tokens: L, total_tokens: L + (maxTokens as number), completion_tokens: maxTokens },
    };
  };

  const generate = async (b: Record<string, unknown>) => {
    const sp =
      (typeof b.sampling_params === "object" && b.sampling_params !== null
        ? b.sampling_params
        : {}) as Record<
          string,
          unknown
        >;
    const maxNew = sp.max_new_tokens ?? 128;
    if (maxNew !== 0 && maxNew !== 1) {
      throw new HttpError(400, "this server generates at most one token (max_new_tokens 0 or 1)");
    }
    const tokens = promptOf(b.input_ids, "input_ids");
    const L = tokens.length;
    const n = b.return_logprob === true
      ? count(b.top_logprobs_num ?? 0, "top_logprobs_num", "prompt") ?? 0
      : 0;
    const start = Number.isInteger(b.logprob_start_len) ? Math.max(0, b.logprob_start_len as number) : L - 1;
    const a = analyse(await logitsOf(tokens), L, n);
    const gen = a.argmax(L - 1);
    const entry = (r: number, id: number) => [r < 0 ? null : a.logprob(r, id), id, null];
    const tops = (r: number) => (r < 0 ? null : a.top(r).slice(0, n).map((c) => [c.logprob, c.id, null]));
    const meta: Record<string, unknown> = {
      id: crypto.randomUUID(),
      prompt_tokens: L,
      completion_tokens: maxNew,
      finish_reason: { type: "length", length: maxNew },
    };
    if (b.return_logprob === true) {
      meta.input_token_logprobs = Array.from(tokens).slice(start).map((id, i) => entry(start + i - 1, id));
      meta.input_top_logprobs = Array.from(tokens).slice(start).map((_, i) => tops(start + i - 1));
      meta.output_token_logprobs = maxNew === 1 ? [entry(L - 1, gen)] : [];
      meta.output_top_logprobs = maxNew === 1 ? [tops(L - 1)] : [];
    }
    return { text: maxNew === 1 ? `<${gen}>` : "", meta_info: meta };
  };

  const listening = Promise.withResolvers<void>();
  const server = Deno.serve({
    port: o.port ?? 0,
    hostname: o.hostname ?? "127.0.0.1",
    onListen: () => listening.resolve(),
    onError: (err) => {
      o.log?.(`internal error: ${(err as Error)?.message ?? err}`);
      return new Response(JSON.stringify({ object: "error", message: "internal error", code: 500 }), {
        status: 500,
      });
    },
  }, async (req) => {
    const res = await handler(req);
    o.log?.(`${req.method} ${new URL(req.url).pathname} → ${res.status}`);
    return res;
  });
  await listening.promise;
  const addr = server.addr as Deno.NetAddr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return {
    url: `http://${host}:${addr.port}`,
    port: addr.port,
    model,
    faults,
    addFaults,
    slowHits,
    get requests() {
      return requests;
    },
    async close() {
      for (const c of stalled) {
        try {
          c.error(new Error("server closed"));
        } catch {
          // already ended
        }
      }
      stalled.clear();
      await server.shutdown();
    },
  };
}
