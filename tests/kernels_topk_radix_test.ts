/**
 * The radix-select top-k kernel (`src/kernels/topk_radix.ts`) against the CPU reference on fresh random
 * inputs (each test prints its seed on failure), one and several workgroups per row, a small candidate
 * buffer that forces many compactions, many rows, refused rows and bad options. Output buffers are
 * poisoned before every call so that stale results cannot pass. GPU tests fail when no adapter is found,
 * unless SPARSEKD_TEST_CPU_ONLY=1. Each distinct pipeline costs ~1-3 s to compile on lavapipe and ~10-60 s
 * on Mesa's GL path (llvmpipe), so the tests share a few: workgroup size 256 with the default and a small
 * capacity, two more capacities, and one 64-thread variant (`tools/radix_compile_time.ts` times them).
 * Rows that need hundreds of compactions in one workgroup are checked too: they used to come out wrong on
 * llvmpipe (lavapipe and GL), whose compiled shaders cut every loop short once a workgroup's 8-lane group
 * has run 65,535 loop iterations in all (gallivm's LP_MAX_TGSI_LOOP_ITERATIONS, one budget shared by every
 * loop of the shader); the kernel no longer walks the 256 histogram buckets in one thread.
 */
import assert from "node:assert/strict";
import { createRuntime, type Runtime } from "../src/gpu/runtime.ts";
import { SparsekdError } from "../src/errors.ts";
import { withSeed } from "./_rng.ts";
import { assertSame, gpu, uploadLogits } from "./_topk_fixtures.ts";
import { NonFiniteLogitsError, topKReference } from "../src/kernels/topk_reference.ts";
import {
  NonFiniteRowError,
  poisonTopKRadixScratch,
  radixSplit,
  topKRadix,
  topKRadixFromBuffer,
  type TopKRadixOptions,
} from "../src/kernels/topk_radix.ts";
import { planOf, SOFTWARE_CAP } from "../src/kernels/topk_radix_plan.ts";

type Kind = "normal" | "ties" | "neginf" | "huge" | "allsame" | "ascending" | "descending";

function makeLogits(rand: () => number, rows: number, vocab: number, kind: Kind): Float32Array<ArrayBuffer> {
  const x = new Float32Array(rows * vocab);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  for (let i = 0; i < x.length; i++) {
    switch (kind) {
      case "normal":
        x[i] = gauss() * 3;
        break;
      case "ties": // few distinct values: ties at the k-th place and -0 beside +0
        x[i] = Math.floor(rand() * 5) - 2 || (rand() < 0.5 ? -0 : 0);
        break;
      case "neginf": // many -Infinity entries, at least one finite value per row
        x[i] = rand() < 0.6 ? -Infinity : gauss() * 5;
        break;
      case "huge":
        x[i] = (rand() < 0.5 ? -1 : 1) * 10 ** (rand() * 60 - 30);
        break;
      case "allsame":
        x[i] = 1.5;
        break;
      case "ascending": // every new value beats the buffer: a compaction per step
        x[i] = (i % vocab) * 0.25;
        break;
      case "descending":
        x[i] = -(i % vocab) * 0.25;
        break;
    }
  }
  if (kind === "neginf") {
    for (let r = 0; r < rows; r++) x[r * vocab + Math.floor(rand() * vocab)] = gauss();
  }
  if (kind === "huge") {
    x[rand() * x.length | 0] = 1e30;
    x[rand() * x.length | 0] = -1e30;
  }
  return x;
}

/** Runs kernel and reference on one input (scratch poisoned first) and compares them. */
async function check(
  rt: Runtime,
  rand: () => number,
  rows: number,
  vocab: number,
  k: number,
  kind: Kind,
  options: TopKRadixOptions = {},
): Promise<void> {
  const x = makeLogits(rand, rows, vocab, kind);
  const what = `rows=${rows} vocab=${vocab} k=${k} ${kind} ${JSON.stringify(options)}`;
  poisonTopKRadixScratch(rt, rand() < 0.5 ? 0x7fc00001 : 0xffffffff);
  const got = await topKRadix(rt, x, rows, vocab, k, options);
  assertSame(got, topKReference(x, rows, vocab, k, { temperatures: options.temperatures }), what);
}

function someTemps(rand: () => number): number[] {
  return Array.from({ length: 1 + Math.floor(rand() * 4) }, () => 0.05 + rand() * 4);
}

Deno.test("topKRadix matches the reference on random shapes, k and temperatures (one workgroup per row)", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("random shapes", async ({ uniform: rand }) => {
    for (const vocab of [2, 3, 5, 31, 257, 1000, 2049, 4099, 32000]) {
      const ks = [1, Math.min(vocab, 1024), 1 + Math.floor(rand() * Math.min(vocab, 1024))];
      for (const k of ks) {
        const rows = 1 + Math.floor(rand() * 4);
        await check(rt, rand, rows, vocab, k, "normal", { split: 1, temperatures: someTemps(rand) });
      }
    }
  });
});

Deno.test("topKRadix breaks ties by the lower id, -0 equal to +0 and returned as -0, also with k = vocab", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("ties", async ({ uniform: rand }) => {
    for (const [rows, vocab, k] of [[3, 7, 7], [4, 3000, 64], [2, 50000, 1000], [3, 2500, 1024]]) {
      await check(rt, rand, rows, vocab, k, "ties", { split: 1 });
    }
    await check(rt, rand, 2, 5000, 100, "allsame", { split: 1, temperatures: [1, 3] });
    await check(rt, rand, 3, 1024, 1024, "ties", { split: 1 });
  });
});

Deno.test("topKRadix handles -Infinity entries and magnitudes up to 1e30 at several temperatures", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("extremes", async ({ uniform: rand }) => {
    await check(rt, rand, 4, 1000, 700, "neginf", { split: 1, temperatures: [1, 0.25] });
    await check(rt, rand, 3, 40000, 64, "neginf", { split: 1 });
    await check(rt, rand, 3, 3000, 33, "huge", { split: 1, temperatures: [1, 0.01, 10] });
  });
});

Deno.test("topKRadix handles the largest vocabulary and rows whose values rise or fall throughout", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("large", async ({ uniform: rand }) => {
    await check(rt, rand, 2, 262144, 1 + Math.floor(rand() * 1024), "normal", {
      split: 1,
      temperatures: [1, 0.7],
    });
    await check(rt, rand, 1, 262144, 1024, "ties", { split: 1 });
    await check(rt, rand, 2, 100000, 300, "ascending", { split: 1 });
    await check(rt, rand, 1, 30000, 1024, "descending", { split: 1 });
  });
});

Deno.test("topKRadix with several workgroups per row and a merge equals the reference", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("split", async ({ uniform: rand }) => {
    // Splits larger than the row (empty segments), segments shorter than k, long rows with k = 1024.
    await check(rt, rand, 3, 10, 4, "normal", { split: 8 });
    await check(rt, rand, 2, 3001, 1000, "ties", { split: 5, temperatures: [1, 2] });
    await check(rt, rand, 2, 262144, 1024, "normal", { split: 2 + Math.floor(rand() * 15) });
    await check(rt, rand, 3, 50257, 1 + Math.floor(rand() * 200), "normal", {
      split: 2 + Math.floor(rand() * 30),
      temperatures: someTemps(rand),
    });
    await check(rt, rand, 2, 20000, 50, "neginf", { split: 7, temperatures: [0.5, 4] });
    await check(rt, rand, 2, 65536, 64, "ascending", { split: 64 });
    await check(rt, rand, 2, 9000, 3, "huge", { split: 3 });
  });
});

Deno.test("topKRadix is exact with a small candidate buffer that compacts often (one and several workgroups)", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("small capacity", async ({ uniform: rand }) => {
    // Up to a few dozen compactions per workgroup (see the known failure below for hundreds).
    const capacity = 300;
    for (
      const [rows, vocab, k, kind, split] of [
        [2, 6000, 256, "normal", 1],
        [2, 3000, 250, "ascending", 1],
        [2, 3000, 200, "ascending", 3],
        [2, 4000, 256, "ties", 2],
        [3, 2000, 1, "normal", 4],
        [2, 5000, 17, "descending", 1],
      ] as const
    ) {
      await check(rt, rand, rows, vocab, k, kind, { split, capacity, temperatures: [1, 0.5] });
    }
  });
});

Deno.test("topKRadix is exact with hundreds of compactions in one workgroup (llvmpipe's loop budget)", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("many compactions", async ({ uniform: rand }) => {
    // Rising rows with 100 and 744 free slots: ~280 and ~350 compactions. Before the histogram scan was
    // made parallel, thread 0's walk over the buckets spent llvmpipe's 65,535-iteration loop budget and
    // the last compactions and the ranking came out wrong (from vocabulary ~29,000 in the first case).
    await check(rt, rand, 1, 29072, 1000, "ascending", { split: 1, capacity: 1100 });
    await check(rt, rand, 1, 32672, 1000, "ascending", { split: 1, capacity: 1100 });
    await check(rt, rand, 1, 262144, 1024, "ascending", { split: 1, capacity: 1768 });
  });
});

Deno.test("topKRadix with 64 threads and two loads per step equals the reference", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("wg64", async ({ uniform: rand }) => {
    const options = { workgroupSize: 64, loads: 2, split: 1 };
    await check(rt, rand, 3, 30011, 1 + Math.floor(rand() * 1024), "normal", options);
    await check(rt, rand, 2, 4099, 1024, "ties", options);
  });
});

Deno.test("topKRadix on many rows: a 2D grid beyond the per-dimension workgroup limit", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("many rows", async ({ uniform: rand }) => {
    // 64 threads (the pipeline of the test above): 65,536+ workgroups of 256 threads take minutes on lavapipe.
    const small = { workgroupSize: 64, loads: 2 };
    const rows = rt.device!.limits.maxComputeWorkgroupsPerDimension + 1 + Math.floor(rand() * 100);
    const vocab = 2 + Math.floor(rand() * 3);
    await check(rt, rand, rows, vocab, vocab, "normal", { ...small, split: 1 });
    await check(rt, rand, 700, 300, 17, "normal", { split: 1, temperatures: [1, 2] });
    await check(rt, rand, 300, 3000, 5, "normal", { split: 4 }); // 1,200 workgroups and a merge per row
  });
});

Deno.test("topKRadixFromBuffer reads logits already on the GPU and equals topKRadix", async () => {
  const rt = await gpu();
  if (!rt) return;
  await withSeed("from buffer", async ({ uniform: rand }) => {
    const [rows, vocab, k] = [5, 3001, 50];
    const x = makeLogits(rand, rows, vocab, "normal");
    const buf = uploadLogits(rt, x);
    const want = topKReference(x, rows, vocab, k, { temperatures: [1, 1.5] });
    for (const split of [1, 3]) {
      poisonTopKRadixScratch(rt, 0x12345678);
      const got = await topKRadixFromBuffer(rt, buf, rows, vocab, k, { temperatures: [1, 1.5], split });
      assertSame(got, want, `topKRadixFromBuffer split ${split}`);
    }
    buf.destroy();
  });
});

Deno.test("rows with NaN, +Infinity or only -Infinity are refused naming the first bad row (GPU, split, CPU)", async () => {
  const rt = await gpu();
  const cpu = await createRuntime({ cpu: true, quiet: true });
  await withSeed("non-finite", async ({ uniform: rand }) => {
    const rows = 6, vocab = 777;
    for (const kind of ["NaN", "+Infinity", "only -Infinity"] as const) {
      const x = makeLogits(rand, rows, vocab, "normal");
      const bad = 1 + Math.floor(rand() * 4);
      if (kind === "only -Infinity") x.fill(-Infinity, bad * vocab, (bad + 1) * vocab);
      else x[bad * vocab + Math.floor(rand() * vocab)] = kind === "NaN" ? NaN : Infinity;
      x[(bad + 1) * vocab + 3] = NaN; // a later bad row is not the one named
      const runs: [string, () => Promise<unknown>][] = [["cpu", () => topKRadix(cpu, x, rows, vocab, 5)]];
      if (rt) {
        runs.push(["gpu", () => topKRadix(rt, x, rows, vocab, 5, { split: 1 })]);
        runs.push(["gpu split", () => topKRadix(rt, x, rows, vocab, 5, { split: 3 })]);
      }
      for (const [where, run] of runs) {
        await assert.rejects(run, (e: unknown) => {
          assert.ok(e instanceof NonFiniteRowError, `${kind} ${where}: ${e}`);
          assert.ok(e instanceof NonFiniteLogitsError && e instanceof SparsekdError);
          assert.equal(e.row, bad, `${kind} ${where}`);
          assert.equal(e.kind, kind, where);
          assert.match(e.message, new RegExp(`row ${bad}\\b`));
          return true;
        });
      }
    }
  });
});

Deno.test("bad arguments and options are one-line SparsekdErrors naming the option", async () => {
  const rt = await gpu();
  const cpu = await createRuntime({ cpu: true, quiet: true });
  const x = new Float32Array(20);
  const cases: [string, () => Promise<unknown>, string | undefined][] = [
    ["k = 0 (cpu)", () => topKRadix(cpu, x, 2, 10, 0), undefined],
    ["wrong length (cpu)", () => topKRadix(cpu, x, 3, 10, 1), undefined],
    ["from buffer on the CPU", () => topKRadixFromBuffer(cpu, {} as GPUBuffer, 1, 10, 1), undefined],
  ];
  if (rt) {
    cases.push(
      ["k > vocab", () => topKRadix(rt, x, 2, 10, 11), undefined],
      ["temperature 0", () => topKRadix(rt, x, 2, 10, 1, { temperatures: [0] }), undefined],
      ["split 0", () => topKRadix(rt, x, 2, 10, 1, { split: 0 }), "split"],
      ["split 65", () => topKRadix(rt, x, 2, 10, 1, { split: 65 }), "split"],
      ["split 1.5", () => topKRadix(rt, x, 2, 10, 1, { split: 1.5 }), "split"],
      ["capacity = k", () => topKRadix(rt, x, 2, 10, 5, { capacity: 5 }), "capacity"],
      ["capacity too large", () => topKRadix(rt, x, 2, 10, 5, { capacity: 1 << 20 }), "capacity"],
      ["workgroupSize 100", () => topKRadix(rt, x, 2, 10, 1, { workgroupSize: 100 }), "workgroupSize"],
      ["loads 0", () => topKRadix(rt, x, 2, 10, 1, { loads: 0 }), "loads"],
      ["splitBelowRows 0", () => topKRadix(rt, x, 2, 10, 1, { splitBelowRows: 0 }), "splitBelowRows"],
    );
    const small = rt.device!.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE });
    cases.push(["buffer too small", () => topKRadixFromBuffer(rt, small, 2, 10, 1), undefined]);
  }
  for (const [name, run, option] of cases) {
    await assert.rejects(run, (e: unknown) => {
      assert.ok(e instanceof SparsekdError, `${name}: not a SparsekdError: ${e}`);
      assert.ok(!(e instanceof NonFiniteLogitsError), name);
      assert.ok(e.message.length > 0 && !e.message.includes("\n"), `${name}: not one line`);
      assert.equal(e.option, option, name);
      if (option) assert.ok(e.message.startsWith(option), name);
      return true;
    }, name);
  }
});

Deno.test("topKRadix with zero rows returns empty results; the default split", async () => {
  const rt = await gpu();
  for (const r of rt ? [rt, await createRuntime({ cpu: true, quiet: true })] : []) {
    const got = await topKRadix(r, new Float32Array(0), 0, 10, 3, { temperatures: [1, 2] });
    assert.equal(got.indices.length + got.values.length + got.logsumexp.length, 0);
  }
  assert.equal(radixSplit(4, 262_144, false), 16);
  assert.equal(radixSplit(4, 262_144, true), 1);
  assert.equal(radixSplit(2048, 262_144, false), 1);
  assert.equal(radixSplit(1, 262_144, false), 16); // at least 16,384 values per workgroup
  assert.equal(radixSplit(1, 1_000, false), 1);
  assert.equal(radixSplit(100, 262_144, false, 2000), 16); // ceil(2000 / 100) = 20, capped by the row
  assert.equal(radixSplit(300, 262_144, false), 4);
});

Deno.test("the default candidate capacity is at most 2,048 on a software adapter, the device's maximum elsewhere", () => {
  // Mesa's GL path compiles the kernel in a time that grows with the square of its workgroup memory.
  const limits = { maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupStorageSize: 32768 };
  const rt = (software: boolean) => ({ device: { limits }, adapter: { software } }) as unknown as Runtime;
  assert.equal(SOFTWARE_CAP, 2048);
  assert.equal(planOf(rt(true), 1, 1000, 5, 1, {}).cap, SOFTWARE_CAP);
  assert.equal(planOf(rt(false), 1, 1000, 5, 1, {}).cap, 3816); // (32,768 - 1,200 - 4 · 256) / 8, by 4
  assert.equal(planOf(rt(true), 1, 1000, 5, 1, { capacity: 3000 }).cap, 3000);
  const small = { ...limits, maxComputeWorkgroupStorageSize: 16384 };
  const rtSmall = { device: { limits: small }, adapter: { software: true } } as unknown as Runtime;
  assert.equal(planOf(rtSmall, 1, 1000, 5, 1, {}).cap, 1768);
});

/**
 * A CPU model of the shader's selection (`shaders/topk_radix.wgsl`: offer / compact / finish), threads
 * taking turns in the order `order` gives for each round: the k best (key, ~id) of one row, sorted.
 */
function selectModel(row: Float32Array, k: number, cap: number, wg: number, u: number, order: () => number) {
  const f = new Float32Array(1), b = new Uint32Array(f.buffer);
  const keyOf = (x: number) => {
    f[0] = x;
    const v = b[0] === 0x80000000 ? 0 : b[0];
    return (v & 0x80000000 ? ~v : v | 0x80000000) >>> 0;
  };
  const ck = new Uint32Array(cap), ci = new Uint32Array(cap);
  let count = 0, tk = 0, tr = 0;
  const keep = (key: number, id: number) => key > tk || (key === tk && (~id >>> 0) >= tr);
  const compact = (n: number) => {
    let pk = 0, pr = 0, mk = 0, mr = 0, remaining = k;
    for (let d = 0; d < 8; d++) {
      const hist = new Array(256).fill(0), onKey = d < 4, shift = 24 - 8 * (d % 4);
      for (let j = 0; j < n; j++) {
        const rid = ~ci[j] >>> 0;
        if (((ck[j] & mk) >>> 0) === pk && ((rid & mr) >>> 0) === pr) {
          hist[((onKey ? ck[j] : rid) >>> shift) & 255]++;
        }
      }
      let above = 0, dg = 255;
      while (above + hist[dg] < remaining && dg > 0) above += hist[dg--];
      const exact = hist[dg] === remaining - above;
      remaining -= above;
      if (onKey) [pk, mk] = [(pk | (dg << shift)) >>> 0, (mk | (255 << shift)) >>> 0];
      else [pr, mr] = [(pr | (dg << shift)) >>> 0, (mr | (255 << shift)) >>> 0];
      if (exact) break;
    }
    const lk = ck.slice(0, n), lv = ci.slice(0, n);
    [tk, tr, count] = [pk, pr, 0];
    for (let j = 0; j < n; j++) if (keep(lk[j], lv[j])) [ck[count], ci[count++]] = [lk[j], lv[j]];
    assert.equal(count, k, "a compaction keeps exactly k entries");
  };
  const nb = row.length >> 2, e4 = 4 * u;
  for (let st = 0; st * wg * u < nb; st++) {
    let pending: number[] = []; // id of each pending element
    for (let t = 0; t < wg; t++) {
      for (let e = 0; e < e4; e++) {
        const j = st * wg * u + t + Math.floor(e / 4) * wg, id = 4 * j + (e % 4);
        if (j < nb && keep(keyOf(row[id]), id)) pending.push(id);
      }
    }
    for (;;) {
      const left: number[] = [];
      for (const id of pending.sort(() => order() - 0.5)) {
        if (!keep(keyOf(row[id]), id)) continue;
        const slot = count++;
        if (slot < cap) [ck[slot], ci[slot]] = [keyOf(row[id]), id];
        else left.push(id);
      }
      pending = left;
      if (count <= cap) break;
      compact(cap);
    }
  }
  if (count > k) compact(count);
  return Array.from(ci.subarray(0, Math.min(count, k))).sort((x, y) => row[y] - row[x] || x - y);
}

Deno.test("the selection algorithm (a CPU model of the shader) is exact on rows with many compactions", async () => {
  await withSeed("model", ({ uniform: rand }) => {
    for (
      const [vocab, k, cap, kind] of [[29072, 1000, 1100, "ascending"], [262144, 1024, 1768, "ascending"], [
        8192,
        64,
        100,
        "ties",
      ]] as const
    ) {
      const row = makeLogits(rand, 1, vocab, kind);
      const want = topKReference(row, 1, vocab, k).indices;
      const got = selectModel(row, k, cap, 256, 4, rand);
      assert.deepEqual(got, Array.from(want), `model vocab=${vocab} k=${k} capacity=${cap} ${kind}`);
    }
    return Promise.resolve();
  });
});
