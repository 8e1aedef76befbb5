/**
 * What `bench/device/run.sh` relies on, without a GPU: the benches' random data is a prime-length block
 * repeated (fast on gigabytes, and a read that misses a chunk still changes the sum), their flags keep
 * tfjs's wall fit apart from the kernel's, and `bench/device/summarize.ts` turns the bench files of one run
 * into one table per bench.
 */
import assert from "node:assert/strict";
import { RANDOM_BLOCK, randomData, tiledRandom } from "../bench/gpu_timing.ts";
import { parseTopKBenchArgs } from "../bench/topk.ts";
import { kindOf, summaryOf } from "../bench/device/summarize.ts";

Deno.test("tiledRandom repeats one prime-length block: no chunk offset restarts it, no row repeats a value", () => {
  let draws = 0;
  const n = 2 * RANDOM_BLOCK + 12_345;
  const x = tiledRandom(n, (b) => {
    for (let i = 0; i < b.length; i++) b[i] = ++draws;
  });
  assert.equal(draws, RANDOM_BLOCK, "one block drawn");
  for (const i of [0, 1, 777, RANDOM_BLOCK - 1, RANDOM_BLOCK + 12_344]) {
    assert.equal(x[i + RANDOM_BLOCK], x[i], `period at ${i}`);
  }
  assert.equal(x[n - 1], ((n - 1) % RANDOM_BLOCK) + 1, "the tail is the block's prefix");
  for (let p = 2; p < 2 * RANDOM_BLOCK; p *= 2) assert.notEqual(x[p], x[0], `offset ${p} restarts the block`);
  const row = new Set(x.subarray(5_000, 5_000 + 262_144)); // the largest vocabulary the kernels take
  assert.equal(row.size, 262_144);
  assert.equal(tiledRandom(10, (b) => b.fill(1)).length, 10, "shorter than a block");
  const r = randomData(RANDOM_BLOCK + 3);
  const missing = r.subarray(0, RANDOM_BLOCK).reduce((s, v) => s + v, 0);
  assert.notEqual(missing, 0, "a missed block changes the sum");
});

Deno.test("bench topk: --tfjs-fit-ns sets tf.topk's wall fit apart from the kernel's --fit-ns", () => {
  assert.deepEqual(parseTopKBenchArgs(["--fit-ns", "10,50,200", "--tfjs-fit-ns", "2,8", "--wall"]), {
    fitNs: [10, 50, 200],
    tfjsFitNs: [2, 8],
    forceWall: true,
  });
  assert.throws(() => parseTopKBenchArgs(["--tfjs-fit-ns", "5"]), /two or more distinct/);
});

Deno.test("the device summary: steps, adapter limits, and one table per bench across its files", () => {
  assert.equal(kindOf("topk-compare-2026-12-02T08-08-30-165Z.json"), "topk-compare");
  assert.equal(kindOf("sparse-kd-2026-12-02T08-09-18-390Z.json"), "sparse-kd");
  const kernel = (ms: number) => ({ method: "timestamps", ms, points: [] });
  const point = (bytes: number, ms: number) => ({ bytes, read: kernel(ms), copy: kernel(2 * ms) });
  const topk = (rows: number, valid: boolean) => ({
    results: [{
      rows,
      vocab: 1000,
      k: 8,
      kernel: kernel(2),
      topk: { medianMs: 5 },
      roofline: [point(rows * 4000, 1), point(rows * 8000, valid ? 2 : 1)],
      rooflineValid: valid,
      tfWebgpu: { ms: 20 },
      tfWebgpuAgrees: true,
    }],
    note: "the note",
  });
  const md = summaryOf(
    {
      "topk-2026-12-02T08-09-08-759Z.json": topk(10, true),
      "topk-2026-12-02T08-09-09-759Z.json": topk(20, false),
      "roofline-2026-12-02T08-04-48-720Z.json": {
        points: [{ ...point(2 ** 20, 0.5), gpuSum: 1, cpuSum: 1 }],
      },
    },
    { info: { description: "Some GPU" }, features: ["timestamp-query"], limits: { maxBufferSize: 42 } },
    "adapter\t0\t1\ntests\t124\t150\nbench topk 9x9x9\tskipped (deadline)\t0\n",
  );
  assert.match(md, /\| adapter \| ok \| 1 \|/);
  assert.match(md, /\| tests \| 124 \| 150 \|/);
  assert.match(md, /\| bench topk 9x9x9 \| skipped \(deadline\) \| 0 \|/);
  assert.match(md, /Some GPU/);
  assert.match(md, /maxBufferSize 42/);
  assert.match(md, /features: timestamp-query/);
  assert.ok(md.indexOf("## roofline") < md.indexOf("## topk"), "roofline first");
  assert.equal(md.match(/^## topk$/gm)?.length, 1, "one topk section for both files");
  // kernel 2 ms over 40 kB, stream 1 ms (2 ms at twice the size): 50 % of the roofline, 10x tf-webgpu
  assert.match(
    md,
    /\| 10 x 1000 x 8 \| timestamps \| 2 \| 0\.0200 \| 5 \| 1 \/ 2 \| 0\.0400 \| 50 \| 20 \| 10 \| yes \|/,
  );
  assert.match(md, /\| 20 x 1000 x 8 \|.*\| n\/a \(roofline flat\) \|/);
  assert.equal(md.match(/the note/g)?.length, 1, "the note once");
  assert.match(md, /\| 1 \| timestamps \| 0\.500 \| 2\.10 \| 1 \| 2\.10 \| 1 = 1 \|/);
});
