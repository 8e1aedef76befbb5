/**
 * Batched read-back: many GPU buffers copied into one staging buffer and mapped once.
 * @module
 */

/** A region of a GPU buffer to read back. */
export interface ReadRegion {
  /** The source buffer; it needs `GPUBufferUsage.COPY_SRC`. */
  buffer: GPUBuffer;
  /** Bytes to read, a multiple of 4. */
  size: number;
  /** Offset in the source buffer, a multiple of 4 (default 0). */
  offset?: number;
}

/**
 * Copies every region into one staging buffer, maps it once and returns one ArrayBuffer per region.
 * Use it instead of mapping buffers one by one in a loop: each map costs a round trip.
 *
 * @example
 * ```ts
 * const [a, b] = await readBack(device, [{ buffer: out, size: 16 }, { buffer: lse, size: 8 }]);
 * ```
 */
export async function readBack(device: GPUDevice, regions: ReadRegion[]): Promise<ArrayBuffer[]> {
  const offsets: number[] = [];
  let total = 0;
  for (const r of regions) {
    offsets.push(total);
    total += Math.ceil(r.size / 8) * 8;
  }
  if (total === 0) return regions.map(() => new ArrayBuffer(0));
  const staging = device.createBuffer({
    size: total,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = device.createCommandEncoder();
  regions.forEach((r, i) => {
    if (r.size > 0) enc.copyBufferToBuffer(r.buffer, r.offset ?? 0, staging, offsets[i], r.size);
  });
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const mapped = staging.getMappedRange();
  const out = regions.map((r, i) => mapped.slice(offsets[i], offsets[i] + r.size));
  staging.unmap();
  staging.destroy();
  return out;
}
