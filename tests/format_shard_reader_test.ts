/**
 * The shard reader accepts only what it verified: a listed shard's CRC32C before any of its records, no
 * shard without a manifest, bounded run.json fields, and shards that another host count listed.
 */
import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import { decodeMsgpackAt } from "../src/format/msgpack_decode.ts";
import { decodeShard, readShards } from "../src/format/shard_reader.ts";
import { shardRange, shardsCovering } from "../src/format/layout.ts";

const FIXTURE = new URL("./fixtures/v1_u16_f16/", import.meta.url).pathname;

/** A writable copy of the v1_u16_f16 conformance vector. */
async function copyFixture(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "sparsekd-reader-" });
  for (const sub of ["shards", "manifests"]) {
    await Deno.mkdir(`${dir}/${sub}`);
    for await (const e of Deno.readDir(FIXTURE + sub)) {
      await Deno.copyFile(`${FIXTURE}${sub}/${e.name}`, `${dir}/${sub}/${e.name}`);
    }
  }
  await Deno.copyFile(`${FIXTURE}run.json`, `${dir}/run.json`);
  return dir;
}

/** Reads OUT to the end, counting records; resolves with the count or rejects with the error and count. */
async function consume(out: string, options = {}): Promise<{ records: number; error?: unknown }> {
  let records = 0;
  try {
    for await (const _ of readShards(out, options)) records++;
  } catch (error) {
    return { records, error };
  }
  return { records };
}

Deno.test("readShards hands out no record of a listed shard whose token bytes were flipped", async () => {
  const out = await copyFixture();
  const path = `${out}/shards/s000000.msgpack`;
  const bytes = await Deno.readFile(path);
  // the first record's "tokens" bin starts after the header; flip a bit of its first token
  const header = decodeMsgpackAt(bytes, 0);
  const at = bytes.indexOf(0xc4, header.end + 1 + 4 + 2 + 7) + 2; // map, "seq", seq, "tokens", bin8 len
  assert.ok(at > header.end);
  bytes[at] ^= 0x10;
  await Deno.writeFile(path, bytes);
  const r = await consume(out);
  assert.equal(r.records, 0, "no record of the damaged shard reaches the consumer");
  assert.ok(r.error instanceof SparsekdError);
  assert.match(r.error.message, /s000000\.msgpack at byte 415: CRC32C/);
});

Deno.test("readShards refuses a shard that no host manifest lists (e.g. copied from another run)", async () => {
  const out = await copyFixture();
  await Deno.remove(`${out}/manifests/h00001.json`);
  const r = await consume(out);
  assert.equal(r.records, 4, "shards 0 and 1 are listed by host 0");
  assert.ok(r.error instanceof SparsekdError);
  assert.match(r.error.message, /s000002\.msgpack is not in any host manifest/);
  // an explicit opt-out reads it, by its structure alone
  assert.deepEqual(await consume(out, { requireManifest: false }), { records: 5 });
});

Deno.test("readShards reads shards that a host restarted with another host count listed", async () => {
  const out = await copyFixture();
  // Host 0 of 1 wrote shards 0 and 1 (header host 0); a restart as host 1 of 2 listed shard 1 again.
  const m0 = JSON.parse(await Deno.readTextFile(`${out}/manifests/h00000.json`));
  const m1 = JSON.parse(await Deno.readTextFile(`${out}/manifests/h00001.json`));
  m1.shards = [m0.shards[1], ...m1.shards];
  await Deno.writeTextFile(`${out}/manifests/h00001.json`, JSON.stringify(m1, null, 2) + "\n");
  assert.deepEqual(await consume(out), { records: 5 });
});

Deno.test("run.json with huge or invalid counts is a one-line error, not an allocation failure", async () => {
  const out = await copyFixture();
  const run = JSON.parse(await Deno.readTextFile(`${out}/run.json`));
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ sequences: 1e15 }, /sequences 1000000000000000 exceeds/],
    [{ sequences: 2 ** 53 }, /sequences must be a positive integer/],
    [{ sequences: 2 ** 40, sequencesPerShard: 1 }, /shards, more than/],
    [{ lseTemperatures: [] }, /at least one temperature/],
    [{ seqLen: 2 ** 28 }, /exceeds a record's limit/],
  ];
  for (const [edit, pattern] of cases) {
    await Deno.writeTextFile(`${out}/run.json`, JSON.stringify({ ...run, ...edit }));
    const r = await consume(out);
    assert.ok(r.error instanceof SparsekdError, `${JSON.stringify(edit)}: ${r.error}`);
    assert.match(r.error.message, /run\.json: /);
    assert.match(r.error.message, pattern);
    assert.ok(!r.error.message.includes("\n"));
  }
});

Deno.test("shardsCovering is the inverse of shardRange", () => {
  for (let N = 1; N <= 5; N++) {
    for (let S = 1; S <= 23; S++) {
      for (let from = 0; from < S; from++) {
        for (let to = from + 1; to <= S; to++) {
          const { first, last } = shardsCovering(from, to, N);
          assert.ok(shardRange(first, N, S).start <= from && from < shardRange(first, N, S).end);
          assert.ok(shardRange(last, N, S).start < to && to <= shardRange(last, N, S).end);
        }
      }
    }
  }
});

Deno.test("decodeShard refuses a value larger than any record of the run before buffering its bytes", async () => {
  const run = JSON.parse(await Deno.readTextFile(`${FIXTURE}run.json`));
  const bytes = await Deno.readFile(`${FIXTURE}shards/s000000.msgpack`);
  const headerEnd = decodeMsgpackAt(bytes, 0).end;
  // After the real header: a bin32 announcing 300 MiB, and 8 MiB of its bytes (a hostile shard that holds
  // what it announces would be read to its end by a decoder without a bound).
  const announce = new Uint8Array([0xc6, 0x12, 0xc0, 0x00, 0x00]);
  const chunk = new Uint8Array(1 << 20);
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent === 0) c.enqueue(bytes.slice(0, headerEnd));
      else if (sent === 1) c.enqueue(announce);
      else if (sent < 10) c.enqueue(chunk);
      else c.close();
      sent++;
    },
  });
  const err = await (async () => {
    try {
      for await (const _ of decodeShard(stream, { where: "hostile", run, shard: 0 })) { /* none */ }
    } catch (e) {
      return e;
    }
  })();
  assert.ok(err instanceof SparsekdError, String(err));
  assert.match(
    err.message,
    new RegExp(`corrupt shard hostile at byte ${headerEnd}: a value of at least \\d+ bytes`),
  );
  assert.ok(sent < 10, `the decoder read ${sent - 2} MiB of the announced value before refusing it`);
});
