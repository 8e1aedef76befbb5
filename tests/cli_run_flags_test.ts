/** The run flags that `deno task demo` and `deno task study` share (`src/cli/run_flags.ts`). */
import assert from "node:assert/strict";
import { parseFlags } from "../src/cli/flags.ts";
import { readRunFlags, RUN_FLAG_SPEC } from "../src/cli/run_flags.ts";
import { SparsekdError } from "../src/errors.ts";

Deno.test("the shared run flags read into options, with the defaults of the demo and the study", () => {
  const parse = (args: string[]) => readRunFlags(parseFlags(args, RUN_FLAG_SPEC).values);
  assert.deepEqual(parse([]), { dir: undefined, sequences: 512, steps: 100, batchSize: 16, cpu: false });
  assert.deepEqual(
    parse(["--dir", "/tmp/x", "--sequences", "32", "--steps", "4", "--batch-size", "4", "--cpu"]),
    { dir: "/tmp/x", sequences: 32, steps: 4, batchSize: 4, cpu: true },
  );
  for (
    const [args, pattern] of [
      [["--steps", "0"], /^--steps must be ≥ 1 \(got 0\)$/],
      [["--batch-size", "two"], /^--batch-size must be an integer/],
      [["--sequences", "1"], /^--sequences must be ≥ 2/],
      [["--step", "3"], /Unknown option '--step'/],
    ] as const
  ) {
    assert.throws(() => parse([...args]), (err) => err instanceof SparsekdError && pattern.test(err.message));
  }
});

Deno.test("deno task demo and deno task study refuse a bad shared flag with the same one line and a non-zero exit", async () => {
  for (const task of ["demo.ts", "study.ts"]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", new URL(`../tasks/${task}`, import.meta.url).pathname, "--batch-size", "0"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr).split("\n").filter((l) =>
      l && !l.includes("XDG_RUNTIME_DIR")
    );
    assert.notEqual(out.code, 0, task);
    assert.deepEqual(err, ["error: --batch-size must be ≥ 1 (got 0)"], task);
  }
});
