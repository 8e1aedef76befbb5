/** `deno task report --help` and its usage line (tasks/report.ts). */
import assert from "node:assert/strict";
import { runTask } from "./_helpers.ts";

Deno.test("deno task report --help (and -h) prints the usage and the three folder kinds and exits 0", async () => {
  for (const flag of ["--help", "-h"]) {
    const r = await runTask("report", flag);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^deno task report <run folder> \[--out FILE\]/);
    for (const file of ["report_input.json", "run.json", "metrics.jsonl", "--out FILE"]) {
      assert.ok(r.stdout.includes(file), `--help mentions ${file}`);
    }
  }
});

Deno.test("deno task report with no folder, two folders or an unknown flag is one error line", async () => {
  for (
    const [args, pattern] of [
      [
        [],
        /^error: usage: deno task report <run folder> \[--out FILE\] \(got 0 arguments; --help says more\)$/,
      ],
      [["a", "b"], /^error: usage: .*\(got 2 arguments/],
      [["--bogus"], /^error: Unknown option '--bogus'/],
    ] as const
  ) {
    const r = await runTask("report", ...args);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.match(r.stderr.trim(), pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
});

Deno.test("deno task report --out into a missing folder names --out in its error line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sparsekd_report_task_" });
  try {
    await Deno.writeTextFile(`${dir}/metrics.jsonl`, '{"kind":"train","step":1,"loss":2.5}\n');
    const r = await runTask("report", dir, "--out", `${dir}/no/such/folder/r.html`);
    assert.equal(r.code, 2);
    assert.match(r.stderr.trim(), /^error: --out: cannot write .*r\.html: its folder does not exist$/);
    const ok = await runTask("report", dir, "--out", `${dir}/r.html`);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), `${dir}/r.html`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
