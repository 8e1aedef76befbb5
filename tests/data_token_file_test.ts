import assert from "node:assert/strict";
import {
  decodeTokenFileHeader,
  encodeTokenFileHeader,
  TOKEN_FILE_HEADER_BYTES,
  tokenFileSource,
  TokenFileWriter,
} from "../src/data/token_file.ts";
import { openSource } from "../src/data/open_source.ts";
import { sha256Hex } from "../src/data/sha256.ts";
import { oneLine, withTempDir } from "./_helpers.ts";
import { withSeed } from "./_rng.ts";

Deno.test("token files written in pieces read back at random sequences (u16 and u32)", async () => {
  await withSeed("data_token_file_test", async (rng) => {
    await withTempDir(async (dir) => {
      for (const vocabSize of [2048, 100_000, 0]) {
        const L = 1 + Math.floor(rng.uniform() * 40), S = 1 + Math.floor(rng.uniform() * 60);
        const limit = vocabSize || 2 ** 32;
        const data = new Uint32Array(S * L).map(() => Math.floor(rng.uniform() * limit));
        const path = `${dir}/t${vocabSize}.tok`;
        const w = await TokenFileWriter.create(path, { seqLen: L, vocabSize });
        for (let s = 0; s < S;) {
          const n = Math.min(S - s, 1 + Math.floor(rng.uniform() * 7));
          await w.write(data.subarray(s * L, (s + n) * L));
          s += n;
        }
        await w.close();
        const bytes = await Deno.readFile(path);
        const width = vocabSize > 0 && vocabSize <= 65536 ? 2 : 4;
        assert.equal(bytes.length, TOKEN_FILE_HEADER_BYTES + S * L * width);
        assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), "SKDTOK01");
        const src = await tokenFileSource(path);
        assert.equal(src.sequences, S);
        assert.equal(src.seqLen, L);
        assert.equal(src.vocabSize, vocabSize);
        assert.equal(src.fingerprint, sha256Hex(bytes));
        for (let i = 0; i < 5; i++) {
          const start = Math.floor(rng.uniform() * S), count = Math.floor(rng.uniform() * (S - start + 1));
          assert.deepEqual(
            Array.from(await src.read(start, count)),
            Array.from(data.subarray(start * L, (start + count) * L)),
          );
        }
        const via = await openSource(`tokens:${path}`, { maxSequences: S });
        assert.equal(via.sequences, S);
      }
    });
  });
});

Deno.test("the header layout is the documented one", () =>
  withSeed("data_token_file_test", (rng) => {
    const h = {
      seqLen: 1 + Math.floor(rng.uniform() * 1e6),
      width: 4 as const,
      sequences: 2 ** 40 + 3,
      vocabSize: 77,
    };
    const b = encodeTokenFileHeader(h);
    const dv = new DataView(b.buffer);
    assert.equal(dv.getUint32(8, true), h.seqLen);
    assert.equal(dv.getUint32(12, true), 4);
    assert.equal(dv.getBigUint64(16, true), BigInt(h.sequences));
    assert.equal(dv.getUint32(24, true), 77);
    assert.equal(dv.getUint32(28, true), 0);
    assert.deepEqual(decodeTokenFileHeader(b, "x"), h);
  }));

Deno.test("bad token files are one-line errors naming the file", async () => {
  await withSeed("data_token_file_test", async (rng) => {
    await withTempDir(async (dir) => {
      const good = `${dir}/good.tok`;
      const w = await TokenFileWriter.create(good, { seqLen: 4, vocabSize: 10 });
      await w.write([1, 2, 3, 4, 5, 6, 7, 8]);
      await w.close();
      const bytes = await Deno.readFile(good);
      const cases: [string, Uint8Array, RegExp][] = [
        ["magic", new Uint8Array([...new TextEncoder().encode("SKDTOK02"), ...bytes.subarray(8)]), /magic/],
        ["short", bytes.subarray(0, 20), /header/],
        ["trunc", bytes.subarray(0, bytes.length - 1), /truncated/],
        ["extra", new Uint8Array([...bytes, 0, 0]), /past the last/],
        ["width", bytes.slice().fill(3, 12, 13), /bytes per id is 3/],
      ];
      for (const [name, b, pattern] of cases) {
        await Deno.writeFile(`${dir}/${name}.tok`, b);
        await assert.rejects(
          tokenFileSource(`${dir}/${name}.tok`),
          oneLine(new RegExp(`${name}\\.tok: .*${pattern.source}`)),
        );
      }
      await assert.rejects(tokenFileSource(`${dir}/nope.tok`), oneLine(/nope\.tok: no such file/));
      // An id ≥ the recorded vocabulary (the file was edited after writing) and ≥ the teacher's vocabulary.
      const edited = bytes.slice();
      const seq = Math.floor(rng.uniform() * 2), pos = Math.floor(rng.uniform() * 4);
      new DataView(edited.buffer).setUint16(TOKEN_FILE_HEADER_BYTES + (seq * 4 + pos) * 2, 12, true);
      await Deno.writeFile(`${dir}/edited.tok`, edited);
      const src = await tokenFileSource(`${dir}/edited.tok`);
      await assert.rejects(src.read(0, 2), oneLine(new RegExp(`id 12 at sequence ${seq}, position ${pos}`)));
      const teacherVocab = await openSource(`tokens:${good}`, { vocabSize: 5 });
      await assert.rejects(
        teacherVocab.read(0, 2),
        oneLine(/token id [5-8] at sequence \d, position \d is ≥ the vocabulary size 5/),
      );
      const writer = await TokenFileWriter.create(`${dir}/w.tok`, { seqLen: 2, vocabSize: 10 });
      await assert.rejects(writer.write([3, 10]), oneLine(/id 10 at sequence 0, position 1/));
      await writer.close();
    });
  });
});
