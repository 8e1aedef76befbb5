import assert from "node:assert/strict";
import { unpackMultiple } from "msgpackr";
import { SparsekdError } from "../src/errors.ts";
import { f16ToF32, f32ToF16 } from "../src/format/f16.ts";
import type { IndexDtype, RunJson, ValueDtype } from "../src/format/types.ts";
import { manifestPath, shardPath } from "../src/format/layout.ts";
import { crc32c, crc32cToBase64 } from "../src/format/crc32c.ts";
import { makeManifest, writeManifest } from "../src/format/manifest.ts";
import {
  checkRunCompatible,
  ensureRunJson,
  makeRunJson,
  readRunJson,
  runDifference,
  validateRunJson,
  writeRunJson,
} from "../src/format/run_json.ts";
import { decodeShard, readShards } from "../src/format/shard_reader.ts";
import { createShardWriter, type ShardRecordInput, shardWriterOptions } from "../src/format/shard_writer.ts";
import { openLocalStore } from "../src/store/local.ts";
import { ObjectExistsError } from "../src/store/store.ts";
import { type TestRng as Rng, withSeed } from "./_rng.ts";
import { chunked } from "./_helpers.ts";

function randomRun(rng: Rng, indexDtype: IndexDtype, valueDtype: ValueDtype): RunJson {
  const vocabSize = indexDtype === "u16" ? 1000 + rng.int(64537) : 65537 + rng.int(200000);
  const sequencesPerShard = 1 + rng.int(4);
  return makeRunJson({
    vocabSize,
    k: 1 + rng.int(8),
    seqLen: 1 + rng.int(12),
    valueDtype,
    lseTemperatures: Array.from({ length: 1 + rng.int(3) }, () => 0.25 + rng.int(16) / 4),
    sequences: sequencesPerShard * (1 + rng.int(3)) - rng.int(sequencesPerShard),
    sequencesPerShard,
    teacher: { fingerprint: `t${rng.u32()}`, description: "test" },
    data: { fingerprint: `d${rng.u32()}` },
  });
}

function randomRecord(rng: Rng, run: RunJson, seq: number): ShardRecordInput {
  const L = run.seqLen, K = run.k, T = run.lseTemperatures.length;
  const idx = Uint32Array.from({ length: L * K }, () => rng.int(run.vocabSize));
  if (run.vocabSize > 65536) idx[0] = run.vocabSize - 1; // an id ≥ 65,536
  const val = Float32Array.from({ length: L * K }, () => (rng.uniform() - 0.7) * 10 ** rng.int(6));
  val[0] = -1e30, val[val.length - 1] = 7e4; // large negative, and above float16's range
  return {
    seq,
    tokens: Uint32Array.from({ length: L }, () => rng.u32()),
    idx,
    val,
    lse: Float32Array.from({ length: L * T }, () => (rng.uniform() - 0.5) * 1e4),
  };
}

async function writeShardBytes(
  run: RunJson,
  shard: number,
  records: ShardRecordInput[],
): Promise<Uint8Array> {
  const writer = createShardWriter(shardWriterOptions(run, shard, 7));
  const out = new Response(writer.readable).bytes();
  out.catch(() => {}); // a writer error surfaces through the writes below
  const w = writer.writable.getWriter();
  for (const r of records) await w.write(r);
  await w.close();
  return await out;
}

async function drain(it: AsyncGenerator<unknown, unknown>) {
  let r = await it.next();
  while (!r.done) r = await it.next();
  return r.value;
}

function recordsOf(rng: Rng, run: RunJson, shard: number): ShardRecordInput[] {
  const start = shard * run.sequencesPerShard;
  const end = Math.min(start + run.sequencesPerShard, run.sequences);
  return Array.from({ length: end - start }, (_, i) => randomRecord(rng, run, start + i));
}

for (const indexDtype of ["u16", "u32"] as const) {
  for (const valueDtype of ["f32", "f16"] as const) {
    Deno.test(`shard writer → reader round-trips bit-exactly (${indexDtype}, ${valueDtype}) over random chunking`, () =>
      withSeed(`roundtrip ${indexDtype} ${valueDtype}`, async (rng) => {
        for (let trial = 0; trial < 5; trial++) {
          const run = randomRun(rng, indexDtype, valueDtype);
          const shard = rng.int(Math.ceil(run.sequences / run.sequencesPerShard));
          const input = recordsOf(rng, run, shard);
          const bytes = await writeShardBytes(run, shard, input);
          assert.deepEqual(
            await writeShardBytes(run, shard, input),
            bytes,
            "the same input gives the same bytes",
          );
          const it = decodeShard(chunked(bytes, rng, [50, 5000]), { where: "mem://s", run, shard });
          const got = [];
          let step = await it.next();
          for (; !step.done; step = await it.next()) got.push(step.value);
          const summary = step.value;
          assert.equal(summary.records, input.length);
          assert.equal(summary.tokens, input.length * run.seqLen);
          assert.equal(summary.bytes, bytes.length);
          assert.equal(summary.crc32c, crc32cToBase64(crc32c(bytes)));
          assert.equal(summary.header.host, 7);
          for (const [i, r] of got.entries()) {
            const want = input[i];
            assert.equal(r.seq, want.seq);
            assert.deepEqual(r.tokens, want.tokens);
            assert.ok(r.idx instanceof (indexDtype === "u16" ? Uint16Array : Uint32Array));
            assert.deepEqual([...r.idx], [...want.idx]);
            const wantVal = valueDtype === "f16" ? f16ToF32(f32ToF16(want.val as Float32Array)) : want.val;
            assert.deepEqual(new Uint32Array(r.val.buffer), new Uint32Array(wantVal.buffer));
            assert.deepEqual(new Uint32Array(r.lse.buffer), new Uint32Array(want.lse.buffer));
          }
          // an independent MessagePack decoder sees the documented structure
          const values = unpackMultiple(bytes.slice()) as Record<string, unknown>[];
          assert.equal(values.length, input.length + 2);
          assert.deepEqual(Object.keys(values[0]), [
            "format",
            "version",
            "shard",
            "host",
            "vocabSize",
            "k",
            "seqLen",
            "indexDtype",
            "valueDtype",
            "lseTemperatures",
          ]);
          assert.equal(values[0].shard, shard);
          assert.deepEqual(values[0].lseTemperatures, run.lseTemperatures);
          assert.deepEqual(Object.keys(values[1]), ["seq", "tokens", "idx", "val", "lse"]);
          assert.deepEqual(values.at(-1), {
            end: true,
            records: input.length,
            tokens: input.length * run.seqLen,
          });
        }
      }));
  }
}

function expectError(re: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof SparsekdError, `not a SparsekdError: ${err}`);
    assert.ok(!err.message.includes("\n"), "one line");
    assert.match(err.message, re);
    return true;
  };
}

Deno.test("a shard truncated at any byte is a one-line error naming the shard and the byte offset", () =>
  withSeed("truncation", async (rng) => {
    const run = randomRun(rng, "u16", "f16");
    const bytes = await writeShardBytes(run, 0, recordsOf(rng, run, 0));
    const cuts = new Set([0, 1, bytes.length - 1, bytes.length - 3]);
    for (let i = 0; i < 60; i++) cuts.add(rng.int(bytes.length));
    for (const n of cuts) {
      await assert.rejects(
        drain(
          decodeShard(chunked(bytes.slice(0, n), rng, [50, 5000]), {
            where: "out/shards/s000000.msgpack",
            run,
            shard: 0,
          }),
        ),
        expectError(new RegExp(`^(truncated|corrupt) shard out/shards/s000000\\.msgpack at byte \\d+`)),
        `cut at ${n}`,
      );
    }
  }));

Deno.test("corrupt shards are refused: bad header, wrong shard, wrong seq, bad trailer, extra bytes, CRC mismatch", () =>
  withSeed("corruption", async (rng) => {
    const run = makeRunJson({
      vocabSize: 300,
      k: 2,
      seqLen: 3,
      valueDtype: "f32",
      lseTemperatures: [1],
      sequences: 6,
      sequencesPerShard: 3,
      teacher: { fingerprint: "t" },
      data: { fingerprint: "d" },
    });
    const bytes = await writeShardBytes(run, 1, recordsOf(rng, run, 1));
    const where = "out/shards/s000001.msgpack";
    const decode = (b: Uint8Array, extra: object = {}) =>
      drain(decodeShard(chunked(b, rng, [50, 5000]), { where, run, shard: 1, ...extra }));
    await decode(bytes); // the intact shard is fine
    // a header that is not a map
    const b1 = bytes.slice();
    b1[0] = 0x91;
    await assert.rejects(decode(b1), expectError(/^corrupt shard out\/shards\/s000001\.msgpack at byte \d+/));
    // an invalid byte right at the start
    const b2 = bytes.slice();
    b2[0] = 0xc1;
    await assert.rejects(decode(b2), expectError(/at byte 0: invalid byte 0xc1/));
    // the header of another shard
    await assert.rejects(
      decode(bytes, { shard: 0 }),
      expectError(/at byte 0: header says shard 1, expected 0/),
    );
    // a header that disagrees with run.json
    await assert.rejects(
      decode(bytes, { run: { ...run, k: 3 } }),
      expectError(/at byte 0: header k 2 differs from run\.json's 3/),
    );
    // extra bytes after the trailer
    const b3 = new Uint8Array(bytes.length + 2);
    b3.set(bytes);
    b3[bytes.length] = 0x01;
    b3[bytes.length + 1] = 0xc4; // a bin8 that never ends
    await assert.rejects(
      decode(b3),
      expectError(new RegExp(`at byte ${bytes.length}: data after the trailer`)),
    );
    // a flipped bit in a logit is caught by the CRC32C of the manifest entry
    const entry = { bytes: bytes.length, crc32c: crc32cToBase64(crc32c(bytes)), records: 3, tokens: 9 };
    await decode(bytes, { expected: entry });
    const b4 = bytes.slice();
    b4[bytes.length - 30] ^= 0x10;
    await assert.rejects(
      decode(b4, { expected: entry }),
      expectError(/CRC32C of bytes \[0, \d+\) is .* the manifest says/),
    );
    // records of another range (the shard written as shard 1, read against a run where shard 1 starts at 2)
    await assert.rejects(
      decode(bytes, { run: { ...run, sequencesPerShard: 2, sequences: 6 } }),
      expectError(/seq 3 where seq 2 belongs/),
    );
  }));

Deno.test("the shard writer refuses wrong shapes, ids outside the vocabulary, and records outside its range", () =>
  withSeed("writer checks", async (rng) => {
    const run = randomRun(rng, "u16", "f32");
    const good = recordsOf(rng, run, 0);
    const attempt = async (records: ShardRecordInput[]) => await writeShardBytes(run, 0, records);
    await attempt(good);
    await assert.rejects(
      attempt([{ ...good[0], tokens: new Uint32Array(run.seqLen + 1) }, ...good.slice(1)]),
      /tokens has/,
    );
    const badIdx = Uint32Array.from(good[0].idx);
    badIdx[rng.int(badIdx.length)] = run.vocabSize;
    await assert.rejects(attempt([{ ...good[0], idx: badIdx }, ...good.slice(1)]), /is not below vocabSize/);
    await assert.rejects(attempt([{ ...good[0], seq: good[0].seq + 1 }]), /belongs/);
    if (good.length > 1) await assert.rejects(attempt(good.slice(0, -1)), /closed after/);
  }));

Deno.test("a shard whose writer fails midway leaves no object in the local store", () =>
  withSeed("failed shard", async (rng) => {
    const dir = await Deno.makeTempDir();
    try {
      const store = await openLocalStore(dir);
      const run = randomRun(rng, "u32", "f16");
      const records = recordsOf(rng, run, 0);
      const object = await store.create(shardPath(0));
      const writer = createShardWriter(shardWriterOptions(run, 0, 0));
      const piped = writer.readable.pipeTo(object.writable);
      const w = writer.writable.getWriter();
      await w.write(records[0]);
      await assert.rejects(w.write({ ...records[0], seq: records[0].seq + 5 }), /belongs/);
      await assert.rejects(piped);
      await assert.rejects(object.done);
      assert.equal(await store.exists(shardPath(0)), false);
      assert.deepEqual([...Deno.readDirSync(`${dir}/shards`)], []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }));

Deno.test("a header whose temperatures were stored as float32 still matches run.json", () =>
  withSeed("float32 temperatures", async (rng) => {
    const run = makeRunJson({
      vocabSize: 50,
      k: 2,
      seqLen: 2,
      valueDtype: "f32",
      lseTemperatures: [0.1, 0.7],
      sequences: 1,
      sequencesPerShard: 1,
      teacher: { fingerprint: "t" },
      data: { fingerprint: "d" },
    });
    const asF32 = { ...run, lseTemperatures: run.lseTemperatures.map(Math.fround) };
    const bytes = await writeShardBytes(asF32, 0, recordsOf(rng, run, 0));
    await drain(decodeShard(chunked(bytes, rng, [50, 5000]), { where: "x", run, shard: 0 }));
    await assert.rejects(
      drain(
        decodeShard(chunked(bytes, rng, [50, 5000]), {
          where: "x",
          run: { ...run, lseTemperatures: [0.1, 0.8] },
          shard: 0,
        }),
      ),
      /lseTemperatures/,
    );
  }));

Deno.test("readShards streams a whole local OUT, checks manifests, selects shards, and reports missing ones", () =>
  withSeed("readShards", async (rng) => {
    const dir = await Deno.makeTempDir();
    try {
      const store = await openLocalStore(dir, { create: true });
      const run = randomRun(rng, rng.int(2) ? "u16" : "u32", rng.int(2) ? "f16" : "f32");
      await writeRunJson(store, run);
      await assert.rejects(writeRunJson(store, run), ObjectExistsError);
      const total = Math.ceil(run.sequences / run.sequencesPerShard);
      const all: ShardRecordInput[][] = [];
      const entries = [];
      for (let j = 0; j < total; j++) {
        const records = recordsOf(rng, run, j);
        all.push(records);
        const object = await store.create(shardPath(j));
        const writer = createShardWriter(shardWriterOptions(run, j, 0));
        const piped = writer.readable.pipeTo(object.writable);
        const w = writer.writable.getWriter();
        for (const r of records) await w.write(r);
        await w.close();
        await piped;
        const info = await object.done;
        entries.push({
          shard: j,
          path: info.path,
          bytes: info.size,
          crc32c: info.crc32c,
          records: records.length,
          tokens: records.length * run.seqLen,
        });
      }
      await writeManifest(store, makeManifest(0, entries));
      const seen: number[] = [];
      for await (const r of readShards(`file://${dir}`)) {
        seen.push(r.seq);
        assert.deepEqual(r.tokens, all[r.shard][r.seq - r.shard * run.sequencesPerShard].tokens);
      }
      assert.deepEqual(seen, Array.from({ length: run.sequences }, (_, i) => i));
      const last = total - 1;
      const sub: number[] = [];
      for await (const r of readShards(store, { shards: [last] })) sub.push(r.seq);
      assert.deepEqual(sub, all[last].map((r) => r.seq));
      await assert.rejects(
        drain(readShards(dir, { shards: [total] })),
        expectError(/shard \d+ does not exist/),
      );
      // replace a shard by the bytes of a shard with other logits: same size, other CRC
      const other = await writeShardBytes(run, last, recordsOf(rng, run, last));
      await store.delete(shardPath(last));
      await store.writeBytes(shardPath(last), other);
      await assert.rejects(
        drain(readShards(dir, { shards: [last] })),
        expectError(/CRC32C .* the manifest says/),
      );
      await store.delete(shardPath(last));
      await assert.rejects(drain(readShards(dir)), expectError(/s\d{6}\.msgpack does not exist/));
      let count = 0;
      for await (const _ of readShards(dir, { skipMissing: true })) count++;
      assert.equal(count, run.sequences - all[last].length);
      assert.equal(await readRunJson(store).then((r) => r.k), run.k);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }));

Deno.test("run.json: compatibility names the first differing field; ensureRunJson creates once and then checks", () =>
  withSeed("run.json", async (rng) => {
    const run = randomRun(rng, "u16", "f16");
    checkRunCompatible(run, structuredClone(run));
    assert.throws(
      () => checkRunCompatible(run, { ...run, teacher: { fingerprint: "other" } }, "gs://b/out"),
      expectError(
        /^gs:\/\/b\/out\/run\.json belongs to another run: teacher\.fingerprint is "t\d+" there and "other" here \(to start over, delete gs:\/\/b\/out or write to another output; /,
      ),
    );
    assert.throws(
      () => checkRunCompatible(run, { ...run, k: run.k + 1 }),
      expectError(/: k is \d+ there and \d+ here \(to start over/),
    );
    assert.throws(
      () => checkRunCompatible(run, { ...run, data: { fingerprint: "x" }, k: run.k + 1 }),
      expectError(/data\.fingerprint/),
    );
    assert.throws(
      () => makeRunJson({ ...run, k: run.vocabSize + 1 }),
      expectError(/k \d+ exceeds vocabSize/),
    );
    assert.equal(makeRunJson({ ...run, vocabSize: 65536 }).indexDtype, "u16");
    assert.equal(makeRunJson({ ...run, vocabSize: 65537 }).indexDtype, "u32");
    const dir = await Deno.makeTempDir();
    try {
      const store = await openLocalStore(dir);
      assert.deepEqual(await ensureRunJson(store, run), run);
      assert.deepEqual(await ensureRunJson(store, structuredClone(run)), run);
      await assert.rejects(
        ensureRunJson(store, { ...run, seqLen: run.seqLen + 1 }),
        expectError(/seqLen is/),
      );
      await Deno.writeTextFile(`${dir}/manifests.json`, "{");
      await Deno.remove(`${dir}/run.json`);
      await Deno.writeTextFile(`${dir}/run.json`, "{ not json");
      await assert.rejects(readRunJson(store), expectError(/run\.json is not valid JSON/));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }));

Deno.test("run.json: backend is recorded when given, checked last, and not compared when either side lacks it", () =>
  withSeed("run.json backend", (rng) => {
    const old = randomRun(rng, "u16", "f32");
    assert.equal("backend" in old, false);
    const cpu = makeRunJson({ ...old, backend: "cpu" });
    const gpu = makeRunJson({ ...old, backend: "webgpu" });
    assert.equal(cpu.backend, "cpu");
    assert.equal(Object.keys(cpu).at(-1), "backend");
    assert.equal(runDifference(cpu, gpu), 'backend is "cpu" there and "webgpu" here');
    assert.throws(
      () => checkRunCompatible(gpu, cpu, "out"),
      expectError(/^out\/run\.json belongs to another run: backend is "webgpu" there and "cpu" here /),
    );
    // another field that differs is named first
    assert.match(runDifference(cpu, { ...gpu, k: gpu.k + 1 })!, /^k is/);
    // a run.json written before the backend was recorded is accepted by either backend, and the reverse
    assert.equal(runDifference(old, cpu), null);
    assert.equal(runDifference(gpu, old), null);
    assert.deepEqual(validateRunJson(JSON.parse(JSON.stringify(gpu)), "x"), gpu);
    assert.throws(
      () => validateRunJson({ ...old, backend: "tpu" }, "out/run.json"),
      expectError(/^out\/run\.json: backend must be "webgpu" or "cpu" when present \(got "tpu"\)$/),
    );
    assert.throws(() => validateRunJson({ ...old, backend: null }, "r"), expectError(/backend must be/));
  }));

Deno.test("manifest paths and shard paths are zero-padded as the format says", () => {
  assert.equal(shardPath(12), "shards/s000012.msgpack");
  assert.equal(manifestPath(3), "manifests/h00003.json");
});
