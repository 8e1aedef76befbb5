/**
 * Category `hostile`: a shard whose MessagePack announces a huge length (map32/array32/str32/bin32 of up to
 * 2³²−1 elements or bytes, with few bytes behind it) is fed to train and to a save-topk resume, under a memory
 * cap (train with and without the manifests, so that the decoder itself is reached): the subprocess's resident memory (VmRSS in /proc/<pid>/status) may not grow more than 256 MiB beyond
 * what the same command needs on the intact run. Survived: one `error:` line under the cap. Lost: exit 0 on
 * the hostile shard, a stack trace, a hang, or memory past the cap.
 * @module
 */
import { type CaseResult, caseSeeds, type Category, type Ctx, ending, runTask } from "./lib.ts";
import { copyTree, makeFixture, saveArgs, trainArgs } from "./fixtures.ts";

/** Byte surgery on the first shard: find `find`, put `replace` in its place. */
interface Hostile {
  name: string;
  find: number[];
  replace: number[];
  /** Cut the file right after `replace` and extend it with zeros to this many bytes beyond (a sparse file). */
  padTo?: number;
}

/** 320 MiB: more than the cap's head-room, so a reader that buffers a whole announced value is caught. */
const PAD = 320 * 1024 * 1024;

const enc = (s: string) => [...new TextEncoder().encode(s)];
const HUGE = [0xff, 0xff, 0xff, 0xff];
const BIG = [0x7f, 0xff, 0xff, 0xf0];

/** L = 8, K = 8, u16 ids, f32 values: tokens is bin8 of 32 bytes, idx bin8 of 128, val bin8 of 256 → bin16. */
const CASES: Hostile[] = [
  {
    name: "header map32 of 2^32-1 entries",
    find: [0x8a, 0xa6, ...enc("format")],
    replace: [0xdf, ...HUGE, 0xa6, ...enc("format")],
  },
  {
    name: "lseTemperatures array32 of 2^32-1",
    find: [...enc("lseTemperatures"), 0x91],
    replace: [...enc("lseTemperatures"), 0xdd, ...HUGE],
  },
  {
    name: "header key str32 of 2^32-1 bytes",
    find: [0xa6, ...enc("format")],
    replace: [0xdb, ...HUGE, ...enc("format")],
  },
  {
    name: "header value str32 of 2^31 bytes",
    find: [0xae, ...enc("sparsekd.shard")],
    replace: [0xdb, ...BIG, ...enc("sparsekd.shard")],
  },
  {
    name: "record tokens bin32 of 2^32-1 bytes",
    find: [0xa6, ...enc("tokens"), 0xc4, 32],
    replace: [0xa6, ...enc("tokens"), 0xc6, ...HUGE],
  },
  {
    name: "record tokens bin32 of 2^31 bytes",
    find: [0xa6, ...enc("tokens"), 0xc4, 32],
    replace: [0xa6, ...enc("tokens"), 0xc6, ...BIG],
  },
  {
    name: "record idx bin32 of 2^32-1 bytes",
    find: [0xa3, ...enc("idx"), 0xc4, 128],
    replace: [0xa3, ...enc("idx"), 0xc6, ...HUGE],
  },
  {
    name: "record map32 of 2^32-1 entries",
    find: [0x85, 0xa3, ...enc("seq")],
    replace: [0xdf, ...HUGE, 0xa3, ...enc("seq")],
  },
  {
    name: "record key str32 of 2^31 bytes",
    find: [0xa3, ...enc("seq")],
    replace: [0xdb, ...BIG, ...enc("seq")],
  },
  {
    name: "trailer map32 of 2^32-1 entries",
    find: [0x83, 0xa3, ...enc("end")],
    replace: [0xdf, ...HUGE, 0xa3, ...enc("end")],
  },
  {
    name: "record tokens bin32 of 320 MiB really there",
    find: [0xa6, ...enc("tokens"), 0xc4, 32],
    replace: [0xa6, ...enc("tokens"), 0xc6, ...be32(PAD)],
    padTo: PAD,
  },
  {
    name: "record val array32 instead of bin",
    find: [0xa3, ...enc("val"), 0xc5],
    replace: [0xa3, ...enc("val"), 0xdd, ...HUGE, 0xc5],
  },
];

/** n as 4 big-endian bytes (MessagePack's lengths). */
function be32(n: number): number[] {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff);
}

/** Head-room over the intact run's peak RSS, in MiB. */
const HEADROOM_MIB = 256;

/** The hostile-MessagePack category. */
export const hostileMsgpack: Category = {
  name: "hostile",
  weight: 1.5,
  async run(ctx: Ctx) {
    const cases: CaseResult[] = [];
    const notes: string[] = [];
    const fx = await makeFixture(`${ctx.tmp}/fx`, ctx.seed, { S: 16, L: 8, V: 96 });
    const refOut = `${ctx.tmp}/ref-topk`;
    const r0 = await runTask("save_topk", saveArgs(ctx, fx, refOut));
    if (ending(r0).kind !== "ok") throw new Error(`the reference save-topk failed: ${r0.stderr.slice(-300)}`);
    const t0 = await runTask("train", trainArgs(ctx, refOut, `${ctx.tmp}/ref-train`));
    if (ending(t0).kind !== "ok") throw new Error(`the reference train failed: ${t0.stderr.slice(-300)}`);
    const capTrain = Math.ceil(t0.peakRssMiB) + HEADROOM_MIB,
      capSave = Math.ceil(r0.peakRssMiB) + HEADROOM_MIB;
    notes.push(
      `intact peaks: train ${t0.peakRssMiB.toFixed(0)} MiB, save-topk ${
        r0.peakRssMiB.toFixed(0)
      } MiB; caps +${HEADROOM_MIB} MiB`,
    );
    const shard = await Deno.readFile(`${refOut}/shards/s000000.msgpack`);
    const nextSeed = caseSeeds(ctx, "hostile");
    const readers = ["train", "train without manifests", "resume"] as const;
    const ordered = [...CASES.filter((c) => c.padTo), ...CASES.filter((c) => !c.padTo)]; // the costly one first
    for (let i = 0; i < readers.length * CASES.length && Date.now() < ctx.deadline; i++) {
      const seed = nextSeed();
      // Interleaved, so that a short budget tries every reader. With its manifest a shard fails its size/CRC
      // check; without one only the decoder stands guard.
      const h = ordered[Math.floor(i / readers.length)];
      const reader = readers[i % readers.length];
      const at = indexOf(shard, h.find);
      if (at < 0) throw new Error(`hostile case "${h.name}": pattern not found in the shard`);
      const bytes = new Uint8Array([
        ...shard.subarray(0, at),
        ...h.replace,
        ...shard.subarray(at + h.find.length),
      ]);
      const dir = `${ctx.tmp}/case-${i}`;
      await copyTree(refOut, dir);
      const path = `${dir}/shards/s000000.msgpack`;
      if (h.padTo === undefined) await Deno.writeFile(path, bytes);
      else {
        await Deno.writeFile(path, bytes.subarray(0, at + h.replace.length));
        await Deno.truncate(path, at + h.replace.length + h.padTo);
      }
      if (reader !== "train") await Deno.remove(`${dir}/manifests`, { recursive: true });
      const o = reader !== "resume"
        ? await runTask("train", trainArgs(ctx, dir, `${dir}-train`), {
          memCapMiB: capTrain,
          timeoutMs: 60_000,
        })
        : await runTask("save_topk", saveArgs(ctx, fx, dir), { memCapMiB: capSave, timeoutMs: 60_000 });
      const e = ending(o);
      const lost = e.kind === "bad"
        ? e.why
        : e.kind === "ok"
        ? `${reader} accepted the hostile shard (exit 0)`
        : "";
      const what = `${reader} on a shard with ${h.name} (peak ${o.peakRssMiB.toFixed(0)} MiB)`;
      cases.push({ seed, what, survived: !lost, detail: lost });
      ctx.log(`${what}: ${lost ? `LOST ${lost}` : `survived (${(e as { line: string }).line})`}`);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(`${dir}-train`, { recursive: true }).catch(() => {});
    }
    return { name: "hostile", cases, notes };
  },
};

function indexOf(hay: Uint8Array, needle: number[]): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
