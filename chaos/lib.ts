/**
 * Shared parts of the chaos suite: a seeded generator, the commands run as subprocesses (with a timeout, a
 * kill at a chosen moment and a watch on their memory), the one-`error:`-line rule and tree hashes. The tiny
 * fixtures and command lines are in `fixtures.ts`.
 * @module
 */
import { createHash } from "node:crypto";

/** The repository root (the chaos folder's parent). */
export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** A seeded generator (mulberry32). */
export interface Rng {
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  /** One element of `xs`. */
  pick<T>(xs: readonly T[]): T;
}

/**
 * A seeded generator: the same seed gives the same sequence, so a lost case can be replayed from its seed.
 *
 * @example
 * ```ts
 * const r = rng(7);
 * const x = r.int(10);
 * ```
 */
export function rng(seed: number): Rng {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return { next, int: (n) => Math.floor(next() * n), pick: (xs) => xs[Math.floor(next() * xs.length)] };
}

/** What every category gets from the runner. */
export interface Ctx {
  /** A scratch folder of this chaos run (removed at the end unless --keep). */
  tmp: string;
  /** The run's seed; each case derives its own from it. */
  seed: number;
  /** Date.now() after which the category starts no new case. */
  deadline: number;
  /** Run the kernels on WebGPU (default: `--cpu`, the same store and format code, much faster here). */
  gpu: boolean;
  /** Prints one progress line (to stderr). */
  log(line: string): void;
}

/** One case's outcome. */
export interface CaseResult {
  /** The case's own seed (replay: `deno task chaos --only <category> --seed …` prints the same seeds). */
  seed: number;
  /** What was done, in a few words. */
  what: string;
  /** true: survived; false: lost. */
  survived: boolean;
  /** What happened (always given for a lost case). */
  detail: string;
}

/** A category's cases. */
export interface CategoryResult {
  /** The category's name. */
  name: string;
  /** Every case tried. */
  cases: CaseResult[];
  /** Remarks printed under the category's line (e.g. how many kills). */
  notes: string[];
}

/** A category of the suite. */
export interface Category {
  /** The name used by --only. */
  name: string;
  /** Relative share of the time budget. */
  weight: number;
  /** Runs cases until it has tried enough or `ctx.deadline` passes. */
  run(ctx: Ctx): Promise<CategoryResult>;
}

/** The result of a subprocess. */
export interface Outcome {
  /** Exit code (null when killed by a signal). */
  code: number | null;
  /** The signal that ended it, if any. */
  signal: string | null;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
  /** Killed by us at the planned moment. */
  killed: boolean;
  /** Killed because it ran past the timeout. */
  timedOut: boolean;
  /** Killed because its resident memory passed the cap. */
  overMemory: boolean;
  /** Peak resident memory seen (VmHWM), in MiB. */
  peakRssMiB: number;
  /** Wall time in ms. */
  ms: number;
}

/** Options of {@linkcode runTask}. */
export interface RunOptions {
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Kill (SIGKILL) after this many ms: a run past it is a hang (default 120 s). */
  timeoutMs?: number;
  /** Kill with SIGKILL at this moment (ms after the start): the planned kill of the kill-and-resume cases. */
  killAtMs?: number;
  /** Kill when VmRSS passes this many MiB. */
  memCapMiB?: number;
  /** Extra flags for `deno run` (e.g. `--v8-flags=…`). */
  denoFlags?: string[];
}

/**
 * Runs `tasks/<task>.ts args…` as a subprocess with `Deno.execPath() run -A`, and watches it.
 *
 * @example
 * ```ts ignore
 * const o = await runTask("save_topk", ["--help"]);
 * ```
 */
export async function runTask(task: string, args: string[], opts: RunOptions = {}): Promise<Outcome> {
  const t0 = performance.now();
  const xdg = `${Deno.env.get("TMPDIR") ?? "/tmp"}`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", ...(opts.denoFlags ?? []), `${ROOT}/tasks/${task}.ts`, ...args],
    cwd: ROOT,
    env: { DENO_WEBGPU_BACKEND: "vulkan", XDG_RUNTIME_DIR: xdg, NO_COLOR: "1", ...opts.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed = false, timedOut = false, overMemory = false, peakKiB = 0;
  const kill = () => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  };
  const timers: ReturnType<typeof setTimeout>[] = [];
  timers.push(setTimeout(() => {
    timedOut = true;
    kill();
  }, opts.timeoutMs ?? 120_000));
  if (opts.killAtMs !== undefined) {
    timers.push(setTimeout(() => {
      killed = true;
      kill();
    }, Math.max(0, opts.killAtMs)));
  }
  const poll = setInterval(() => {
    try {
      const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
      const hwm = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
      const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peakKiB = Math.max(peakKiB, hwm, rss);
      if (opts.memCapMiB !== undefined && rss > opts.memCapMiB * 1024) {
        overMemory = true;
        kill();
      }
    } catch { /* exited */ }
  }, 25);
  const [status, out, err] = await Promise.all([
    child.status,
    new Response(child.stdout).text(),
    new Response(child.stderr).text(),
  ]);
  clearInterval(poll);
  for (const t of timers) clearTimeout(t);
  return {
    code: status.signal ? null : status.code,
    signal: status.signal,
    stdout: out,
    stderr: err,
    killed: killed && !timedOut,
    timedOut,
    overMemory,
    peakRssMiB: peakKiB / 1024,
    ms: performance.now() - t0,
  };
}

/** stderr lines that are not the program's own (the Vulkan loader's complaint about XDG_RUNTIME_DIR). */
const NOISE = /^(Error: XDG_RUNTIME_DIR|MESA: |WARNING: lavapipe)/;

/** How a finished run ended, as the suite judges it. */
export type Ending =
  | { kind: "ok" }
  | { kind: "error"; line: string }
  | { kind: "bad"; why: string };

/**
 * Judges a run that was not killed on purpose: `ok` (exit 0, no stack trace), `error` (non-zero exit with
 * exactly one `error:` line and no stack trace) or `bad` (a stack trace, several or no error lines, a hang,
 * a crash, too much memory).
 *
 * @example
 * ```ts ignore
 * const e = ending(await runTask("train", ["--nope"]));
 * ```
 */
export function ending(o: Outcome): Ending {
  if (o.timedOut) return { kind: "bad", why: "hang: killed after the timeout" };
  if (o.overMemory) {
    return { kind: "bad", why: `memory: RSS passed the cap (${o.peakRssMiB.toFixed(0)} MiB)` };
  }
  if (o.signal) return { kind: "bad", why: `died of ${o.signal}` };
  const lines = o.stderr.split("\n").filter((l) => l.trim() !== "" && !NOISE.test(l));
  const stack = lines.find((l) => /^\s+at\s/.test(l) || /^error: Uncaught/.test(l) || /^\w*Error: /.test(l));
  if (stack !== undefined) return { kind: "bad", why: `stack trace/uncaught: ${firstLines(o.stderr)}` };
  const errors = lines.filter((l) => l.startsWith("error: "));
  if (o.code === 0) {
    return errors.length === 0 ? { kind: "ok" } : { kind: "bad", why: `exit 0 with ${errors[0]}` };
  }
  if (errors.length === 1) return { kind: "error", line: errors[0] };
  return {
    kind: "bad",
    why: `exit ${o.code} with ${errors.length} error: lines: ${firstLines(o.stderr)}`,
  };
}

/** The error's own lines in stderr (from the first that looks like an error), squeezed onto one line. */
export function firstLines(s: string, n = 2): string {
  const lines = s.split("\n").filter((l) => l.trim() !== "" && !NOISE.test(l));
  const i = lines.findIndex((l) => /error|Error|panicked/.test(l));
  return lines.slice(Math.max(0, i), Math.max(0, i) + n).map((l) => l.trim()).join(" | ").slice(0, 240);
}

/**
 * sha256 of every file under `dir`, by relative path; hidden `.*.tmp` leftovers are listed apart.
 *
 * @example
 * ```ts ignore
 * const { files } = await treeHashes("/tmp/out");
 * ```
 */
export async function treeHashes(
  dir: string,
): Promise<{ files: Map<string, string>; tmpLeftovers: string[] }> {
  const files = new Map<string, string>();
  const tmpLeftovers: string[] = [];
  const walk = async (rel: string) => {
    for await (const e of Deno.readDir(rel ? `${dir}/${rel}` : dir)) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) await walk(p);
      else if (/^\..*\.tmp$/.test(e.name) || /\.tmp-/.test(e.name)) tmpLeftovers.push(p);
      else files.set(p, sha256(await Deno.readFile(`${dir}/${p}`)));
    }
  };
  try {
    await walk("");
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return { files, tmpLeftovers };
}

/** Hex sha256 of bytes. */
export function sha256(b: Uint8Array | string): string {
  return createHash("sha256").update(b).digest("hex");
}

/**
 * Compares two path → sha256 maps; returns "" when equal, else a short description of the first differences.
 *
 * @example
 * ```ts
 * console.assert(diffHashes(new Map([["a", "1"]]), new Map([["a", "1"]])) === "");
 * ```
 */
export function diffHashes(want: Map<string, string>, got: Map<string, string>, ignore?: RegExp): string {
  const out: string[] = [];
  for (const [p, h] of want) {
    if (ignore?.test(p)) continue;
    if (!got.has(p)) out.push(`${p} missing`);
    else if (got.get(p) !== h) out.push(`${p} differs`);
  }
  for (const p of got.keys()) if (!want.has(p) && !ignore?.test(p)) out.push(`${p} extra`);
  return out.length ? out.slice(0, 4).join(", ") + (out.length > 4 ? ` (+${out.length - 4} more)` : "") : "";
}

/** Random seeds for the cases of a category, derived from the run's seed and the category's name. */
export function caseSeeds(ctx: Ctx, category: string): () => number {
  const r = rng((ctx.seed ^ Number.parseInt(sha256(category).slice(0, 8), 16)) >>> 0);
  return () => r.int(2 ** 31);
}
