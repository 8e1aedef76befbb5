// Tests of the chaos suite's fixtures (run with `deno test -A chaos/`; not part of `deno task test`).
import assert from "node:assert/strict";
import { metricsRows } from "./fixtures.ts";

Deno.test("metricsRows drops msPerStep and reports a step logged twice", async () => {
  const path = await Deno.makeTempFile();
  const rows = [
    { kind: "train", step: 1, loss: 2, msPerStep: 10 },
    { kind: "train", step: 2, loss: 1, msPerStep: 11 },
    { kind: "train", step: 2, loss: 1, msPerStep: 12 },
  ];
  await Deno.writeTextFile(path, rows.map((r) => JSON.stringify(r)).join("\n") + "\n");
  const m = await metricsRows(path);
  assert.deepEqual(m.duplicates, ["train@2"]);
  assert.ok(!m.rows.includes("msPerStep"));
  await Deno.remove(path);
});
