/**
 * save-topk (the command) keeps one run's shards on one backend: run.json records it (in-process in
 * save_run_save_topk_test.ts), a resume or a second host on the
 * other backend is refused with one line before anything is written, the same backend resumes, and a
 * run.json that records no backend is continued with a note.
 */
import assert from "node:assert/strict";
import { errorLines, fixture, readAll, run, save, saveInProcess, snapshot } from "./_save_fixtures.ts";

const FLAGS = ["--k", "4", "--sequences-per-shard", "3", "--batch-size", "2"];
/** FLAGS and --cpu, as options of the in-process call that makes a folder to resume. */
const CPU = { k: 4, sequencesPerShard: 3, batchSize: 2, cpu: true };
const gpu = (globalThis.navigator as { gpu?: GPU }).gpu;
const noAdapter = !(gpu && (await gpu.requestAdapter()));

async function runJsonOf(out: string) {
  return JSON.parse(await Deno.readTextFile(`${out}/run.json`));
}

Deno.test("a run.json that records webgpu refuses a --cpu host with one line naming both backends, nothing written", async () => {
  const f = await fixture(8, 4, 60);
  const out = `${f.dir}/out`;
  await saveInProcess(f, out, CPU);
  // the same OUT as a WebGPU host leaves it (this machine may have no adapter to make one for real)
  const runJson = await runJsonOf(out);
  runJson.backend = "webgpu";
  await Deno.writeTextFile(`${out}/run.json`, JSON.stringify(runJson, null, 2) + "\n");
  await Deno.remove(`${out}/shards/s000002.msgpack`);
  const before = await snapshot(out);
  for (const host of [[], ["--host-index", "1", "--host-count", "2"]]) {
    const errs = await errorLines(save(f, out, [...FLAGS, ...host, "--cpu"]));
    assert.equal(errs.length, 1, errs.join("\n"));
    assert.match(errs[0], /^error: --cpu must be off, on a host with a WebGPU adapter, to continue /);
    assert.match(errs[0], /shards computed on webgpu and this host runs on cpu/);
    assert.match(errs[0], /delete .*out or write to another output/);
    assert.deepEqual(await snapshot(out), before);
  }
});

Deno.test({
  name:
    "a --cpu run resumed on a WebGPU adapter is refused with one line, nothing written; webgpu resumes webgpu",
  ignore: noAdapter,
  async fn() {
    const f = await fixture(8, 4, 60);
    const out = `${f.dir}/out`;
    await saveInProcess(f, out, CPU);
    await Deno.remove(`${out}/shards/s000001.msgpack`);
    const before = await snapshot(out);
    const errs = await errorLines(save(f, out, FLAGS));
    assert.equal(errs.length, 1, errs.join("\n"));
    assert.match(errs[0], /^error: --cpu must be set to continue .*out: /);
    assert.match(errs[0], /shards computed on cpu and this host runs on webgpu/);
    assert.deepEqual(await snapshot(out), before);

    const gpuOut = `${f.dir}/gpu`;
    const first = await run(save(f, gpuOut, FLAGS));
    assert.equal(first.code, 0, first.stderr);
    assert.equal((await runJsonOf(gpuOut)).backend, "webgpu");
    await Deno.remove(`${gpuOut}/shards/s000001.msgpack`);
    const again = await run(save(f, gpuOut, FLAGS));
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /1 shards written, 2 already there/);
    assert.equal(await readAll(f, gpuOut), 8);
  },
});

Deno.test("a run.json without a backend (written before it was recorded) is continued as it is, with one note", async () => {
  const f = await fixture(8, 4, 60);
  const out = `${f.dir}/out`;
  await saveInProcess(f, out, CPU);
  const runJson = await runJsonOf(out);
  delete runJson.backend;
  const old = JSON.stringify(runJson, null, 2) + "\n";
  await Deno.writeTextFile(`${out}/run.json`, old);
  await Deno.remove(`${out}/shards/s000000.msgpack`);
  const r = await run(save(f, out, [...FLAGS, "--cpu"]));
  assert.equal(r.code, 0, r.stderr);
  const notes = r.stderr.split("\n").filter((l) => l.includes("note:"));
  assert.equal(notes.length, 1, r.stderr);
  assert.match(notes[0], /run\.json does not record a backend .*continuing on cpu unchecked/);
  assert.equal(await Deno.readTextFile(`${out}/run.json`), old);
  assert.equal(await readAll(f, out), 8);
});
