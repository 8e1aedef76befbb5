// Tests of the chaos harness's judging parts (run with `deno test -A chaos/`; not part of `deno task test`).
import assert from "node:assert/strict";
import { diffHashes, ending, type Outcome, rng, runTask } from "./lib.ts";

const base: Outcome = {
  code: 0,
  signal: null,
  stdout: "",
  stderr: "",
  killed: false,
  timedOut: false,
  overMemory: false,
  peakRssMiB: 0,
  ms: 0,
};

Deno.test("ending: one error line with a non-zero exit is an error, the Vulkan loader's noise aside", () => {
  const e = ending({
    ...base,
    code: 2,
    stderr: "Error: XDG_RUNTIME_DIR is invalid\nerror: --k must be ≥ 1\n",
  });
  assert.deepEqual(e, { kind: "error", line: "error: --k must be ≥ 1" });
});

Deno.test("ending: a stack trace, an uncaught error, two error lines, a hang and exit 0 with an error are bad", () => {
  const stack = "ObjectExistsError: x already exists\n    at publish (file:///a.ts:1:1)\n";
  assert.equal(ending({ ...base, code: 1, stderr: stack }).kind, "bad");
  assert.equal(
    ending({ ...base, code: 1, stderr: "error: Uncaught (in promise) TypeError: k\n" }).kind,
    "bad",
  );
  assert.equal(ending({ ...base, code: 2, stderr: "error: a\nerror: b\n" }).kind, "bad");
  assert.equal(ending({ ...base, code: 2, stderr: "" }).kind, "bad");
  assert.equal(ending({ ...base, code: null, signal: "SIGKILL", timedOut: true }).kind, "bad");
  assert.equal(ending({ ...base, code: 0, stderr: "error: x\n" }).kind, "bad");
  assert.equal(ending({ ...base, code: 0, stderr: "save-topk: 8 shards written\n" }).kind, "ok");
});

Deno.test("diffHashes names missing, differing and extra files, and skips ignored ones", () => {
  const want = new Map([["a", "1"], ["b", "2"], ["m", "3"]]);
  assert.equal(diffHashes(want, new Map(want)), "");
  const got = new Map([["a", "1"], ["b", "x"], ["c", "4"]]);
  assert.equal(diffHashes(want, got), "b differs, m missing, c extra");
  assert.equal(diffHashes(want, got, /^(m|c|b)$/), "");
});

Deno.test("rng: the same seed gives the same draws", () => {
  const a = rng(5), b = rng(5);
  const xs = Array.from({ length: 5 }, () => a.int(1000));
  assert.deepEqual(xs, Array.from({ length: 5 }, () => b.int(1000)));
});

Deno.test("runTask runs a real command, and kills it at the planned moment", async () => {
  const help = await runTask("report", []);
  assert.equal(ending(help).kind, "error");
  const out = await Deno.makeTempDir();
  const killed = await runTask("save_topk", ["--cpu", "--max-sequences", "512", "--out", out], {
    killAtMs: 50,
  });
  await Deno.remove(out, { recursive: true });
  assert.ok(killed.killed && killed.signal === "SIGKILL", `not killed: exit ${killed.code}`);
});
