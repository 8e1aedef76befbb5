import assert from "node:assert/strict";
import type { TokenSource } from "../src/data/source.ts";
import { teacherMass } from "../src/report/teacher_mass.ts";
import type { Teacher } from "../src/teacher/teacher.ts";
import { oneLine } from "./_helpers.ts";
import { type TestRng, withSeed } from "./_rng.ts";

/** A teacher whose row r has logits log(w_r) + c_r: its probabilities are exactly the weights w_r. */
function weightTeacher(rng: TestRng, S: number, L: number, V: number) {
  const weights: Float64Array[] = [];
  const logits = new Float32Array(S * L * V);
  for (let r = 0; r < S * L; r++) {
    // a peaked row now and then (one weight much larger), else a random one
    const w = new Float64Array(V).map(() => 0.05 + rng.uniform());
    if (rng.uniform() < 0.5) w[rng.int(V)] += 5 * V * rng.uniform();
    // float32 logits: the teacher's probabilities are the weights as rounded through float32
    const c = rng.uniform() * 20 - 10;
    for (let v = 0; v < V; v++) logits[r * V + v] = Math.log(w[v]) + c;
    const back = new Float64Array(V).map((_, v) => Math.exp(logits[r * V + v] - c));
    const sum = back.reduce((a, b) => a + b, 0);
    weights.push(back.map((x) => x / sum));
  }
  const calls: number[][] = [];
  const teacher: Teacher = {
    kind: "dense",
    vocabSize: V,
    fingerprint: "0".repeat(64),
    description: "weights",
    forward(_tokens, start, count, seqLen) {
      assert.equal(seqLen, L);
      calls.push([start, count]);
      return Promise.resolve({ kind: "cpu", array: logits.slice(start * L * V, (start + count) * L * V) });
    },
    dispose() {},
  };
  return { teacher, weights, calls };
}

function memorySource(tokens: Uint32Array, S: number, L: number): TokenSource {
  return {
    sequences: S,
    seqLen: L,
    fingerprint: "f",
    description: "memory",
    read: (start, count) => Promise.resolve(tokens.slice(start * L, (start + count) * L)),
  };
}

Deno.test("teacherMass: top-K mass, entropy, CE and top-1 accuracy are those of the teacher's distributions", async () => {
  await withSeed("teacher mass", async (rng) => {
    const S = 3 + rng.int(6), L = 2 + rng.int(7), V = 70 + rng.int(60);
    const { teacher, weights, calls } = weightTeacher(rng, S, L, V);
    const tokens = new Uint32Array(S * L).map(() => rng.int(V));
    const ks = [1, 2 + rng.int(5), 64];
    const batchSize = 1 + rng.int(4);
    const m = await teacherMass(teacher, memorySource(tokens, S, L), { ks, batchSize });
    assert.equal(calls.length, Math.ceil(S / batchSize));
    assert.equal(m.positions, S * L);
    assert.equal(m.predicted, S * (L - 1));
    const want = { mass: ks.map(() => 0), entropy: 0, ce: 0, hits: 0 };
    for (let r = 0; r < S * L; r++) {
      const w = weights[r];
      const sorted = Array.from(w).sort((a, b) => b - a);
      ks.forEach((k, i) => want.mass[i] += sorted.slice(0, k).reduce((a, b) => a + b, 0));
      want.entropy -= w.reduce((a, p) => a + p * Math.log(p), 0);
      if (r % L !== L - 1) {
        const next = tokens[r + 1];
        want.ce -= Math.log(w[next]);
        if (w[next] === sorted[0]) want.hits++;
      }
    }
    ks.forEach((_, i) => assert.ok(Math.abs(m.mass[i] - want.mass[i] / (S * L)) < 1e-9, `mass ${i}`));
    assert.ok(Math.abs(m.entropy - want.entropy / (S * L)) < 1e-6, `entropy ${m.entropy}`);
    assert.ok(Math.abs(m.ce - want.ce / (S * (L - 1))) < 1e-6, `ce ${m.ce}`);
    assert.ok(Math.abs(m.perplexity - Math.exp(m.ce)) < 1e-9);
    assert.equal(m.top1Accuracy, want.hits / (S * (L - 1)));
    // the first sequences only
    const one = await teacherMass(teacher, memorySource(tokens, S, L), { ks, sequences: 1 });
    assert.equal(one.positions, L);
    assert.equal(one.sequences, 1);
  });
});

Deno.test("teacherMass bad input: ks not ascending or out of range, too many sequences, a bad batch", async () => {
  await withSeed("teacher mass bad input", async (rng) => {
    const S = 4, L = 3, V = 16;
    const { teacher } = weightTeacher(rng, S, L, V);
    const src = memorySource(new Uint32Array(S * L), S, L);
    for (const ks of [[8, 1], [0, 4], [1, 17], [1.5], [2, 2]]) {
      await assert.rejects(
        teacherMass(teacher, src, { ks }),
        oneLine(/ks must be ascending integers from 1 to/),
      );
    }
    await assert.rejects(teacherMass(teacher, src, { ks: [1], sequences: 5 }), oneLine(/from 1 to the 4/));
    await assert.rejects(teacherMass(teacher, src, { ks: [1], sequences: 0 }), oneLine(/sequences must be/));
    await assert.rejects(teacherMass(teacher, src, { ks: [1], batchSize: 0 }), oneLine(/batchSize must be/));
  });
});
