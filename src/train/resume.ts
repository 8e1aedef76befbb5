/**
 * What a resumed run checks and repairs before it continues: that the checkpoint was made with the same
 * settings (naming each one that differs), and that `metrics.jsonl` holds no rows past the checkpoint (the
 * steps between it and the stop are run again and would otherwise appear twice).
 * @module
 */
import { SparsekdError } from "../errors.ts";
import {
  checkpointDir,
  incompleteCheckpoints,
  latestCheckpoint,
  type TrainState,
} from "../model/checkpoint.ts";
import type { ObjectStore } from "../store/store.ts";

/**
 * The checkpoint a run starts from: with `resume`, the newest complete one in `out`, loaded by `load`
 * (incomplete newer ones are named in one line each and left to be rewritten); without, null, after
 * checking that `out` holds no checkpoint.
 *
 * @example
 * ```ts
 * const saved = await openCheckpoints(store, true, console.log, (step) => loadCheckpoint(store, step, m, s));
 * ```
 */
export async function openCheckpoints(
  out: ObjectStore,
  resume: boolean,
  log: (line: string) => void,
  load: (step: number) => Promise<TrainState>,
): Promise<TrainState | null> {
  const latest = await latestCheckpoint(out);
  if (!resume) {
    if (latest === null) return null;
    throw new SparsekdError(`out: ${out.uri} already holds checkpoints: resume it, or choose another out`, {
      option: "out",
    });
  }
  if (latest === null) {
    // Killed before its first checkpoint: there is nothing to resume, so a restart loop that always passes
    // resume starts the run over (its metrics rows are dropped by the caller).
    log(`${out.uri} holds no complete checkpoint yet: starting from step 0`);
    return null;
  }
  for (const step of await incompleteCheckpoints(out)) {
    if (step > latest) log(`ignoring the incomplete ${out.uri}/${checkpointDir(step)} (no state.json)`);
  }
  return await load(latest);
}

/**
 * Refuses a resume whose settings (`now`, with `seed`) differ from those recorded in the checkpoint `saved`,
 * naming each one that differs; `steps` may differ (a run can be extended).
 *
 * @example
 * ```ts
 * checkSettings(state, { ...identity, seed: 1 }, "runs/s1/ckpt-00000100");
 * ```
 */
export function checkSettings(saved: TrainState, now: Record<string, unknown>, where: string): void {
  const diff = settingsDiff({ ...(saved.identity as Record<string, unknown>), seed: saved.seed }, now, [
    "steps",
  ]);
  if (diff.length > 0) {
    throw new SparsekdError(`resume: ${where} was trained with other settings: ${diff.join("; ")}`, {
      option: "resume",
    });
  }
}

/**
 * The settings that differ between a checkpoint's recorded identity and this run's, as `name was A, now B`
 * (nested objects by dotted name); empty when they agree. `ignore` names top-level keys not compared.
 *
 * @example
 * ```ts
 * settingsDiff({ lr: 3e-4, steps: 10 }, { lr: 1e-3, steps: 20 }, ["steps"]); // ["lr was 0.0003, now 0.001"]
 * ```
 */
export function settingsDiff(
  saved: Record<string, unknown>,
  now: Record<string, unknown>,
  ignore: string[] = [],
): string[] {
  const a = flatten(saved), b = flatten(now);
  const out: string[] = [];
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    if (ignore.includes(key.split(".")[0])) continue;
    const x = a.get(key), y = b.get(key);
    if (x !== y) out.push(`${key} was ${x ?? "unset"}, now ${y ?? "unset"}`);
  }
  return out;
}

function flatten(obj: unknown, prefix = "", out = new Map<string, string>()): Map<string, string> {
  if (obj !== null && typeof obj === "object" && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (obj !== undefined) {
    out.set(prefix, typeof obj === "string" ? obj : JSON.stringify(obj));
  }
  return out;
}

/**
 * Rewrites the local `metrics.jsonl` at `path` without the rows of steps after `step` (atomically: a temporary
 * file beside it, then a rename); returns how many rows were dropped. A missing file is no error. Lines that
 * do not parse (the cut-short tail of an interrupted append) are dropped; other rows without a numeric `step`
 * are kept.
 *
 * @example
 * ```ts
 * const dropped = await truncateMetrics("runs/s1/metrics.jsonl", 100);
 * ```
 */
export async function truncateMetrics(path: string, step: number): Promise<number> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw new SparsekdError(`cannot read ${path}: ${String(err).split("\n")[0]}`, { cause: err });
  }
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  // A line that does not parse can only be the tail of an append that a kill cut short: dropped too.
  const kept = lines.filter((l) => {
    try {
      const row = JSON.parse(l);
      return !(row && typeof row.step === "number" && row.step > step);
    } catch {
      return false;
    }
  });
  const dropped = lines.length - kept.length;
  if (dropped === 0) return 0;
  const tmp = `${path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  try {
    await Deno.writeTextFile(tmp, kept.map((l) => l + "\n").join(""));
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw new SparsekdError(`cannot rewrite ${path}: ${String(err).split("\n")[0]}`, { cause: err });
  }
  return dropped;
}

/**
 * Makes `metrics.jsonl` at `path` hold exactly the rows of the steps a run starting at `step` has done: the
 * rows past the checkpoint's step when resuming, none when starting over (`step` null: a run stopped before
 * its first checkpoint left rows that the new start writes again). Says what it dropped through `log`.
 *
 * @example
 * ```ts
 * await alignMetrics("runs/s1/metrics.jsonl", 100, console.error);
 * ```
 */
export async function alignMetrics(
  path: string,
  step: number | null,
  log: (line: string) => void,
): Promise<void> {
  const dropped = await truncateMetrics(path, step ?? -1);
  if (dropped === 0) return;
  log(
    step === null
      ? `dropped ${dropped} rows of metrics.jsonl left by a run that stopped before its first checkpoint`
      : `dropped ${dropped} rows of metrics.jsonl past step ${step}`,
  );
}
