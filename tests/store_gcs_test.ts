/**
 * The gs:// store on the official client, against the in-process emulator: streamed multi-chunk uploads that
 * survive injected faults (503, 408, reset, reset after N bytes), create-only semantics, failed and aborted
 * uploads leaving nothing, ranged reads, listing across pages, delete, bucket errors, STORAGE_EMULATOR_HOST.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { SparsekdError } from "../src/errors.ts";
import { crc32c, crc32cToBase64 } from "../src/format/crc32c.ts";
import { type RunningEmulator, startEmulator } from "../testing/gcs_emulator/server.ts";
import { type GcsStore, openGcsStore } from "../src/store/gcs.ts";
import { ObjectExistsError, type ObjectStore } from "../src/store/store.ts";
import { withSeed } from "./_rng.ts";
import { assertSameBytes, readStream } from "./_helpers.ts";

const KIB = 1024;
const CHUNK = 256 * KIB;
/** Fast retries for tests: the client's back-off starts at one second, so keep the count of faults small. */
const FAST = { chunkSize: CHUNK, maxRetries: 4, maxRetryDelaySeconds: 1, totalTimeoutSeconds: 60 };

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

/** Runs `body` with a fresh emulator (bucket "bkt") and a seed that is printed when it fails. */
async function withEmulator(
  name: string,
  body: (emu: RunningEmulator, rand: () => number) => Promise<void>,
): Promise<void> {
  const emu = await startEmulator({ port: 0, buckets: ["bkt"] });
  try {
    await withSeed(name, (rng) => body(emu, rng.uniform));
  } finally {
    await emu.close();
  }
}

/** Streams `data` into a create() writer in pieces of random sizes (up to 100 KiB). */
async function streamInto(store: ObjectStore, path: string, data: Uint8Array, rand: () => number) {
  const w = await store.create(path);
  const writer = w.writable.getWriter();
  let at = 0;
  while (at < data.length) {
    const n = Math.min(data.length - at, 1 + Math.floor(rand() * 100 * KIB));
    // A fresh buffer that is overwritten after write() resolves: the store must have copied it.
    const piece = data.slice(at, at + n);
    await writer.write(piece);
    piece.fill(0xee);
    at += n;
  }
  await writer.close();
  return await w.done;
}

Deno.test("a streamed multi-chunk upload lands byte for byte with the server's CRC32C, size and MD5", async () => {
  await withEmulator("plain upload", async (emu, rand) => {
    const store = await openGcsStore("gs://bkt/run/a", { ...FAST, endpoint: emu.url });
    const data = randomBytes(3 * 1024 * KIB + Math.floor(rand() * CHUNK));
    const info = await streamInto(store, "shards/s000000.msgpack", data, rand);
    assert.deepEqual(info, {
      path: "shards/s000000.msgpack",
      size: data.length,
      crc32c: crc32cToBase64(crc32c(data)),
    });
    const stored = emu.state.object("bkt", "run/a/shards/s000000.msgpack");
    assertSameBytes(stored.data, data, "stored object");
    assert.equal(stored.md5Hash, createHash("md5").update(data).digest("base64"));
    assertSameBytes(await readStream(await store.read("shards/s000000.msgpack")), data, "read back");
    assertSameBytes(await store.readBytes("shards/s000000.msgpack"), data, "readBytes");
    assert.equal(await store.size("shards/s000000.msgpack"), data.length);
    assert.equal(await store.exists("shards/s000000.msgpack"), true);
    assert.equal(await store.exists("shards/s000001.msgpack"), false);
    assert.equal(await store.size("shards/s000001.msgpack"), null);
  });
});

// One test per fault kind: each upload is streamed in several chunks, the fault hits one of its requests, the
// client retries (or resumes from the server's Range), and the object still ends with the exact bytes.
const FAULTS: Array<{ name: string; rule: (rand: () => number) => object }> = [
  {
    name: "HTTP 503 on a chunk PUT",
    rule: (r) => ({ method: "PUT", path: "upload_id", status: 503, skip: Math.floor(r() * 3) }),
  },
  {
    name: "HTTP 408 on a chunk PUT",
    rule: (r) => ({ method: "PUT", path: "upload_id", status: 408, skip: Math.floor(r() * 3) }),
  },
  {
    name: "HTTP 503 on the session initiation",
    rule: () => ({ method: "POST", path: "uploadType=resumable", status: 503 }),
  },
  {
    name: "a reset connection on a chunk PUT",
    rule: (r) => ({ kind: "reset", method: "PUT", path: "upload_id", skip: Math.floor(r() * 3) }),
  },
  {
    name: "a connection reset after N bytes of a chunk",
    rule: (r) => ({
      kind: "reset",
      method: "PUT",
      path: "upload_id",
      afterBytes: 1 + Math.floor(r() * (2 * CHUNK - 1)),
      skip: Math.floor(r() * 2),
    }),
  },
];

for (const fault of FAULTS) {
  Deno.test(`a streamed upload survives ${fault.name}`, async () => {
    await withEmulator(fault.name, async (emu, rand) => {
      const store = await openGcsStore("gs://bkt/run", { ...FAST, chunkSize: 2 * CHUNK, endpoint: emu.url });
      const data = randomBytes(5 * 2 * CHUNK + 1 + Math.floor(rand() * CHUNK));
      const rule = fault.rule(rand);
      emu.faults.add(rule);
      const info = await streamInto(store, "obj.bin", data, rand);
      assert.equal(emu.faults.hits.length, 1, `the fault ${JSON.stringify(rule)} must have happened`);
      assert.equal(emu.faults.pending().length, 0);
      assert.equal(info.size, data.length);
      assert.equal(info.crc32c, crc32cToBase64(crc32c(data)));
      assertSameBytes(emu.state.object("bkt", "run/obj.bin").data, data, "stored object");
      assertSameBytes(await readStream(await store.read("obj.bin")), data, "read back");
    });
  });
}

Deno.test("several faults of every kind in one upload still end with the exact bytes", async () => {
  await withEmulator("many faults", async (emu, rand) => {
    const store = await openGcsStore("gs://bkt", { ...FAST, maxRetries: 8, endpoint: emu.url });
    const data = randomBytes(12 * CHUNK + Math.floor(rand() * CHUNK));
    emu.faults.add([
      { method: "POST", path: "uploadType=resumable", status: 408 },
      { method: "PUT", path: "upload_id", status: 503, skip: 1 },
      {
        kind: "reset",
        method: "PUT",
        path: "upload_id",
        afterBytes: 1 + Math.floor(rand() * (CHUNK - 1)),
        skip: 3,
      },
      { kind: "reset", method: "PUT", path: "upload_id", skip: 6 },
    ]);
    await streamInto(store, "deep/obj.bin", data, rand);
    assert.equal(emu.faults.hits.length, 4);
    assertSameBytes(emu.state.object("bkt", "deep/obj.bin").data, data, "stored object");
  });
});

Deno.test("an upload survives failures of the status queries that follow a failed chunk", async () => {
  await withEmulator("status queries", async (emu, rand) => {
    const store = await openGcsStore("gs://bkt", { ...FAST, endpoint: emu.url });
    const data = randomBytes(6 * CHUNK + Math.floor(rand() * CHUNK));
    // A later chunk gets a 503, then the two status queries after it get 503s as well.
    const k = 1 + Math.floor(rand() * 3);
    emu.faults.add({ method: "PUT", path: "upload_id", status: 503, skip: k, count: 3 });
    await streamInto(store, "q1.bin", data, rand);
    assert.equal(emu.faults.hits.length, 3);
    assertSameBytes(emu.state.object("bkt", "q1.bin").data, data, "after 503s");
    // A reset in the middle of a chunk, then a 503 on the status query.
    emu.faults.add([
      {
        kind: "reset",
        method: "PUT",
        path: "upload_id",
        afterBytes: 1 + Math.floor(rand() * (CHUNK - 1)),
        skip: k,
      },
      { method: "PUT", path: "upload_id", status: 503, skip: k + 1 },
    ]);
    await streamInto(store, "q2.bin", data, rand);
    assert.equal(emu.faults.hits.length, 5);
    assertSameBytes(emu.state.object("bkt", "q2.bin").data, data, "after a reset and a 503");
  });
});

Deno.test("a second create of the same object is refused with ObjectExistsError and leaves it unchanged", async () => {
  await withEmulator("create-only", async (emu, rand) => {
    const store = await openGcsStore("gs://bkt/p", { ...FAST, endpoint: emu.url });
    const first = randomBytes(CHUNK + Math.floor(rand() * CHUNK));
    await streamInto(store, "x.bin", first, rand);
    const generation = emu.state.object("bkt", "p/x.bin").generation;

    const w = await store.create("x.bin");
    const writer = w.writable.getWriter();
    const closing = (async () => {
      await writer.write(randomBytes(2 * CHUNK + 5));
      await writer.close();
    })();
    await assert.rejects(closing, (err: unknown) => {
      assert.ok(err instanceof ObjectExistsError, `got ${err}`);
      assert.equal(err.uri, "gs://bkt/p/x.bin");
      return true;
    });
    await assert.rejects(w.done, ObjectExistsError);
    await assert.rejects(store.writeBytes("x.bin", randomBytes(10)), ObjectExistsError);

    const after = emu.state.object("bkt", "p/x.bin");
    assert.equal(after.generation, generation);
    assertSameBytes(after.data, first, "the first object");
  });
});

Deno.test("an upload that keeps failing rejects with a one-line SparsekdError and leaves no object", async () => {
  await withEmulator("failed upload", async (emu, rand) => {
    const store = await openGcsStore("gs://bkt/p", { ...FAST, maxRetries: 2, endpoint: emu.url });
    emu.faults.add({ method: "PUT", path: "upload_id", status: 503, skip: 1, count: 100 });
    const w = await store.create("doomed.bin");
    const writer = w.writable.getWriter();
    const writing = (async () => {
      const data = randomBytes(4 * CHUNK + Math.floor(rand() * CHUNK));
      for (let at = 0; at < data.length; at += 64 * KIB) await writer.write(data.subarray(at, at + 64 * KIB));
      await writer.close();
    })();
    await assert.rejects(writing, (err: unknown) => {
      assert.ok(err instanceof SparsekdError, `got ${err}`);
      assert.match(err.message, /^upload of gs:\/\/bkt\/p\/doomed\.bin failed: /);
      assert.ok(!err.message.includes("\n"));
      return true;
    });
    await assert.rejects(w.done, SparsekdError);
    // The 503s hit chunk PUTs and the status queries of the retries; the client gave up after its retries.
    assert.ok(emu.faults.hits.length >= 2, `${emu.faults.hits.length} faults`);
    assert.ok(emu.faults.pending().length > 0);
    assert.equal(await store.exists("doomed.bin"), false);
    assert.equal(emu.state.bucket("bkt").objects.size, 0);
  });
});

Deno.test("bytes corrupted on the way are caught by the CRC32C check: the upload fails, no object stays", async () => {
  await withEmulator("corrupt", async (emu, rand) => {
    const store = await openGcsStore("gs://bkt/c", { ...FAST, endpoint: emu.url });
    emu.faults.add({ kind: "corrupt", method: "PUT", path: "upload_id", skip: Math.floor(rand() * 3) });
    const data = randomBytes(3 * CHUNK + Math.floor(rand() * CHUNK));
    await assert.rejects(streamInto(store, "bent.bin", data, rand), (err: unknown) => {
      assert.ok(err instanceof SparsekdError, `got ${err}`);
      assert.match(err.message, /^upload of gs:\/\/bkt\/c\/bent\.bin failed: .*(mismatch|match)/i);
      return true;
    });
    assert.equal(emu.faults.hits.length, 1);
    assert.equal(await store.exists("bent.bin"), false);
  });
});

Deno.test("aborting a writer cancels the upload and leaves no object", async () => {
  await withEmulator("abort", async (emu) => {
    const store = await openGcsStore("gs://bkt", { ...FAST, endpoint: emu.url });
    const w = await store.create("aborted.bin");
    const writer = w.writable.getWriter();
    await writer.write(randomBytes(3 * CHUNK));
    await writer.abort(new Error("producer failed"));
    await assert.rejects(w.done);
    assert.equal(await store.exists("aborted.bin"), false);
    // The name stays free for a later, complete write.
    const info = await store.writeBytes("aborted.bin", new Uint8Array([1, 2, 3]));
    assert.equal(info.size, 3);
  });
});

Deno.test("ranged reads return exactly the bytes asked for", async () => {
  await withEmulator("ranges", async (emu, rand) => {
    const store = await openGcsStore("gs://bkt/r", { ...FAST, endpoint: emu.url });
    const data = randomBytes(CHUNK + Math.floor(rand() * CHUNK));
    await store.writeBytes("data.bin", data);
    for (let i = 0; i < 8; i++) {
      const start = Math.floor(rand() * data.length);
      const end = start + Math.floor(rand() * (data.length - start + 1));
      assertSameBytes(
        await readStream(await store.read("data.bin", { start, end })),
        data.subarray(start, end),
        `[${start}, ${end})`,
      );
    }
    const start = Math.floor(rand() * data.length);
    assertSameBytes(
      await readStream(await store.read("data.bin", { start })),
      data.subarray(start),
      `[${start}, end)`,
    );
    const end = 1 + Math.floor(rand() * data.length);
    assertSameBytes(
      await readStream(await store.read("data.bin", { end })),
      data.subarray(0, end),
      `[0, ${end})`,
    );
    assert.equal((await readStream(await store.read("data.bin", { start: 7, end: 7 }))).length, 0);
    // Past the end reads as empty, as from a local file.
    assert.equal((await readStream(await store.read("data.bin", { start: data.length + 3 }))).length, 0);
    assert.equal(
      (await readStream(await store.read("data.bin", { start: data.length, end: data.length + 9 }))).length,
      0,
    );
    assertSameBytes(
      await readStream(await store.read("data.bin", { start: 5, end: data.length + 9 })),
      data.subarray(5),
      "clamped",
    );
    await assert.rejects(store.read("missing.bin"), (err: unknown) => {
      assert.ok(err instanceof SparsekdError);
      assert.equal(err.message, "gs://bkt/r/missing.bin does not exist");
      return true;
    });
    await assert.rejects(store.readBytes("missing.bin"), SparsekdError);
  });
});

Deno.test("an empty object can be written and read", async () => {
  await withEmulator("empty", async (emu) => {
    const store = await openGcsStore("gs://bkt", { ...FAST, endpoint: emu.url });
    const info = await store.writeBytes("empty.bin", new Uint8Array(0));
    assert.deepEqual(info, { path: "empty.bin", size: 0, crc32c: crc32cToBase64(crc32c(new Uint8Array(0))) });
    assert.equal((await store.readBytes("empty.bin")).length, 0);
    assert.equal(await store.size("empty.bin"), 0);
  });
});

Deno.test("list follows page tokens and returns the paths under a prefix, relative and sorted", async () => {
  await withEmulator("list", async (emu, rand) => {
    const store = await openGcsStore("gs://bkt/run", { ...FAST, endpoint: emu.url });
    // More objects than one page (1000) holds, put straight into the emulator to keep the test quick.
    const n = 1001 + Math.floor(rand() * 1500);
    const expected: string[] = [];
    for (let i = 0; i < n; i++) {
      const path = `shards/s${String(Math.floor(rand() * 1e9)).padStart(9, "0")}-${i}.msgpack`;
      emu.state.putObject("bkt", `run/${path}`, new Uint8Array([i & 255]), "application/octet-stream", {});
      expected.push(path);
    }
    emu.state.putObject("bkt", "run/run.json", new Uint8Array(1), "application/json", {});
    emu.state.putObject("bkt", "runner/shards/x", new Uint8Array(1), "application/octet-stream", {});
    emu.state.putObject("bkt", "other/shards/y", new Uint8Array(1), "application/octet-stream", {});
    expected.sort();
    assert.deepEqual(await store.list("shards/"), expected);
    assert.deepEqual(await store.list(""), [...expected, "run.json"].sort());
    assert.deepEqual(await store.list("run"), ["run.json"]);
    assert.deepEqual(await store.list("nothing/"), []);
  });
});

Deno.test("delete removes an object and ignores a missing one", async () => {
  await withEmulator("delete", async (emu) => {
    const store = await openGcsStore("gs://bkt/d", { ...FAST, endpoint: emu.url });
    await store.writeBytes("a.bin", new Uint8Array([1]));
    await store.writeBytes("b.bin", new Uint8Array([2]));
    await store.delete("a.bin");
    assert.equal(await store.exists("a.bin"), false);
    assert.deepEqual(await store.list(""), ["b.bin"]);
    await store.delete("a.bin");
    await store.delete("never.bin");
    // A deleted name can be created again.
    await store.writeBytes("a.bin", new Uint8Array([3]));
    assert.deepEqual([...await store.readBytes("a.bin")], [3]);
  });
});

Deno.test("a bucket that does not exist is a one-line SparsekdError at open", async () => {
  await withEmulator("missing bucket", async (emu) => {
    await assert.rejects(openGcsStore("gs://no-such-bucket/x", { endpoint: emu.url }), (err: unknown) => {
      assert.ok(err instanceof SparsekdError, `got ${err}`);
      assert.equal(err.message, `bucket gs://no-such-bucket does not exist at ${emu.url}`);
      return true;
    });
    // Creating it through the client's bucket API makes the same URI usable.
    const store = await openGcsStore("gs://bkt", { endpoint: emu.url });
    await (store as GcsStore).storage.createBucket("no-such-bucket");
    const created = await openGcsStore("gs://no-such-bucket/x", { ...FAST, endpoint: emu.url });
    await created.writeBytes("hello.txt", new TextEncoder().encode("hi"));
    assert.equal(new TextDecoder().decode(emu.state.object("no-such-bucket", "x/hello.txt").data), "hi");
  });
});

Deno.test("bad gs:// locations and endpoints are one-line SparsekdErrors", async () => {
  // A port nothing listens on: bind one, note it, release it.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const cases: Array<[string, object, RegExp]> = [
    ["gs://Bad_Bucket/x", { endpoint: "http://127.0.0.1:1" }, /not a valid bucket name/],
    ["gs://bkt", { endpoint: "ftp://127.0.0.1:1" }, /must be an http/],
    ["gs://bkt", { endpoint: "http://127.0.0.1:1", chunkSize: 1000 }, /multiple of 256 KiB/],
    [
      "gs://bkt",
      { endpoint: `http://127.0.0.1:${port}` },
      /^cannot open gs:\/\/bkt at http:\/\/127\.0\.0\.1:\d+: /,
    ],
  ];
  for (const [uri, options, pattern] of cases) {
    await assert.rejects(openGcsStore(uri, options), (err: unknown) => {
      assert.ok(err instanceof SparsekdError, `${uri}: got ${err}`);
      assert.match(err.message, pattern);
      assert.ok(!err.message.includes("\n"), err.message);
      return true;
    });
  }
});

Deno.test("STORAGE_EMULATOR_HOST points the store at the emulator when no endpoint is given", async () => {
  await withEmulator("env endpoint", async (emu, rand) => {
    const before = Deno.env.get("STORAGE_EMULATOR_HOST");
    // Without a scheme, as fake-gcs-server users often write it: http:// is assumed.
    Deno.env.set("STORAGE_EMULATOR_HOST", `127.0.0.1:${emu.port}`);
    try {
      const store = await openGcsStore("gs://bkt/env", FAST);
      const data = randomBytes(CHUNK + Math.floor(rand() * CHUNK));
      await store.writeBytes("e.bin", data);
      assertSameBytes(await store.readBytes("e.bin"), data, "read back");
      assert.deepEqual(await store.list(""), ["e.bin"]);
      await assert.rejects(
        openGcsStore("gs://absent", FAST),
        /bucket gs:\/\/absent does not exist at http:\/\/127/,
      );
    } finally {
      if (before === undefined) Deno.env.delete("STORAGE_EMULATOR_HOST");
      else Deno.env.set("STORAGE_EMULATOR_HOST", before);
    }
  });
});
