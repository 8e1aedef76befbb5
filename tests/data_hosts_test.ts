import assert from "node:assert/strict";
import { hostFromEnv, ownsShard, shardsForHost } from "../src/data/hosts.ts";
import type { SparsekdError } from "../src/errors.ts";
import { errorLine } from "../src/cli/run_main.ts";
import { oneLine } from "./_helpers.ts";
import { withSeed } from "./_rng.ts";

Deno.test("every shard belongs to exactly one host, shard j to host j mod H", () =>
  withSeed("data_hosts_test", (rng) => {
    const total = Math.floor(rng.uniform() * 200), H = 1 + Math.floor(rng.uniform() * 9);
    const seen = new Array(total).fill(0);
    for (let h = 0; h < H; h++) {
      for (const j of shardsForHost(total, h, H)) {
        assert.equal(j % H, h);
        assert.ok(ownsShard(j, h, H));
        seen[j]++;
      }
    }
    assert.ok(seen.every((n) => n === 1), `total ${total}, H ${H}`);
    assert.throws(() => shardsForHost(10, H, H), RangeError);
  }));

Deno.test("host index and count come from flags, then the launchers' environment, then 0 of 1", () =>
  withSeed("data_hosts_test", (rng) => {
    const i = Math.floor(rng.uniform() * 5), n = i + 1 + Math.floor(rng.uniform() * 5);
    assert.deepEqual(hostFromEnv({}), { index: 0, count: 1, from: "default" });
    assert.deepEqual(hostFromEnv({}, { hostIndex: `${i}`, hostCount: `${n}` }), {
      index: i,
      count: n,
      from: "hostIndex",
    });
    assert.deepEqual(
      hostFromEnv({ BATCH_TASK_INDEX: `${i}`, BATCH_TASK_COUNT: `${n}` }),
      { index: i, count: n, from: "BATCH_TASK_INDEX" },
    );
    assert.deepEqual(
      hostFromEnv({ JOB_COMPLETION_INDEX: `${i}` }, { hostCount: `${n}` }),
      { index: i, count: n, from: "JOB_COMPLETION_INDEX" },
    );
    // Flags win over the environment.
    assert.deepEqual(
      hostFromEnv({ BATCH_TASK_INDEX: "7", BATCH_TASK_COUNT: "9", JOB_COMPLETION_INDEX: "8" }, {
        hostIndex: `${i}`,
        hostCount: `${n}`,
      }),
      { index: i, count: n, from: "hostIndex" },
    );
  }));

Deno.test("bad host settings are one-line errors", () => {
  assert.throws(
    () => hostFromEnv({}, { hostIndex: "3", hostCount: "3" }),
    oneLine(/^hostIndex 3 must be < hostCount 3/),
  );
  assert.throws(
    () => hostFromEnv({ BATCH_TASK_INDEX: "4", BATCH_TASK_COUNT: "2" }),
    oneLine(/BATCH_TASK_INDEX 4 must be < BATCH_TASK_COUNT 2/),
  );
  assert.throws(() => hostFromEnv({}, { hostIndex: "-1" }), oneLine(/^hostIndex must be an integer ≥ 0/));
  assert.throws(() => hostFromEnv({}, { hostCount: "0" }), oneLine(/^hostCount must be an integer ≥ 1/));
  assert.throws(() => hostFromEnv({}, { hostCount: "two" }), oneLine(/hostCount/));
  assert.throws(
    () => hostFromEnv({ JOB_COMPLETION_INDEX: "2" }),
    oneLine(/JOB_COMPLETION_INDEX=2 .*hostCount/),
  );
  assert.throws(
    () => hostFromEnv({ BATCH_TASK_INDEX: "1.5", BATCH_TASK_COUNT: "4" }),
    oneLine(/BATCH_TASK_INDEX/),
  );
});

Deno.test("host errors name the options; the save-topk command prints them as its flags", () => {
  const err = (() => {
    try {
      hostFromEnv({}, { hostIndex: "x" });
    } catch (e) {
      return e as SparsekdError;
    }
  })()!;
  assert.equal(err.option, "hostIndex");
  assert.equal(
    errorLine(err, { hostIndex: "--host-index" }),
    'error: --host-index must be an integer ≥ 0 (got "x")',
  );
});
