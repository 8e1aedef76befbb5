/**
 * save-topk with sampled targets: the shards hold the sampler's draws for every position, the bytes do not
 * depend on the host count, a resume or a rerun, `k = 0` stores samples only, the summary counts the samples,
 * and every bad setting (and a resume with other sample settings) is one line.
 */
import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import { decodeMsgpackAt } from "../src/format/msgpack_decode.ts";
import { readShards } from "../src/format/shard_reader.ts";
import { readRunJson } from "../src/format/run_json.ts";
import { sampleReference } from "../src/kernels/sample_reference.ts";
import { checkSaveOptions } from "../src/save/save_topk.ts";
import { readTopKFolder } from "../src/report/topk_folder.ts";
import { openStore } from "../src/store/open_store.ts";
import {
  assertSameFiles,
  expectOneLineError,
  type Fixture,
  fixture,
  save,
  saveInProcess,
  snapshot,
} from "./_save_fixtures.ts";

/** Every record of OUT has the CPU sampler's draws of the fixture's logits at its positions. */
async function checkSamples(f: Fixture, out: string, n: number, temperature: number, seed: number) {
  let records = 0;
  for await (const r of readShards(out)) {
    const logits = f.logits.subarray(r.seq * f.L * f.V, (r.seq + 1) * f.L * f.V);
    const want = sampleReference(logits, f.L, f.V, { n, temperature, seed, position0: r.seq * f.L });
    assert.deepEqual([...r.sampleLen!], [...want.len], `seq ${r.seq} sampleLen`);
    assert.deepEqual([...r.sampleIdx!], [...want.idx], `seq ${r.seq} sampleIdx`);
    assert.deepEqual([...r.sampleHits!], [...want.hits], `seq ${r.seq} sampleHits`);
    assert.deepEqual([...r.sampleVal!], [...want.val], `seq ${r.seq} sampleVal`);
    records++;
  }
  assert.equal(records, f.S);
}

const sampleOpts = { k: 4, sample: 16, sampleTemperature: 2, seed: 77, sequencesPerShard: 3, batchSize: 2 };

Deno.test("save-topk --sample stores the sampler's draws for every position, on the GPU and on the CPU", async () => {
  const f = await fixture(7, 5, 300);
  for (const cpu of [false, true]) {
    const out = `${f.dir}/out-${cpu ? "cpu" : "gpu"}`;
    const s = await saveInProcess(f, out, { ...sampleOpts, cpu });
    const run = await readRunJson(await openStore(out));
    assert.deepEqual(run.sample, { n: 16, temperature: 2, seed: 77 });
    assert.deepEqual(run.lseTemperatures, [1, 2], "the sample temperature is added to the logsumexps");
    await checkSamples(f, out, 16, 2, 77);
    assert.ok(s.sampleDistinctPerToken >= 1 && s.sampleDistinctPerToken <= 16);
  }
});

Deno.test("save-topk --sample writes the same bytes for 1 or 3 hosts, after a resume and on a rerun", async () => {
  const f = await fixture(10, 4, 200);
  const one = `${f.dir}/one`;
  await saveInProcess(f, one, sampleOpts);
  const expected = await snapshot(`${one}/shards`);

  // (a shard's header names the host that wrote it: everything after the header must be the same bytes)
  const three = `${f.dir}/three`;
  for (const index of [2, 0, 1]) await saveInProcess(f, three, { ...sampleOpts, host: { index, count: 3 } });
  const got = await snapshot(`${three}/shards`);
  assert.deepEqual([...got.keys()].sort(), [...expected.keys()].sort());
  for (const [name, bytes] of expected) {
    const other = got.get(name)!;
    const a = bytes.subarray(decodeMsgpackAt(bytes, 0).end),
      b = other.subarray(decodeMsgpackAt(other, 0).end);
    assert.ok(a.length === b.length && a.every((x, i) => x === b[i]), `${name}: records differ`);
  }

  // a resume that lost two shards rewrites them byte for byte
  await Deno.remove(`${one}/shards/s000001.msgpack`);
  await Deno.remove(`${one}/shards/s000003.msgpack`);
  const resumed = await saveInProcess(f, one, sampleOpts);
  assert.equal(resumed.shardsWritten, 2);
  assertSameFiles(expected, await snapshot(`${one}/shards`));

  const again = `${f.dir}/again`;
  await saveInProcess(f, again, sampleOpts);
  assertSameFiles(await snapshot(one), await snapshot(again));
});

Deno.test("save-topk --k 0 --sample stores samples only, and the summary's bytes per token count them", async () => {
  const f = await fixture(4, 6, 120);
  const only = await saveInProcess(f, `${f.dir}/only`, { k: 0, sample: 8, sequencesPerShard: 2 });
  const run = await readRunJson(await openStore(`${f.dir}/only`));
  assert.equal(run.k, 0);
  assert.deepEqual(run.lseTemperatures, [1], "t = 1 is already stored");
  for await (const r of readShards(`${f.dir}/only`)) {
    assert.equal(r.idx.length, 0);
    assert.equal(r.lse.length, f.L);
    assert.equal(r.sampleLen!.length, f.L);
  }
  await checkSamples(f, `${f.dir}/only`, 8, 1, 0);
  const folder = await readTopKFolder(`${f.dir}/only`); // the report reads a samples-only folder
  assert.deepEqual([folder.ks, folder.mass, folder.positions], [[], [], f.S * f.L]);
  const plain = await saveInProcess(f, `${f.dir}/plain`, { k: 4, sequencesPerShard: 2 });
  const both = await saveInProcess(f, `${f.dir}/both`, { k: 4, sample: 8, sequencesPerShard: 2 });
  let shardBytes = 0;
  for await (const e of Deno.readDir(`${f.dir}/both/shards`)) {
    shardBytes += (await Deno.stat(`${f.dir}/both/shards/${e.name}`)).size;
  }
  assert.equal(both.bytes, shardBytes);
  assert.equal(both.bytesPerToken, shardBytes / (f.S * f.L));
  // per position: a u16 length plus (u16 id, u16 hit, f32 logit) per distinct id, plus the four keys
  const perToken = 2 + 8 * both.sampleDistinctPerToken;
  assert.ok(
    both.bytesPerToken - plain.bytesPerToken >= perToken,
    `${both.bytesPerToken} vs ${plain.bytesPerToken}`,
  );
  assert.ok(only.bytesPerToken < both.bytesPerToken);
});

Deno.test("save-topk refuses to resume with other sample settings, and runs without them keep their run.json", async () => {
  const f = await fixture(4, 3, 80);
  const out = `${f.dir}/out`;
  await saveInProcess(f, out, sampleOpts);
  const before = await snapshot(out);
  const refused = [
    [
      { ...sampleOpts, seed: 78 },
      /belongs to another run: sample is \{"n":16,"temperature":2,"seed":77\} there and \{"n":16,"temperature":2,"seed":78\} here/,
    ],
    [{ ...sampleOpts, sample: 17 }, /belongs to another run: sample is/],
    [
      { ...sampleOpts, sampleTemperature: 1 },
      /belongs to another run: lseTemperatures is \[1,2\] there and \[1\] here/,
    ],
    [
      { k: 4, sequencesPerShard: 3, batchSize: 2 },
      /belongs to another run: lseTemperatures|belongs to another run: sample/,
    ],
  ] as const;
  for (const [opts, re] of refused) {
    await assert.rejects(saveInProcess(f, out, opts), (err) => {
      assert.ok(err instanceof SparsekdError);
      assert.match(err.message, re);
      return true;
    });
  }
  assertSameFiles(before, await snapshot(out));
  // without --sample, run.json has no sample key at all (the bytes of a run from before sampling existed)
  await saveInProcess(f, `${f.dir}/plain`, { k: 4 });
  assert.ok(!(await Deno.readTextFile(`${f.dir}/plain/run.json`)).includes("sample"));
});

Deno.test("save-topk sample settings are checked before anything is written, each in one line", async () => {
  const f = await fixture(2, 2, 40);
  const out = `${f.dir}/out`;
  const bad = [
    [{ k: 4, sample: 0 }, /^sample must be an integer from 1 to 1024 draws per position .*got 0\)$/],
    [{ k: 4, sample: 1025 }, /^sample must be an integer from 1 to 1024/],
    [{ k: 4, sample: 4, sampleTemperature: 0 }, /^sampleTemperature must be a finite number > 0 \(got 0\)$/],
    [
      { k: 4, sample: 4, sampleTemperature: -2 },
      /^sampleTemperature must be a finite number > 0 \(got -2\)$/,
    ],
    [{ k: 4, sample: 4, seed: -1 }, /^seed must be an integer from 0 to 2\^53 - 1 \(got -1\)$/],
    [{ k: 0 }, /^k 0 stores no top-k: give sample N as well/],
    [{ k: 4, sampleTemperature: 2 }, /^sampleTemperature needs sample N/],
    [{ k: 4, seed: 3 }, /^seed needs sample N/],
  ] as const;
  for (const [opts, re] of bad) {
    await assert.rejects(saveInProcess(f, out, opts), (err) => {
      assert.ok(err instanceof SparsekdError, String(err));
      assert.match(err.message, re);
      assert.ok(!err.message.includes("\n"));
      return true;
    });
  }
  await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
});

Deno.test("save-topk refuses to sample a sparse teacher (top-k only) in one line", () => {
  const teacher = { kind: "sparse", vocabSize: 10, fingerprint: "x", description: "api" };
  const source = { seqLen: 4 };
  assert.throws(
    () =>
      checkSaveOptions(
        {
          teacher,
          source,
          k: 2,
          sample: { n: 4, temperature: 1, seed: 0 },
          batchSize: 1,
          sequencesPerShard: 1,
          valueDtype: "f32",
          lseTemperatures: [1],
          host: { index: 0, count: 1 },
        } as unknown as Parameters<typeof checkSaveOptions>[0],
      ),
    /^SparsekdError: sample needs a teacher that returns full logits: a sparse teacher's top-k cannot be sampled from$/,
  );
});

Deno.test("the save-topk command prints one error line for --sample 0, --sample 2000, --sample-temperature 0 and --k 0", async () => {
  const f = await fixture(2, 2, 40);
  const out = `${f.dir}/out`;
  await expectOneLineError(
    save(f, out, ["--sample", "0"]),
    /^error: --sample must be an integer from 1 to 1024/,
  );
  await expectOneLineError(
    save(f, out, ["--sample", "2000"]),
    /^error: --sample must be an integer from 1 to 1024 .*got 2000\)/,
  );
  await expectOneLineError(
    save(f, out, ["--sample", "4", "--sample-temperature", "0"]),
    /^error: --sample-temperature must be a finite number > 0/,
  );
  await expectOneLineError(save(f, out, ["--k", "0"]), /^error: --k 0 stores no top-k/);
  await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
});
