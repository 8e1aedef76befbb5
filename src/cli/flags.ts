/**
 * Flag parsing on `node:util` parseArgs, with bad flags turned into one-line errors.
 * @module
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { SparsekdError } from "../errors.ts";

/** The option table handed to `parseArgs`. */
export type FlagSpec = NonNullable<ParseArgsConfig["options"]>;

/**
 * Parses `args` against `options`; an unknown flag or a missing value is a {@linkcode SparsekdError}.
 *
 * @example
 * ```ts
 * const { values } = parseFlags(["--k", "8"], { k: { type: "string" } });
 * ```
 */
export function parseFlags<T extends FlagSpec>(args: string[], options: T, allowPositionals = false) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals });
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new SparsekdError(msg);
  }
}

/**
 * Reads an integer flag, checking its range; an absent flag yields `fallback`.
 *
 * @example
 * ```ts
 * const k = intFlag("k", "64", 64, { min: 1 });
 * ```
 */
export function intFlag(
  name: string,
  value: string | undefined,
  fallback: number,
  range: { min?: number; max?: number } = {},
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new SparsekdError(`--${name} must be an integer (got "${value}")`);
  if (range.min !== undefined && n < range.min) {
    throw new SparsekdError(`--${name} must be ≥ ${range.min} (got ${n})`);
  }
  if (range.max !== undefined && n > range.max) {
    throw new SparsekdError(`--${name} must be ≤ ${range.max} (got ${n})`);
  }
  return n;
}

/**
 * Reads a number flag, checking its range; an absent flag yields `fallback`.
 *
 * @example
 * ```ts
 * const lr = numberFlag("lr", "3e-4", 1e-3, { min: 0 });
 * ```
 */
export function numberFlag(
  name: string,
  value: string | undefined,
  fallback: number,
  range: { min?: number; max?: number; minExclusive?: boolean } = {},
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) {
    throw new SparsekdError(`--${name} must be a number (got "${value}")`);
  }
  if (range.min !== undefined && (range.minExclusive ? n <= range.min : n < range.min)) {
    throw new SparsekdError(`--${name} must be ${range.minExclusive ? ">" : "≥"} ${range.min} (got ${n})`);
  }
  if (range.max !== undefined && n > range.max) {
    throw new SparsekdError(`--${name} must be ≤ ${range.max} (got ${n})`);
  }
  return n;
}
