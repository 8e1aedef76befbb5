/**
 * save-topk end to end, through the real task: shards match the CPU reference, resume after a kill gives
 * the bytes of an uninterrupted run, hosts in parallel make one complete set, and bad input ends in one line.
 */
import assert from "node:assert/strict";
import { topKReference } from "../src/kernels/topk_reference.ts";
import { readShards } from "../src/format/shard_reader.ts";
import { openStore } from "../src/store/open_store.ts";
import { type Fixture, fixture, run, save } from "./_save_fixtures.ts";

/** Every file under `dir` except temporary ones, with its bytes. */
async function snapshot(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  async function walk(rel: string) {
    for await (const e of Deno.readDir(`${dir}/${rel}`)) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(p);
      else if (!e.name.includes(".tmp")) out.set(p, await Deno.readFile(`${dir}/${p}`));
    }
  }
  await walk("");
  return out;
}

function assertSameFiles(a: Map<string, Uint8Array>, b: Map<string, Uint8Array>) {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, v] of a) assert.ok(equalBytes(v, b.get(k)!), `${k} differs`);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Checks every record of OUT against the CPU reference top-k of the fixture's logits. */
async function checkAgainstReference(f: Fixture, out: string, k: number, temps = [1]) {
  const store = await openStore(out);
  const seen = new Set<number>();
  for await (const r of readShards(store)) {
    seen.add(r.seq);
    const rowLogits = f.logits.subarray(r.seq * f.L * f.V, (r.seq + 1) * f.L * f.V);
    const ref = topKReference(rowLogits, f.L, f.V, k, { temperatures: temps });
    assert.deepEqual([...r.tokens], [...f.ids.subarray(r.seq * f.L, (r.seq + 1) * f.L)]);
    assert.deepEqual([...r.idx], [...ref.indices], `seq ${r.seq} ids`);
    assert.deepEqual([...r.val], [...ref.values], `seq ${r.seq} values`);
    for (let i = 0; i < ref.logsumexp.length; i++) {
      const want = ref.logsumexp[i];
      assert.ok(Math.abs(r.lse[i] - want) <= Math.max(1e-5, 1e-6 * Math.abs(want)), `seq ${r.seq} lse ${i}`);
    }
  }
  assert.equal(seen.size, f.S, "every sequence is in the set exactly once");
}

Deno.test("save-topk writes shards whose records equal the reference top-k, with run.json and a manifest", async () => {
  const f = await fixture(21, 8, 700);
  const out = `${f.dir}/out`;
  const r = await run(
    save(f, out, [
      "--k",
      "12",
      "--sequences-per-shard",
      "5",
      "--batch-size",
      "3",
      "--lse-temperatures",
      "1,2",
    ]),
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /bytes\/token/);
  assert.match(r.stdout, /GPU waited/);
  const run0 = JSON.parse(await Deno.readTextFile(`${out}/run.json`));
  assert.equal(run0.k, 12);
  assert.equal(run0.sequences, 21);
  assert.deepEqual(run0.lseTemperatures, [1, 2]);
  const manifest = JSON.parse(await Deno.readTextFile(`${out}/manifests/h00000.json`));
  assert.deepEqual(manifest.shards.map((s: { shard: number }) => s.shard), [0, 1, 2, 3, 4]);
  await checkAgainstReference(f, out, 12, [1, 2]);
});

Deno.test("save-topk run again on a finished OUT changes nothing", async () => {
  const f = await fixture(10, 4, 300);
  const out = `${f.dir}/out`;
  assert.equal((await run(save(f, out, ["--k", "4", "--sequences-per-shard", "3"]))).code, 0);
  const before = await snapshot(out);
  const again = await run(save(f, out, ["--k", "4", "--sequences-per-shard", "3"]));
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /0 shards written, 4 already there/);
  assertSameFiles(before, await snapshot(out));
});

Deno.test("save-topk killed at random moments and restarted ends with the bytes of an uninterrupted run", async () => {
  const f = await fixture(96, 16, 2000);
  const flags = ["--k", "32", "--sequences-per-shard", "4", "--batch-size", "2", "--value-dtype", "f16"];
  const shards = 96 / 4;
  const whole = `${f.dir}/whole`;
  assert.equal((await run(save(f, whole, flags))).code, 0);
  const expected = await snapshot(whole);

  // Each attempt is killed once a random number of shards exist, after a further random delay (so the kill
  // lands anywhere: between shards, inside a shard's write, before run.json, during the manifest).
  const out = `${f.dir}/killed`;
  const countShards = async () => {
    try {
      let n = 0;
      for await (const e of Deno.readDir(`${out}/shards`)) {
        if (e.name.endsWith(".msgpack") && !e.name.startsWith(".")) n++;
      }
      return n;
    } catch {
      return 0;
    }
  };
  let kills = 0;
  for (let attempt = 0; attempt < 4; attempt++) {
    const child = save(f, out, flags).spawn();
    const target = Math.min(shards - 2, (await countShards()) + Math.floor(Math.random() * 8));
    const exited = child.status.then(() => true);
    const killer = (async () => {
      while (!(await Promise.race([exited, new Promise<false>((r) => setTimeout(() => r(false), 10))]))) {
        if ((await countShards()) >= target) {
          await new Promise((r) => setTimeout(r, Math.random() * 150));
          try {
            child.kill("SIGKILL");
          } catch { /* it finished in the meantime */ }
          return;
        }
      }
    })();
    const status = await child.output();
    await killer;
    if (status.signal === "SIGKILL") kills++;
    if (status.success) break;
  }
  const last = await run(save(f, out, flags));
  assert.equal(last.code, 0, last.stderr);
  assert.ok(kills >= 1, "at least one run was killed");
  assertSameFiles(expected, await snapshot(out));
});

Deno.test("save-topk: two hosts in parallel make one complete set; a restart with another host count finishes it", async () => {
  const f = await fixture(30, 8, 500);
  const flags = ["--k", "8", "--sequences-per-shard", "3", "--batch-size", "2", "--host-count", "2"];
  const out = `${f.dir}/out`;
  const [a, b] = await Promise.all([
    run(save(f, out, [...flags, "--host-index", "0"])),
    run(save(f, out, flags, { BATCH_TASK_INDEX: "1" })),
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  const m0 = JSON.parse(await Deno.readTextFile(`${out}/manifests/h00000.json`));
  const m1 = JSON.parse(await Deno.readTextFile(`${out}/manifests/h00001.json`));
  assert.deepEqual(m0.shards.map((s: { shard: number }) => s.shard), [0, 2, 4, 6, 8]);
  assert.deepEqual(m1.shards.map((s: { shard: number }) => s.shard), [1, 3, 5, 7, 9]);
  await checkAgainstReference(f, out, 8);

  // A half-done set (only host 1 of 3 ran) is finished by one host restarted with --host-count 1.
  const out2 = `${f.dir}/out2`;
  const flags3 = ["--k", "8", "--sequences-per-shard", "3", "--batch-size", "2"];
  assert.equal((await run(save(f, out2, [...flags3, "--host-count", "3", "--host-index", "1"]))).code, 0);
  const fin = await run(save(f, out2, [...flags3, "--host-count", "1"]));
  assert.equal(fin.code, 0, fin.stderr);
  assert.match(fin.stdout, /7 shards written, 3 already there/);
  await checkAgainstReference(f, out2, 8);
});

async function expectOneLineError(cmd: Deno.Command, pattern: RegExp) {
  const r = await run(cmd);
  assert.notEqual(r.code, 0, `expected a failure, got success:\n${r.stderr}`);
  const errs = r.stderr.split("\n").filter((l) => l.startsWith("error: ") && !l.includes("XDG_RUNTIME_DIR"));
  assert.equal(errs.length, 1, `one error line expected:\n${r.stderr}`);
  assert.match(errs[0], pattern);
  assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace expected:\n${r.stderr}`);
  return r;
}

Deno.test("save-topk bad input: unknown flag, k out of range, bad npy, token id ≥ vocab", async () => {
  const f = await fixture(4, 4, 50);
  const out = `${f.dir}/out`;
  await expectOneLineError(save(f, out, ["--bogus"]), /bogus/);
  await expectOneLineError(save(f, out, ["--k", "0"]), /--k/);
  await expectOneLineError(save(f, out, ["--k", "51"]), /--k .*50/);
  await Deno.writeTextFile(`${f.dir}/bad.npy`, "not an npy file at all");
  await expectOneLineError(
    save(f, out, ["--teacher", `npy:${f.dir}/bad.npy`]),
    /bad\.npy/,
  );
  await expectOneLineError(
    save(f, out, ["--teacher", `npy:${f.dir}/missing.npy`]),
    /missing\.npy/,
  );
  const g = await fixture(4, 4, 50, (x) => (x.ids[2 * 4 + 3] = 50));
  await expectOneLineError(save(g, `${g.dir}/out`, ["--k", "4"]), /token id 50 at sequence 2, position 3/);
});

Deno.test("save-topk bad input: NaN logits name sequence and position, and leave no half-written shard", async () => {
  const f = await fixture(6, 4, 60, (x) => (x.logits[(3 * 4 + 2) * 60 + 17] = NaN));
  const out = `${f.dir}/out`;
  await expectOneLineError(
    save(f, out, ["--k", "5", "--sequences-per-shard", "2", "--batch-size", "1"]),
    /sequence 3, position 2/,
  );
  const files = [...(await snapshot(out)).keys()].sort();
  // Shard 0 (sequences 0–1) is complete; shard 1 (2–3) failed and must not exist, even partly.
  assert.deepEqual(files.filter((p) => p.startsWith("shards/")), ["shards/s000000.msgpack"]);
  for await (const e of Deno.readDir(`${out}/shards`)) {
    assert.ok(!e.name.includes(".tmp"), `leftover ${e.name}`);
  }
});

Deno.test("save-topk bad input: an OUT with another run.json, and an OUT that cannot be written", async () => {
  const f = await fixture(4, 4, 50);
  const out = `${f.dir}/out`;
  assert.equal((await run(save(f, out, ["--k", "4"]))).code, 0);
  const before = await snapshot(out);
  await expectOneLineError(save(f, out, ["--k", "5"]), /\bk\b/);
  const other = await fixture(4, 4, 50);
  await expectOneLineError(
    save(f, out, ["--teacher", `npy:${other.dir}/logits.npy`, "--k", "4"]),
    /fingerprint/,
  );
  assertSameFiles(before, await snapshot(out));
  await Deno.writeTextFile(`${f.dir}/file`, "x");
  await expectOneLineError(save(f, `${f.dir}/file/out`, ["--k", "4"]), /file\/out/);
});
