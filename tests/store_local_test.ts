import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import { errorLine } from "../src/cli/run_main.ts";
import { crc32c, crc32cToBase64 } from "../src/format/crc32c.ts";
import { openLocalStore } from "../src/store/local.ts";
import { openStore, parseStoreUri } from "../src/store/open_store.ts";
import { ObjectExistsError } from "../src/store/store.ts";
import { withSeed } from "./_rng.ts";
import { writePatternShards } from "./_train_fixtures.ts";
import { withTempDir } from "./_helpers.ts";

async function allFiles(dir: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(rel ? `${dir}/${rel}` : dir)) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await allFiles(dir, p));
    else out.push(p);
  }
  return out.sort();
}

Deno.test("local store: streamed create-only write reports size and CRC32C, then reads back whole and by range", () =>
  withSeed("local write/read", (rng) =>
    withTempDir(async (dir) => {
      const store = await openLocalStore(dir);
      const bytes = Uint8Array.from({ length: 200000 + rng.int(100000) }, () => rng.int(256));
      const w = await store.create("shards/s000000.msgpack");
      const writer = w.writable.getWriter();
      let pos = 0;
      while (pos < bytes.length) {
        const n = 1 + rng.int(30000);
        await writer.write(bytes.slice(pos, pos + n));
        pos += n;
        // not visible while being written
        assert.equal(await store.exists("shards/s000000.msgpack"), false);
      }
      await writer.close();
      const info = await w.done;
      assert.deepEqual(info, {
        path: "shards/s000000.msgpack",
        size: bytes.length,
        crc32c: crc32cToBase64(crc32c(bytes)),
      });
      assert.equal(await store.size("shards/s000000.msgpack"), bytes.length);
      assert.deepEqual(await store.readBytes("shards/s000000.msgpack"), bytes);
      assert.deepEqual(await new Response(await store.read("shards/s000000.msgpack")).bytes(), bytes);
      for (let i = 0; i < 10; i++) {
        const start = rng.int(bytes.length), end = start + rng.int(bytes.length - start + 1);
        const got = await new Response(await store.read("shards/s000000.msgpack", { start, end })).bytes();
        assert.deepEqual(got, bytes.subarray(start, end));
      }
      assert.deepEqual(await allFiles(dir), ["shards/s000000.msgpack"], "no temporary file is left behind");
    })));

Deno.test("local store: a second create of the same path fails and leaves the first object intact", () =>
  withTempDir(async (dir) => {
    const store = await openLocalStore(dir);
    await store.writeBytes("run.json", new TextEncoder().encode("first"));
    await assert.rejects(store.create("run.json"), ObjectExistsError);
    await assert.rejects(store.writeBytes("run.json", new TextEncoder().encode("second")), ObjectExistsError);
    assert.equal(new TextDecoder().decode(await store.readBytes("run.json")), "first");
  }));

Deno.test("local store: of racing writers of one path exactly one wins, the others fail with ObjectExistsError", () =>
  withSeed("race", (rng) =>
    withTempDir(async (dir) => {
      const store = await openLocalStore(dir);
      const n = 6;
      const writers = await Promise.all(Array.from({ length: n }, () => store.create("m/x.bin")));
      const payloads = writers.map((_, i) => new Uint8Array(1000 + rng.int(1000)).fill(i + 1));
      const results = await Promise.allSettled(writers.map(async (w, i) => {
        const wr = w.writable.getWriter();
        await wr.write(payloads[i]);
        await wr.close();
        return await w.done;
      }));
      const won = results.flatMap((r, i) => (r.status === "fulfilled" ? [i] : []));
      assert.equal(won.length, 1);
      for (const r of results) if (r.status === "rejected") assert.ok(r.reason instanceof ObjectExistsError);
      assert.deepEqual(await store.readBytes("m/x.bin"), payloads[won[0]]);
      assert.deepEqual(await allFiles(dir), ["m/x.bin"]);
    })));

Deno.test("local store: an aborted write leaves no object and no temporary file", () =>
  withTempDir(async (dir) => {
    const store = await openLocalStore(dir);
    const w = await store.create("shards/s000001.msgpack");
    const writer = w.writable.getWriter();
    await writer.write(new Uint8Array(1234));
    assert.equal((await allFiles(dir)).length, 1, "the temporary file exists while writing");
    assert.deepEqual(await store.list(""), [], "and list() does not show it");
    await writer.abort(new Error("killed"));
    await assert.rejects(w.done, /killed/);
    assert.equal(await store.exists("shards/s000001.msgpack"), false);
    assert.deepEqual(await allFiles(dir), []);
  }));

Deno.test("local store: list is sorted, filtered by prefix, recursive; delete is idempotent", () =>
  withSeed("list", (rng) =>
    withTempDir(async (dir) => {
      const store = await openLocalStore(dir);
      const names = new Set<string>();
      for (let i = 0; i < 20; i++) names.add(`shards/s${String(rng.int(1000000)).padStart(6, "0")}.msgpack`);
      names.add("manifests/h00000.json");
      names.add("run.json");
      for (const n of names) await store.writeBytes(n, new Uint8Array([1]));
      const shards = [...names].filter((n) => n.startsWith("shards/")).sort();
      assert.deepEqual(await store.list("shards/"), shards);
      assert.deepEqual(await store.list("shards/s"), shards);
      assert.deepEqual(await store.list(""), [...names].sort());
      assert.deepEqual(await store.list("nothing/"), []);
      await store.delete("run.json");
      await store.delete("run.json");
      assert.equal(await store.exists("run.json"), false);
      assert.equal(await store.size("run.json"), null);
    })));

Deno.test("local store: an unwritable OUT and a missing object are one-line SparsekdErrors", () =>
  withTempDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/file`, "x");
    await assert.rejects(openLocalStore(`${dir}/file/out`, { create: true }), (err) => {
      assert.ok(err instanceof SparsekdError);
      assert.match(err.message, /^cannot write to .*\/file\/out: /);
      assert.ok(!err.message.includes("\n"));
      return true;
    });
    await assert.rejects(openStore(`${dir}/file/out`, { create: true }), SparsekdError);
    const store = await openLocalStore(`${dir}/file/out`);
    await assert.rejects(store.create("a.bin"), /^SparsekdError: cannot write to/);
    await assert.rejects(store.readBytes("a.bin"), /does not exist/);
    await assert.rejects(store.read("a.bin"), /does not exist/);
    await assert.rejects(store.create("../escape"), /invalid object path/);
    const fine = await openLocalStore(dir);
    await assert.rejects(fine.readBytes("missing.bin"), /missing\.bin does not exist$/);
    await assert.rejects(fine.read("missing.bin"), /missing\.bin does not exist$/);
  }));

Deno.test("store URIs: plain paths and file:// open the local store; gs:// is parsed; unregistered schemes are refused", () =>
  withTempDir(async (dir) => {
    assert.deepEqual(parseStoreUri("gs://my-bucket/runs/a/"), {
      kind: "gcs",
      bucket: "my-bucket",
      prefix: "runs/a",
    });
    assert.deepEqual(parseStoreUri("gs://my-bucket"), { kind: "gcs", bucket: "my-bucket", prefix: "" });
    assert.deepEqual(parseStoreUri("file:///tmp/out%20x/"), { kind: "local", path: "/tmp/out x" });
    assert.deepEqual(parseStoreUri("runs/demo/"), { kind: "local", path: "runs/demo" });
    assert.deepEqual(parseStoreUri("s3://bucket/x"), { kind: "url", scheme: "s3", url: "s3://bucket/x" });
    await assert.rejects(openStore("s3://bucket/x"), (err) => {
      assert.ok(err instanceof SparsekdError);
      assert.match(
        err.message,
        /^s3:\/\/bucket\/x: unsupported store \(use a folder path or file:\/\/\/… \(local\), gs:/,
      );
      return true;
    });
    assert.throws(() => parseStoreUri("gs://Bad_Bucket!/x"), /not a valid bucket name/);
    const viaUrl = await openStore(`file://${dir}/out`, { create: true });
    assert.equal(viaUrl.uri, `file://${dir}/out`);
    await viaUrl.writeBytes("x.bin", new Uint8Array([5]));
    const viaPath = await openStore(`${dir}/out`);
    assert.deepEqual(await viaPath.readBytes("x.bin"), new Uint8Array([5]));
  }));

Deno.test("local store: a symbolic link at an object's name is refused with one line naming it, never followed", () =>
  withTempDir(async (dir) => {
    const store = await openLocalStore(`${dir}/out`, { create: true });
    await Deno.mkdir(`${dir}/out/shards`);
    await Deno.writeFile(`${dir}/elsewhere.bin`, new Uint8Array([1, 2, 3]));
    await Deno.symlink(`${dir}/elsewhere.bin`, `${dir}/out/shards/s000001.msgpack`);
    await Deno.symlink(`${dir}/nothing-here.bin`, `${dir}/out/shards/s000002.msgpack`); // dangling
    for (const name of ["shards/s000001.msgpack", "shards/s000002.msgpack"]) {
      const refused = (err: unknown) => {
        assert.ok(err instanceof SparsekdError, `${name}: got ${err}`);
        assert.equal(
          err.message,
          `${dir}/out/${name} is a symbolic link; a store does not follow links at object names (remove it)`,
        );
        return true;
      };
      await assert.rejects(store.exists(name), refused);
      await assert.rejects(store.size(name), refused);
      await assert.rejects(store.read(name), refused);
      await assert.rejects(store.readBytes(name), refused);
      await assert.rejects(store.create(name), refused);
      await assert.rejects(store.writeBytes(name, new Uint8Array([9])), refused);
    }
    // Listing does not report links as objects, and the link's target is untouched.
    assert.deepEqual(await store.list("shards/"), []);
    assert.deepEqual(await Deno.readFile(`${dir}/elsewhere.bin`), new Uint8Array([1, 2, 3]));
    await assert.rejects(Deno.lstat(`${dir}/nothing-here.bin`), Deno.errors.NotFound);
  }));

Deno.test("local store: a link planted after the existence check still cannot replace the object", () =>
  withTempDir(async (dir) => {
    const store = await openLocalStore(dir);
    const w = await store.create("a.bin"); // checked: absent
    await Deno.symlink(`${dir}/target.bin`, `${dir}/a.bin`); // dangling link appears before the publish
    const writer = w.writable.getWriter();
    await writer.write(new Uint8Array([1]));
    await assert.rejects(writer.close(), (err) => {
      assert.ok(err instanceof ObjectExistsError && err instanceof SparsekdError);
      assert.equal(err.message, `${dir}/a.bin already exists (sparsekd never overwrites an object)`);
      return true;
    });
    await assert.rejects(Deno.lstat(`${dir}/target.bin`), Deno.errors.NotFound);
    assert.deepEqual(await allFiles(dir), ["a.bin"]); // the link only; the temporary file is gone
  }));

Deno.test("local store: a second writer of an object gets a one-line SparsekdError naming it", () =>
  withTempDir(async (dir) => {
    const store = await openLocalStore(dir);
    await store.writeBytes("shards/s000000.msgpack", new Uint8Array([1]));
    await assert.rejects(store.writeBytes("shards/s000000.msgpack", new Uint8Array([2])), (err) => {
      assert.ok(err instanceof SparsekdError);
      assert.equal(
        errorLine(err),
        `error: ${dir}/shards/s000000.msgpack already exists (sparsekd never overwrites an object)`,
      );
      return true;
    });
    assert.deepEqual(await store.readBytes("shards/s000000.msgpack"), new Uint8Array([1]));
  }));

Deno.test("save-topk into a folder with a link planted at a shard's name stops with one line naming it", () =>
  withTempDir(async (dir) => {
    await Deno.mkdir(`${dir}/out/shards`, { recursive: true });
    await Deno.writeFile(`${dir}/planted.bin`, new Uint8Array([1, 2, 3]));
    for (const [link, target] of [["s000001", `${dir}/planted.bin`], ["s000002", `${dir}/nowhere.bin`]]) {
      const at = `${dir}/out/shards/${link}.msgpack`;
      await Deno.symlink(target, at);
      await assert.rejects(
        writePatternShards(`${dir}/out`, { seed: 1, sequences: 24, seqLen: 4, vocab: 8, k: 2 }),
        (err: unknown) => {
          assert.ok(err instanceof SparsekdError, `got ${err}`);
          assert.equal(
            err.message,
            `${dir}/out/shards/${link}.msgpack is a symbolic link; a store does not follow links at object names (remove it)`,
          );
          return true;
        },
      );
      assert.deepEqual(await Deno.readFile(`${dir}/planted.bin`), new Uint8Array([1, 2, 3]));
      await Deno.remove(at);
    }
  }));
