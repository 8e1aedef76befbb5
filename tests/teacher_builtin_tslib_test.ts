import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import { openSource } from "../src/data/open_source.ts";
import { tslibSource } from "../src/data/tslib.ts";
import { readBack } from "../src/gpu/readback.ts";
import { teacherMass } from "../src/report/teacher_mass.ts";
import { TSLIB_TEACHER_URL } from "../src/teacher/builtin.ts";
import { openTeacher } from "../src/teacher/open_teacher.ts";
import * as tf from "../src/deps/tfjs_core.ts";
import { builtinTeacherName, openDemoEvaluation } from "../src/demo/stages.ts";
import { oneLine } from "./_helpers.ts";
import { withSeed } from "./_rng.ts";
import { testRuntime } from "./_train_fixtures.ts";

/** The figures `models/tslib_teacher/train.json` records (what its README quotes). */
interface Recorded {
  heldout: { sequences: number; evals: { step: number; ce: number; perplexity: number }[] };
  mass: { sequences: number; top1: number; top8: number; top64: number; entropy: number };
}

async function recorded(): Promise<Recorded> {
  return JSON.parse(await Deno.readTextFile(new URL("train.json", TSLIB_TEACHER_URL))) as Recorded;
}

Deno.test("--teacher builtin:tslib opens and returns [count·L, 2048] finite logits for held-out text", async () => {
  const rt = await testRuntime();
  const teacher = await openTeacher("builtin:tslib", rt);
  try {
    assert.equal(teacher.vocabSize, 2048);
    assert.equal(teacher.seqLen, 64);
    assert.equal(teacher.description, "builtin:tslib");
    assert.match(teacher.fingerprint, /^[0-9a-f]{64}$/);
    const demo = await openTeacher("builtin:demo", rt);
    assert.notEqual(teacher.fingerprint, demo.fingerprint);
    demo.dispose();
    await withSeed("tslib teacher logits", async (rng) => {
      const L = 8 + rng.int(57), count = 1 + rng.int(4);
      const heldout = await tslibSource({ split: "heldout", seqLen: L });
      const start = rng.int(heldout.sequences - count);
      const tokens = await heldout.read(start, count);
      const out = await teacher.forward(tokens, start, count, L);
      let logits: Float32Array;
      if (out.kind === "gpu") {
        const size = count * L * 2048 * 4;
        assert.ok(out.buffer.size >= size, `a GPU buffer of ${out.buffer.size} bytes for ${size}`);
        const [bytes] = await readBack(rt.device!, [{ buffer: out.buffer, size }]);
        out.release();
        logits = new Float32Array(bytes);
      } else logits = out.array;
      assert.equal(logits.length, count * L * 2048);
      assert.ok(logits.every(Number.isFinite));
    });
    const bad = new Uint32Array(64).fill(5);
    bad[9] = 2048;
    await assert.rejects(
      () => teacher.forward(bad, 0, 1, 64),
      (e: Error) => e instanceof SparsekdError && /2048/.test(e.message),
    );
  } finally {
    teacher.dispose();
  }
});

Deno.test("the shipped tslib teacher's held-out figures are those its train.json and README report", async () => {
  const rt = await testRuntime();
  const rec = await recorded();
  const teacher = await openTeacher("builtin:tslib", rt);
  try {
    const n = rec.mass.sequences;
    const heldout = await openSource("builtin:tslib", { seqLen: 64, split: "heldout", maxSequences: n });
    const m = await teacherMass(teacher, heldout, { ks: [1, 8, 64] });
    const close = (got: number, want: number, tol: number, what: string) =>
      assert.ok(Math.abs(got - want) <= tol, `${what}: measured ${got}, recorded ${want}`);
    close(m.mass[0], rec.mass.top1, 2e-3, "top-1 mass");
    close(m.mass[1], rec.mass.top8, 2e-3, "top-8 mass");
    close(m.mass[2], rec.mass.top64, 2e-3, "top-64 mass");
    close(m.entropy, rec.mass.entropy, 1e-2, "entropy");
    // the trainer's final held-out evaluation (the same first sequences of the split)
    assert.equal(rec.heldout.sequences, n);
    close(m.ce, rec.heldout.evals.at(-1)!.ce, 1e-2, "held-out cross-entropy");
    // what makes it the representative teacher (issue 12): most of the mass in a few tokens
    assert.ok(m.mass[2] >= 0.9 && m.mass[0] >= 0.35, `top-1 ${m.mass[0]}, top-64 ${m.mass[2]}`);
    const readme = await Deno.readTextFile(new URL("README.md", TSLIB_TEACHER_URL));
    for (const x of [rec.mass.top1, rec.mass.top8, rec.mass.top64]) {
      const pct = `${(100 * x).toFixed(1)} %`;
      assert.ok(readme.includes(pct), `the README quotes ${pct}`);
    }
  } finally {
    teacher.dispose();
  }
});

Deno.test("the study with --teacher builtin:tslib evaluates against the tslib teacher on its corpus's held-out split", async () => {
  const rt = await testRuntime();
  const { teacher, heldout } = await openDemoEvaluation({
    rt,
    heldoutSequences: 3,
    teacher: "builtin:tslib",
  });
  try {
    const direct = await tslibSource({ split: "heldout", seqLen: 64, maxSequences: 3 });
    assert.equal(heldout.fingerprint, direct.fingerprint);
    assert.equal(teacher.config.vocabSize, 2048);
    const tslib = await openTeacher("builtin:tslib", rt);
    const tokens = await heldout.read(0, 1);
    const ya = await tslib.forwardTensor!(tokens, 0, 1, 64);
    const a = await ya.data();
    ya.dispose();
    const x = tf.tensor2d(new Int32Array(tokens), [1, 64], "int32");
    const y = teacher.logits(x);
    const b = await y.data();
    tf.dispose([x, y]);
    tslib.dispose();
    assert.deepEqual(a, b, "the same weights as --teacher builtin:tslib");
  } finally {
    teacher.dispose();
  }
  assert.throws(() => builtinTeacherName("builtin:gpt2"), oneLine(/builtin:demo or builtin:tslib/));
});
