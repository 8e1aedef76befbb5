/**
 * The upload side of the `gs://` store: one create-only, CRC32C-validated resumable upload on the official
 * client, fed from a web stream (see `gcs.ts` for the guarantees).
 * @module
 */
import { Buffer } from "node:buffer";
import type { File } from "../deps/gcs.ts";
import { SparsekdError } from "../errors.ts";
import { describe, statusOf, type StatusQueryRetry, steadyStatusQueries } from "./gcs_retry.ts";
import { ObjectExistsError, type ObjectInfo, type ObjectWriter } from "./store.ts";

/**
 * Starts a create-only resumable upload of `file`. The writable buffers at most one chunk (plus the node
 * stream's high-water mark); closing it waits until the object exists and its CRC32C matches. It rejects with
 * {@linkcode ObjectExistsError} when the object exists, and with a {@linkcode SparsekdError} when the upload
 * failed after its retries. Aborting it cancels the upload: no object appears.
 *
 * @example
 * ```ts ignore
 * const w = startUpload(bucket.file("run/x.bin"), "x.bin", "gs://b/run/x.bin", 8 << 20, retry);
 * ```
 */
export function startUpload(
  file: File,
  path: string,
  where: string,
  chunkSize: number,
  retry: StatusQueryRetry,
): ObjectWriter {
  steadyStatusQueries(file, retry);
  const node = file.createWriteStream({
    resumable: true,
    validation: "crc32c",
    chunkSize,
    preconditionOpts: { ifGenerationMatch: 0 },
    metadata: { contentType: "application/octet-stream" },
  });
  let failure: unknown = null;
  let settled = false;
  let resolveDone!: (info: ObjectInfo) => void;
  let rejectDone!: (err: unknown) => void;
  const done = new Promise<ObjectInfo>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  done.catch(() => {}); // the caller may await only the writable
  const fail = (err: unknown): unknown => {
    if (failure === null) {
      failure = statusOf(err) === 412
        ? new ObjectExistsError(where)
        : err instanceof SparsekdError
        ? err
        : new SparsekdError(`upload of ${where} failed: ${describe(err)}`, { cause: err });
    }
    if (!settled) {
      settled = true;
      rejectDone(failure);
    }
    return failure;
  };
  node.on("error", (err: unknown) => fail(err));
  node.once("finish", () => {
    if (settled) return;
    const meta = file.metadata;
    settled = true;
    resolveDone({ path, size: Number(meta.size), crc32c: String(meta.crc32c) });
  });
  node.once("close", () => {
    if (!settled) fail(new Error("the upload stream closed before the object was complete"));
  });
  const waitDrain = () =>
    new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        node.off("drain", onDrain);
        node.off("close", onClose);
      };
      const onDrain = () => {
        cleanup();
        resolve();
      };
      const onClose = () => {
        cleanup();
        reject(failure ?? new SparsekdError(`upload of ${where} stopped`));
      };
      node.on("drain", onDrain);
      node.on("close", onClose);
    });
  const writable = new WritableStream<Uint8Array>({
    async write(chunk) {
      if (failure !== null) throw failure;
      // Copy: the caller may reuse its buffer once write() resolves, while the upload still holds the chunk.
      if (!node.write(Buffer.from(chunk))) await waitDrain();
      if (failure !== null) throw failure;
    },
    async close() {
      if (failure !== null) throw failure;
      node.end();
      await done;
    },
    abort(reason) {
      fail(reason instanceof Error ? reason : new Error(`upload of ${where} aborted`));
      node.destroy();
    },
  });
  return { writable, done };
}
