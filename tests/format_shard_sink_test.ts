/**
 * The shard sink: manifest entries from the store's own size and CRC32C, two writers of one shard that
 * cooperate, and the resume check that refuses damaged shards with a hint.
 */
import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import { crc32c, crc32cToBase64 } from "../src/format/crc32c.ts";
import { shardPath } from "../src/format/layout.ts";
import { makeRunJson } from "../src/format/run_json.ts";
import { openShardSink, verifyShard } from "../src/format/shard_sink.ts";
import type { ShardRecordInput } from "../src/format/shard_writer.ts";
import { openLocalStore } from "../src/store/local.ts";

const run = makeRunJson({
  vocabSize: 100,
  k: 2,
  seqLen: 3,
  valueDtype: "f32",
  lseTemperatures: [1],
  sequences: 5,
  sequencesPerShard: 2,
  teacher: { fingerprint: "t" },
  data: { fingerprint: "d" },
});

function record(seq: number): ShardRecordInput {
  return {
    seq,
    tokens: Uint32Array.of(seq, seq + 1, seq + 2),
    idx: Uint32Array.of(1, 2, 3, 4, 5, 6),
    val: Float32Array.of(6, 5, 4, 3, 2, 1),
    lse: Float32Array.of(7, 8, 9),
  };
}

Deno.test("a shard sink's manifest entry has the stored object's size and CRC32C", async () => {
  const store = await openLocalStore(await Deno.makeTempDir(), { create: true });
  let counted = 0;
  const sink = await openShardSink(store, run, 1, 0, { onBytes: (n) => (counted += n) });
  await sink.write(record(2));
  await sink.write(record(3));
  const { entry, existed } = await sink.close();
  const bytes = await store.readBytes(shardPath(1));
  assert.equal(existed, false);
  assert.deepEqual(entry, {
    shard: 1,
    path: shardPath(1),
    bytes: bytes.length,
    crc32c: crc32cToBase64(crc32c(bytes)),
    records: 2,
    tokens: 6,
  });
  assert.equal(counted, bytes.length);
});

Deno.test("two sinks writing the same shard at once: the second verifies the first's shard and keeps it", async () => {
  const store = await openLocalStore(await Deno.makeTempDir(), { create: true });
  const a = await openShardSink(store, run, 2, 0);
  const b = await openShardSink(store, run, 2, 0);
  await a.write(record(4));
  await b.write(record(4));
  const ra = await a.close();
  const rb = await b.close();
  assert.equal(ra.existed, false);
  assert.equal(rb.existed, true);
  assert.deepEqual(rb.entry, ra.entry);
  // one that was created meanwhile from other data is refused, with the hint
  const c = await openShardSink(store, run, 2, 0, {
    recordCheck: () =>
      Promise.resolve(() => {
        throw new SparsekdError("sequence 4 holds other tokens");
      }),
  });
  await c.write(record(4));
  await assert.rejects(c.close(), /is not this run's: sequence 4 .*another process wrote it meanwhile/);
});

Deno.test("verifyShard refuses a damaged shard, naming it and saying to delete it", async () => {
  const dir = await Deno.makeTempDir();
  const store = await openLocalStore(dir, { create: true });
  const sink = await openShardSink(store, run, 0, 0);
  await sink.write(record(0));
  await sink.write(record(1));
  const { entry } = await sink.close();
  assert.deepEqual(await verifyShard(store, run, 0, { expected: entry! }), entry);
  const path = `${dir}/${shardPath(0)}`;
  const bytes = await Deno.readFile(path);
  bytes[bytes.length - 30] ^= 1;
  await Deno.remove(path);
  await Deno.writeFile(path, bytes);
  await assert.rejects(
    verifyShard(store, run, 0, { expected: entry! }),
    (err) => {
      assert.ok(err instanceof SparsekdError);
      assert.match(err.message, /^corrupt shard .*s000000\.msgpack at byte \d+: CRC32C/);
      assert.match(err.message, /delete .*s000000\.msgpack and run again\)$/);
      return true;
    },
  );
  await Deno.writeFile(path, bytes.subarray(0, 50));
  await assert.rejects(verifyShard(store, run, 0), /^SparsekdError: truncated shard .*and run again\)$/m);
});
