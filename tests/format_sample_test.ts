/**
 * Sampled targets in the format: the two conformance vectors (read exactly, re-encoded to the same bytes,
 * readable by msgpackr), bit-exact round trips on random records, and the one-line errors for every way a
 * record's or header's sample fields can be wrong.
 */
import assert from "node:assert/strict";
import { unpackMultiple } from "msgpackr";
import { SparsekdError } from "../src/errors.ts";
import { f16BitsToF32Bits, f16ToF32, f32ToF16 } from "../src/format/f16.ts";
import { shardPath } from "../src/format/layout.ts";
import { leBytes } from "../src/format/le_bytes.ts";
import { PackWriter } from "../src/format/msgpack_encode.ts";
import { makeRunJson, readRunJson, validateRunJson } from "../src/format/run_json.ts";
import { decodeShard, readShards } from "../src/format/shard_reader.ts";
import {
  createShardWriter,
  encodeShardHeader,
  encodeShardRecord,
  encodeShardTrailer,
  shardHeader,
  type ShardRecordInput,
  shardWriterOptions,
} from "../src/format/shard_writer.ts";
import type { RunJson, ShardRecord, ValueDtype } from "../src/format/types.ts";
import { openLocalStore } from "../src/store/local.ts";
import { withSeed } from "./_rng.ts";
import type { TestRng } from "./_rng.ts";
import { sampleReference } from "../src/kernels/sample_reference.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;
const numOf = (x: number | string) => (typeof x === "string" ? Number(x) : x);

interface Decoded {
  seq: number;
  tokens: number[];
  idx: number[];
  valBits: number[];
  lse: (number | string)[];
  sampleLen: number[];
  sampleIdx: number[];
  sampleHits: number[];
  sampleVal: (number | string)[];
  sampleValBits: number[];
}
interface Expected {
  run: RunJson;
  shards: { shard: number; path: string; host: number; bytes: number; decoded: Decoded[] }[];
}

for (const name of ["v1_sample_u16_f16", "v1_sample_k0_f32"]) {
  Deno.test(`conformance vector ${name}: the reader yields exactly expected.json's sampled targets`, async () => {
    const out = FIXTURES + name;
    const expected: Expected = JSON.parse(await Deno.readTextFile(`${out}/expected.json`));
    const run = await readRunJson(await openLocalStore(out));
    assert.deepEqual(run, expected.run);
    assert.ok(run.sample);
    const got: ShardRecord[] = [];
    for await (const r of readShards(out, { requireManifest: true })) got.push(r);
    const want = expected.shards.flatMap((s) => s.decoded);
    assert.equal(got.length, want.length);
    const f16 = run.valueDtype === "f16";
    for (const [i, r] of got.entries()) {
      const e = want[i];
      assert.equal(r.seq, e.seq);
      assert.deepEqual([...r.idx], e.idx);
      assert.deepEqual([...r.lse], e.lse.map(numOf));
      assert.ok(r.sampleLen instanceof Uint16Array && r.sampleHits instanceof Uint16Array);
      assert.ok(r.sampleIdx instanceof (run.indexDtype === "u16" ? Uint16Array : Uint32Array));
      assert.deepEqual([...r.sampleLen], e.sampleLen);
      assert.deepEqual([...r.sampleIdx!], e.sampleIdx);
      assert.deepEqual([...r.sampleHits], e.sampleHits);
      const bits = f16 ? e.sampleValBits.map(f16BitsToF32Bits) : e.sampleValBits;
      assert.deepEqual([
        ...new Uint32Array(r.sampleVal!.buffer, r.sampleVal!.byteOffset, r.sampleVal!.length),
      ], bits);
      assert.deepEqual([...r.sampleVal!], e.sampleVal.map(numOf));
      // the vector's own invariants: per position 1..N ascending distinct ids whose hits sum to N
      let o = 0;
      for (const len of e.sampleLen) {
        const hits = e.sampleHits.slice(o, o + len);
        assert.equal(hits.reduce((a, b) => a + b, 0), run.sample!.n);
        const ids = e.sampleIdx.slice(o, o + len);
        assert.ok(ids.every((id, j) => j === 0 || id > ids[j - 1]));
        o += len;
      }
    }
  });

  Deno.test(`conformance vector ${name}: re-encoding gives the same bytes, and msgpackr reads the sample keys`, async () => {
    const out = FIXTURES + name;
    const expected: Expected = JSON.parse(await Deno.readTextFile(`${out}/expected.json`));
    const run = expected.run;
    for (const s of expected.shards) {
      const bytes = await Deno.readFile(`${out}/${s.path}`);
      assert.equal(s.path, shardPath(s.shard));
      const writer = createShardWriter(shardWriterOptions(run, s.shard, s.host));
      const again = new Response(writer.readable).bytes();
      const w = writer.writable.getWriter();
      for (const d of s.decoded) {
        const f16 = run.valueDtype === "f16";
        await w.write({
          seq: d.seq,
          tokens: Uint32Array.from(d.tokens),
          idx: Uint32Array.from(d.idx),
          val: f16 ? Uint16Array.from(d.valBits) : new Float32Array(Uint32Array.from(d.valBits).buffer),
          lse: Float32Array.from(d.lse.map(numOf)),
          sampleLen: Uint16Array.from(d.sampleLen),
          sampleIdx: Uint32Array.from(d.sampleIdx),
          sampleHits: Uint16Array.from(d.sampleHits),
          sampleVal: f16
            ? Uint16Array.from(d.sampleValBits)
            : new Float32Array(Uint32Array.from(d.sampleValBits).buffer),
        });
      }
      await w.close();
      assert.deepEqual(await again, bytes);
      const values = unpackMultiple(bytes.slice()) as Record<string, unknown>[];
      const header = values[0].sample as { n: number; temperature: number; seed: number | bigint };
      assert.deepEqual({ ...header, seed: Number(header.seed) }, run.sample); // msgpackr: uint64 → bigint
      const rec = values[1];
      assert.deepEqual(Object.keys(rec), [
        "seq",
        "tokens",
        "idx",
        "val",
        "lse",
        "sampleLen",
        "sampleIdx",
        "sampleHits",
        "sampleVal",
      ]);
      assert.equal((rec.sampleLen as Uint8Array).length, 2 * run.seqLen);
    }
  });
}

/** A random valid record of `run` (which has `sample`), its samples drawn by the CPU sampler. */
function randomRecord(rng: TestRng, run: RunJson, seq: number): ShardRecordInput {
  const L = run.seqLen, K = run.k, V = run.vocabSize, T = run.lseTemperatures.length;
  const logits = Float32Array.from({ length: L * V }, () => rng.normal() * 4);
  const s = sampleReference(logits, L, V, { ...run.sample!, position0: seq * L });
  return {
    seq,
    tokens: Uint32Array.from({ length: L }, () => rng.int(V)),
    idx: Uint32Array.from({ length: L * K }, () => rng.int(V)),
    val: Float32Array.from({ length: L * K }, () => rng.normal() * 10),
    lse: Float32Array.from({ length: L * T }, () => rng.normal()),
    sampleLen: s.len,
    sampleIdx: s.idx,
    sampleHits: s.hits,
    sampleVal: s.val,
  };
}

function sampleRun(vocabSize: number, valueDtype: ValueDtype, k: number, n: number): RunJson {
  return makeRunJson({
    vocabSize,
    k,
    seqLen: 5,
    valueDtype,
    lseTemperatures: [1, 2],
    sequences: 3,
    sequencesPerShard: 3,
    teacher: { fingerprint: "t" },
    data: { fingerprint: "d" },
    sample: { n, temperature: 2, seed: 99 },
  });
}

async function encodeShard(run: RunJson, records: ShardRecordInput[]): Promise<Uint8Array> {
  const writer = createShardWriter(shardWriterOptions(run, 0, 0));
  const bytes = new Response(writer.readable).bytes();
  const w = writer.writable.getWriter();
  for (const r of records) await w.write(r);
  await w.close();
  return await bytes;
}

async function decodeAll(run: RunJson, bytes: Uint8Array): Promise<ShardRecord[]> {
  const out: ShardRecord[] = [];
  for await (
    const r of decodeShard(new Blob([bytes as Uint8Array<ArrayBuffer>]).stream(), {
      where: "mem",
      run,
      shard: 0,
    })
  ) out.push(r);
  return out;
}

for (const [V, dtype, k, n] of [[300, "f32", 4, 16], [70000, "f16", 0, 64], [5, "f32", 1, 1024]] as const) {
  Deno.test(`a record with sampled targets round-trips bit-exactly (V ${V}, ${dtype}, k ${k}, N ${n})`, () =>
    withSeed("sample round trip", async (rng) => {
      const run = sampleRun(V, dtype, k, n);
      const records = [0, 1, 2].map((seq) => randomRecord(rng, run, seq));
      const got = await decodeAll(run, await encodeShard(run, records));
      assert.equal(got.length, 3);
      for (const [i, r] of got.entries()) {
        const want = records[i];
        assert.deepEqual([...r.sampleLen!], [...want.sampleLen!]);
        assert.deepEqual([...r.sampleIdx!], [...want.sampleIdx!]);
        assert.deepEqual([...r.sampleHits!], [...want.sampleHits!]);
        const wantVal = dtype === "f16"
          ? f16ToF32(f32ToF16(want.sampleVal as Float32Array))
          : want.sampleVal!;
        assert.deepEqual(
          [...new Uint32Array(r.sampleVal!.slice().buffer)],
          [...new Uint32Array(Float32Array.from(wantVal).buffer)],
        );
        assert.equal(r.sampleVal!.length, want.sampleLen!.reduce((a, b) => a + b, 0));
      }
    }));
}

Deno.test("a run without sample writes run.json, headers and records without any sample key", () => {
  const run = makeRunJson({
    vocabSize: 10,
    k: 2,
    seqLen: 1,
    valueDtype: "f32",
    lseTemperatures: [1],
    sequences: 1,
    sequencesPerShard: 1,
    teacher: { fingerprint: "t" },
    data: { fingerprint: "d" },
  });
  assert.ok(!("sample" in run));
  const o = shardWriterOptions(run, 0, 0);
  assert.ok(!("sample" in shardHeader(o)));
  const rec = {
    seq: 0,
    tokens: new Uint32Array(1),
    idx: new Uint32Array(2),
    val: new Float32Array(2),
    lse: new Float32Array(1),
  };
  const values = unpackMultiple(encodeShardRecord(o, rec).slice()) as Record<string, unknown>[];
  assert.deepEqual(Object.keys(values[0]), ["seq", "tokens", "idx", "val", "lse"]);
  assert.throws(
    () => encodeShardRecord(o, { ...rec, sampleLen: new Uint16Array(1) }),
    /holds sampled targets but the run has no sample settings/,
  );
});

Deno.test("the writer refuses sampled targets that break the format's rules, with one line each", () => {
  const run = sampleRun(50, "f32", 1, 4);
  const o = { ...shardWriterOptions(run, 0, 0), seqLen: 2 };
  const good = (): ShardRecordInput => ({
    seq: 0,
    tokens: new Uint32Array(2),
    idx: new Uint32Array(2),
    val: new Float32Array(2),
    lse: new Float32Array(4),
    sampleLen: Uint16Array.from([2, 1]),
    sampleIdx: Uint32Array.from([3, 7, 1]),
    sampleHits: Uint16Array.from([1, 3, 4]),
    sampleVal: new Float32Array(3),
  });
  encodeShardRecord(o, good());
  const cases: [Partial<ShardRecordInput>, RegExp][] = [
    [{ sampleLen: undefined }, /lacks its sampled targets/],
    [{ sampleLen: Uint16Array.from([2]) }, /sampleLen has 1 entries, expected 2/],
    [{ sampleLen: Uint16Array.from([0, 3]) }, /sampleLen\[0\] = 0 is not between 1 and N = 4/],
    [{ sampleLen: Uint16Array.from([5, 1]) }, /sampleLen\[0\] = 5 is not between 1 and N = 4/],
    [{ sampleIdx: Uint32Array.from([3, 7]) }, /sampleIdx has 2 entries, expected Σ sampleLen = 3/],
    [{ sampleIdx: Uint32Array.from([7, 3, 1]) }, /sampleIdx of position 0 is not ascending/],
    [{ sampleIdx: Uint32Array.from([3, 50, 1]) }, /sampleIdx\[1\] = 50 is not below vocabSize 50/],
    [{ sampleHits: Uint16Array.from([1, 2, 4]) }, /the hits of position 0 sum to 3, expected N = 4/],
    [{ sampleHits: Uint16Array.from([0, 4, 4]) }, /sampleHits\[0\] is 0/],
  ];
  for (const [patch, re] of cases) {
    assert.throws(() => encodeShardRecord(o, { ...good(), ...patch }), (err) => {
      assert.ok(err instanceof SparsekdError);
      assert.match(err.message, re);
      assert.ok(!err.message.includes("\n"));
      return true;
    });
  }
});

/** A shard of `run` whose one record is `record` as given (any keys, any bytes). */
function shardWith(
  run: RunJson,
  record: Record<string, number | Uint8Array>,
  header = shardHeader(shardWriterOptions(run, 0, 0)),
) {
  const w = new PackWriter();
  const keys = Object.keys(record);
  w.mapHeader(keys.length);
  for (const key of keys) w.str(key).value(record[key]);
  const rec = w.take();
  const head = encodeShardHeader(header);
  const trailer = encodeShardTrailer(1, run.seqLen);
  const out = new Uint8Array(head.length + rec.length + trailer.length);
  out.set(head);
  out.set(rec, head.length);
  out.set(trailer, head.length + rec.length);
  return out;
}

Deno.test("the reader refuses corrupt sampled targets before allocating, with one line naming the byte", async () => {
  const run = { ...sampleRun(50, "f32", 1, 4), sequences: 1, sequencesPerShard: 1, seqLen: 2 };
  const base = () => ({
    seq: 0,
    tokens: leBytes(new Uint32Array(2)),
    idx: leBytes(new Uint16Array(2)),
    val: leBytes(new Float32Array(2)),
    lse: leBytes(new Float32Array(4)),
    sampleLen: leBytes(Uint16Array.from([2, 1])),
    sampleIdx: leBytes(Uint16Array.from([3, 7, 1])),
    sampleHits: leBytes(Uint16Array.from([1, 3, 4])),
    sampleVal: leBytes(new Float32Array(3)),
  } as Record<string, number | Uint8Array>);
  assert.equal((await decodeAll(run, shardWith(run, base()))).length, 1);
  const cases: [Record<string, number | Uint8Array>, RegExp][] = [
    [{ sampleLen: leBytes(Uint16Array.from([2])) }, /sampleLen has 2 bytes, expected 4/],
    [{ sampleLen: leBytes(Uint16Array.from([0, 3])) }, /sampleLen\[0\] = 0 is not between 1 and N = 4/],
    [
      { sampleLen: leBytes(Uint16Array.from([65535, 1])) },
      /sampleLen\[0\] = 65535 is not between 1 and N = 4/,
    ],
    [{ sampleLen: leBytes(Uint16Array.from([3, 1])) }, /sampleIdx has 6 bytes, expected 8/],
    [{ sampleHits: leBytes(Uint16Array.from([1, 3])) }, /sampleHits has 4 bytes, expected 6/],
    [{ sampleVal: leBytes(new Float32Array(4)) }, /sampleVal has 16 bytes, expected 12/],
    [
      { sampleIdx: leBytes(Uint16Array.from([7, 7, 1])) },
      /sampleIdx of position 0 is not strictly ascending/,
    ],
    [
      { sampleIdx: leBytes(Uint16Array.from([3, 7, 60000])) },
      /sampleIdx\[2\] = 60000 is not below vocabSize 50/,
    ],
    [
      { sampleHits: leBytes(Uint16Array.from([1, 3, 5])) },
      /the sampleHits of position 1 sum to 5, expected N = 4/,
    ],
    [{ sampleHits: leBytes(Uint16Array.from([0, 4, 4])) }, /sampleHits\[0\] is 0/],
    [{ sampleIdx: 3 }, /sampleIdx is not bin/],
    [{ extra: 1 }, /record has unknown keys/],
  ];
  for (const [patch, re] of cases) {
    const bytes = shardWith(run, { ...base(), ...patch });
    await assert.rejects(decodeAll(run, bytes), (err) => {
      assert.ok(err instanceof SparsekdError, String(err));
      assert.match(err.message, /^corrupt shard mem at byte \d+: /);
      assert.match(err.message, re);
      return true;
    });
  }
  const { sampleVal: _drop, ...missing } = base();
  await assert.rejects(decodeAll(run, shardWith(run, missing)), /record lacks "sampleVal"/);
  // a top-k-only record in a sampled run, and a sampled header in a run.json without sample
  const { sampleLen: _a, sampleIdx: _b, sampleHits: _c, sampleVal: _d, ...plain } = base();
  await assert.rejects(decodeAll(run, shardWith(run, plain)), /record lacks "sampleLen"/);
  const { sample: _s, ...noSample } = run;
  await assert.rejects(
    decodeAll(noSample, shardWith(run, base())),
    /header sample \{"n":4,"temperature":2,"seed":99\} differs from run.json's null/,
  );
  const other = { ...shardHeader(shardWriterOptions(run, 0, 0)), sample: { n: 4, temperature: 2, seed: 98 } };
  await assert.rejects(
    decodeAll(run, shardWith(run, base(), other)),
    /header sample .* differs from run.json's/,
  );
  const invalid = {
    ...shardHeader(shardWriterOptions(run, 0, 0)),
    sample: { n: 0, temperature: 2, seed: 1 },
  };
  await assert.rejects(
    decodeAll(run, shardWith(run, base(), invalid)),
    /header sample n must be an integer from 1 to 1024 \(got 0\)/,
  );
});

Deno.test("run.json: sample is validated, k = 0 needs it, and a different sample makes another run", () => {
  const run = sampleRun(50, "f32", 0, 8);
  assert.equal(run.k, 0);
  assert.deepEqual(Object.keys(run).slice(-1), ["sample"]);
  const check = (patch: Record<string, unknown>, re: RegExp) =>
    assert.throws(() => validateRunJson({ ...run, ...patch }, "x/run.json"), (err) => {
      assert.ok(err instanceof SparsekdError);
      assert.match(err.message, re);
      return true;
    });
  check({ sample: undefined }, /k must be a positive integer \(got 0\)/);
  check(
    { sample: { n: 0, temperature: 1, seed: 0 } },
    /sample n must be an integer from 1 to 1024 \(got 0\)/,
  );
  check(
    { sample: { n: 1025, temperature: 1, seed: 0 } },
    /sample n must be an integer from 1 to 1024 \(got 1025\)/,
  );
  check({ sample: { n: 4, temperature: 0, seed: 0 } }, /sample temperature must be a finite number > 0/);
  check({ sample: { n: 4, temperature: 1, seed: -1 } }, /sample seed must be an integer/);
  check({ sample: { n: 4, temperature: 1 } }, /sample must hold exactly n, temperature and seed/);
  check({ sample: [1] }, /sample must be an object/);
});
