/**
 * Storage-buffer bindings at offsets: a range of records of a large buffer bound from an aligned offset, with
 * the record index at which the range starts inside the binding (the kernel adds it to its indices).
 * @module
 */

/** Greatest common divisor, for the binding offsets' alignment. */
const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** A binding entry and the record offset of the wanted range inside it. */
export interface BoundRange {
  /** The resource of a bind group entry. */
  entry: { buffer: GPUBuffer; offset: number; size: number };
  /** Records between the binding's start and the first wanted record. */
  skip: number;
}

/**
 * A binding of `count` records of `bytes` bytes from record `first` of `buffer`: its offset is rounded down
 * to a multiple of both `align` (the device's `minStorageBufferOffsetAlignment`) and the record size, so
 * the binding starts on a whole record; `skip` says where the range starts inside it. The binding is at most
 * lcm(align, bytes) − bytes larger than the range.
 *
 * @example
 * ```ts
 * const r = bindRange(buffer, 1000, 64, 20, 256); // records 1000..1063 of 20 bytes
 * // r.entry.offset = 19200 (a multiple of 1280), r.skip = 40
 * ```
 */
export function bindRange(
  buffer: GPUBuffer,
  first: number,
  count: number,
  bytes: number,
  align: number,
): BoundRange {
  const step = (align * bytes) / gcd(align, bytes);
  const start = first * bytes;
  const offset = Math.floor(start / step) * step;
  const size = start - offset + count * bytes;
  return { entry: { buffer, offset, size }, skip: (start - offset) / bytes };
}
