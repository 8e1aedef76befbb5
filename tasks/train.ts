/**
 * `deno task train`: trains a student from the top-k shards of save-topk (sparse KD on WebGPU), or on hard
 * labels alone (`--ce-only`). Run with `--help` for the flags.
 * @module
 */
import { runMain } from "../src/cli/run_main.ts";
import { trainCommand } from "../src/train/train_command.ts";

await runMain(() => trainCommand(Deno.args));
