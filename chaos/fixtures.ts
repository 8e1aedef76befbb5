/**
 * The tiny inputs of the chaos suite: a seeded npy teacher and data, the flags of tiny save-topk and train runs,
 * train's metrics rows in a comparable form, and a folder copy.
 * @module
 */
import { npyBytes } from "../src/data/npy.ts";
import { type Ctx, rng } from "./lib.ts";

/** A tiny teacher and data as npy files: logits [S, L, V] and ids [S, L]. */
export interface Fixture {
  /** Its folder. */
  dir: string;
  /** `--teacher npy:…`. */
  teacher: string;
  /** `--data npy:…`. */
  data: string;
  /** Sequences. */
  S: number;
  /** Sequence length. */
  L: number;
  /** Vocabulary. */
  V: number;
}

/**
 * Writes a seeded random teacher/data fixture into `dir` (logits with distinct values, so that the top-k has
 * no ties and a CPU and a GPU run agree).
 *
 * @example
 * ```ts ignore
 * const fx = await makeFixture("/tmp/x", 1, { S: 32, L: 8, V: 96 });
 * ```
 */
export async function makeFixture(
  dir: string,
  seed: number,
  shape: { S: number; L: number; V: number },
): Promise<Fixture> {
  const { S, L, V } = shape;
  const r = rng(seed);
  await Deno.mkdir(dir, { recursive: true });
  const logits = new Float32Array(S * L * V);
  for (let i = 0; i < logits.length; i++) logits[i] = (r.next() - 0.5) * 20;
  const ids = new Int32Array(S * L);
  for (let i = 0; i < ids.length; i++) ids[i] = r.int(V);
  await Deno.writeFile(`${dir}/logits.npy`, npyBytes("<f4", [S, L, V], logits));
  await Deno.writeFile(`${dir}/ids.npy`, npyBytes("<i4", [S, L], ids));
  return { dir, teacher: `npy:${dir}/logits.npy`, data: `npy:${dir}/ids.npy`, S, L, V };
}

/** Flags of a tiny save-topk run on fixture `fx` into `out`. */
export function saveArgs(ctx: Ctx, fx: Fixture, out: string, extra: string[] = []): string[] {
  return [
    "--teacher",
    fx.teacher,
    "--data",
    fx.data,
    "--out",
    out,
    "--k",
    "8",
    "--sequences-per-shard",
    "2",
    "--batch-size",
    "2",
    ...(ctx.gpu ? [] : ["--cpu"]),
    ...extra,
  ];
}

/** Flags of a tiny train run from `shards` into `out` (6 steps, a checkpoint and an evaluation every 2). */
export function trainArgs(ctx: Ctx, shards: string, out: string, extra: string[] = []): string[] {
  return [
    "--shards",
    shards,
    "--out",
    out,
    "--layers",
    "1",
    "--width",
    "32",
    "--steps",
    "6",
    "--checkpoint-every",
    "2",
    "--eval-every",
    "2",
    "--log-every",
    "1",
    "--batch-size",
    "2",
    "--heldout-sequences",
    "4",
    "--quiet",
    ...(ctx.gpu ? [] : ["--cpu"]),
    ...extra,
  ];
}

/**
 * metrics.jsonl of a train run as a canonical string: rows without the timing field `msPerStep`, and a list
 * of the (kind, step) pairs that occur more than once.
 *
 * @example
 * ```ts ignore
 * const m = await metricsRows("/tmp/train/metrics.jsonl");
 * ```
 */
export async function metricsRows(path: string): Promise<{ rows: string; duplicates: string[] }> {
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const seen = new Set<string>(), duplicates: string[] = [];
  const rows: string[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    let row: Record<string, unknown>;
    try {
      row = JSON.parse(line);
    } catch {
      rows.push(`unparseable: ${line.slice(0, 40)}`);
      continue;
    }
    delete row.msPerStep;
    const key = `${row.kind}@${row.step}`;
    if (seen.has(key)) duplicates.push(key);
    seen.add(key);
    rows.push(JSON.stringify(row));
  }
  return { rows: rows.join("\n"), duplicates };
}

/** Copies a folder tree (small fixtures only). */
export async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
    else await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}
