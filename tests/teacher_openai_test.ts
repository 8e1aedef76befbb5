/**
 * `--teacher openai:<base URL>` (and `sglang:`) against the teacher server serving the demo teacher: the shards
 * equal the direct teacher's, every injected fault is survived, a persistent failure keeps the shards written
 * and resumes, and the refusals (capped max_logprobs, another tokenizer, lse temperature 2) are one line each.
 * All on the CPU, with 6 sequences of 64 tokens and k = 8.
 */
import assert from "node:assert/strict";
import { createRuntime, type Runtime } from "../src/gpu/runtime.ts";
import { readShards } from "../src/format/shard_reader.ts";
import { runSaveTopK, type RunSaveTopKOptions } from "../src/save/run_save_topk.ts";
import { openTeacher } from "../src/teacher/open_teacher.ts";
import type { Teacher } from "../src/teacher/teacher.ts";
import { startTeacherServer, type TeacherFaultRule } from "../testing/teacher_server/server.ts";
import { oneLine, withTempDir } from "./_helpers.ts";
import { assertSameFiles, expectOneLineError, snapshot, TASK } from "./_save_fixtures.ts";

const K = 8, S = 6, N = 4;

let shared: Promise<{ rt: Runtime; teacher: Teacher }> | undefined;
function demo() {
  return shared ??= (async () => {
    const rt = await createRuntime({ cpu: true, quiet: true });
    return { rt, teacher: await openTeacher("builtin:demo", rt) };
  })();
}

/** save-topk in-process with the demo data: 6 sequences of 64 tokens, k = 8, shards of 4, batches of 2. */
async function save(teacher: string, out: string, extra: Partial<RunSaveTopKOptions> = {}) {
  const { rt } = await demo();
  return await runSaveTopK({
    teacher,
    data: "builtin:demo",
    out,
    k: K,
    seqLen: 64,
    maxSequences: S,
    sequencesPerShard: N,
    batchSize: 2,
    rt,
    print: false,
    ...extra,
    remote: { backoffMs: 1, timeoutMs: 60_000, concurrency: 3, ...extra.remote },
  });
}

async function records(out: string) {
  const all = [];
  for await (const r of readShards(out)) all.push(r);
  return all;
}

/** A teacher server on the demo teacher for the body of a test. */
async function withServer(
  options: { maxLogprobs?: number; addBos?: number; apiKey?: string },
  body: (server: Awaited<ReturnType<typeof startTeacherServer>>) => Promise<void>,
) {
  const { teacher } = await demo();
  const server = await startTeacherServer({ teacher, maxLogprobs: 64, ...options });
  try {
    await body(server);
  } finally {
    await server.close();
  }
}

Deno.test("openai: against the teacher server, save-topk writes the direct teacher's ids, log-probabilities and lse", async () => {
  await withTempDir(async (dir) => {
    await withServer({}, async (server) => {
      await save("builtin:demo", `${dir}/direct`);
      const s = await save(`openai:${server.url}`, `${dir}/served`);
      assert.equal(s.shardsWritten, 2);
      assert.equal(server.requests, S, "one request per sequence");
      const direct = await records(`${dir}/direct`), served = await records(`${dir}/served`);
      assert.equal(served.length, S);
      let worst = 0;
      for (let i = 0; i < S; i++) {
        const d = direct[i], v = served[i];
        assert.equal(v.seq, d.seq);
        assert.deepEqual([...v.tokens], [...d.tokens]);
        assert.deepEqual([...v.idx], [...d.idx], `ids of sequence ${i}`);
        for (let t = 0; t < 64; t++) {
          assert.equal(v.lse[t], 0, "log-probabilities: the stored lse at T = 1 is 0");
          for (let j = 0; j < K; j++) {
            const want = d.val[t * K + j] - d.lse[t];
            const err = Math.abs(v.val[t * K + j] - want);
            worst = Math.max(worst, err);
            assert.ok(err <= 2e-6 * Math.max(1, Math.abs(want)), `value ${v.val[t * K + j]} vs ${want}`);
          }
        }
      }
      // The values are float32 roundings of logit − lse, not copies: at least one is not bit-equal to 0 error.
      assert.ok(worst < 1e-5);
    });
  });
});

Deno.test("sglang: the native /generate answers give the same shards as openai: (vLLM shape)", async () => {
  await withTempDir(async (dir) => {
    await withServer({}, async (server) => {
      await save(`openai:${server.url}`, `${dir}/vllm`);
      await save(`sglang:${server.url}`, `${dir}/sglang`);
      const a = await records(`${dir}/vllm`), b = await records(`${dir}/sglang`);
      assert.equal(b.length, S);
      for (let i = 0; i < S; i++) {
        assert.deepEqual([...b[i].idx], [...a[i].idx]);
        assert.deepEqual([...b[i].val], [...a[i].val]);
        assert.deepEqual([...b[i].lse], [...a[i].lse]);
      }
    });
  });
});

Deno.test("openai: save-topk survives each injected fault with shards byte-equal to a clean run", async (t) => {
  await withTempDir(async (dir) => {
    await withServer({}, async (server) => {
      await save(`openai:${server.url}`, `${dir}/clean`);
      const clean = await snapshot(`${dir}/clean`);
      const path = "/v1/completions";
      const faults = [
        ["503 twice", { method: "POST", path, status: 503, count: 2, skip: 1 }],
        ["429", { method: "POST", path, status: 429, skip: 2 }],
        ["408", { method: "POST", path, status: 408, skip: 3 }],
        ["500", { method: "POST", path, status: 500 }],
        ["a reset before the answer", { kind: "reset", method: "POST", path, skip: 4 }],
        ["a reset after 100 bytes of the answer", {
          kind: "reset",
          method: "POST",
          path,
          afterResponseBytes: 100,
        }],
        ["a stalled answer", { kind: "stall", method: "POST", path, afterResponseBytes: 50, skip: 1 }],
        ["a slow answer", { kind: "slow", method: "POST", path, delayMs: 300, skip: 2 }],
      ] as [string, TeacherFaultRule][];
      for (const [name, rule] of faults) {
        await t.step(name, async () => {
          const hitsBefore = server.faults.hits.length + server.slowHits.length;
          server.addFaults(rule);
          const out = `${dir}/${name.replaceAll(" ", "_")}`;
          // A stalled answer ends in the client's time limit, then is tried again.
          await save(`openai:${server.url}`, out, {
            remote: { timeoutMs: "kind" in rule && rule.kind === "stall" ? 3000 : 60_000 },
          });
          assert.equal(server.faults.pending().length, 0, "the fault happened");
          assert.ok(server.faults.hits.length + server.slowHits.length > hitsBefore);
          const got = await snapshot(out);
          // run.json and the shards equal the clean run's; the manifest too (same bytes, same CRC32C).
          assertSameFiles(got, clean);
        });
      }
    });
  });
});

Deno.test("openai: a server that keeps failing ends in one line, keeps the shards written and resumes", async () => {
  await withTempDir(async (dir) => {
    await withServer({}, async (server) => {
      await save(`openai:${server.url}`, `${dir}/clean`);
      // The first shard's 4 requests pass, then every request is a 503.
      server.addFaults({ method: "POST", path: "/v1/completions", status: 503, skip: N, count: 1000 });
      await assert.rejects(
        save(`openai:${server.url}`, `${dir}/out`, { remote: { tries: 3 } }),
        oneLine(/teacher server .* failed sequence 4 3 times in a row \(last: HTTP 503\).*resumes/),
      );
      const partial = await snapshot(`${dir}/out`);
      assert.ok(partial.has("shards/s000000.msgpack") && !partial.has("shards/s000001.msgpack"));
      assertSameFiles(
        new Map([...partial].filter(([k]) => k.startsWith("shards/"))),
        new Map([...(await snapshot(`${dir}/clean`))].filter(([k]) => k === "shards/s000000.msgpack")),
      );
      server.faults.clear();
      const s = await save(`openai:${server.url}`, `${dir}/out`);
      assert.equal(s.shardsSkipped, 1);
      assert.equal(s.shardsWritten, 1);
      assertSameFiles(await snapshot(`${dir}/out`), await snapshot(`${dir}/clean`));
    });
  });
});

Deno.test("openai: the API key comes from the named environment variable and is never printed", async () => {
  await withTempDir(async (dir) => {
    await withServer({ apiKey: "s3cret-key" }, async (server) => {
      await assert.rejects(
        save(`openai:${server.url}`, `${dir}/a`),
        oneLine(/refused the model list \(HTTP 401: Unauthorized\): it needs an API key: set OPENAI_API_KEY/),
      );
      Deno.env.set("SPARSEKD_TEST_WRONG_KEY", "wrong-key-value");
      await assert.rejects(
        save(`openai:${server.url}`, `${dir}/b`, { remote: { apiKeyEnv: "SPARSEKD_TEST_WRONG_KEY" } }),
        (err) => {
          oneLine(/check the API key in SPARSEKD_TEST_WRONG_KEY/)(err);
          assert.ok(!(err as Error).message.includes("wrong-key-value"));
          return true;
        },
      );
      await assert.rejects(
        save(`openai:${server.url}`, `${dir}/c`, { remote: { apiKeyEnv: "SPARSEKD_TEST_UNSET_KEY" } }),
        oneLine(/^teacherApiKeyEnv names SPARSEKD_TEST_UNSET_KEY, which is not set/),
      );
      Deno.env.set("SPARSEKD_TEST_KEY", "s3cret-key");
      const s = await save(`openai:${server.url}`, `${dir}/d`, {
        maxSequences: 2,
        remote: { apiKeyEnv: "SPARSEKD_TEST_KEY" },
      });
      assert.equal(s.shardsWritten, 1);
    });
  });
});

Deno.test("openai: a model the server does not serve and a k above the vocabulary are one line each", async () => {
  await withTempDir(async (dir) => {
    await withServer({}, async (server) => {
      await assert.rejects(
        save(`openai:${server.url}`, `${dir}/a`, { remote: { model: "other" } }),
        oneLine(/^teacherModel other is not served by .* \(it serves builtin:demo\)/),
      );
      await assert.rejects(
        save(`openai:${server.url}`, `${dir}/b`, { k: 4096 }),
        oneLine(/^k must be at most the teacher's vocabulary size 2048/),
      );
      await assert.rejects(save(`openai:not a url`, `${dir}/c`), oneLine(/expected openai:<base URL>/));
    });
  });
});

Deno.test("openai: a server that cannot be reached ends in one line after its tries", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close(); // nothing listens there now
  await withTempDir(async (dir) => {
    await assert.rejects(
      save(`openai:http://127.0.0.1:${port}`, `${dir}/out`, { remote: { tries: 2 } }),
      oneLine(
        /teacher server http:\/\/127\.0\.0\.1:\d+ failed the model list 2 times in a row \(last: connection failed/,
      ),
    );
    await assert.rejects(Deno.stat(`${dir}/out/run.json`), Deno.errors.NotFound);
  });
});

Deno.test("openai: a server that does not report its vocabulary size, or serves several models, needs the flag", async () => {
  let models: unknown[] = [];
  const stub = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen: () => {} },
    () => Response.json({ object: "list", data: models }),
  );
  const url = `http://127.0.0.1:${stub.addr.port}`;
  try {
    await withTempDir(async (dir) => {
      models = [{ id: "m", object: "model", max_model_len: 4096 }];
      await assert.rejects(
        save(`openai:${url}`, `${dir}/a`),
        oneLine(/^vocabSize is needed: .* does not report its vocabulary size/),
      );
      models = [{ id: "a" }, { id: "b" }];
      await assert.rejects(
        save(`openai:${url}`, `${dir}/b`, { remote: { vocabSize: 2048 } }),
        oneLine(/^teacherModel is needed: .* serves 2 models \(a, b\)/),
      );
    });
  } finally {
    await stub.shutdown();
  }
});

Deno.test("train --online-teacher openai: is refused in one line before any request (it needs full logits)", async () => {
  const { rt } = await demo();
  await assert.rejects(
    openTeacher("openai:http://127.0.0.1:9", rt),
    oneLine(/returns top-k log-probabilities, not the full logits needed here \(online distillation\)/),
  );
});

/** The task against the server, with the demo data: one `error:` line expected. */
function task(url: string, out: string, extra: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      TASK,
      "--cpu",
      "--teacher",
      `openai:${url}`,
      "--out",
      out,
      "--seq-len",
      "16",
      "--max-sequences",
      "2",
      ...extra,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  });
}

Deno.test("CLI: a server capping log-probabilities, another tokenizer and --lse-temperatures 2 are one error line each", async () => {
  await withTempDir(async (dir) => {
    await withServer({ maxLogprobs: 8 }, async (server) => {
      const line = await expectOneLineError(
        task(server.url, `${dir}/cap`, ["--k", "16"]),
        /^error: --k is more than the 8 log-probabilities per position that the teacher server .* allows: restart it with a higher limit \(vLLM: --max-logprobs N with N ≥ k\) or lower k/,
      );
      assert.match(line, /greater than max allowed: 8/);
      await expectOneLineError(
        task(server.url, `${dir}/temps`, ["--k", "8", "--lse-temperatures", "1,2"]),
        /^error: --lse-temperatures must be 1 with a served teacher \(openai:\): it returns log-probabilities at temperature 1.*\(got 1,2\)$/,
      );
    });
    await withServer({ addBos: 0 }, async (server) => {
      await expectOneLineError(
        task(server.url, `${dir}/bos`, ["--k", "8"]),
        /^error: the teacher server .* does not see the tokens sent for sequence 0: the server echoed token 0 at position 0 where the data has \d+ .*tokenizes differently/,
      );
    });
    for (const out of ["cap", "temps", "bos"]) {
      assert.ok(
        !(await snapshot(`${dir}/${out}`).catch(() => new Map())).has("run.json"),
        `${out}: nothing written`,
      );
    }
  });
});

Deno.test("teacher server: faults are set over HTTP and a malformed rule is a 400", async () => {
  await withServer({}, async (server) => {
    const post = (body: unknown) =>
      fetch(`${server.url}/_teacher_server/faults`, { method: "POST", body: JSON.stringify(body) });
    const bad = await post({ kind: "corrupt" });
    assert.equal(bad.status, 400);
    assert.match((await bad.json()).message, /no "corrupt" faults/);
    const ok = await post([{ status: 503, path: "/v1/completions" }, { kind: "slow", delayMs: 5 }]);
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    const r = await fetch(`${server.url}/v1/completions`, { method: "POST", body: "{}" });
    assert.equal(r.status, 503);
    await r.body?.cancel();
    const listed = await (await fetch(`${server.url}/_teacher_server/faults`)).json();
    assert.equal(listed.hits.length, 1);
    assert.equal(listed.slow.length, 1);
    const cleared = await fetch(`${server.url}/_teacher_server/faults`, { method: "DELETE" });
    await cleared.body?.cancel();
    assert.equal(server.faults.pending().length, 0);
    const text = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      body: JSON.stringify({ prompt: "hello", max_tokens: 1 }),
    });
    assert.equal(text.status, 400);
    assert.match((await text.json()).message, /list of token ids/);
  });
});

Deno.test("teacher server: the task starts, prints its URL and answers /v1/models", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../tasks/teacher_server.ts", import.meta.url).pathname, "--port", "0"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!/listening on (http:\S+)/.test(text)) {
      const { done, value } = await reader.read();
      assert.ok(!done, `the server ended: ${text}`);
      text += value;
    }
    const url = /listening on (http:\S+)/.exec(text)![1];
    const models = await (await fetch(`${url}/v1/models`)).json();
    assert.equal(models.data[0].id, "builtin:demo");
    assert.equal(models.data[0].vocab_size, 2048);
    child.kill("SIGTERM");
    await reader.cancel();
  } finally {
    await child.status;
  }
});

Deno.test("teardown: dispose the shared demo teacher", async () => {
  if (shared) (await shared).teacher.dispose();
});
