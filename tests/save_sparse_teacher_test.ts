/**
 * saveTopK with a sparse teacher (src/save/save_topk.ts): its targets are stored as they come (no top-k kernel),
 * checked first; its k and temperatures must be the run's; the run.json records no backend.
 */
import assert from "node:assert/strict";
import { openSource } from "../src/data/open_source.ts";
import { createRuntime } from "../src/gpu/runtime.ts";
import { readShards } from "../src/format/shard_reader.ts";
import { saveTopK, type SaveTopKOptions } from "../src/save/save_topk.ts";
import { openStore } from "../src/store/open_store.ts";
import type { SparseTargets, SparseTeacher } from "../src/teacher/teacher.ts";
import { oneLine, withTempDir } from "./_helpers.ts";
import { withSeed } from "./_rng.ts";

const V = 3000, K = 4, L = 8;

/** A sparse teacher whose targets are random but valid, and `edit` may spoil. */
function fakeTeacher(rng: { uniform(): number }, edit?: (t: SparseTargets) => void): SparseTeacher {
  return {
    kind: "sparse",
    vocabSize: V,
    fingerprint: "fake",
    description: "fake sparse teacher",
    k: K,
    lseTemperatures: [1],
    forwardSparse(_tokens, _start, count, seqLen) {
      const rows = count * seqLen;
      const ids = new Uint32Array(rows * K), values = new Float32Array(rows * K);
      for (let r = 0; r < rows; r++) {
        let v = -rng.uniform();
        for (let i = 0; i < K; i++) {
          ids[r * K + i] = Math.floor(rng.uniform() * V);
          values[r * K + i] = v;
          v -= rng.uniform();
        }
      }
      const t = { ids, values, logsumexp: new Float32Array(rows) };
      edit?.(t);
      return Promise.resolve(t);
    },
    dispose() {},
  };
}

async function options(dir: string, teacher: SparseTeacher): Promise<SaveTopKOptions> {
  return {
    rt: await createRuntime({ cpu: true, quiet: true }),
    teacher,
    source: await openSource("builtin:demo", { seqLen: L, maxSequences: 3, vocabSize: V }),
    store: await openStore(dir, { create: true }),
    k: K,
    batchSize: 2,
    sequencesPerShard: 2,
    valueDtype: "f32",
    lseTemperatures: [1],
    host: { index: 0, count: 1 },
  };
}

Deno.test("saveTopK stores a sparse teacher's targets as they come, and records no backend", () =>
  withSeed("save_sparse_teacher_test", async (rng) => {
    await withTempDir(async (dir) => {
      const seen: SparseTargets[] = [];
      const teacher = fakeTeacher(rng, (t) => seen.push(t));
      const s = await saveTopK(await options(dir, teacher));
      assert.equal(s.shardsWritten, 2);
      assert.equal(s.run.backend, undefined);
      const ids = seen.flatMap((t) => [...t.ids]), values = seen.flatMap((t) => [...t.values]);
      const got = [];
      for await (const r of readShards(dir)) got.push(r);
      assert.deepEqual(got.flatMap((r) => [...r.idx]), ids);
      assert.deepEqual(got.flatMap((r) => [...r.val]), values);
      assert.ok(got.every((r) => r.lse.every((x) => x === 0)));
    });
  }));

Deno.test("saveTopK refuses a sparse teacher's bad targets and a k or temperatures other than the run's", () =>
  withSeed("save_sparse_teacher_test", async (rng) => {
    await withTempDir(async (dir) => {
      const o = await options(dir, fakeTeacher(rng));
      await assert.rejects(
        saveTopK({ ...o, k: K + 1 }),
        oneLine(/^k is 5, but the teacher .* returns 4 entries/),
      );
      await assert.rejects(
        saveTopK({ ...o, lseTemperatures: [1, 2] }),
        oneLine(/^lseTemperatures are 1,2, but the teacher .* returns logsumexps at 1/),
      );
      const spoiled: [string, (t: SparseTargets) => void, RegExp][] = [
        ["an id ≥ V", (t) => (t.ids[5] = V), /invalid top-k at sequence 0, position 1/],
        ["values out of order", (t) => (t.values[K + 1] = 5), /invalid top-k at sequence 0, position 1/],
        ["a NaN", (t) => (t.values[2] = NaN), /invalid top-k at sequence 0, position 0/],
        [
          "a non-finite lse",
          (t) => (t.logsumexp[3] = Infinity),
          /non-finite logsumexp at sequence 0, position 3/,
        ],
      ];
      for (const [what, edit, pattern] of spoiled) {
        await assert.rejects(saveTopK({ ...o, teacher: fakeTeacher(rng, edit) }), oneLine(pattern), what);
      }
      await assert.rejects(Deno.stat(`${dir}/run.json`), Deno.errors.NotFound);
    });
  }));
