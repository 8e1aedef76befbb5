/**
 * The store registry: every scheme's module loads and opens; the endpoint option, as one URL or by scheme;
 * the read-only http(s) store (whole and ranged reads, a server that ignores Range, refusals).
 */
import assert from "node:assert/strict";
import { openStore, openStoreOf, readUriBytes, storeScheme } from "../src/store/open_store.ts";
import { storeHelp, STORES } from "../src/store/registry.ts";
import { startEmulator } from "../testing/gcs_emulator/server.ts";
import { oneLine } from "./_helpers.ts";

async function readAll(stream: ReadableStream<Uint8Array>): Promise<number[]> {
  const out: number[] = [];
  for await (const c of stream) out.push(...c);
  return out;
}

/** A static server of `files`; `ranges: false` makes it ignore Range headers (answering 200 with all). */
function serve(files: Record<string, Uint8Array<ArrayBuffer>>, ranges: boolean) {
  return Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const name = decodeURIComponent(new URL(req.url).pathname.slice(1));
    const data = files[name];
    if (data === undefined) return new Response("missing", { status: 404 });
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.get("range") ?? "");
    if (!ranges || !m) {
      return new Response(req.method === "HEAD" ? null : data, {
        headers: { "content-length": String(data.length) },
      });
    }
    const start = Number(m[1]);
    const end = m[2] === "" ? data.length : Math.min(data.length, Number(m[2]) + 1);
    if (start >= data.length) return new Response(null, { status: 416 });
    return new Response(data.subarray(start, end), {
      status: 206,
      headers: { "content-range": `bytes ${start}-${end - 1}/${data.length}` },
    });
  });
}

Deno.test("every registered store's module loads and exports its opener; the scheme decides which", async () => {
  for (const [scheme, entry] of Object.entries(STORES)) {
    assert.equal(scheme, scheme.toLowerCase());
    assert.equal(typeof await entry.load(), "function", `${scheme}: the module exports storeOpener`);
    assert.ok(storeHelp().includes(entry.help));
  }
  assert.equal(storeScheme("runs/demo"), "file");
  assert.equal(storeScheme("/abs/x:y"), "file");
  assert.equal(storeScheme("weird:name"), "file"); // no "//": a relative path
  assert.equal(storeScheme("C:\\runs"), "file");
  assert.equal(storeScheme("file:///tmp/x"), "file");
  assert.equal(storeScheme("GS://bkt/x"), "gs");
  assert.equal(storeScheme("https://example.org/m/"), "https");
  await assert.rejects(
    openStore("s3://bkt/x"),
    oneLine(/^s3:\/\/bkt\/x: unsupported store \(use .*gs:\/\/bucket/),
  );
  await assert.rejects(openStore("https://example.org/m", { create: true }), oneLine(/read-only/));
});

Deno.test("the endpoint option: one URL for the URI's scheme, or endpoints by scheme", async () => {
  const emu = await startEmulator({ port: 0, buckets: ["bkt"] });
  const before = Deno.env.get("STORAGE_EMULATOR_HOST");
  Deno.env.delete("STORAGE_EMULATOR_HOST");
  const dir = await Deno.makeTempDir();
  try {
    const a = await openStore("gs://bkt/run", { endpoint: emu.url });
    await a.writeBytes("x.bin", new Uint8Array([1, 2]));
    const b = await openStore("gs://bkt/run", { endpoint: { gs: emu.url, https: "http://127.0.0.1:1" } });
    assert.deepEqual([...await b.readBytes("x.bin")], [1, 2]);
    // Endpoints of other schemes do not apply to a local folder, nor a gs endpoint to it.
    const local = await openStore(`${dir}/out`, { endpoint: { gs: emu.url }, create: true });
    await local.writeBytes("y.bin", new Uint8Array([3]));
    assert.deepEqual([...await Deno.readFile(`${dir}/out/y.bin`)], [3]);
    assert.deepEqual([...await readUriBytes("gs://bkt/run/x.bin", { endpoint: { gs: emu.url } })], [1, 2]);
    assert.deepEqual([...await readUriBytes(`file://${dir}/out/y.bin`)], [3]);
    assert.deepEqual([...await readUriBytes(`${dir}/out/y.bin`)], [3]);
    const { store, path } = await openStoreOf(`gs://bkt/run/x.bin`, { endpoint: emu.url });
    assert.equal(path, "x.bin");
    assert.equal(store.uri, "gs://bkt/run/");
  } finally {
    if (before !== undefined) Deno.env.set("STORAGE_EMULATOR_HOST", before);
    await emu.close();
    await Deno.remove(dir, { recursive: true });
  }
});

for (const ranges of [true, false]) {
  Deno.test(`the http store reads whole objects and ranges (server ${ranges ? "with" : "without"} Range support) and refuses writes`, async () => {
    const data = new Uint8Array(1000).map((_, i) => (i * 7) & 255);
    const server = serve({ "m/data.bin": data, "m/sub dir/a b.bin": new Uint8Array([9]) }, ranges);
    const base = `http://127.0.0.1:${server.addr.port}/m`;
    try {
      const store = await openStore(base);
      assert.equal(store.uri, base);
      assert.equal(await store.exists("data.bin"), true);
      assert.equal(await store.exists("none.bin"), false);
      assert.equal(await store.size("data.bin"), 1000);
      assert.equal(await store.size("none.bin"), null);
      assert.deepEqual(await store.readBytes("data.bin"), data);
      assert.deepEqual(await store.readBytes("sub dir/a b.bin"), new Uint8Array([9]));
      assert.deepEqual(await readAll(await store.read("data.bin")), [...data]);
      assert.deepEqual(await readAll(await store.read("data.bin", { start: 10, end: 20 })), [
        ...data.subarray(10, 20),
      ]);
      assert.deepEqual(await readAll(await store.read("data.bin", { start: 990 })), [...data.subarray(990)]);
      assert.deepEqual(await readAll(await store.read("data.bin", { start: 5, end: 5 })), []);
      await assert.rejects(
        store.readBytes("none.bin"),
        oneLine(/\/m\/none\.bin does not exist \(HTTP 404\)$/),
      );
      await assert.rejects(store.read("none.bin"), oneLine(/does not exist/));
      await assert.rejects(store.writeBytes("w.bin", new Uint8Array(1)), oneLine(/read-only/));
      await assert.rejects(store.create("w.bin"), oneLine(/read-only/));
      await assert.rejects(store.delete("data.bin"), oneLine(/read-only/));
      await assert.rejects(store.list(""), oneLine(/cannot be listed/));
      await assert.rejects(store.readBytes("../x"), oneLine(/invalid object path/));
    } finally {
      await server.shutdown();
    }
  });
}

Deno.test("the http store: an unreachable server is a one-line error", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const store = await openStore(`http://127.0.0.1:${port}/m/`);
  await assert.rejects(
    store.readBytes("a.bin"),
    oneLine(/^cannot read http:\/\/127\.0\.0\.1:\d+\/m\/a\.bin: /),
  );
});
