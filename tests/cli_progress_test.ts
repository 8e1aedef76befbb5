import assert from "node:assert/strict";
import { createProgress } from "../src/cli/progress.ts";
import { withSeed } from "./_rng.ts";

Deno.test("without a terminal, progress is log lines at most every few seconds plus a final one", async () => {
  await withSeed("cli_progress_test", (rng) => {
    const total = 10 + rng.int(1000);
    const lines: string[] = [];
    const p = createProgress({
      label: "train",
      total,
      unit: "step",
      tty: false,
      logEverySeconds: 3600,
      write: (t) => lines.push(t),
    });
    for (let i = 1; i < total; i += 1 + rng.int(5)) p.update(i, "loss 1.0");
    assert.equal(lines.length, 0, "nothing before the interval");
    p.update(total, "loss 0.5");
    p.finish();
    assert.equal(lines.length, 1);
    assert.match(lines[0], new RegExp(`^train: 100\\.0% ${total}/${total} step, loss 0\\.5, ETA 0s?\\n$`));
  });
});

Deno.test("without a terminal and a zero interval, every update is a line with its percentage", async () => {
  await withSeed("cli_progress_test", (rng) => {
    const total = 4 + rng.int(100), done = 1 + rng.int(total - 1);
    const lines: string[] = [];
    const p = createProgress({
      label: "save-topk",
      total,
      unit: "seq",
      tty: false,
      logEverySeconds: 0,
      write: (t) => lines.push(t),
    });
    p.update(done);
    assert.equal(lines.length, 1);
    assert.ok(
      lines[0].startsWith(`save-topk: ${(100 * done / total).toFixed(1).padStart(5)}% ${done}/${total} seq`),
      lines[0],
    );
    assert.ok(!lines[0].includes("\r"));
  });
});

Deno.test("on a terminal, progress redraws one bar line in place and ends it with a newline", () => {
  const out: string[] = [];
  const p = createProgress({ label: "train", total: 8, unit: "step", tty: true, write: (t) => out.push(t) });
  p.update(4, "loss 2.0");
  p.finish();
  assert.ok(out.length >= 1);
  for (const t of out) assert.ok(t.startsWith("\r\x1b[2K"));
  const last = out.at(-1)!;
  assert.ok(last.endsWith("\n"));
  assert.match(last, /train \[#{12}-{12}\] {2}50\.0% 4\/8 step, loss 2\.0/);
});

Deno.test("without a terminal, finish does not repeat a final state that was just logged", () => {
  const lines: string[] = [];
  const p = createProgress({
    label: "train",
    total: 5,
    unit: "step",
    tty: false,
    logEverySeconds: 0,
    write: (t) => lines.push(t),
  });
  p.update(5, "loss 0.5");
  p.finish("loss 0.5");
  assert.equal(lines.length, 1, lines.join(""));
  p.finish("loss 0.4");
  assert.equal(lines.length, 2, "a changed final state is printed");
});
