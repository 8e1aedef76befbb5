/**
 * `deno task bench <name>`: runs one benchmark from the registry below (`deno task bench` lists them).
 * @module
 */
import { runMain } from "../src/cli/run_main.ts";
import { SparsekdError } from "../src/errors.ts";
import { benchTopK } from "../bench/topk.ts";
import { benchSaveTopK } from "../bench/save_topk.ts";
import { benchSparseKd } from "../bench/sparse_kd.ts";
import { benchTrain } from "../bench/train.ts";

/** Every benchmark, by the name given on the command line. */
const BENCHMARKS: Record<string, (args: string[]) => Promise<void>> = {
  topk: benchTopK,
  "save-topk": benchSaveTopK,
  "sparse-kd": benchSparseKd,
  train: benchTrain,
};

await runMain(async () => {
  const name = Deno.args[0];
  if (!name || !(name in BENCHMARKS)) {
    throw new SparsekdError(
      `usage: deno task bench <name>, with <name> one of: ${Object.keys(BENCHMARKS).join(", ")}` +
        (name ? ` (got ${JSON.stringify(name)})` : ""),
    );
  }
  await BENCHMARKS[name](Deno.args.slice(1));
});
