/**
 * Fault injection for the GCS emulator: answer chosen requests with an HTTP error (503, 408, …) or cut their
 * connection, at once, after some bytes of the request body or after some bytes of the response body, so that
 * tests can show uploads and downloads survive them.
 * @module
 */
import { SparsekdError } from "../../src/errors.ts";

/**
 * One fault rule. A request matches when its method and path agree; the first `skip` matching requests pass,
 * the next `count` get the fault. Each rule counts every matching request, whether or not another rule fired
 * on it; when several rules are due on one request, the one added first fires (the others stay due).
 *
 * - `{ method: "PUT", path: "upload_id", status: 503, count: 2 }`: the next two upload PUTs get a 503.
 * - `{ kind: "reset", method: "PUT", path: "upload_id", afterBytes: 100000 }`: the next upload PUT whose body
 *   reaches 100000 bytes has its connection destroyed there (without a response).
 * - `{ kind: "reset", method: "GET", path: "alt=media", afterResponseBytes: 1000 }`: the next media download
 *   whose response body is longer than 1000 bytes has its connection destroyed after sending 1000 of them.
 * - `{ kind: "stall", method: "GET", path: "alt=media", afterResponseBytes: 1000 }`: the next media download
 *   longer than 1000 bytes sends 1000 of them and then nothing more, keeping the connection open.
 * - `{ kind: "corrupt", method: "GET", path: "alt=media", inResponse: true }`: the next media download has one
 *   byte of its answer flipped, so clients can show they check CRC32C on reads too.
 * - `{ kind: "corrupt", method: "PUT", path: "upload_id" }`: the next upload PUT has one byte of its body
 *   flipped before it is stored (as a faulty network or disk would), so clients can show they check CRC32C.
 */
export interface FaultRule {
  /** HTTP method to match (any when absent). */
  method?: string;
  /** Substring of the request's path and query to match (any when absent), e.g. `upload_id` or `/o/shards`. */
  path?: string;
  /**
   * `status`: answer with `status`; `reset`: destroy the connection; `corrupt`: flip the middle byte of the
   * request body (nothing happens to an empty body). Default: `status` when one is given.
   */
  kind?: "status" | "reset" | "corrupt" | "stall";
  /** HTTP status of a `status` fault (e.g. 503, 408, 500, 429). */
  status?: number;
  /**
   * For `reset`: bytes of this request's body read before the connection is cut (default 0: at once). A
   * request whose body ends before that is not hit and does not count.
   */
  afterBytes?: number;
  /**
   * For `reset`: bytes of the response body sent (after its headers) before the connection is cut, instead of
   * cutting the request. A response whose body is not longer than that is not hit and does not count.
   */
  afterResponseBytes?: number;
  /** For `corrupt`: flip the middle byte of the first non-empty piece of the response body instead. */
  inResponse?: boolean;
  /** Matching requests to let through before the fault starts (default 0). */
  skip?: number;
  /** Requests to hit (default 1). */
  count?: number;
}

/** A fault that happened. */
export interface FaultHit {
  /** The rule's kind. */
  kind: "status" | "reset" | "corrupt" | "stall";
  /** HTTP status for `status` faults. */
  status?: number;
  /** Request method. */
  method: string;
  /** Request path and query. */
  path: string;
  /** Body bytes read from the request before the fault. */
  bytesRead: number;
  /** For a reset of a response: body bytes sent before the cut. */
  bytesSent?: number;
}

interface LiveRule {
  method?: string;
  path?: string;
  kind: "status" | "reset" | "corrupt" | "stall";
  status?: number;
  afterBytes: number;
  afterResponseBytes: number | null;
  inResponse: boolean;
  skip: number;
  count: number;
}

/** What the server must do with a request at its start. */
export type FaultDecision =
  | { kind: "status"; status: number }
  | { kind: "reset" }
  | { kind: "corrupt"; inResponse: boolean }
  | null;

/**
 * The list of pending fault rules and the log of faults that happened.
 *
 * @example
 * ```ts
 * const faults = new FaultInjector();
 * faults.add({ method: "PUT", path: "upload_id", status: 503, count: 2 });
 * faults.add({ kind: "reset", method: "PUT", path: "upload_id", afterBytes: 100_000 });
 * // … run an upload against the emulator, then:
 * console.log(faults.hits.length, faults.pending().length);
 * ```
 */
export class FaultInjector {
  #rules: LiveRule[] = [];
  /** Every fault that happened, in order. */
  readonly hits: FaultHit[] = [];

  /** Adds one rule or several; a malformed rule is a {@linkcode SparsekdError}. */
  add(rules: FaultRule | FaultRule[]): void {
    for (const rule of Array.isArray(rules) ? rules : [rules]) this.#rules.push(normalize(rule));
  }

  /** Removes every pending rule (the log of hits stays). */
  clear(): void {
    this.#rules = [];
  }

  /** The rules that still have requests to hit. */
  pending(): FaultRule[] {
    return this.#rules.filter((r) => r.count > 0).map(({ afterResponseBytes, inResponse, ...r }) => ({
      ...r,
      ...(afterResponseBytes === null ? {} : { afterResponseBytes }),
      ...(inResponse ? { inResponse } : {}),
    }));
  }

  /** Decides, when a request starts, whether it gets a status fault, an immediate reset or a corrupted body. */
  atStart(method: string, path: string): FaultDecision {
    // Every rule sees every matching request (its `skip` counts them all); the first armed rule fires.
    let chosen: LiveRule | null = null;
    for (const rule of this.#rules) {
      if (rule.count <= 0 || rule.afterBytes > 0 || rule.afterResponseBytes !== null) continue;
      if (!matches(rule, method, path)) continue;
      if (rule.skip > 0) rule.skip--;
      else if (chosen === null) chosen = rule;
    }
    if (chosen === null) return null;
    chosen.count--;
    this.hits.push({ kind: chosen.kind, status: chosen.status, method, path, bytesRead: 0 });
    if (chosen.kind === "status") return { kind: "status", status: chosen.status! };
    return chosen.kind === "corrupt" ? { kind: "corrupt", inResponse: chosen.inResponse } : { kind: "reset" };
  }

  /**
   * The body offset at which this request's connection is to be cut, or null. Call {@linkcode FaultInjector.cut}
   * when the body reaches it.
   */
  resetOffset(method: string, path: string): number | null {
    let best: number | null = null;
    for (const rule of this.#rules) {
      if (rule.count <= 0 || rule.afterBytes === 0 || !matches(rule, method, path)) continue;
      if (best === null || rule.afterBytes < best) best = rule.afterBytes;
    }
    return best;
  }

  /**
   * Called when a request's body has reached `bytesRead` bytes (≥ the offset from `resetOffset`): returns true
   * when the connection must be cut now (the rule is then used up by one), false when a `skip` let it pass.
   */
  cut(method: string, path: string, bytesRead: number): boolean {
    for (const rule of this.#rules) {
      if (rule.count <= 0 || rule.afterBytes === 0 || rule.afterBytes > bytesRead) continue;
      if (!matches(rule, method, path)) continue;
      if (rule.skip > 0) {
        rule.skip--;
        return false;
      }
      rule.count--;
      this.hits.push({ kind: "reset", method, path, bytesRead });
      return true;
    }
    return false;
  }

  /**
   * The response-body offset at which this request's connection is to be cut, or null. Call
   * {@linkcode FaultInjector.cutResponse} when the response body would pass it.
   */
  responseResetOffset(method: string, path: string): number | null {
    let best: number | null = null;
    for (const rule of this.#rules) {
      if (rule.count <= 0 || rule.afterResponseBytes === null || !matches(rule, method, path)) continue;
      if (best === null || rule.afterResponseBytes < best) best = rule.afterResponseBytes;
    }
    return best;
  }

  /**
   * Called when a response body is about to pass `bytesSent` bytes (≥ the offset from
   * `responseResetOffset`): returns `reset` when the connection must be cut there, `stall` when the response
   * is to stop there without closing (the rule is then used up by one), null when a `skip` let it pass.
   */
  cutResponse(method: string, path: string, bytesSent: number): "reset" | "stall" | null {
    for (const rule of this.#rules) {
      if (rule.count <= 0 || rule.afterResponseBytes === null || rule.afterResponseBytes > bytesSent) {
        continue;
      }
      if (!matches(rule, method, path)) continue;
      if (rule.skip > 0) {
        rule.skip--;
        return null;
      }
      rule.count--;
      const kind = rule.kind === "stall" ? "stall" : "reset";
      this.hits.push({ kind, method, path, bytesRead: 0, bytesSent });
      return kind;
    }
    return null;
  }
}

function matches(rule: LiveRule, method: string, path: string): boolean {
  if (rule.method && rule.method.toUpperCase() !== method.toUpperCase()) return false;
  if (rule.path && !path.includes(rule.path)) return false;
  return true;
}

function normalize(rule: FaultRule): LiveRule {
  if (typeof rule !== "object" || rule === null) {
    throw new SparsekdError("a fault rule must be a JSON object");
  }
  const kind = rule.kind ?? (rule.status !== undefined ? "status" : undefined);
  if (kind !== "status" && kind !== "reset" && kind !== "corrupt" && kind !== "stall") {
    throw new SparsekdError(
      `a fault rule needs "status" (e.g. 503) or "kind": "reset" or "corrupt" (got ${JSON.stringify(rule)})`,
    );
  }
  const int = (name: string, v: unknown, fallback: number, min: number) => {
    if (v === undefined) return fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min) {
      throw new SparsekdError(`fault rule "${name}" must be an integer ≥ ${min} (got ${JSON.stringify(v)})`);
    }
    return v;
  };
  const status = kind === "status" ? int("status", rule.status, 503, 400) : undefined;
  if (status !== undefined && status > 599) {
    throw new SparsekdError(`fault rule "status" must be ≤ 599 (got ${status})`);
  }
  if (rule.method !== undefined && typeof rule.method !== "string") {
    throw new SparsekdError(`fault rule "method" must be a string`);
  }
  if (rule.path !== undefined && typeof rule.path !== "string") {
    throw new SparsekdError(`fault rule "path" must be a string`);
  }
  if (rule.inResponse !== undefined && (kind !== "corrupt" || typeof rule.inResponse !== "boolean")) {
    throw new SparsekdError(`fault rule "inResponse" is true or false, for a "corrupt" rule`);
  }
  if (
    rule.afterResponseBytes !== undefined &&
    ((kind !== "reset" && kind !== "stall") || rule.afterBytes !== undefined)
  ) {
    throw new SparsekdError(
      `fault rule "afterResponseBytes" is for a "reset" (without "afterBytes") or "stall" rule`,
    );
  }
  return {
    method: rule.method,
    path: rule.path,
    kind,
    status,
    afterBytes: kind === "reset" ? int("afterBytes", rule.afterBytes, 0, 0) : 0,
    inResponse: rule.inResponse === true,
    afterResponseBytes: rule.afterResponseBytes === undefined
      ? (kind === "stall" ? 0 : null)
      : int("afterResponseBytes", rule.afterResponseBytes, 0, 0),
    skip: int("skip", rule.skip, 0, 0),
    count: int("count", rule.count, 1, 1),
  };
}
