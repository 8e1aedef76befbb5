/**
 * Fuzzing the shard reader: random mutations of the conformance vectors (bit flips, truncations, inserted
 * bytes, length and count fields set to huge values) either decode or fail with a one-line
 * SparsekdError that names the shard and a byte offset, never another exception; and a hostile shard that
 * declares 2^32 - 1 temperatures costs no more memory than a small multiple of its size.
 */
import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import { shardPath } from "../src/format/layout.ts";
import { encodeShardHeader, shardHeader, shardWriterOptions } from "../src/format/shard_writer.ts";
import { decodeShard } from "../src/format/shard_reader.ts";
import type { ManifestEntry, RunJson } from "../src/format/types.ts";
import { type TestRng as Rng, withSeed } from "./_rng.ts";
import { chunked } from "./_helpers.ts";

const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

interface Vector {
  run: RunJson;
  shards: { shard: number; bytes: Uint8Array; entry: ManifestEntry }[];
}

async function loadVector(name: string): Promise<Vector> {
  const dir = FIXTURES + name;
  const run = JSON.parse(await Deno.readTextFile(`${dir}/run.json`));
  const entries: ManifestEntry[] = [];
  for await (const e of Deno.readDir(`${dir}/manifests`)) {
    entries.push(...JSON.parse(await Deno.readTextFile(`${dir}/manifests/${e.name}`)).shards);
  }
  const shards = [];
  for (const entry of entries) {
    shards.push({
      shard: entry.shard,
      bytes: await Deno.readFile(`${dir}/${shardPath(entry.shard)}`),
      entry,
    });
  }
  return { run, shards };
}

/** Bytes that start a MessagePack length or count: str8/16/32, bin8/16/32, array16/32, map16/32. */
const SIZED = new Map([
  [0xd9, 1],
  [0xda, 2],
  [0xdb, 4],
  [0xc4, 1],
  [0xc5, 2],
  [0xc6, 4],
  [0xdc, 2],
  [0xdd, 4],
  [
    0xde,
    2,
  ],
  [0xdf, 4],
]);

/** One random mutation of `bytes`, and what it was. */
function mutate(bytes: Uint8Array, rng: Rng): { bytes: Uint8Array; what: string } {
  const b = bytes.slice();
  switch (rng.int(5)) {
    case 0: {
      const n = 1 + rng.int(8);
      for (let i = 0; i < n; i++) b[rng.int(b.length)] ^= 1 << rng.int(8);
      return { bytes: b, what: `${n} bit flips` };
    }
    case 1: {
      const n = rng.int(b.length);
      return { bytes: b.subarray(0, n), what: `truncated to ${n}` };
    }
    case 2: {
      const at = rng.int(b.length + 1), n = 1 + rng.int(9);
      const out = new Uint8Array(b.length + n);
      out.set(b.subarray(0, at));
      for (let i = 0; i < n; i++) out[at + i] = rng.int(256);
      out.set(b.subarray(at), at + n);
      return { bytes: out, what: `${n} bytes inserted at ${at}` };
    }
    case 3: {
      // a length or count field set to a huge value (or a fixarray/fixmap turned into a 32-bit one)
      const sites = [];
      for (let i = 0; i < b.length; i++) if (SIZED.has(b[i])) sites.push(i);
      if (sites.length === 0) return { bytes: b, what: "unchanged" };
      const at = sites[rng.int(sites.length)], width = SIZED.get(b[at])!;
      const view = new DataView(b.buffer, b.byteOffset);
      if (at + 1 + width <= b.length) {
        const huge = [2 ** (8 * width) - 1, 2 ** (8 * width - 1), b.length * 2][rng.int(3)];
        if (width === 1) b[at + 1] = huge & 0xff;
        else if (width === 2) view.setUint16(at + 1, huge & 0xffff);
        else view.setUint32(at + 1, huge >>> 0);
      }
      return { bytes: b, what: `size field at ${at} set large` };
    }
    default: {
      const sites = [];
      for (let i = 0; i < b.length; i++) if ((b[i] & 0xe0) === 0x80) sites.push(i);
      const at = sites[rng.int(sites.length)];
      const out = new Uint8Array(b.length + 4);
      out.set(b.subarray(0, at));
      out[at] = (b[at] & 0xf0) === 0x90 ? 0xdd : 0xdf;
      new DataView(out.buffer).setUint32(at + 1, 0xffffffff - rng.int(3));
      out.set(b.subarray(at + 1), at + 5);
      return { bytes: out, what: `fixarray/fixmap at ${at} turned into a 2^32 - 1 count` };
    }
  }
}

Deno.test("fuzz: mutated conformance shards decode or fail with a SparsekdError naming shard and byte offset", () =>
  withSeed("shard reader fuzz", async (rng) => {
    const names = ["v1_u16_f16", "v1_u32_f32", "v1_sample_u16_f16", "v1_sample_k0_f32"];
    const vectors = await Promise.all(names.map(loadVector));
    const outcomes = { decoded: 0, refused: 0 };
    const t0 = performance.now();
    for (let i = 0; i < 3000 && performance.now() - t0 < 4000; i++) {
      const v = vectors[rng.int(vectors.length)];
      const s = v.shards[rng.int(v.shards.length)];
      const m = mutate(s.bytes, rng);
      const where = `fuzz/${shardPath(s.shard)}`;
      // with the manifest entry half of the time (then every change of the bytes must be caught)
      const withEntry = rng.int(2) === 0;
      try {
        const it = decodeShard(chunked(m.bytes, rng, [16, 600]), {
          where,
          run: v.run,
          shard: s.shard,
          expected: withEntry ? s.entry : undefined,
        });
        let step = await it.next();
        while (!step.done) step = await it.next();
        outcomes.decoded++;
        if (withEntry) {
          assert.deepEqual(m.bytes, s.bytes, `${m.what}: changed bytes passed the manifest's CRC32C`);
        }
      } catch (err) {
        if (!(err instanceof SparsekdError)) {
          throw new Error(`${m.what}: not a SparsekdError: ${(err as Error)?.stack ?? err}`);
        }
        assert.match(err.message, new RegExp(`shard ${where} at byte \\d+: `), m.what);
        assert.ok(!err.message.includes("\n"), `${m.what}: one line`);
        outcomes.refused++;
      }
    }
    console.log(`fuzz (seed ${rng.seed}): ${outcomes.decoded} decoded, ${outcomes.refused} refused`);
    assert.ok(outcomes.refused > 100, "most mutations are refused");
  }));

Deno.test("a shard declaring 2^32 - 1 temperatures is refused without allocating beyond a few times its size", async () => {
  const { run } = await loadVector("v1_u16_f16");
  const header = encodeShardHeader(shardHeader(shardWriterOptions(run, 0, 0)));
  // lseTemperatures is the header's last key: replace its fixarray with an array32 of 2^32 - 1 items,
  // followed by 8 MB of positive fixints, each a valid temperature.
  const at = header.lastIndexOf(0x92);
  assert.ok(at > 0);
  const size = 8 << 20;
  const bytes = new Uint8Array(size);
  bytes.set(header.subarray(0, at));
  bytes[at] = 0xdd;
  new DataView(bytes.buffer).setUint32(at + 1, 0xffffffff);
  bytes.fill(1, at + 5);
  const before = Deno.memoryUsage().rss;
  let peak = before;
  let pos = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      peak = Math.max(peak, Deno.memoryUsage().rss);
      if (pos >= size) return c.close();
      c.enqueue(bytes.slice(pos, pos + 65536));
      pos += 65536;
    },
  });
  const it = decodeShard(stream, { where: "hostile", run, shard: 0 });
  await assert.rejects(
    it.next(),
    /^SparsekdError: corrupt shard hostile at byte 0: a value of at least \d+ bytes, more than the \d+ the largest one of this run can take$/m,
  );
  peak = Math.max(peak, Deno.memoryUsage().rss);
  console.log(`rss grew by ${((peak - before) / 1e6).toFixed(1)} MB for an ${size / 1e6} MB shard`);
  assert.ok(peak - before < 8 * size, `rss grew by ${peak - before} bytes`);
});
