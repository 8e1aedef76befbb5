/**
 * Category `gcs`: every fault kind of the emulator (503, 408, 429, 500, a reset connection, a reset after N
 * bytes of the body, a flipped byte in an uploaded chunk) plus a slow link (a throttling loopback proxy of our own), during writes (save-topk to
 * gs://) and during reads (train from gs://, and save-topk resuming a run whose existing shards it checks).
 * The command must complete with the reference's objects, or end with one `error:` line leaving only
 * complete objects, after which a run without faults completes the set.
 * @module
 */
import { startEmulator } from "../testing/gcs_emulator/server.ts";
import type { FaultRule } from "../testing/gcs_emulator/faults.ts";
import {
  type CaseResult,
  caseSeeds,
  type Category,
  type Ctx,
  diffHashes,
  ending,
  rng,
  runTask,
  sha256,
  treeHashes,
} from "./lib.ts";
import { makeFixture, metricsRows, saveArgs, trainArgs } from "./fixtures.ts";

const BUCKET = "chaos";

/** The fault kinds: a rule template, or "slow" (the proxy). */
const KINDS: { label: string; rule?: Partial<FaultRule> }[] = [
  { label: "503", rule: { status: 503 } },
  { label: "408", rule: { status: 408 } },
  { label: "429", rule: { status: 429 } },
  { label: "500", rule: { status: 500 } },
  { label: "reset", rule: { kind: "reset" } },
  { label: "reset-after-bytes", rule: { kind: "reset", afterBytes: 1 } },
  { label: "corrupt", rule: { kind: "corrupt", method: "PUT", path: "upload_id" } },
  { label: "slow" },
];
const PHASES = ["write", "read-train", "read-resume"] as const;

/** The GCS-faults category. */
export const gcsFaults: Category = {
  name: "gcs",
  weight: 4,
  async run(ctx: Ctx) {
    const cases: CaseResult[] = [];
    const notes: string[] = [];
    const emu = await startEmulator({ port: 0, buckets: [BUCKET] });
    const proxies: { close(): void }[] = [];
    try {
      const fx = await makeFixture(`${ctx.tmp}/fx`, ctx.seed, { S: 16, L: 8, V: 96 });
      const refLocal = `${ctx.tmp}/ref-topk`;
      const r0 = await runTask("save_topk", saveArgs(ctx, fx, refLocal));
      if (ending(r0).kind !== "ok") {
        throw new Error(`the reference save-topk failed: ${r0.stderr.slice(-300)}`);
      }
      const ref = (await treeHashes(refLocal)).files;
      const shardBytes = (await Deno.stat(`${refLocal}/shards/s000000.msgpack`)).size;
      const gs = (
        prefix: string,
        endpoint = emu.url,
      ) => ["--gcs-endpoint", endpoint, "--out", `gs://${BUCKET}/${prefix}`];
      const objects = (prefix: string) => {
        const m = new Map<string, string>();
        for (const [name, o] of emu.state.buckets.get(BUCKET)!.objects) {
          if (name.startsWith(`${prefix}/`)) m.set(name.slice(prefix.length + 1), sha256(o.data));
        }
        return m;
      };
      // The shared read-only run that the read cases use, and train's reference from it.
      const w = await runTask("save_topk", [...saveArgs(ctx, fx, "x"), ...gs("ref")]);
      if (ending(w).kind !== "ok" || diffHashes(ref, objects("ref"))) {
        throw new Error(`the fault-free gs:// save-topk failed: ${w.stderr.slice(-300)}`);
      }
      const trainGs = (out: string, endpoint = emu.url) =>
        trainArgs(ctx, `gs://${BUCKET}/ref`, out, ["--gcs-endpoint", endpoint]);
      const t0 = await runTask("train", trainGs(`${ctx.tmp}/train-ref`));
      if (ending(t0).kind !== "ok") {
        throw new Error(`the fault-free gs:// train failed: ${t0.stderr.slice(-300)}`);
      }
      const trainRef = (await treeHashes(`${ctx.tmp}/train-ref`)).files;
      const trainRows = (await metricsRows(`${ctx.tmp}/train-ref/metrics.jsonl`)).rows;

      const nextSeed = caseSeeds(ctx, "gcs");
      // Interleaved (write, read-train, read-resume for one kind, then the next kind), so that a short budget
      // still tries every kind during writes and reads.
      const combos = KINDS.flatMap((k) => PHASES.map((p) => ({ phase: p, kind: k })));
      let faultsHit = 0;
      for (let i = 0; Date.now() < ctx.deadline && i < 2 * combos.length; i++) {
        const seed = nextSeed();
        const r = rng(seed);
        const { phase, kind } = combos[i % combos.length];
        // The emulator cuts request bodies only: "after N bytes" has nothing to cut in a read-only train.
        if (phase === "read-train" && /after|corrupt/.test(kind.label)) continue;
        const prefix = `case-${i}`;
        let endpoint = emu.url;
        let rule: FaultRule | null = null;
        if (kind.rule) {
          const write = phase === "write" || (phase === "read-resume" && r.next() < 0.3);
          rule = {
            ...kind.rule,
            ...(write
              ? r.pick([{ method: "PUT", path: "upload_id" }, {
                method: "POST",
                path: "uploadType=resumable",
              }])
              : r.pick([{ method: "GET", path: "alt=media" }, { method: "GET", path: "/o" }])),
            skip: r.int(phase === "read-train" ? 4 : 8),
            count: 1 + r.int(3),
          };
          if (kind.rule.afterBytes !== undefined || kind.rule.kind === "corrupt") {
            if (kind.rule.afterBytes !== undefined) rule.afterBytes = 1 + r.int(shardBytes - 1);
            rule.path = "upload_id";
            rule.method = "PUT";
          }
        } else {
          const delay = phase === "read-train" ? 5 + r.int(20) : 20 + r.int(60);
          const p = slowProxy(emu.port, delay);
          proxies.push(p);
          endpoint = p.url;
        }
        const what = `${phase} under ${kind.label}${rule ? ` ${JSON.stringify(rule)}` : ` (${endpoint})`}`;
        let lost = "";
        if (phase === "read-resume") {
          // A finished run with some shards and the manifest gone: the rerun re-checks the others by reading them.
          const pre = await runTask("save_topk", [...saveArgs(ctx, fx, "x"), ...gs(prefix)]);
          if (ending(pre).kind !== "ok") {
            throw new Error(`setup of ${prefix} failed: ${pre.stderr.slice(-200)}`);
          }
          const objs = emu.state.buckets.get(BUCKET)!.objects;
          objs.delete(`${prefix}/manifests/h00000.json`);
          objs.delete(`${prefix}/shards/s00000${r.int(8)}.msgpack`);
        }
        const hits0 = emu.faults.hits.length;
        if (rule) emu.faults.add(rule);
        const o = phase === "read-train"
          ? await runTask("train", trainGs(`${ctx.tmp}/${prefix}-train`, endpoint))
          : await runTask("save_topk", [...saveArgs(ctx, fx, "x"), ...gs(prefix, endpoint)]);
        emu.faults.clear();
        faultsHit += emu.faults.hits.length - hits0;
        const e = ending(o);
        if (e.kind === "bad") lost = e.why;
        else if (phase === "read-train") {
          if (diffHashes(ref, objects("ref"))) lost = "the shared gs://chaos/ref changed";
          else if (e.kind === "ok") {
            lost = diffHashes(
              trainRef,
              (await treeHashes(`${ctx.tmp}/${prefix}-train`)).files,
              /^metrics\.jsonl$/,
            );
            if (!lost && (await metricsRows(`${ctx.tmp}/${prefix}-train/metrics.jsonl`)).rows !== trainRows) {
              lost = "metrics.jsonl differs from the fault-free run";
            }
          }
        } else {
          const got = objects(prefix);
          if (e.kind === "ok") lost = diffHashes(ref, got);
          else {
            for (const [p, h] of got) {
              if (ref.get(p) !== h && !p.startsWith("manifests/")) lost ||= `${p} is damaged`;
            }
            if (!lost) {
              const again = await runTask("save_topk", [...saveArgs(ctx, fx, "x"), ...gs(prefix)]);
              const e2 = ending(again);
              lost = e2.kind !== "ok"
                ? `after "${e.line}" a fault-free rerun ended with ${e2.kind === "error" ? e2.line : e2.why}`
                : diffHashes(ref, objects(prefix));
            }
          }
        }
        const how = e.kind === "error" ? `; ${e.line}` : "";
        cases.push({ seed, what, survived: !lost, detail: lost });
        ctx.log(
          `${what}: ${lost ? `LOST ${lost}` : `survived (${e.kind}${how})`} ${(o.ms / 1000).toFixed(1)} s`,
        );
      }
      notes.push(`${faultsHit} faults injected by the emulator`);
    } finally {
      for (const p of proxies) p.close();
      await emu.close();
    }
    return { name: "gcs", cases, notes };
  },
};

/**
 * A loopback TCP proxy to `port` that waits `delayMs` before passing on each chunk read, in both directions:
 * a slow link (the emulator has no such fault kind).
 */
function slowProxy(port: number, delayMs: number): { url: string; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const pump = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(16 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        await new Promise((res) => setTimeout(res, delayMs));
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } catch { /* either side closed */ }
    // closeWrite is asynchronous: await it, or a peer that is gone already rejects it unhandled.
    await to.closeWrite().catch(() => {});
  };
  (async () => {
    for await (const c of listener) {
      const up = await Deno.connect({ hostname: "127.0.0.1", port }).catch(() => null);
      if (!up) {
        c.close();
        continue;
      }
      conns.add(c).add(up);
      Promise.all([pump(c, up), pump(up, c)]).finally(() => {
        for (const x of [c, up]) {
          try {
            x.close();
          } catch { /* closed */ }
          conns.delete(x);
        }
      });
    }
  })().catch(() => {});
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    },
  };
}
