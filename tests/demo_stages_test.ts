/**
 * The demo's stages run in this process (save-topk, three students, the final evaluation, the report) on tiny
 * settings, free every tfjs tensor they allocate, skip everything finished on a second call, and resume
 * started students when the steps grow. The CPU path keeps it to about a minute; `deno task demo` runs the
 * same code on WebGPU.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { runDemo } from "../src/demo/run_demo.ts";
import { readMetrics } from "../src/demo/stages.ts";
import { createRuntime } from "../src/gpu/runtime.ts";
import { useTfjsOnRuntime } from "../src/gpu/tfjs_backend.ts";
import { latestCheckpoint } from "../src/model/checkpoint.ts";
import { openLocalStore } from "../src/store/local.ts";
import type { ReportInput } from "../src/report/types.ts";
import { SparsekdError } from "../src/errors.ts";

const STUDENTS = ["kd-topk", "kd-tail", "ce-only"];

/** Every file under `dir` with its bytes, by path relative to `dir`. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (sub: string) => {
    for await (const e of Deno.readDir(`${dir}/${sub}`)) {
      const path = sub ? `${sub}/${e.name}` : e.name;
      if (e.isDirectory) await walk(path);
      else files.set(path, Array.from(await Deno.readFile(`${dir}/${path}`)).join(","));
    }
  };
  await walk("");
  return files;
}

Deno.test("the demo runs its stages in-process, frees its tensors, skips all of them on a second call and resumes when the steps grow", async () => {
  await useTfjsOnRuntime(await createRuntime({ cpu: true, quiet: true }));
  const dir = await Deno.makeTempDir({ prefix: "sparsekd-demo-" });
  const o = { dir, sequences: 8, steps: 2, batchSize: 2, k: 4, heldoutSequences: 2, cpu: true };
  try {
    const tensors = tf.memory().numTensors;
    const report = await runDemo(o);
    assert.equal(tf.memory().numTensors, tensors, "tensors left allocated by the first run");
    assert.ok((await Deno.stat(report)).size > 0);
    const saved = JSON.parse(await Deno.readTextFile(`${dir}/save_summary.json`));
    assert.equal(saved.tokens, 8 * 64, "the save summary of the run that computed the shards");
    for (const s of STUDENTS) {
      assert.equal(await latestCheckpoint(await openLocalStore(`${dir}/students/${s}`)), 2, s);
    }
    const input = JSON.parse(await Deno.readTextFile(`${dir}/report_input.json`)) as ReportInput;
    assert.deepEqual(input.students.map((s) => s.name), STUDENTS);
    for (const s of input.students) {
      assert.equal(s.steps, 2);
      assert.ok(Number.isFinite(s.final.ppl) && Number.isFinite(s.final.kl), JSON.stringify(s.final));
    }
    assert.equal(input.save.tokensPerSecond, saved.tokensPerSecond);
    const trained = new Map<string, unknown>();
    for (const s of STUDENTS) trained.set(s, (await readMetrics(`${dir}/students/${s}/metrics.jsonl`)).train);

    // A second call: save-topk skips its shard, every student is finished; nothing in the shards, the
    // students or the kept save summary changes.
    const before = await snapshot(dir);
    await runDemo(o);
    assert.equal(tf.memory().numTensors, tensors, "tensors left allocated by the second run");
    const after = await snapshot(dir);
    for (const [path, bytes] of before) {
      if (/^(topk|students)\//.test(path) || path === "save_summary.json") {
        assert.equal(after.get(path), bytes, `${path} changed on a run that had nothing to do`);
      }
    }
    assert.deepEqual(
      [...after.keys()].filter((p) => /^(topk|students)\//.test(p)).sort(),
      [...before.keys()].filter((p) => /^(topk|students)\//.test(p)).sort(),
    );
    const again = JSON.parse(await Deno.readTextFile(`${dir}/report_input.json`)) as ReportInput;
    assert.deepEqual(again.students.map((s) => s.final), input.students.map((s) => s.final));
    assert.equal(again.save.tokensPerSecond, saved.tokensPerSecond);

    // More steps: every student resumes from its step-2 checkpoint (its first lines of metrics stay).
    await runDemo({ ...o, steps: 3 });
    assert.equal(tf.memory().numTensors, tensors, "tensors left allocated by the resumed run");
    for (const s of STUDENTS) {
      assert.equal(await latestCheckpoint(await openLocalStore(`${dir}/students/${s}`)), 3, s);
      const { train } = await readMetrics(`${dir}/students/${s}/metrics.jsonl`);
      const earlier = trained.get(s) as typeof train;
      assert.ok(earlier.length > 0, s);
      assert.deepEqual(train.slice(0, earlier.length), earlier, `${s}: the first run's lines stay`);
      assert.equal(train.at(-1)!.step, 3, s);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the demo names a bad option before any stage runs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparsekd-demo-" });
  try {
    for (
      const [o, option] of [[{ steps: 0 }, "steps"], [{ batchSize: 1.5 }, "batchSize"], [
        { sequences: 1 },
        "sequences",
      ]] as const
    ) {
      await assert.rejects(runDemo({ dir, cpu: true, ...o }), (err) => {
        assert.ok(err instanceof SparsekdError);
        assert.equal(err.option, option);
        assert.match(err.message, new RegExp(`^${option} must be an integer ≥ \\d`));
        return true;
      });
    }
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an aborted demo stops at the next safe point with exit status 130 and goes on from there when run again", async () => {
  await useTfjsOnRuntime(await createRuntime({ cpu: true, quiet: true }));
  const dir = await Deno.makeTempDir({ prefix: "sparsekd-demo-stop-" });
  const o = { dir, sequences: 4, steps: 2, batchSize: 2, k: 4, heldoutSequences: 2, cpu: true };
  try {
    const stop = new AbortController();
    stop.abort();
    const err = await runDemo({ ...o, signal: stop.signal }).catch((e) => e);
    assert.ok(err instanceof SparsekdError, String(err));
    assert.equal(err.exitCode, 130);
    assert.match(
      err.message,
      /^demo stopped: before kd-topk; run the same command again to go on from there$/,
    );
    assert.ok((await Deno.stat(`${dir}/topk/run.json`)).isFile, "save-topk, before the stop, finished");
    await assert.rejects(Deno.stat(`${dir}/students/kd-topk`), Deno.errors.NotFound);
    await runDemo(o);
    for (const s of STUDENTS) {
      assert.equal(await latestCheckpoint(await openLocalStore(`${dir}/students/${s}`)), 2, s);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
