/**
 * Reading served teachers' answers (src/teacher/openai_response.ts): vLLM's and SGLang's shapes, position
 * alignment, the echo check, and each malformed answer as an {@linkcode AnswerProblem}; the log-probability
 * cap read from vLLM's error messages.
 */
import assert from "node:assert/strict";
import {
  AnswerProblem,
  errorMessage,
  logprobCap,
  readAnswer,
  requestBody,
} from "../src/teacher/openai_response.ts";
import { withSeed } from "./_rng.ts";

const V = 50;

/** A random distribution per position (log-probabilities over V), and a vLLM answer for `tokens` with top n. */
function vllmAnswer(tokens: number[], n: number, rng: { uniform(): number }) {
  const L = tokens.length;
  const dists = Array.from({ length: L }, () => {
    const z = Array.from({ length: V }, () => rng.uniform() * 6);
    const lse = Math.log(z.reduce((s, x) => s + Math.exp(x), 0));
    return z.map((x) => x - lse);
  });
  const topIds = (d: number[]) => d.map((lp, id) => ({ lp, id })).sort((a, b) => b.lp - a.lp).slice(0, n);
  const rank = (d: number[], id: number) => 1 + d.filter((x) => x > d[id]).length;
  const promptMap = (d: number[], actual: number) => {
    const m: Record<string, unknown> = {};
    m[actual] = { logprob: d[actual], rank: rank(d, actual), decoded_token: "x" };
    for (const { lp, id } of topIds(d)) m[id] = { logprob: lp, rank: rank(d, id), decoded_token: "x" };
    return m;
  };
  const gen = topIds(dists[L - 1])[0].id;
  const textMap = (d: number[]) => Object.fromEntries(topIds(d).map(({ lp, id }) => [`token_id:${id}`, lp]));
  return {
    dists,
    body: {
      choices: [{
        index: 0,
        prompt_logprobs: tokens.map((id, t) => (t === 0 ? null : promptMap(dists[t - 1], id))),
        logprobs: {
          tokens: [...tokens, gen].map((id) => `token_id:${id}`),
          top_logprobs: [...tokens, gen].map((_, t) => (t === 0 ? null : textMap(dists[t - 1]))),
        },
      }],
    },
  };
}

function read(body: unknown, tokens: number[], k: number, protocol: "vllm" | "sglang" = "vllm") {
  const L = tokens.length;
  const out = { ids: new Uint32Array(L * k), values: new Float32Array(L * k), row: 0 };
  readAnswer(protocol, body, Uint32Array.from(tokens), k, V, out);
  return out;
}

const problem = (kind: "mismatch" | "malformed", pattern: RegExp) => (err: unknown) => {
  assert.ok(err instanceof AnswerProblem, `expected an AnswerProblem, got ${err}`);
  assert.equal(err.kind, kind);
  assert.match(err.message, pattern);
  return true;
};

Deno.test("vLLM answer: position t holds the distribution of token t+1, the last one the generated token's", () =>
  withSeed(
    "vLLM answer: position t holds the distribution of token t+1, the last one the generated token's",
    (rng) => {
      const tokens = [3, 17, 8, 42, 0];
      const { dists, body } = vllmAnswer(tokens, 4, rng);
      const k = 3;
      const out = read(body, tokens, k);
      for (let t = 0; t < tokens.length; t++) {
        const want = dists[t].map((lp, id) => ({ lp, id })).sort((a, b) => b.lp - a.lp).slice(0, k);
        assert.deepEqual([...out.ids.subarray(t * k, (t + 1) * k)], want.map((w) => w.id), `position ${t}`);
        assert.deepEqual([...out.values.subarray(t * k, (t + 1) * k)], want.map((w) => Math.fround(w.lp)));
      }
    },
  ));

Deno.test("vLLM answer: an echoed token that is not the data's is a mismatch naming its position", () =>
  withSeed("vLLM answer: an echoed token that is not the data's is a mismatch naming its position", (rng) => {
    const tokens = [3, 17, 8, 42];
    const { body } = vllmAnswer(tokens, 4, rng);
    body.choices[0].logprobs.tokens[2] = "token_id:9";
    assert.throws(
      () => read(body, tokens, 2),
      problem("mismatch", /echoed token 9 at position 2 where the data has 8/),
    );
  }));

Deno.test("vLLM answer: without echoed ids, a prompt token missing from its own entry is a mismatch", () =>
  withSeed(
    "vLLM answer: without echoed ids, a prompt token missing from its own entry is a mismatch",
    (rng) => {
      const tokens = [3, 17, 8, 42];
      const { body } = vllmAnswer(tokens, 4, rng);
      delete (body.choices[0].logprobs as { tokens?: unknown }).tokens;
      read(body, tokens, 2); // still readable: every prompt token is in its entry
      const entry = body.choices[0].prompt_logprobs[3] as Record<string, unknown>;
      delete entry["42"];
      assert.throws(
        () => read(body, tokens, 2),
        problem("mismatch", /prompt_logprobs\[3\] does not list token 42/),
      );
    },
  ));

Deno.test("vLLM answer: prompt positions of another count are a mismatch", () =>
  withSeed("vLLM answer: prompt positions of another count are a mismatch", (rng) => {
    const tokens = [3, 17, 8, 42];
    const { body } = vllmAnswer([1, ...tokens], 4, rng);
    assert.throws(() => read(body, tokens, 2), problem("mismatch", /position 0/));
  }));

Deno.test("vLLM answer: each malformed answer is named", () =>
  withSeed("vLLM answer: each malformed answer is named", (rng) => {
    const tokens = [3, 17, 8];
    const fresh = () => vllmAnswer(tokens, 4, rng).body;
    assert.throws(() => read({}, tokens, 2), problem("malformed", /no choices\[0\]/));
    let b = fresh();
    (b.choices[0] as { prompt_logprobs: unknown }).prompt_logprobs = null;
    assert.throws(
      () => read(b, tokens, 2),
      problem("malformed", /no prompt_logprobs.*--no-enable-prefix-caching/),
    );
    b = fresh();
    assert.throws(() => read(b, tokens, 6), problem("malformed", /fewer than the 6 asked for/));
    b = fresh();
    const top = b.choices[0].logprobs.top_logprobs;
    top[top.length - 1] = { "the": -0.1 };
    assert.throws(() => read(b, tokens, 1), problem("malformed", /by text .*return_tokens_as_token_ids/));
    b = fresh();
    (b.choices[0].prompt_logprobs[1] as Record<string, unknown>)["17"] = { logprob: 2.5, rank: 1 };
    assert.throws(() => read(b, tokens, 2), problem("malformed", /log-probability 2.5 > 0.*raw_logprobs/));
    b = fresh();
    (b.choices[0].prompt_logprobs[1] as Record<string, unknown>)["99"] = { logprob: -1, rank: 1 };
    assert.throws(() => read(b, tokens, 2), problem("malformed", /not an id below the vocabulary size 50/));
    b = fresh();
    (b.choices[0].prompt_logprobs[2] as Record<string, unknown>)["8"] = { logprob: "x" };
    assert.throws(() => read(b, tokens, 2), problem("malformed", /position 1 has a log-probability "x"/));
    b = fresh();
    const p1 = b.choices[0].prompt_logprobs[1] as Record<string, unknown>;
    for (const id of Object.keys(p1)) p1[id] = { logprob: -0.01, rank: 1 };
    assert.throws(() => read(b, tokens, 2), problem("malformed", /add up to .* > 1/));
  }));

Deno.test("SGLang answer: input_top_logprobs and output_top_logprobs give the same rows as vLLM's", () =>
  withSeed(
    "SGLang answer: input_top_logprobs and output_top_logprobs give the same rows as vLLM's",
    (rng) => {
      const tokens = [5, 6, 7, 8];
      const { dists, body } = vllmAnswer(tokens, 3, rng);
      const tops = (d: number[]) =>
        d.map((lp, id) => ({ lp, id })).sort((a, b) => b.lp - a.lp).slice(0, 3).map((
          c,
        ) => [c.lp, c.id, null]);
      const sglang = {
        text: "",
        meta_info: {
          input_token_logprobs: tokens.map((id, t) => [t === 0 ? null : dists[t - 1][id], id, null]),
          input_top_logprobs: tokens.map((_, t) => (t === 0 ? null : tops(dists[t - 1]))),
          output_top_logprobs: [tops(dists[tokens.length - 1])],
        },
      };
      const a = read(body, tokens, 3), b = read(sglang, tokens, 3, "sglang");
      assert.deepEqual([...b.ids], [...a.ids]);
      assert.deepEqual([...b.values], [...a.values]);
      sglang.meta_info.input_token_logprobs[1][1] = 9;
      assert.throws(
        () => read(sglang, tokens, 3, "sglang"),
        problem("mismatch", /echoed token 9 at position 1/),
      );
      assert.throws(
        () => read({ meta_info: {} }, tokens, 3, "sglang"),
        problem("malformed", /input_top_logprobs/),
      );
    },
  ));

Deno.test("requests ask for k prompt and sample log-probabilities of the token ids, at temperature 1", () => {
  const v = requestBody("vllm", "m", Uint32Array.from([1, 2]), 7);
  assert.deepEqual(v, {
    model: "m",
    prompt: [1, 2],
    echo: true,
    prompt_logprobs: 7,
    logprobs: 7,
    max_tokens: 1,
    temperature: 1,
    top_p: 1,
    return_tokens_as_token_ids: true,
  });
  const s = requestBody("sglang", "m", Uint32Array.from([1, 2]), 7);
  assert.equal(s.top_logprobs_num, 7);
  assert.equal(s.logprob_start_len, 0);
  assert.deepEqual(s.input_ids, [1, 2]);
});

Deno.test("the log-probability cap is read from vLLM's error messages, old and new", () => {
  assert.equal(logprobCap("Requested prompt logprobs of 64, which is greater than max allowed: 20"), 20);
  assert.equal(
    logprobCap("Requested sample logprobs of 64, which is greater than max allowed: 5 (parameter=logprobs)"),
    5,
  );
  assert.equal(logprobCap("Cannot request more than 5 logprobs."), 5);
  assert.equal(logprobCap("max allowed: 3 tokens per request"), null, "not about log-probabilities");
  assert.equal(
    errorMessage(JSON.stringify({ object: "error", message: "bad\nthing" })),
    "bad thing",
  );
  assert.equal(errorMessage(JSON.stringify({ error: { message: "nope" } })), "nope");
  assert.equal(errorMessage("plain text"), "plain text");
});
