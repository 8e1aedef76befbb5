// Small helpers shared by many tests (a file without `_test` so it is not run itself): a temporary folder,
// the one-line SparsekdError check, whole streams and byte comparisons, and a task run as a child process.
import assert from "node:assert/strict";
import { SparsekdError } from "../src/errors.ts";
import type { TestRng } from "./_rng.ts";

/**
 * Runs `body` with a fresh temporary folder, removed afterwards whatever happens.
 *
 * @example
 * ```ts
 * await withTempDir(async (dir) => { await Deno.writeTextFile(`${dir}/a`, "x"); });
 * ```
 */
export async function withTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * An `assert.rejects` check: the error is a {@linkcode SparsekdError} with a one-line message matching
 * `pattern`.
 *
 * @example
 * ```ts
 * await assert.rejects(openSource("npy:missing.npy"), oneLine(/missing\.npy/));
 * ```
 */
export function oneLine(pattern: RegExp): (err: unknown) => true {
  return (err: unknown) => {
    assert.ok(err instanceof SparsekdError, `expected SparsekdError, got ${err}`);
    assert.ok(!err.message.includes("\n"));
    assert.match(err.message, pattern);
    return true;
  };
}

/**
 * The whole of a byte stream in one array (for small test objects only).
 *
 * @example
 * ```ts
 * const bytes = await readStream(await store.read("obj.bin"));
 * ```
 */
export async function readStream(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const c of stream) {
    parts.push(c.slice());
    n += c.length;
  }
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Asserts equal bytes, naming the first difference (not printing megabytes).
 *
 * @example
 * ```ts
 * assertSameBytes(got, want, "obj.bin");
 * ```
 */
export function assertSameBytes(actual: Uint8Array, expected: Uint8Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${what}: first difference at byte ${i}`);
  }
}

/**
 * Runs `tasks/<name>.ts` with `args` in a child process and returns its exit code and output.
 *
 * @example
 * ```ts
 * const r = await runTask("report", "--help");
 * assert.equal(r.code, 0);
 * ```
 */
export async function runTask(
  name: string,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const o = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(`../tasks/${name}.ts`, import.meta.url).pathname, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: o.code,
    stdout: new TextDecoder().decode(o.stdout),
    stderr: new TextDecoder().decode(o.stderr),
  };
}

/**
 * `bytes` as a stream of random-sized chunks: each 1 to `sizes[0]` or 1 to `sizes[1]` bytes, at random.
 *
 * @example
 * ```ts
 * const stream = chunked(bytes, rng, [16, 600]);
 * ```
 */
export function chunked(
  bytes: Uint8Array,
  rng: TestRng,
  sizes: [number, number],
): ReadableStream<Uint8Array> {
  let pos = 0;
  return new ReadableStream({
    pull(c) {
      if (pos >= bytes.length) return c.close();
      const n = 1 + rng.int(rng.int(2) ? sizes[0] : sizes[1]);
      c.enqueue(bytes.slice(pos, pos + n));
      pos += n;
    },
  });
}
