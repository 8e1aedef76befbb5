/**
 * Reading a served teacher's answer for one sequence into the rows of the `SparseTargets` of a batch: vLLM's
 * `/v1/completions` (`prompt_logprobs`, and `logprobs.top_logprobs` for the position after the prompt) and
 * SGLang's native `/generate` (`meta_info.input_top_logprobs`, `output_top_logprobs`).
 *
 * Position t of a sequence of L tokens holds the teacher's distribution of token t + 1 (docs/format.md), so
 * it comes from the server's entry for prompt token t + 1 (the first prompt entry, with nothing before it, is
 * null), and the last position from the one generated token's top log-probabilities.
 * @module
 */
/** The wire protocols a served teacher may speak. */
export type TeacherProtocol = "vllm" | "sglang";

/**
 * A problem with one answer: `mismatch` when the server's echoed prompt tokens are not the ones sent (another
 * tokenizer, an added BOS token), `malformed` when the answer lacks what was asked for or is not log-probabilities.
 */
export class AnswerProblem extends Error {
  /** What kind of problem. */
  readonly kind: "mismatch" | "malformed";
  /** The position it concerns, when it concerns one. */
  readonly position: number | undefined;
  /** A problem with one answer (`position` is the sequence position it concerns, if any). */
  constructor(kind: "mismatch" | "malformed", message: string, position?: number) {
    super(message);
    this.kind = kind;
    this.position = position;
  }
}

/** One candidate of a position: token id, log-probability, rank (1 = most likely) when the server gives it. */
interface Candidate {
  id: number;
  logprob: number;
  rank: number;
}

/** Rows of a batch's {@linkcode SparseTargets} that one sequence's answer fills. */
export interface AnswerRows {
  /** Top-k ids, `[rows, k]`. */
  ids: Uint32Array;
  /** Log-probabilities, `[rows, k]`. */
  values: Float32Array;
  /** Row of the sequence's position 0. */
  row: number;
}

/**
 * The request body that asks `protocol` for the top-`k` log-probabilities of every position of `tokens`.
 *
 * @example
 * ```ts
 * const body = requestBody("vllm", "qwen", Uint32Array.from([1, 2, 3]), 20);
 * // { model: "qwen", prompt: [1, 2, 3], echo: true, prompt_logprobs: 20, logprobs: 20, max_tokens: 1, … }
 * ```
 */
export function requestBody(
  protocol: TeacherProtocol,
  model: string,
  tokens: Uint32Array,
  k: number,
): Record<string, unknown> {
  const ids = Array.from(tokens);
  if (protocol === "sglang") {
    return {
      input_ids: ids,
      sampling_params: { max_new_tokens: 1, temperature: 1, top_p: 1 },
      return_logprob: true,
      logprob_start_len: 0,
      top_logprobs_num: k,
      return_text_in_logprobs: false,
    };
  }
  // temperature 1 and top_p 1: engines that apply sampling settings to the returned log-probabilities
  // (vLLM V0, processed log-probability modes) still return the teacher's distribution at T = 1.
  return {
    model,
    prompt: ids,
    echo: true,
    prompt_logprobs: k,
    logprobs: k,
    max_tokens: 1,
    temperature: 1,
    top_p: 1,
    return_tokens_as_token_ids: true,
  };
}

/**
 * Reads one sequence's answer into `out` (k entries per position at rows `out.row … out.row + L − 1`), after
 * checking that the echoed prompt tokens are `tokens`. Throws an {@linkcode AnswerProblem}.
 *
 * @example
 * ```ts ignore
 * readAnswer("vllm", await res.json(), tokens, 64, 32000, { ids, values, row: i * L });
 * ```
 */
export function readAnswer(
  protocol: TeacherProtocol,
  body: unknown,
  tokens: Uint32Array,
  k: number,
  vocabSize: number,
  out: AnswerRows,
): void {
  const L = tokens.length;
  const { echoed, positions } = protocol === "sglang"
    ? sglangPositions(body, L, vocabSize)
    : vllmPositions(body, tokens, vocabSize);
  if (echoed !== null) {
    for (let t = 0; t < Math.max(L, echoed.length); t++) {
      if (echoed[t] !== tokens[t]) {
        throw new AnswerProblem(
          "mismatch",
          t < echoed.length && t < L
            ? `the server echoed token ${echoed[t]} at position ${t} where the data has ${tokens[t]}`
            : `the server echoed ${echoed.length} prompt tokens for ${L} sent (first difference at position ${t})`,
          t,
        );
      }
    }
  }
  for (let t = 0; t < L; t++) {
    const top = topOf(positions[t], k, t);
    const at = (out.row + t) * k;
    for (let i = 0; i < k; i++) {
      out.ids[at + i] = top[i].id;
      out.values[at + i] = top[i].logprob;
    }
  }
}

/** Sorts a position's candidates and keeps k; checks they are log-probabilities of distinct ids. */
function topOf(cands: Candidate[], k: number, t: number): Candidate[] {
  const seen = new Set<number>();
  let mass = 0;
  for (const c of cands) {
    if (seen.has(c.id)) throw new AnswerProblem("malformed", `position ${t} lists token ${c.id} twice`, t);
    seen.add(c.id);
    if (c.logprob > 1e-4) {
      throw new AnswerProblem(
        "malformed",
        `position ${t} has a log-probability ${c.logprob} > 0: the server returns something else than ` +
          `normalized log-probabilities (vLLM: keep the default --logprobs-mode raw_logprobs)`,
        t,
      );
    }
    mass += Math.exp(c.logprob);
  }
  if (mass > 1.001) {
    throw new AnswerProblem(
      "malformed",
      `the probabilities of position ${t} add up to ${mass.toFixed(4)} > 1: they are not normalized ` +
        `log-probabilities`,
      t,
    );
  }
  if (cands.length < k) {
    throw new AnswerProblem(
      "malformed",
      `position ${t} has ${cands.length} log-probabilities, fewer than the ${k} asked for`,
      t,
    );
  }
  // The k most likely in the server's order (log-probability, then its rank of the exact values, then the
  // lower id), then stored as float32 in the format's order: decreasing value, equal values by lower id.
  const top = cands.sort((a, b) => b.logprob - a.logprob || a.rank - b.rank || a.id - b.id).slice(0, k);
  for (const c of top) c.logprob = Math.fround(c.logprob);
  return top.sort((a, b) => b.logprob - a.logprob || a.id - b.id);
}

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === "object" && x !== null && !Array.isArray(x);

function tokenId(x: unknown, V: number, t: number): number {
  const id = typeof x === "string" && /^[0-9]{1,10}$/.test(x) ? Number(x) : x;
  if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= V) {
    throw new AnswerProblem(
      "malformed",
      `position ${t} names token ${JSON.stringify(x)}, not an id below the vocabulary size ${V}`,
      t,
    );
  }
  return id;
}

function logprobOf(x: unknown, t: number): number {
  const lp = isObject(x) ? x.logprob : x;
  if (typeof lp !== "number" || Number.isNaN(lp) || lp === Infinity) {
    throw new AnswerProblem("malformed", `position ${t} has a log-probability ${JSON.stringify(lp)}`, t);
  }
  return lp;
}

function rankOf(x: unknown): number {
  const r = isObject(x) ? x.rank : undefined;
  return typeof r === "number" && Number.isFinite(r) ? r : Infinity;
}

/** vLLM: `choices[0].prompt_logprobs` ({id: {logprob, rank, decoded_token}}), last from `logprobs`. */
function vllmPositions(body: unknown, tokens: Uint32Array, V: number) {
  const L = tokens.length;
  const choice = isObject(body) && Array.isArray(body.choices) ? body.choices[0] : undefined;
  if (!isObject(choice)) {
    throw new AnswerProblem("malformed", "the answer has no choices[0] (not a completions answer)");
  }
  const pl = choice.prompt_logprobs;
  if (!Array.isArray(pl)) {
    throw new AnswerProblem(
      "malformed",
      "the answer has no prompt_logprobs (a server without prompt log-probabilities, or vLLM with prefix " +
        "caching on a version that then drops them: start it with --no-enable-prefix-caching)",
    );
  }
  const lp = isObject(choice.logprobs) ? choice.logprobs : undefined;
  // The echoed prompt: prompt_token_ids (return_token_ids), else logprobs.tokens as "token_id:N".
  let echoed: number[] | null = null;
  if (Array.isArray(choice.prompt_token_ids)) {
    echoed = choice.prompt_token_ids.map((x, t) => tokenId(x, V, t));
  } else if (lp && Array.isArray(lp.tokens) && lp.tokens.length >= L) {
    const ids = lp.tokens.slice(0, L).map((x) =>
      typeof x === "string" ? /^token_id:([0-9]{1,10})$/.exec(x) : null
    );
    if (ids.every((m) => m !== null)) {
      echoed = ids.map((m, t) => tokenId(m![1], V, t));
      if (pl.length !== L) echoed.push(-1); // more or fewer prompt positions than sent: a mismatch below
    }
  }
  if (echoed === null && pl.length !== L) {
    throw new AnswerProblem(
      "mismatch",
      `the server returned ${pl.length} prompt positions for ${L} tokens sent (first difference at ` +
        `position ${Math.min(pl.length, L)})`,
      Math.min(pl.length, L),
    );
  }
  const positions: Candidate[][] = [];
  for (let t = 0; t + 1 < L; t++) {
    const entry = pl[t + 1];
    if (!isObject(entry)) {
      throw new AnswerProblem("malformed", `prompt_logprobs[${t + 1}] is not a map of token ids`, t);
    }
    positions.push(
      Object.entries(entry).map(([id, v]) => ({
        id: tokenId(id, V, t),
        logprob: logprobOf(v, t),
        rank: rankOf(v),
      })),
    );
  }
  const tops = lp?.top_logprobs;
  const last = Array.isArray(tops) ? tops[tops.length - 1] : undefined;
  if (!isObject(last)) {
    throw new AnswerProblem(
      "malformed",
      "the answer has no logprobs.top_logprobs for the generated token (the position after the prompt)",
      L - 1,
    );
  }
  positions.push(
    Object.entries(last).map(([key, v]) => {
      const m = /^token_id:([0-9]{1,10})$/.exec(key);
      if (!m) {
        throw new AnswerProblem(
          "malformed",
          `logprobs.top_logprobs names tokens by text (${
            JSON.stringify(key)
          }), not by id: the server ignores ` +
            `return_tokens_as_token_ids (vLLM ≥ 0.5 supports it)`,
          L - 1,
        );
      }
      return { id: tokenId(m[1], V, L - 1), logprob: logprobOf(v, L - 1), rank: Infinity };
    }),
  );
  if (echoed === null) {
    // No echoed ids: vLLM lists each prompt token in its own entry, so a missing one is a mismatch.
    for (let t = 1; t < L; t++) {
      if (!positions[t - 1].some((c) => c.id === tokens[t])) {
        throw new AnswerProblem(
          "mismatch",
          `the server's prompt_logprobs[${t}] does not list token ${
            tokens[t]
          } that the data has at position ${t}`,
          t,
        );
      }
    }
  }
  return { echoed, positions };
}

/** SGLang: `meta_info.input_top_logprobs` / `output_top_logprobs`, lists of `[logprob, id, text]`. */
function sglangPositions(body: unknown, L: number, V: number) {
  const meta = isObject(Array.isArray(body) ? body[0] : body)
    ? (Array.isArray(body) ? body[0] : body as Record<string, unknown>).meta_info
    : undefined;
  if (!isObject(meta)) {
    throw new AnswerProblem("malformed", "the answer has no meta_info (not a /generate answer)");
  }
  const input = meta.input_top_logprobs, output = meta.output_top_logprobs, echo = meta.input_token_logprobs;
  if (!Array.isArray(input) || !Array.isArray(output) || output.length < 1) {
    throw new AnswerProblem(
      "malformed",
      "the answer's meta_info has no input_top_logprobs and output_top_logprobs (return_logprob, " +
        "logprob_start_len 0 and top_logprobs_num are needed)",
    );
  }
  const echoed = Array.isArray(echo)
    ? echo.map((e, t) => tokenId(Array.isArray(e) ? e[1] : undefined, V, t))
    : null;
  if (echoed === null && input.length !== L) {
    throw new AnswerProblem(
      "mismatch",
      `the server returned ${input.length} prompt positions for ${L} tokens sent (first difference at ` +
        `position ${Math.min(input.length, L)})`,
      Math.min(input.length, L),
    );
  }
  const list = (x: unknown, t: number): Candidate[] => {
    if (!Array.isArray(x)) {
      throw new AnswerProblem("malformed", `position ${t} has no top log-probabilities`, t);
    }
    return x.map((e, i) => {
      if (!Array.isArray(e)) {
        throw new AnswerProblem("malformed", `position ${t}: entry ${i} is not a list`, t);
      }
      return { id: tokenId(e[1], V, t), logprob: logprobOf(e[0], t), rank: i + 1 };
    });
  };
  const positions: Candidate[][] = [];
  for (let t = 0; t + 1 < L; t++) positions.push(list(input[t + 1], t));
  positions.push(list(output[0], L - 1));
  return { echoed, positions };
}

/**
 * The server's error message from an error answer's text (OpenAI `{error: {message}}`, vLLM `{message}`), on
 * one line of at most 300 characters.
 *
 * @example
 * ```ts
 * errorMessage('{"object":"error","message":"bad request"}'); // "bad request"
 * ```
 */
export function errorMessage(text: string): string {
  let msg = text;
  try {
    const j = JSON.parse(text);
    const m = isObject(j)
      ? (isObject(j.error) ? j.error.message : j.message ?? j.detail ?? j.error)
      : undefined;
    if (typeof m === "string") msg = m;
  } catch {
    // not JSON: the text itself
  }
  msg = msg.replace(/\s+/g, " ").trim();
  return msg.length > 300 ? `${msg.slice(0, 300)}…` : msg;
}

/**
 * The log-probability cap a server's error message names (vLLM: "… greater than max allowed: 20",
 * older "Cannot request more than 5 logprobs"), or null when the message is about something else.
 *
 * @example
 * ```ts
 * logprobCap("Requested prompt logprobs of 64, which is greater than max allowed: 20"); // 20
 * ```
 */
export function logprobCap(message: string): number | null {
  const m = /max(?:imum)? allowed:?\s*(\d+)/i.exec(message) ??
    /more than (\d+) (?:prompt )?logprobs/i.exec(message);
  return m && /logprob/i.test(message) ? Number(m[1]) : null;
}
