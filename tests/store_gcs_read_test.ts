/**
 * Reads from gs:// under every fault the emulator injects on media downloads: statuses (408, 429, 500, 503),
 * a reset before the response, resets part-way through the response body (whole and ranged reads, several in
 * one read), and the one-line errors when the faults outlast the retries or are not worth retrying.
 */
import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import { openGcsStore } from "../src/store/gcs.ts";
import type { ObjectStore } from "../src/store/store.ts";
import { type RunningEmulator, startEmulator } from "../testing/gcs_emulator/server.ts";
import type { FaultRule } from "../testing/gcs_emulator/faults.ts";
import { writePatternShards } from "./_train_fixtures.ts";
import { assertSameBytes, readStream } from "./_helpers.ts";

const KIB = 1024;
/** Fast retries: the back-off starts at one second and is capped at one. */
const FAST = { chunkSize: 256 * KIB, maxRetries: 4, maxRetryDelaySeconds: 1, totalTimeoutSeconds: 60 };
const MEDIA = "alt=media";

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

/** An emulator with bucket "bkt" holding `run/data.bin` (300 KiB of random bytes) and a store on it. */
async function withData(
  body: (emu: RunningEmulator, store: ObjectStore, data: Uint8Array) => Promise<void>,
): Promise<void> {
  const emu = await startEmulator({ port: 0, buckets: ["bkt"] });
  try {
    const data = randomBytes(300 * KIB);
    emu.state.putObject("bkt", "run/data.bin", data, "application/octet-stream", {});
    const store = await openGcsStore("gs://bkt/run", { ...FAST, endpoint: emu.url });
    await body(emu, store, data);
  } finally {
    await emu.close();
  }
}

/** Every fault rule of the kind given hit as many requests as it asked for. */
function allHit(emu: RunningEmulator, rules: FaultRule[]): void {
  assert.deepEqual(emu.faults.pending(), [], "faults left unused");
  assert.equal(emu.faults.hits.length, rules.reduce((a, r) => a + (r.count ?? 1), 0));
}

const STATUS_FAULTS: FaultRule[][] = [
  [{ method: "GET", path: MEDIA, status: 503, count: 2 }],
  [{ method: "GET", path: MEDIA, status: 429, count: 2 }],
  [{ method: "GET", path: MEDIA, status: 408 }, { method: "GET", path: MEDIA, status: 500 }],
  [{ kind: "reset", method: "GET", path: MEDIA, count: 2 }],
];

for (const rules of STATUS_FAULTS) {
  const name = rules.map((r) => r.status ?? r.kind).join(", ");
  Deno.test(`readBytes and read survive ${name} on the media download`, async () => {
    await withData(async (emu, store, data) => {
      emu.faults.add(rules);
      assertSameBytes(await store.readBytes("data.bin"), data, "readBytes");
      allHit(emu, rules);
      emu.faults.add(rules);
      assertSameBytes(await readStream(await store.read("data.bin")), data, "read");
      emu.faults.add(rules);
      assertSameBytes(
        await readStream(await store.read("data.bin", { start: 1000, end: 200_000 })),
        data.subarray(1000, 200_000),
        "ranged read",
      );
      assert.deepEqual(emu.faults.pending(), []);
    });
  });
}

Deno.test("a whole read cut part-way through the body resumes at the byte reached, several times", async () => {
  await withData(async (emu, store, data) => {
    const rules: FaultRule[] = [
      { kind: "reset", method: "GET", path: MEDIA, afterResponseBytes: 100_000 },
      // The resumed request asks for bytes 100000-: cut that one too, at once and then later.
      { kind: "reset", method: "GET", path: MEDIA, afterResponseBytes: 0 },
      { kind: "reset", method: "GET", path: MEDIA, afterResponseBytes: 50_000 },
    ];
    emu.faults.add(rules);
    assertSameBytes(await store.readBytes("data.bin"), data, "readBytes");
    allHit(emu, rules);
    assert.deepEqual(emu.faults.hits.map((h) => h.bytesSent).sort((a, b) => a! - b!), [0, 50_000, 100_000]);
    emu.faults.add(rules);
    assertSameBytes(await readStream(await store.read("data.bin")), data, "read");
  });
});

Deno.test("a ranged read cut part-way through the body resumes inside its range", async () => {
  await withData(async (emu, store, data) => {
    emu.faults.add([
      { kind: "reset", method: "GET", path: MEDIA, afterResponseBytes: 7_777 },
      { method: "GET", path: MEDIA, status: 503 },
      { kind: "reset", method: "GET", path: MEDIA, afterResponseBytes: 12_345 },
    ]);
    assertSameBytes(
      await readStream(await store.read("data.bin", { start: 5_000, end: 150_000 })),
      data.subarray(5_000, 150_000),
      "[5000, 150000)",
    );
    assert.deepEqual(emu.faults.pending(), []);
    emu.faults.add({ kind: "reset", method: "GET", path: MEDIA, afterResponseBytes: 1 });
    assertSameBytes(
      await readStream(await store.read("data.bin", { start: 299 * KIB })),
      data.subarray(299 * KIB),
      "tail",
    );
    assert.deepEqual(emu.faults.pending(), []);
  });
});

Deno.test("faults that outlast the retries end the read with one line naming the object", async () => {
  await withData(async (emu, store) => {
    emu.faults.add({ method: "GET", path: MEDIA, status: 503, count: 100 });
    await assert.rejects(store.readBytes("data.bin"), (err: unknown) => {
      assert.ok(err instanceof SparsekdError, `got ${err}`);
      assert.equal(
        err.message,
        "cannot read gs://bkt/run/data.bin: HTTP 503: Injected fault: HTTP 503 (after 5 attempts)",
      );
      return true;
    });
    emu.faults.clear();
    // A body cut before its first byte, every time: no progress, so the read gives up after its retries.
    emu.faults.add({ kind: "reset", method: "GET", path: MEDIA, afterResponseBytes: 0, count: 100 });
    const stream = await store.read("data.bin");
    await assert.rejects(readStream(stream), (err: unknown) => {
      assert.ok(err instanceof SparsekdError, `got ${err}`);
      assert.match(err.message, /^cannot read gs:\/\/bkt\/run\/data\.bin: .* \(after 5 attempts\)$/);
      assert.ok(!err.message.includes("\n"));
      return true;
    });
  });
});

Deno.test("a status that is not worth retrying fails the read at once, in one line", async () => {
  await withData(async (emu, store) => {
    emu.faults.add({ method: "GET", path: MEDIA, status: 403, count: 5 });
    await assert.rejects(store.read("data.bin"), (err: unknown) => {
      assert.ok(err instanceof SparsekdError, `got ${err}`);
      assert.equal(err.message, "cannot read gs://bkt/run/data.bin: HTTP 403: Injected fault: HTTP 403");
      return true;
    });
    assert.equal(emu.faults.hits.length, 1);
    emu.faults.clear();
    await assert.rejects(store.readBytes("nothing.bin"), (err: unknown) => {
      assert.ok(err instanceof SparsekdError, `got ${err}`);
      assert.equal(err.message, "gs://bkt/run/nothing.bin does not exist");
      return true;
    });
  });
});

Deno.test("save-topk resumed on gs:// reads back its existing shards through read faults", async () => {
  const emu = await startEmulator({ port: 0, buckets: ["bkt"] });
  const before = Deno.env.get("STORAGE_EMULATOR_HOST");
  Deno.env.set("STORAGE_EMULATOR_HOST", emu.url);
  try {
    const o = { seed: 3, sequences: 24, seqLen: 4, vocab: 8, k: 2 };
    await writePatternShards("gs://bkt/run", o);
    const objects = () =>
      new Map([...emu.state.bucket("bkt").objects.values()].map((obj) => [obj.name, obj.crc32c]));
    const first = objects();
    // A host killed before its manifest: the restart reads every existing shard back to describe it.
    emu.state.deleteObject("bkt", "run/manifests/h00000.json", {});
    emu.faults.add([
      { method: "GET", path: "run.json?alt=media", status: 503 },
      { method: "GET", path: "s000000.msgpack?alt=media", status: 429 },
      { kind: "reset", method: "GET", path: "s000001.msgpack?alt=media", afterResponseBytes: 40 },
      { kind: "reset", method: "GET", path: "s000002.msgpack?alt=media" },
    ]);
    await writePatternShards("gs://bkt/run", o);
    assert.deepEqual(emu.faults.pending(), [], "every fault was hit");
    assert.deepEqual(objects(), first);
  } finally {
    if (before === undefined) Deno.env.delete("STORAGE_EMULATOR_HOST");
    else Deno.env.set("STORAGE_EMULATOR_HOST", before);
    await emu.close();
  }
});

Deno.test("a whole read whose bytes were corrupted on the way fails its CRC32C check in one line", async () => {
  await withData(async (emu, store, data) => {
    const corrupt: FaultRule = { kind: "corrupt", method: "GET", path: MEDIA, inResponse: true };
    emu.faults.add(corrupt);
    await assert.rejects(store.readBytes("data.bin"), (err: unknown) => {
      assert.ok(err instanceof SparsekdError, `got ${err}`);
      assert.match(
        err.message,
        /^cannot read gs:\/\/bkt\/run\/data\.bin: CRC32C mismatch \(got [A-Za-z0-9+/=]+, the object has [A-Za-z0-9+/=]+\)$/,
      );
      return true;
    });
    emu.faults.add(corrupt);
    await assert.rejects(readStream(await store.read("data.bin")), /CRC32C mismatch/);
    assert.deepEqual(emu.faults.pending(), []);
    // The stored object is intact: the next read is whole and right.
    assertSameBytes(await store.readBytes("data.bin"), data, "after");
  });
});

Deno.test("a download that stalls mid-body is given up after the request timeout and resumed", async () => {
  const emu = await startEmulator({ port: 0, buckets: ["bkt"] });
  try {
    const data = randomBytes(100 * KIB);
    emu.state.putObject("bkt", "s.bin", data, "application/octet-stream", {});
    const store = await openGcsStore("gs://bkt", { ...FAST, endpoint: emu.url, requestTimeoutMs: 300 });
    emu.faults.add([
      { kind: "stall", method: "GET", path: MEDIA, afterResponseBytes: 30_000 },
      { kind: "stall", method: "GET", path: MEDIA }, // one request stalls before its first byte
    ]);
    assertSameBytes(await store.readBytes("s.bin"), data, "readBytes");
    assert.deepEqual(emu.faults.pending(), []);
    assert.deepEqual(emu.faults.hits.map((h) => [h.kind, h.bytesSent]), [["stall", 0], ["stall", 30_000]]);
  } finally {
    await emu.close();
  }
});
