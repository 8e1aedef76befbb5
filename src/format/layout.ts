/**
 * The layout of an OUT in format v1: the object paths of shards and host manifests, the number of shards
 * of a run and the sequences each covers. Every range computation uses {@linkcode shardRange}.
 * @module
 */
/**
 * Path of shard j relative to OUT.
 *
 * @example
 * ```ts
 * shardPath(3); // "shards/s000003.msgpack"
 * ```
 */
export function shardPath(shard: number): string {
  return `shards/s${String(shard).padStart(6, "0")}.msgpack`;
}

/**
 * Path of host h's manifest relative to OUT.
 *
 * @example
 * ```ts
 * manifestPath(2); // "manifests/h00002.json"
 * ```
 */
export function manifestPath(host: number): string {
  return `manifests/h${String(host).padStart(5, "0")}.json`;
}

/**
 * Number of shards of a run: ceil(S / N).
 *
 * @example
 * ```ts
 * shardCount(10, 4); // 3
 * ```
 */
export function shardCount(sequences: number, sequencesPerShard: number): number {
  return Math.ceil(sequences / sequencesPerShard);
}

/**
 * The global sequences [start, end) that shard j covers: [j·N, min((j+1)·N, S)).
 *
 * @example
 * ```ts
 * shardRange(2, 4, 10); // { start: 8, end: 10 }
 * ```
 */
export function shardRange(
  shard: number,
  sequencesPerShard: number,
  sequences: number,
): { start: number; end: number } {
  const start = shard * sequencesPerShard;
  return { start, end: Math.min(start + sequencesPerShard, sequences) };
}

/**
 * The shards [first, last] that hold the global sequences [from, to) (to > from): the inverse of
 * {@linkcode shardRange}.
 *
 * @example
 * ```ts
 * shardsCovering(5, 13, 4); // { first: 1, last: 3 }
 * ```
 */
export function shardsCovering(
  from: number,
  to: number,
  sequencesPerShard: number,
): { first: number; last: number } {
  return { first: Math.floor(from / sequencesPerShard), last: Math.floor((to - 1) / sequencesPerShard) };
}
