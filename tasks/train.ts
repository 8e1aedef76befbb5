/**
 * `deno task train`: trains a student from the top-k shards of save-topk (sparse KD on WebGPU), or on hard
 * labels alone (`--ce-only`). Run with `--help` for the flags.
 * @module
 */
import { runMain } from "../src/cli/run_main.ts";
import { TRAIN_FLAGS, trainCommand } from "../src/cli/train_flags.ts";

await runMain(() => trainCommand(Deno.args), TRAIN_FLAGS);
