import assert from "node:assert/strict";
import { npyBytes, NpyFile, parseNpyHeader } from "../src/data/npy.ts";
import { npySource } from "../src/data/npy_source.ts";
import { openSource } from "../src/data/open_source.ts";
import { SparsekdError } from "../src/errors.ts";
import { withTempDir } from "./_helpers.ts";
import { withSeed } from "./_rng.ts";

function patch(bytes: Uint8Array, from: string, to: string): Uint8Array {
  const out = bytes.slice();
  out.set(new TextEncoder().encode(to), new TextDecoder("latin1").decode(bytes).indexOf(from));
  return out;
}

async function rejectsOneLine(p: Promise<unknown>, pattern: RegExp) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SparsekdError, `expected SparsekdError, got ${err}`);
    assert.ok(!err.message.includes("\n"), "message must be one line");
    assert.match(err.message, pattern);
    return true;
  });
}

Deno.test("npy token source reads random sequences of int32, uint32 and v2/v3 files", async () => {
  await withSeed("data_npy_test", async (rng) => {
    await withTempDir(async (dir) => {
      const S = 5 + Math.floor(rng.uniform() * 40), L = 1 + Math.floor(rng.uniform() * 30);
      const data = new Uint32Array(S * L).map(() => Math.floor(rng.uniform() * 50_000));
      for (const [descr, version] of [["<i4", 1], ["<u4", 1], ["<i4", 2], ["<u4", 3]] as const) {
        const path = `${dir}/ids_${descr.slice(1)}_${version}.npy`;
        await Deno.writeFile(path, npyBytes(descr, [S, L], data, version));
        const src = await npySource(path);
        assert.equal(src.sequences, S);
        assert.equal(src.seqLen, L);
        assert.match(src.fingerprint, /^[0-9a-f]{64}$/);
        const start = Math.floor(rng.uniform() * S), count = Math.floor(rng.uniform() * (S - start + 1));
        assert.deepEqual(
          Array.from(await src.read(start, count)),
          Array.from(data.subarray(start * L, (start + count) * L)),
        );
      }
    });
  });
});

Deno.test("npy header parsing matches numpy's own header text", () => {
  // Written by numpy 1.26: np.save(f, np.zeros((3, 4), "<f4"))
  const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
  const text = dict + " ".repeat(128 - 10 - dict.length - 1) + "\n";
  const head = new Uint8Array(10 + text.length);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, text.length, 0]);
  head.set(new TextEncoder().encode(text), 10);
  const h = parseNpyHeader(head, "x.npy");
  assert.deepEqual(h, { descr: "<f4", itemSize: 4, shape: [3, 4], dataOffset: 128 });
});

Deno.test("bad npy files are one-line errors naming the file", async () => {
  await withTempDir(async (dir) => {
    const ids = new Int32Array(12).map((_, i) => i);
    const good = npyBytes("<i4", [3, 4], ids);
    const cases: [string, Uint8Array, RegExp][] = [
      ["magic", new TextEncoder().encode("not numpy at all, just text"), /magic/],
      ["trunc_header", good.subarray(0, 30), /truncated|header/],
      ["trunc_data", good.subarray(0, good.length - 5), /truncated/],
      ["extra", new Uint8Array([...good, 1, 2, 3, 4]), /past the end/],
      ["dtype", npyBytes("<f4", [3, 4], new Float32Array(12)), /dtype '<f4'/],
      ["bigendian", npyBytes(">i4", [3, 4], ids), /dtype '>i4'/],
      ["ndim", npyBytes("<i4", [12], ids), /dimensions/],
      ["fortran", patch(good, "False", "True "), /Fortran/],
      ["garbage", npyBytes("<i4", [3, 4], ids).map((b, i) => (i >= 10 && i < 40 ? 0x41 : b)), /descr|header/],
    ];
    for (const [name, bytes, pattern] of cases) {
      const path = `${dir}/${name}.npy`;
      await Deno.writeFile(path, bytes);
      await rejectsOneLine(
        npySource(path),
        new RegExp(`${name}\\.npy.*${pattern.source}|${pattern.source}.*${name}`),
      );
    }
    await rejectsOneLine(npySource(`${dir}/missing.npy`), /missing\.npy: no such file/);
    await rejectsOneLine(openSource(`npy:${dir}/missing.npy`), /no such file/);
  });
});

Deno.test("a negative int32 id and an id ≥ vocab are reported with sequence and position", async () => {
  await withSeed("data_npy_test", async (rng) => {
    await withTempDir(async (dir) => {
      const S = 4 + Math.floor(rng.uniform() * 10), L = 3 + Math.floor(rng.uniform() * 10);
      const data = new Int32Array(S * L).map(() => Math.floor(rng.uniform() * 100));
      const seq = Math.floor(rng.uniform() * S), pos = Math.floor(rng.uniform() * L);
      data[seq * L + pos] = 100 + Math.floor(rng.uniform() * 10);
      const path = `${dir}/ids.npy`;
      await Deno.writeFile(path, npyBytes("<i4", [S, L], data));
      const checked = await openSource(`npy:${path}`, { vocabSize: 100 });
      await rejectsOneLine(
        checked.read(0, S),
        new RegExp(`token id ${data[seq * L + pos]} at sequence ${seq}, position ${pos}`),
      );
      const unchecked = await openSource(`npy:${path}`);
      assert.equal((await unchecked.read(0, S)).length, S * L);
      data[seq * L + pos] = -7;
      await Deno.writeFile(path, npyBytes("<i4", [S, L], data));
      await rejectsOneLine(
        (await npySource(path)).read(seq, 1),
        new RegExp(`negative token id -7 at sequence ${seq}, position ${pos}`),
      );
    });
  });
});

Deno.test("NpyFile reads rows of a 3-D float array by leading index", async () => {
  await withSeed("data_npy_test", async (rng) => {
    await withTempDir(async (dir) => {
      const [S, L, V] = [3 + Math.floor(rng.uniform() * 5), 2, 5];
      const data = new Float32Array(S * L * V).map(() => rng.uniform());
      await Deno.writeFile(`${dir}/l.npy`, npyBytes("<f4", [S, L, V], data));
      const f = await NpyFile.open(`${dir}/l.npy`, { dtypes: ["<f4"], ndim: 3, what: "logits" });
      const r = Math.floor(rng.uniform() * S);
      const bytes = await f.readRows(r, 1);
      assert.deepEqual(new Float32Array(bytes.buffer), data.subarray(r * L * V, (r + 1) * L * V));
      await assert.rejects(f.readRows(S - 1, 2), RangeError);
    });
  });
});
