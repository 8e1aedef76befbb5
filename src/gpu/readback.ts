/**
 * Batched read-back: many GPU buffers copied into one staging buffer and mapped once.
 * @module
 */
import { GPU_FAILURE_EXIT, throwIfGpuFailed, withErrorScopes } from "./gpu_errors.ts";
import { SparsekdError } from "../errors.ts";

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
 * Use it instead of mapping buffers one by one in a loop: each map costs a round trip. Throws the device's
 * recorded GPU failure (see `gpu_errors.ts`) before copying and after mapping, so that the contents of a
 * batch whose kernel failed are never returned.
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
  throwIfGpuFailed(device);
  const staging = await withErrorScopes(device, "read-back", () => {
    const staging = device.createBuffer({
      size: total,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = device.createCommandEncoder({ label: "read-back" });
    regions.forEach((r, i) => {
      if (r.size > 0) enc.copyBufferToBuffer(r.buffer, r.offset ?? 0, staging, offsets[i], r.size);
    });
    device.queue.submit([enc.finish()]);
    return staging;
  });
  try {
    await staging.mapAsync(GPUMapMode.READ);
  } catch (e) {
    staging.destroy();
    throwIfGpuFailed(device);
    throw new SparsekdError(
      `GPU error in read-back (map): ${String((e as Error)?.message ?? e).split("\n")[0]}`,
      {
        exitCode: GPU_FAILURE_EXIT,
        cause: e,
      },
    );
  }
  // An error raised while the batch ran (a lost device, an uncaptured error) is known by now.
  await new Promise((r) => setTimeout(r, 0));
  try {
    throwIfGpuFailed(device);
  } catch (e) {
    staging.unmap();
    staging.destroy();
    throw e;
  }
  const mapped = staging.getMappedRange();
  const out = regions.map((r, i) => mapped.slice(offsets[i], offsets[i] + r.size));
  staging.unmap();
  staging.destroy();
  return out;
}
