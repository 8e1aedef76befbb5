import assert from "node:assert/strict";
import { openTeacher } from "../src/teacher/open_teacher.ts";
import { npyBytes } from "../src/data/npy.ts";
import { createRuntime } from "../src/gpu/runtime.ts";
import { SparsekdError } from "../src/errors.ts";

function oneLine(pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof SparsekdError, `expected SparsekdError, got ${err}`);
    assert.ok(!err.message.includes("\n"));
    assert.match(err.message, pattern);
    return true;
  };
}

Deno.test("--teacher specs: npy opens, unknown kinds and empty arguments are one-line errors", async () => {
  const rt = await createRuntime({ cpu: true, quiet: true });
  const dir = await Deno.makeTempDir();
  try {
    const V = 3 + Math.floor(Math.random() * 10);
    await Deno.writeFile(`${dir}/l.npy`, npyBytes("<f4", [2, 4, V], new Float32Array(8 * V)));
    const t = await openTeacher(`npy:${dir}/l.npy`, rt);
    assert.equal(t.vocabSize, V);
    assert.equal(t.seqLen, 4);
    await assert.rejects(
      openTeacher("onnx:model.onnx", rt),
      oneLine(/expected builtin:demo, tfjs:<model.json> or npy:<path>/),
    );
    await assert.rejects(openTeacher("builtin:gpt2", rt), oneLine(/only built-in teacher is builtin:demo/));
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
