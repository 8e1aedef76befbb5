import assert from "node:assert/strict";
import { gapClosed, meanSe } from "../src/demo/study_stats.ts";
import { withSeed } from "./_rng.ts";

const near = (a: number, b: number, tol: number) =>
  assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b} (±${tol})`);

Deno.test("meanSe: mean and s/√n with the n − 1 divisor; NaN standard error for one value", () => {
  const r = meanSe([1, 2, 3, 6]);
  near(r.mean, 3, 1e-12);
  // s² = (4 + 1 + 0 + 9) / 3
  near(r.se, Math.sqrt(14 / 3 / 4), 1e-12);
  assert.equal(meanSe([5]).n, 1);
  assert.ok(Number.isNaN(meanSe([5]).se));
  assert.ok(Number.isNaN(meanSe([]).mean));
});

Deno.test("gapClosed: 0 at CE-only, 1 at online, null when online does not beat CE-only", () => {
  const c = meanSe([600, 620]), o = meanSe([500, 520]);
  near(gapClosed(c, o, c)!.mean, 0, 1e-12);
  near(gapClosed(c, o, o)!.mean, 1, 1e-12);
  near(gapClosed(c, o, meanSe([560, 560]))!.mean, 0.5, 1e-12);
  assert.equal(gapClosed(o, c, o), null);
});

Deno.test("gapClosed: the delta-method standard error matches the spread of g over simulated seeds", () =>
  withSeed("gapClosed spread", (rng) => {
    // Per-seed perplexities with known noise; the mean delta-method SE of g (8 seeds) should match the
    // standard deviation of g over many replications of the 8-seed experiment within 15 %.
    const normal = () => Math.sqrt(-2 * Math.log(1 - rng.uniform())) * Math.cos(2 * Math.PI * rng.uniform());
    const draw = (mu: number, sd: number) => Array.from({ length: 8 }, () => mu + sd * normal());
    const gs: number[] = [];
    const ses: number[] = [];
    for (let r = 0; r < 4000; r++) {
      const g = gapClosed(meanSe(draw(600, 4)), meanSe(draw(500, 4)), meanSe(draw(540, 4)))!;
      gs.push(g.mean);
      ses.push(g.se);
    }
    const spread = meanSe(gs).se * Math.sqrt(gs.length);
    const meanSeOfG = ses.reduce((a, b) => a + b, 0) / ses.length;
    near(meanSeOfG / spread, 1, 0.15);
  }));
