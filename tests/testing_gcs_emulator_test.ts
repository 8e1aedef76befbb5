/**
 * The GCS emulator at the protocol level (plain fetch, no client library): buckets, resumable sessions with
 * 308 + Range and status queries, preconditions, hashes, multipart uploads, ranged media downloads, listing
 * with pageToken, delete, fault injection through the control endpoint, and the `deno task gcs-emulator` CLI.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { crc32c, crc32cToBase64 } from "../src/format/crc32c.ts";
import { type RunningEmulator, startEmulator, UPLOAD_GRANULARITY } from "../testing/gcs_emulator/server.ts";

const Q = UPLOAD_GRANULARITY;

function randomBytes(n: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, Math.min(n, i + 65536)));
  return out;
}

function randInt(n: number): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] % n;
}

async function withEmulator(body: (emu: RunningEmulator) => Promise<void>, buckets = ["bkt"]): Promise<void> {
  const emu = await startEmulator({ port: 0, buckets });
  try {
    await body(emu);
  } finally {
    await emu.close();
  }
}

async function json(res: Response): Promise<Record<string, unknown>> {
  return await res.json();
}

/** Opens a resumable session and returns its URI. */
async function openSession(
  emu: RunningEmulator,
  name: string,
  query = "ifGenerationMatch=0",
): Promise<string> {
  const res = await fetch(
    `${emu.url}/upload/storage/v1/b/bkt/o?uploadType=resumable&name=${encodeURIComponent(name)}&${query}`,
    { method: "POST", headers: { "content-type": "application/json" }, body: "{}" },
  );
  await res.body?.cancel();
  assert.equal(res.status, 200);
  const location = res.headers.get("location");
  assert.ok(location?.includes("upload_id="), `location ${location}`);
  return location!;
}

function put(
  uri: string,
  range: string,
  body: Uint8Array<ArrayBuffer>,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(uri, { method: "PUT", headers: { "content-range": range, ...headers }, body });
}

Deno.test("a resumable session answers 308 with Range, reports its status and ends with the object JSON", async () => {
  await withEmulator(async (emu) => {
    const data = randomBytes(3 * Q + 1 + randInt(Q));
    const uri = await openSession(emu, "dir/obj.bin");

    // Nothing received yet: 308 without a Range header.
    let res = await put(uri, "bytes */*", new Uint8Array(0));
    assert.equal(res.status, 308);
    assert.equal(res.headers.get("range"), null);
    await res.body?.cancel();

    res = await put(uri, `bytes 0-${2 * Q - 1}/*`, data.subarray(0, 2 * Q));
    assert.equal(res.status, 308);
    assert.equal(res.headers.get("range"), `bytes=0-${2 * Q - 1}`);
    await res.body?.cancel();

    // Resending bytes the server has is harmless: they are skipped.
    res = await put(uri, `bytes ${Q}-${3 * Q - 1}/*`, data.subarray(Q, 3 * Q));
    assert.equal(res.status, 308);
    assert.equal(res.headers.get("range"), `bytes=0-${3 * Q - 1}`);
    await res.body?.cancel();

    // A gap is refused.
    res = await put(uri, `bytes ${4 * Q}-${5 * Q - 1}/*`, data.subarray(0, Q));
    assert.equal(res.status, 400);
    await res.body?.cancel();

    res = await put(uri, "bytes */*", new Uint8Array(0));
    assert.equal(res.status, 308);
    assert.equal(res.headers.get("range"), `bytes=0-${3 * Q - 1}`);
    await res.body?.cancel();
    assert.equal(emu.state.bucket("bkt").objects.size, 0, "no object before the final chunk");

    res = await put(uri, `bytes ${3 * Q}-${data.length - 1}/${data.length}`, data.subarray(3 * Q));
    assert.equal(res.status, 200);
    const obj = await json(res);
    assert.equal(obj.name, "dir/obj.bin");
    assert.equal(obj.bucket, "bkt");
    assert.equal(obj.size, String(data.length));
    assert.equal(obj.crc32c, crc32cToBase64(crc32c(data)));
    assert.equal(obj.md5Hash, createHash("md5").update(data).digest("base64"));
    assert.match(String(obj.generation), /^\d+$/);

    // The finished session keeps answering with the object.
    res = await put(uri, "bytes */*", new Uint8Array(0));
    assert.equal(res.status, 200);
    assert.equal((await json(res)).generation, obj.generation);

    const media = await fetch(`${emu.url}/storage/v1/b/bkt/o/${encodeURIComponent("dir/obj.bin")}?alt=media`);
    assert.equal(media.status, 200);
    assert.equal(media.headers.get("x-goog-hash"), `crc32c=${obj.crc32c},md5=${obj.md5Hash}`);
    assert.deepEqual(new Uint8Array(await media.arrayBuffer()), data);
  });
});

Deno.test("a session finalized with 'bytes */N' and an empty final chunk completes the object", async () => {
  await withEmulator(async (emu) => {
    const data = randomBytes(Q);
    const uri = await openSession(emu, "exact.bin");
    let res = await put(uri, `bytes 0-${Q - 1}/*`, data);
    assert.equal(res.status, 308);
    await res.body?.cancel();
    res = await put(uri, `bytes */${Q}`, new Uint8Array(0));
    assert.equal(res.status, 200);
    assert.equal((await json(res)).size, String(Q));

    const empty = await openSession(emu, "empty.bin");
    res = await put(empty, "bytes 0--1/0", new Uint8Array(0));
    assert.equal(res.status, 200);
    assert.equal((await json(res)).size, "0");
  });
});

Deno.test("ifGenerationMatch is enforced at session start and at finalization (412)", async () => {
  await withEmulator(async (emu) => {
    const a = await openSession(emu, "race.bin");
    const b = await openSession(emu, "race.bin");
    let res = await put(a, "bytes 0-2/3", new Uint8Array([1, 2, 3]));
    assert.equal(res.status, 200);
    const generation = (await json(res)).generation;
    // The second session was opened before the object existed; it is refused when it tries to finish.
    res = await put(b, "bytes 0-1/2", new Uint8Array([9, 9]));
    assert.equal(res.status, 412);
    assert.equal(((await json(res)).error as { code: number }).code, 412);
    // A new session is refused at once.
    res = await fetch(
      `${emu.url}/upload/storage/v1/b/bkt/o?uploadType=resumable&name=race.bin&ifGenerationMatch=0`,
      {
        method: "POST",
        body: "{}",
      },
    );
    assert.equal(res.status, 412);
    await res.body?.cancel();
    // The right generation is accepted, and the object is replaced.
    const c = await openSession(emu, "race.bin", `ifGenerationMatch=${generation}`);
    res = await put(c, "bytes 0-0/1", new Uint8Array([7]));
    assert.equal(res.status, 200);
    assert.notEqual((await json(res)).generation, generation);
    assert.deepEqual([...emu.state.object("bkt", "race.bin").data], [7]);
  });
});

Deno.test("a final chunk whose X-Goog-Hash does not match is refused and leaves no object", async () => {
  await withEmulator(async (emu) => {
    const data = randomBytes(1000 + randInt(1000));
    const wrong = crc32cToBase64((crc32c(data) ^ 1) >>> 0);
    const uri = await openSession(emu, "bad.bin");
    const res = await put(uri, `bytes 0-${data.length - 1}/${data.length}`, data, {
      "x-goog-hash": `crc32c=${wrong}`,
    });
    assert.equal(res.status, 400);
    await res.body?.cancel();
    assert.equal(emu.state.bucket("bkt").objects.size, 0);
    const ok = await openSession(emu, "good.bin");
    const res2 = await put(ok, `bytes 0-${data.length - 1}/${data.length}`, data, {
      "x-goog-hash": `crc32c=${crc32cToBase64(crc32c(data))},md5=${
        createHash("md5").update(data).digest("base64")
      }`,
    });
    assert.equal(res2.status, 200);
    await res2.body?.cancel();
  });
});

Deno.test("multipart uploads store the media part and honour ifGenerationMatch", async () => {
  await withEmulator(async (emu) => {
    const data = randomBytes(10 + randInt(5000));
    const boundary = `b${randInt(1e9)}`;
    const enc = new TextEncoder();
    const body = new Uint8Array([
      ...enc.encode(`--${boundary}\r\nContent-Type: application/json\r\n\r\n{"name":"m/part.bin"}\r\n`),
      ...enc.encode(`--${boundary}\r\nContent-Type: application/octet-stream\r\n\r\n`),
      ...data,
      ...enc.encode(`\r\n--${boundary}--`),
    ]);
    const send = () =>
      fetch(`${emu.url}/upload/storage/v1/b/bkt/o?uploadType=multipart&ifGenerationMatch=0`, {
        method: "POST",
        headers: { "content-type": `multipart/related; boundary=${boundary}` },
        body,
      });
    let res = await send();
    assert.equal(res.status, 200);
    assert.equal((await json(res)).crc32c, crc32cToBase64(crc32c(data)));
    assert.deepEqual(emu.state.object("bkt", "m/part.bin").data, data);
    res = await send();
    assert.equal(res.status, 412);
    await res.body?.cancel();
  });
});

Deno.test("media downloads honour Range (206, suffix ranges, 416 past the end)", async () => {
  await withEmulator(async (emu) => {
    const data = randomBytes(5000 + randInt(5000));
    emu.state.putObject("bkt", "r.bin", data, "application/octet-stream", {});
    const get = (range?: string) =>
      fetch(`${emu.url}/storage/v1/b/bkt/o/r.bin?alt=media`, { headers: range ? { range } : {} });
    const a = randInt(data.length);
    const b = a + randInt(data.length - a);
    let res = await get(`bytes=${a}-${b}`);
    assert.equal(res.status, 206);
    assert.equal(res.headers.get("content-range"), `bytes ${a}-${b}/${data.length}`);
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), data.subarray(a, b + 1));
    res = await get(`bytes=${a}-`);
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), data.subarray(a));
    res = await get(`bytes=-100`);
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), data.subarray(data.length - 100));
    res = await get(`bytes=${a}-${data.length + 1000}`);
    assert.deepEqual(new Uint8Array(await res.arrayBuffer()), data.subarray(a));
    res = await get(`bytes=${data.length}-`);
    assert.equal(res.status, 416);
    await res.body?.cancel();
    res = await fetch(`${emu.url}/storage/v1/b/bkt/o/absent.bin?alt=media`);
    assert.equal(res.status, 404);
    await res.body?.cancel();
  });
});

Deno.test("listing pages through pageToken, filters by prefix and groups by delimiter", async () => {
  await withEmulator(async (emu) => {
    const names = new Set<string>();
    const n = 20 + randInt(30);
    while (names.size < n) names.add(`p/${["a", "b", "c"][randInt(3)]}/${randInt(1e6)}`);
    for (const name of names) {
      emu.state.putObject("bkt", name, new Uint8Array([1]), "application/octet-stream", {});
    }
    emu.state.putObject("bkt", "q/other", new Uint8Array([1]), "application/octet-stream", {});
    const pageSize = 1 + randInt(7);
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const url = `${emu.url}/storage/v1/b/bkt/o?prefix=p/&maxResults=${pageSize}${
        token ? `&pageToken=${token}` : ""
      }`;
      const page = await json(await fetch(url));
      const items = (page.items ?? []) as Array<{ name: string }>;
      assert.ok(items.length <= pageSize);
      seen.push(...items.map((i) => i.name));
      token = page.nextPageToken as string | undefined;
      pages++;
    } while (token);
    assert.deepEqual(seen, [...names].sort());
    assert.equal(pages, Math.ceil(n / pageSize));

    const grouped = await json(await fetch(`${emu.url}/storage/v1/b/bkt/o?prefix=p/&delimiter=/`));
    const expected = [...new Set([...names].map((x) => x.slice(0, 4)))].sort();
    assert.deepEqual(grouped.prefixes, expected);
    assert.equal(grouped.items, undefined);
  });
});

Deno.test("objects can be deleted, with preconditions; buckets are created, listed and deleted", async () => {
  await withEmulator(async (emu) => {
    const obj = emu.state.putObject("bkt", "d.bin", new Uint8Array([1]), "application/octet-stream", {});
    let res = await fetch(`${emu.url}/storage/v1/b/bkt/o/d.bin?ifGenerationMatch=${obj.generation + 1n}`, {
      method: "DELETE",
    });
    assert.equal(res.status, 412);
    await res.body?.cancel();
    res = await fetch(`${emu.url}/storage/v1/b/bkt/o/d.bin`, { method: "DELETE" });
    assert.equal(res.status, 204);
    await res.body?.cancel();
    res = await fetch(`${emu.url}/storage/v1/b/bkt/o/d.bin`, { method: "DELETE" });
    assert.equal(res.status, 404);
    await res.body?.cancel();

    const name = `made-${randInt(1e6)}`;
    res = await fetch(`${emu.url}/storage/v1/b?project=sparsekd`, {
      method: "POST",
      body: JSON.stringify({ name }),
    });
    assert.equal(res.status, 200);
    assert.equal((await json(res)).name, name);
    res = await fetch(`${emu.url}/storage/v1/b?project=sparsekd`, {
      method: "POST",
      body: JSON.stringify({ name }),
    });
    assert.equal(res.status, 409);
    await res.body?.cancel();
    res = await fetch(`${emu.url}/storage/v1/b?project=sparsekd`, {
      method: "POST",
      body: '{"name":"Bad_Name"}',
    });
    assert.equal(res.status, 400);
    await res.body?.cancel();
    // The bare path form (what the client uses with STORAGE_EMULATOR_HOST) reaches the same bucket.
    res = await fetch(`${emu.url}/b/${name}`);
    assert.equal(res.status, 200);
    await res.body?.cancel();
    const listed = await json(await fetch(`${emu.url}/storage/v1/b?project=sparsekd`));
    assert.deepEqual((listed.items as Array<{ name: string }>).map((b) => b.name), ["bkt", name].sort());
    res = await fetch(`${emu.url}/storage/v1/b/${name}`, { method: "DELETE" });
    assert.equal(res.status, 204);
    await res.body?.cancel();
    res = await fetch(`${emu.url}/storage/v1/b/${name}`);
    assert.equal(res.status, 404);
    await res.body?.cancel();
  });
});

Deno.test("the control endpoint injects status faults and resets; a reset keeps whole 256 KiB units", async () => {
  await withEmulator(async (emu) => {
    const control = async (method: string, body?: unknown) =>
      await json(
        await fetch(`${emu.url}/_emulator/faults`, {
          method,
          body: body === undefined ? undefined : JSON.stringify(body),
        }),
      );
    let state = await control("POST", [
      { method: "GET", path: "/o/f.bin", status: 503, count: 2 },
      { method: "GET", path: "/o/f.bin", status: 408, skip: 1 },
    ]);
    assert.equal((state.pending as unknown[]).length, 2);
    emu.state.putObject("bkt", "f.bin", new Uint8Array([5]), "application/octet-stream", {});
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${emu.url}/storage/v1/b/bkt/o/f.bin?alt=media`);
      statuses.push(res.status);
      await res.body?.cancel();
    }
    assert.deepEqual(statuses, [503, 503, 408, 200]);
    state = await control("GET");
    assert.equal((state.hits as unknown[]).length, 3);
    assert.equal((state.pending as unknown[]).length, 0);

    const bad = await fetch(`${emu.url}/_emulator/faults`, { method: "POST", body: '{"method":"PUT"}' });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();

    // A reset part-way through a chunk: the session keeps the whole 256 KiB units that arrived.
    const uri = await openSession(emu, "cut.bin");
    const afterBytes = Q + 1 + randInt(Q - 1);
    await control("POST", { kind: "reset", method: "PUT", path: "upload_id", afterBytes });
    const data = randomBytes(3 * Q);
    // A client of its own: fetch would silently resend the request on a reused keep-alive connection.
    const client = Deno.createHttpClient({});
    try {
      await assert.rejects(
        fetch(uri, {
          method: "PUT",
          headers: { "content-range": `bytes 0-${3 * Q - 1}/*` },
          body: data,
          client,
        }),
      );
    } finally {
      client.close();
    }
    const res = await put(uri, "bytes */*", new Uint8Array(0));
    assert.equal(res.status, 308);
    assert.equal(res.headers.get("range"), `bytes=0-${Q - 1}`);
    await res.body?.cancel();
    assert.equal(emu.faults.hits.at(-1)?.bytesRead, afterBytes);
    state = await control("DELETE");
    assert.equal((state.pending as unknown[]).length, 0);
  });
});

Deno.test("deno task gcs-emulator --port P --bucket NAME serves the bucket until SIGTERM", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const bucket = `cli-${randInt(1e6)}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../tasks/gcs_emulator.ts", import.meta.url).pathname,
      "--port",
      String(port),
      "--bucket",
      bucket,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("listening")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    assert.match(out, new RegExp(`listening on http://127\\.0\\.0\\.1:${port}`));
    const res = await fetch(`http://127.0.0.1:${port}/storage/v1/b/${bucket}`);
    assert.equal(res.status, 200);
    assert.equal((await json(res)).name, bucket);
    child.kill("SIGTERM");
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    const status = await child.status;
    assert.equal(status.code, 0);
  } finally {
    clearTimeout(timer);
    await child.stderr.cancel().catch(() => {});
  }
});

Deno.test("deno task gcs-emulator refuses a bad bucket name with a one-line error", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../tasks/gcs_emulator.ts", import.meta.url).pathname,
      "--port",
      "0",
      "--bucket",
      "No",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.notEqual(out.code, 0);
  const err = new TextDecoder().decode(out.stderr).trim();
  assert.match(err, /^error: cannot create bucket "No": /);
  assert.equal(err.split("\n").length, 1);
});

Deno.test("a response reset sends the headers and the first N body bytes, then cuts the connection", async () => {
  await withEmulator(async (emu) => {
    const data = randomBytes(200_000);
    emu.state.putObject("bkt", "d.bin", data, "application/octet-stream", {});
    const n = 1 + randInt(150_000);
    const bad = await fetch(`${emu.url}/_emulator/faults`, {
      method: "POST",
      body: JSON.stringify({ kind: "reset", afterResponseBytes: 1, afterBytes: 2 }),
    });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    emu.faults.add([
      // A response not longer than N is not hit and does not count; the next, longer one is cut.
      { kind: "reset", method: "GET", path: "alt=media", afterResponseBytes: n, skip: 1 },
    ]);
    const client = Deno.createHttpClient({});
    try {
      const read = async (range?: string) => {
        const res = await fetch(`${emu.url}/storage/v1/b/bkt/o/d.bin?alt=media`, {
          headers: range ? { range } : {},
          client,
        });
        const got: number[] = [];
        try {
          for await (const c of res.body!) got.push(c.length);
          return { status: res.status, bytes: got.reduce((a, b) => a + b, 0), error: null };
        } catch (err) {
          return { status: res.status, bytes: got.reduce((a, b) => a + b, 0), error: err };
        }
      };
      const short = await read(`bytes=0-${n - 1}`); // exactly N bytes: passes, not counted
      assert.deepEqual([short.status, short.bytes, short.error], [206, n, null]);
      const skipped = await read(); // longer: the skip lets it through
      assert.deepEqual([skipped.status, skipped.bytes, skipped.error], [200, data.length, null]);
      const cut = await read();
      assert.equal(cut.status, 200);
      assert.equal(cut.bytes, n);
      assert.ok(cut.error !== null, "the body ends in an error, not quietly");
      const whole = await read();
      assert.deepEqual([whole.bytes, whole.error], [data.length, null]);
    } finally {
      client.close();
    }
    assert.deepEqual(emu.faults.pending(), []);
    assert.deepEqual(emu.faults.hits.map((h) => [h.kind, h.bytesSent]), [["reset", n]]);
  });
});
