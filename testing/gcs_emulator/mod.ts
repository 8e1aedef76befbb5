/**
 * A real, in-process emulator of the Google Cloud Storage JSON API (the part the official client uses), with
 * fault injection, for tests of gs:// stores without a network.
 *
 * @example Start it, write and read an object through a gs:// store, stop it
 * ```ts
 * import { startEmulator } from "./mod.ts";
 * import { openStore } from "../../mod.ts";
 *
 * const emu = await startEmulator({ buckets: ["doc-bucket"] });
 * try {
 *   const store = await openStore("gs://doc-bucket/run", { endpoint: emu.url });
 *   await store.writeBytes("a.bin", new Uint8Array([1, 2, 3]));
 *   if ((await store.readBytes("a.bin")).length !== 3) throw new Error("read back 3 bytes");
 * } finally {
 *   await emu.close();
 * }
 * ```
 * @module
 */
export { startEmulator, UPLOAD_GRANULARITY } from "./server.ts";
export type { EmulatorOptions, RunningEmulator } from "./server.ts";
export { FaultInjector } from "./faults.ts";
export type { FaultDecision, FaultHit, FaultRule } from "./faults.ts";
export { EmulatorState } from "./model.ts";
export type { Preconditions, StoredBucket, StoredObject, UploadSession } from "./model.ts";
