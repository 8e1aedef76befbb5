import assert from "node:assert/strict";
import { unpackMultiple } from "msgpackr";
import { SparsekdError } from "../src/errors.ts";
import { f16BitsToF32Bits } from "../src/format/f16.ts";
import type { RunJson } from "../src/format/types.ts";
import { shardPath } from "../src/format/layout.ts";
import { crc32c, crc32cToBase64 } from "../src/format/crc32c.ts";
import { readRunJson } from "../src/format/run_json.ts";
import { decodeShard, readShards, type ShardSummary } from "../src/format/shard_reader.ts";
import { createShardWriter, shardWriterOptions } from "../src/format/shard_writer.ts";
import { openLocalStore } from "../src/store/local.ts";
import { withSeed } from "./_rng.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

interface Expected {
  run: RunJson;
  shards: {
    shard: number;
    path: string;
    host: number;
    bytes: number;
    crc32c: string;
    crc32cHex: string;
    records: number;
    tokens: number;
    decoded: {
      seq: number;
      tokens: number[];
      idx: number[];
      val: (number | string)[];
      valBits: number[];
      lse: (number | string)[];
    }[];
  }[];
}

const numOf = (x: number | string) => (typeof x === "string" ? Number(x) : x);

for (const name of ["v1_u16_f16", "v1_u32_f32"]) {
  Deno.test(`conformance vector ${name}: the reader yields exactly expected.json, with the manifests' CRC32C`, () =>
    withSeed(name, async (rng) => {
      const out = FIXTURES + name;
      const expected: Expected = JSON.parse(await Deno.readTextFile(`${out}/expected.json`));
      const store = await openLocalStore(out);
      assert.deepEqual(await readRunJson(store), expected.run);
      const summaries: (ShardSummary & { path: string })[] = [];
      // a random subset, in a random order
      let shards = expected.shards.map((s) => s.shard).filter(() => rng.int(4) > 0);
      if (shards.length === 0) shards = [expected.shards.at(-1)!.shard];
      const wanted = expected.shards.filter((s) => shards.includes(s.shard));
      const got = [];
      for await (
        const r of readShards(out, {
          shards,
          requireManifest: true,
          onShard: (s) => summaries.push(s),
        })
      ) got.push(r);
      assert.deepEqual(
        summaries.map((s) => [s.path, s.bytes, s.crc32c, s.records, s.tokens, s.header.host]),
        wanted.map((s) => [s.path, s.bytes, s.crc32c, s.records, s.tokens, s.host]),
      );
      const records = wanted.flatMap((s) => s.decoded.map((d) => ({ ...d, shard: s.shard })));
      assert.equal(got.length, records.length);
      for (const [i, r] of got.entries()) {
        const e = records[i];
        assert.equal(r.shard, e.shard);
        assert.equal(r.seq, e.seq);
        assert.deepEqual([...r.tokens], e.tokens);
        assert.deepEqual([...r.idx], e.idx);
        assert.ok(r.idx instanceof (expected.run.indexDtype === "u16" ? Uint16Array : Uint32Array));
        const bits = expected.run.valueDtype === "f16" ? e.valBits.map(f16BitsToF32Bits) : e.valBits;
        assert.deepEqual([...new Uint32Array(r.val.buffer)], bits);
        assert.deepEqual([...r.val], e.val.map(numOf));
        assert.deepEqual([...r.lse], e.lse.map(numOf));
      }
    }));

  Deno.test(`conformance vector ${name}: re-encoding expected.json gives the same bytes, and msgpackr reads them`, async () => {
    const out = FIXTURES + name;
    const expected: Expected = JSON.parse(await Deno.readTextFile(`${out}/expected.json`));
    const run = expected.run;
    for (const s of expected.shards) {
      const bytes = await Deno.readFile(`${out}/${s.path}`);
      assert.equal(s.path, shardPath(s.shard));
      assert.equal(bytes.length, s.bytes);
      assert.equal(crc32cToBase64(crc32c(bytes)), s.crc32c);
      assert.equal(crc32c(bytes).toString(16).padStart(8, "0"), s.crc32cHex);
      const writer = createShardWriter(shardWriterOptions(run, s.shard, s.host));
      const again = new Response(writer.readable).bytes();
      const w = writer.writable.getWriter();
      for (const d of s.decoded) {
        await w.write({
          seq: d.seq,
          tokens: Uint32Array.from(d.tokens),
          idx: Uint32Array.from(d.idx),
          val: run.valueDtype === "f16"
            ? Uint16Array.from(d.valBits)
            : new Float32Array(Uint32Array.from(d.valBits).buffer),
          lse: Float32Array.from(d.lse.map(numOf)),
        });
      }
      await w.close();
      assert.deepEqual(await again, bytes);
      const values = unpackMultiple(bytes.slice()) as Record<string, unknown>[];
      assert.equal(values[0].format, "sparsekd.shard");
      assert.equal(values[0].shard, s.shard);
      assert.deepEqual(values.slice(1, -1).map((v) => v.seq), s.decoded.map((d) => d.seq));
      assert.deepEqual(values.at(-1), { end: true, records: s.records, tokens: s.tokens });
    }
  });
}

Deno.test("conformance vectors v1_truncated and v1_bitflip fail with the documented one-line errors", async () => {
  const cases = JSON.parse(await Deno.readTextFile(`${FIXTURES}expected_errors.json`));
  assert.equal(cases.length, 2);
  for (const c of cases) {
    const out = FIXTURES + c.out;
    const pattern = c.message.replace(/[.*+?^${}()|[\]\\]/g, (m: string) => (m === "*" ? ".*" : `\\${m}`))
      .replace("<OUT>", out.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
    await assert.rejects(
      (async () => {
        for await (const _ of readShards(out, { shards: [c.shard] })) { /* drain */ }
      })(),
      (err) => {
        assert.ok(err instanceof SparsekdError);
        assert.match(err.message, new RegExp(`^${pattern}$`));
        return true;
      },
    );
    // the same bytes without the manifest: truncation is still caught, a flipped data bit is not
    const bytes = await Deno.readFile(`${out}/${shardPath(c.shard)}`);
    const stream = new Blob([bytes]).stream();
    const it = decodeShard(stream, { where: c.out, shard: c.shard });
    const drain = async () => {
      let step = await it.next();
      while (!step.done) step = await it.next();
      return step.value;
    };
    if (c.error === "truncated") await assert.rejects(drain(), new RegExp(`at byte ${c.offset}:`));
    else assert.equal((await drain()).bytes, c.offset);
  }
});
