/**
 * Host assignment for multi-host runs: shard j belongs to host j mod H. The host index and count come from
 * `--host-index` / `--host-count`, else from what the usual launchers set (Kubernetes Indexed Jobs:
 * `JOB_COMPLETION_INDEX`, with the count given by flag; Google Cloud Batch: `BATCH_TASK_INDEX` and
 * `BATCH_TASK_COUNT`), else 0 and 1.
 * @module
 */
import { SparsekdError } from "../errors.ts";

/** This host's place among the hosts. */
export interface HostAssignment {
  /** This host's index, 0 ≤ index < count. */
  index: number;
  /** The number of hosts. */
  count: number;
  /** Where the index came from: `hostIndex` (the option), an environment variable's name, or `default`. */
  from: string;
}

function parseCount(value: string, name: string, min: number): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isSafeInteger(n) || n < min) {
    const option = name === "hostIndex" || name === "hostCount" ? name : undefined;
    throw new SparsekdError(`${name} must be an integer ≥ ${min} (got "${value}")`, { option });
  }
  return n;
}

/**
 * Works out this host's index and count from the options (as the command-line gave them), then the
 * environment, then 0 of 1. Messages name the options `hostIndex` / `hostCount` (the command maps them to
 * its flags). A value that is
 * not an integer, an index ≥ the count, or `JOB_COMPLETION_INDEX` without `--host-count` is a one-line
 * {@linkcode SparsekdError}.
 *
 * @example
 * ```ts
 * const host = hostFromEnv(Deno.env.toObject(), { hostIndex: values["host-index"], hostCount: values["host-count"] });
 * const mine = shardsForHost(totalShards, host.index, host.count);
 * ```
 */
export function hostFromEnv(
  env: Record<string, string | undefined>,
  flags: { hostIndex?: string; hostCount?: string } = {},
): HostAssignment {
  let index = 0, from = "default", indexName = "hostIndex";
  if (flags.hostIndex !== undefined) {
    index = parseCount(flags.hostIndex, "hostIndex", 0);
    from = "hostIndex";
  } else if (env.JOB_COMPLETION_INDEX !== undefined && env.JOB_COMPLETION_INDEX !== "") {
    index = parseCount(env.JOB_COMPLETION_INDEX, "JOB_COMPLETION_INDEX", 0);
    from = indexName = "JOB_COMPLETION_INDEX";
  } else if (env.BATCH_TASK_INDEX !== undefined && env.BATCH_TASK_INDEX !== "") {
    index = parseCount(env.BATCH_TASK_INDEX, "BATCH_TASK_INDEX", 0);
    from = indexName = "BATCH_TASK_INDEX";
  }
  let count = 1, countName = "hostCount";
  if (flags.hostCount !== undefined) {
    count = parseCount(flags.hostCount, "hostCount", 1);
  } else if (from === "JOB_COMPLETION_INDEX") {
    throw new SparsekdError(
      `JOB_COMPLETION_INDEX=${index} is set (a Kubernetes Indexed Job): give hostCount (the Job's completions)`,
    );
  } else if (env.BATCH_TASK_COUNT !== undefined && env.BATCH_TASK_COUNT !== "") {
    count = parseCount(env.BATCH_TASK_COUNT, "BATCH_TASK_COUNT", 1);
    countName = "BATCH_TASK_COUNT";
  }
  if (index >= count) {
    throw new SparsekdError(
      `${indexName} ${index} must be < ${countName} ${count} (host indices run 0..count-1)`,
      { option: indexName === "hostIndex" ? "hostIndex" : undefined },
    );
  }
  return { index, count, from };
}

/**
 * The shards of `totalShards` that belong to host `hostIndex` of `hostCount`: j with j mod H = index.
 *
 * @example
 * ```ts
 * shardsForHost(7, 1, 3); // [1, 4]
 * ```
 */
export function shardsForHost(totalShards: number, hostIndex: number, hostCount: number): number[] {
  if (!(Number.isInteger(hostCount) && hostCount >= 1 && Number.isInteger(hostIndex) && hostIndex >= 0)) {
    throw new RangeError(`bad host ${hostIndex} of ${hostCount}`);
  }
  if (hostIndex >= hostCount) {
    throw new RangeError(`host index ${hostIndex} must be < host count ${hostCount}`);
  }
  const out: number[] = [];
  for (let j = hostIndex; j < totalShards; j += hostCount) out.push(j);
  return out;
}

/**
 * Whether shard `shard` belongs to host `hostIndex` of `hostCount`.
 *
 * @example
 * ```ts
 * ownsShard(4, 1, 3); // true
 * ```
 */
export function ownsShard(shard: number, hostIndex: number, hostCount: number): boolean {
  return shard % hostCount === hostIndex;
}
