import assert from "node:assert/strict";
import { denseTeacher, openAnyTeacher, openTeacher } from "../src/teacher/open_teacher.ts";
import { teacherHelp, TEACHERS, teacherUsage } from "../src/teacher/registry.ts";
import { createDemoTeacher } from "../src/teacher/builtin.ts";
import type { SparseTeacher } from "../src/teacher/teacher.ts";
import { errorLine } from "../src/cli/run_main.ts";
import { npyBytes } from "../src/data/npy.ts";
import { createRuntime } from "../src/gpu/runtime.ts";
import { SparsekdError } from "../src/errors.ts";
import { oneLine } from "./_helpers.ts";
import { withSeed } from "./_rng.ts";

Deno.test("--teacher specs: npy opens, unknown kinds and empty arguments are one-line errors", async () => {
  await withSeed("teacher_open_test", async (rng) => {
    const rt = await createRuntime({ cpu: true, quiet: true });
    const dir = await Deno.makeTempDir();
    try {
      const V = 3 + Math.floor(rng.uniform() * 10);
      await Deno.writeFile(`${dir}/l.npy`, npyBytes("<f4", [2, 4, V], new Float32Array(8 * V)));
      const t = await openTeacher(`npy:${dir}/l.npy`, rt);
      assert.equal(t.vocabSize, V);
      assert.equal(t.seqLen, 4);
      await assert.rejects(
        openTeacher("onnx:model.onnx", rt),
        oneLine(
          /expected builtin:demo\|tslib, tfjs:<model.json>, npy:<path>, openai:<base URL> or sglang:<base URL>/,
        ),
      );
      await assert.rejects(
        openTeacher("builtin:gpt2", rt),
        oneLine(/built-in teachers are builtin:demo and builtin:tslib/),
      );
      await assert.rejects(openTeacher("npy:", rt), oneLine(/needs the path/));
      await assert.rejects(openTeacher("tfjs:", rt), oneLine(/needs the path or URI/));
      await assert.rejects(
        openTeacher(`tfjs:${dir}/nothing/model.json`, rt),
        oneLine(/cannot read model\.json/),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});

Deno.test("the teacher registry: every kind is in the help and in the unknown-spec message; sparse teachers are refused where logits are needed", async () => {
  const rt = await createRuntime({ cpu: true, quiet: true });
  const help = teacherHelp("  ");
  for (const [prefix, entry] of Object.entries(TEACHERS)) {
    assert.ok(entry.usage.startsWith(`${prefix}:`), entry.usage);
    assert.ok(help.includes(`  ${entry.usage}`) && help.includes(entry.help), prefix);
    assert.equal(typeof await entry.load(), "function", `${prefix}: the module exports teacherOpener`);
  }
  await assert.rejects(openAnyTeacher("nope:x", rt), (err: unknown) => {
    assert.ok(err instanceof SparsekdError);
    assert.equal(err.option, "teacher");
    assert.equal(
      errorLine(err, { teacher: "--teacher" }),
      `error: --teacher "nope:x": expected ${teacherUsage()}`,
    );
    return true;
  });
  let disposed = false;
  const sparse: SparseTeacher = {
    kind: "sparse",
    vocabSize: 10,
    fingerprint: "served-v1",
    description: "served:test",
    k: 2,
    lseTemperatures: [1],
    forwardSparse: (_tokens, _start, count, L) =>
      Promise.resolve({
        ids: new Uint32Array(count * L * 2),
        values: new Float32Array(count * L * 2),
        logsumexp: new Float32Array(count * L),
      }),
    dispose() {
      disposed = true;
    },
  };
  assert.throws(() => denseTeacher(sparse, "served:test"), (err: unknown) => {
    assert.ok(err instanceof SparsekdError);
    assert.equal(
      err.message,
      "teacher served:test returns sparse targets (top-k), but full logits are needed here",
    );
    return true;
  });
  assert.ok(disposed, "the refused teacher is disposed");
});

Deno.test("builtin:demo reads its weights through the store registry: over http it is the same teacher", async () => {
  const rt = await createRuntime({ cpu: true, quiet: true });
  const dir = new URL("../models/demo_teacher/", import.meta.url);
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    try {
      return new Response(await Deno.readFile(new URL(new URL(req.url).pathname.slice(1), dir)));
    } catch {
      return new Response("missing", { status: 404 });
    }
  });
  try {
    const local = await openTeacher("builtin:demo", rt);
    assert.equal(local.kind, "dense");
    const remote = await createDemoTeacher(rt, new URL(`http://127.0.0.1:${server.addr.port}/`));
    assert.equal(remote.fingerprint, local.fingerprint);
    assert.equal(remote.vocabSize, local.vocabSize);
    local.dispose();
    remote.dispose();
    await assert.rejects(
      createDemoTeacher(rt, new URL(`http://127.0.0.1:${server.addr.port}/nothing/`)),
      oneLine(/^the demo teacher's weights are missing \(http:\/\/127\.0\.0\.1:\d+\/nothing\/model\.json\)$/),
    );
  } finally {
    await server.shutdown();
  }
});
