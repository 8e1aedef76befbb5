/**
 * Shared by the save-topk tests: random npy teacher/data fixtures, save-topk in-process ({@linkcode runSaveTopK})
 * or as the task in a child process, and the checks of an output folder.
 */
import assert from "node:assert/strict";
import { npyBytes } from "../src/data/npy.ts";
import { readShards } from "../src/format/shard_reader.ts";
import { createRuntime, type Runtime } from "../src/gpu/runtime.ts";
import { topKReference } from "../src/kernels/topk_reference.ts";
import { runSaveTopK, type RunSaveTopKOptions } from "../src/save/run_save_topk.ts";
import type { SaveSummary } from "../src/save/save_topk.ts";
import { openStore } from "../src/store/open_store.ts";
import { makeRng } from "./_rng.ts";

/** The save-topk task's entry point. */
export const TASK = new URL("../tasks/save_topk.ts", import.meta.url).pathname;

/** A random fixture: logits [S, L, V] and ids [S, L], also written as npy files in `dir`. */
export interface Fixture {
  /** The seed the fixture was drawn from; also in `dir`'s name (`sparsekd-save-s<seed>-…`) to replay it. */
  seed: number;
  dir: string;
  S: number;
  L: number;
  V: number;
  logits: Float32Array;
  ids: Int32Array;
}

/**
 * Writes a random fixture (logits on a 0.01 grid, so ties happen) drawn from a fresh seed (`freshSeed` of `./_rng.ts`;
 * `SPARSEKD_SEED` replays one); `edit` may change it first.
 */
export async function fixture(
  S: number,
  L: number,
  V: number,
  edit?: (f: Fixture) => void,
): Promise<Fixture> {
  const rng = makeRng();
  const dir = await Deno.makeTempDir({ prefix: `sparsekd-save-s${rng.seed}-` });
  const logits = new Float32Array(S * L * V);
  for (let i = 0; i < logits.length; i++) logits[i] = Math.round((rng.uniform() - 0.5) * 4000) / 100;
  const ids = new Int32Array(S * L);
  for (let i = 0; i < ids.length; i++) ids[i] = rng.int(V);
  const f = { seed: rng.seed, dir, S, L, V, logits, ids };
  edit?.(f);
  await Deno.writeFile(`${dir}/logits.npy`, npyBytes("<f4", [S, L, V], f.logits));
  await Deno.writeFile(`${dir}/ids.npy`, npyBytes("<i4", [S, L], f.ids));
  return f;
}

/** The task on fixture `f`; flags in `extra` come last and win (e.g. another `--teacher`). */
export function save(f: Fixture, out: string, extra: string[] = [], env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      TASK,
      "--teacher",
      `npy:${f.dir}/logits.npy`,
      "--data",
      `npy:${f.dir}/ids.npy`,
      "--out",
      out,
      ...extra,
    ],
    env,
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs a command, collecting its exit code and output. */
export async function run(cmd: Deno.Command) {
  const o = await cmd.output();
  return {
    code: o.code,
    stdout: new TextDecoder().decode(o.stdout),
    stderr: new TextDecoder().decode(o.stderr),
  };
}

let runtime: Promise<Runtime> | undefined;

/**
 * save-topk in-process on fixture `f` (the library call the task makes, on one runtime shared by the calls
 * of this process unless `cpu` is set), printing nothing.
 *
 * @example
 * ```ts
 * const s = await saveInProcess(f, `${f.dir}/out`, { k: 4, sequencesPerShard: 3 });
 * ```
 */
export async function saveInProcess(
  f: Fixture,
  out: string,
  options: Partial<Omit<RunSaveTopKOptions, "teacher" | "data" | "out">> = {},
): Promise<SaveSummary> {
  const rt = options.cpu ? undefined : await (runtime ??= createRuntime({ quiet: true }));
  return await runSaveTopK({
    teacher: `npy:${f.dir}/logits.npy`,
    data: `npy:${f.dir}/ids.npy`,
    out,
    rt,
    print: false,
    ...options,
  });
}

/**
 * Every file under `dir` (relative path → bytes); with `skipTemp`, without temporary files (`.tmp` in the
 * name) that a killed run may leave.
 *
 * @example
 * ```ts
 * assertSameFiles(await snapshot(a), await snapshot(b));
 * ```
 */
export async function snapshot(dir: string, skipTemp = false): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  async function walk(rel: string) {
    for await (const e of Deno.readDir(rel ? `${dir}/${rel}` : dir)) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(p);
      else if (!(skipTemp && e.name.includes(".tmp"))) out.set(p, await Deno.readFile(`${dir}/${p}`));
    }
  }
  await walk("");
  return out;
}

/**
 * Asserts that two snapshots hold the same files with the same bytes.
 *
 * @example
 * ```ts
 * assertSameFiles(before, await snapshot(out));
 * ```
 */
export function assertSameFiles(a: Map<string, Uint8Array>, b: Map<string, Uint8Array>): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [k, v] of a) {
    const w = b.get(k)!;
    assert.ok(v.length === w.length && v.every((x, i) => x === w[i]), `${k} differs`);
  }
}

/**
 * The `error: …` lines of a command that must fail without a stack trace.
 *
 * @example
 * ```ts
 * const lines = await errorLines(save(f, out, ["--k", "0"]));
 * ```
 */
export async function errorLines(cmd: Deno.Command): Promise<string[]> {
  const r = await run(cmd);
  assert.notEqual(r.code, 0, `expected a failure, got success:\n${r.stderr}`);
  assert.ok(!/\n\s+at /.test(r.stderr), `no stack trace expected:\n${r.stderr}`);
  return r.stderr.split("\n").filter((l) => l.startsWith("error: ") && !l.includes("XDG_RUNTIME_DIR"));
}

/**
 * Asserts that a command fails with exactly one `error: …` line matching `pattern`, and returns it.
 *
 * @example
 * ```ts
 * await expectOneLineError(save(f, out, ["--k", "0"]), /--k/);
 * ```
 */
export async function expectOneLineError(cmd: Deno.Command, pattern: RegExp): Promise<string> {
  const errs = await errorLines(cmd);
  assert.equal(errs.length, 1, `one error line expected:\n${errs.join("\n")}`);
  assert.match(errs[0], pattern);
  return errs[0];
}

/**
 * The number of distinct sequences of OUT, read through the verifying reader, each one's tokens checked
 * against the fixture.
 *
 * @example
 * ```ts
 * assert.equal(await readAll(f, out), f.S);
 * ```
 */
export async function readAll(f: Fixture, out: string): Promise<number> {
  const seen = new Set<number>();
  for await (const r of readShards(out)) {
    assert.deepEqual([...r.tokens], [...f.ids.subarray(r.seq * f.L, (r.seq + 1) * f.L)]);
    seen.add(r.seq);
  }
  return seen.size;
}

/**
 * Checks every record of OUT against the CPU reference top-k of the fixture's logits, and that every
 * sequence is there exactly once.
 *
 * @example
 * ```ts
 * await checkAgainstReference(f, out, 12, [1, 2]);
 * ```
 */
export async function checkAgainstReference(f: Fixture, out: string, k: number, temps = [1]): Promise<void> {
  const store = await openStore(out);
  const seen = new Set<number>();
  for await (const r of readShards(store)) {
    assert.ok(!seen.has(r.seq), `seq ${r.seq} is in the set twice`);
    seen.add(r.seq);
    const rowLogits = f.logits.subarray(r.seq * f.L * f.V, (r.seq + 1) * f.L * f.V);
    const ref = topKReference(rowLogits, f.L, f.V, k, { temperatures: temps });
    assert.deepEqual([...r.tokens], [...f.ids.subarray(r.seq * f.L, (r.seq + 1) * f.L)]);
    assert.deepEqual([...r.idx], [...ref.indices], `seq ${r.seq} ids`);
    assert.deepEqual([...r.val], [...ref.values], `seq ${r.seq} values`);
    for (let i = 0; i < ref.logsumexp.length; i++) {
      const want = ref.logsumexp[i];
      assert.ok(Math.abs(r.lse[i] - want) <= Math.max(1e-5, 1e-6 * Math.abs(want)), `seq ${r.seq} lse ${i}`);
    }
  }
  assert.equal(seen.size, f.S, "every sequence is in the set exactly once");
}
