/**
 * save-topk keeps one run's shards on one backend: run.json records it, a resume or a second host on the
 * other backend is refused with one line before anything is written, the same backend resumes, and a
 * run.json that records no backend is continued with a note.
 */
import assert from "node:assert/strict";
import { readShards } from "../src/format/shard_reader.ts";
import { type Fixture, fixture, run, save } from "./_save_fixtures.ts";

const FLAGS = ["--k", "4", "--sequences-per-shard", "3", "--batch-size", "2"];
const gpu = (globalThis.navigator as { gpu?: GPU }).gpu;
const noAdapter = !(gpu && (await gpu.requestAdapter()));

/** Every file under `dir` (relative path → bytes), to show that a refused run wrote nothing. */
async function snapshot(dir: string, base = dir, into = new Map<string, Uint8Array>()) {
  for await (const e of Deno.readDir(dir)) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) await snapshot(path, base, into);
    else into.set(path.slice(base.length + 1), await Deno.readFile(path));
  }
  return into;
}

async function runJsonOf(out: string) {
  return JSON.parse(await Deno.readTextFile(`${out}/run.json`));
}

async function errorLines(cmd: Deno.Command) {
  const r = await run(cmd);
  assert.notEqual(r.code, 0, `expected a failure, got success:\n${r.stderr}`);
  assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace expected:\n${r.stderr}`);
  return r.stderr.split("\n").filter((l) => l.startsWith("error: ") && !l.includes("XDG_RUNTIME_DIR"));
}

async function countRecords(f: Fixture, out: string) {
  let n = 0;
  for await (const r of readShards(out)) {
    assert.deepEqual([...r.tokens], [...f.ids.subarray(r.seq * f.L, (r.seq + 1) * f.L)]);
    n++;
  }
  return n;
}

Deno.test("a --cpu run records backend cpu in run.json and a --cpu resume continues it", async () => {
  const f = await fixture(8, 4, 60);
  const out = `${f.dir}/out`;
  const first = await run(save(f, out, [...FLAGS, "--cpu"]));
  assert.equal(first.code, 0, first.stderr);
  assert.equal((await runJsonOf(out)).backend, "cpu");
  const s1 = `${out}/shards/s000001.msgpack`;
  const good = await Deno.readFile(s1);
  await Deno.remove(s1);
  const again = await run(save(f, out, [...FLAGS, "--cpu"]));
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /1 shards written, 2 already there/);
  assert.deepEqual(await Deno.readFile(s1), good);
  assert.equal(await countRecords(f, out), 8);
});

Deno.test("a run.json that records webgpu refuses a --cpu host with one line naming both backends, nothing written", async () => {
  const f = await fixture(8, 4, 60);
  const out = `${f.dir}/out`;
  assert.equal((await run(save(f, out, [...FLAGS, "--cpu"]))).code, 0);
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
    assert.equal((await run(save(f, out, [...FLAGS, "--cpu"]))).code, 0);
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
    assert.equal(await countRecords(f, gpuOut), 8);
  },
});

Deno.test("a run.json without a backend (written before it was recorded) is continued as it is, with one note", async () => {
  const f = await fixture(8, 4, 60);
  const out = `${f.dir}/out`;
  assert.equal((await run(save(f, out, [...FLAGS, "--cpu"]))).code, 0);
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
  assert.equal(await countRecords(f, out), 8);
});
