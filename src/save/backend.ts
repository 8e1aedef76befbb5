/**
 * The backend a save runs on, and the check that keeps one run's shards on one backend: the WGSL kernel
 * and the CPU reference agree on ids and logits but not on the logsumexps' last bits (different reduction
 * order, f32 sums on the GPU, the GPU's own exp and log), so a resume or a second host on the other backend
 * would mix shards whose bytes differ from what one backend writes.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import type { Runtime } from "../gpu/runtime.ts";
import type { Backend, RunJson } from "../format/types.ts";
import { joinUri } from "../format/uri.ts";
import { RUN_JSON_PATH } from "../format/run_json.ts";

/**
 * The backend a runtime computes the top-k on: `"webgpu"` with a device, `"cpu"` on the CPU path (the
 * `cpu` option, or no adapter).
 *
 * @example
 * ```ts ignore
 * backendOf(await createRuntime({ cpu: true })); // "cpu"
 * ```
 */
export function backendOf(rt: Runtime): Backend {
  return rt.device ? "webgpu" : "cpu";
}

/**
 * Refuses to continue the run of `existing` (OUT's run.json, at `where`) on another backend than the one
 * it records, with one line naming both and what to do. A run.json that records no backend (written
 * before it was) is accepted as it is, and `onNote` is told so in one line.
 *
 * @example
 * ```ts ignore
 * checkSameBackend(await readRunJson(store), "webgpu", store.uri, console.error);
 * ```
 */
export function checkSameBackend(
  existing: RunJson,
  backend: Backend,
  where: string,
  onNote?: (line: string) => void,
): void {
  const file = joinUri(where, RUN_JSON_PATH);
  if (existing.backend === undefined) {
    onNote?.(
      `note: ${file} does not record a backend (written before it was): continuing on ${backend} ` +
        `unchecked; shards of another backend would differ in the logsumexps' last bits`,
    );
    return;
  }
  if (existing.backend === backend) return;
  const why =
    `its run.json records shards computed on ${existing.backend} and this host runs on ${backend}, ` +
    `whose logsumexps differ in the last bits`;
  const restart = `to start over on ${backend}, delete ${where} or write to another output`;
  throw new SparsekdError(
    existing.backend === "cpu"
      ? `cpu must be set to continue ${where}: ${why} (${restart})`
      : `cpu must be off, on a host with a WebGPU adapter, to continue ${where}: ${why} (${restart})`,
    { option: "cpu" },
  );
}
