/**
 * `deno task chaos`: drives the real commands (save-topk, train, report) as subprocesses through kills,
 * GCS faults, corrupt and hostile inputs, several hosts and bad flags, and classifies every case as survived
 * or lost (docs/reliability.md). Loopback only. Exits non-zero when any case is lost.
 *
 *   --budget-minutes M   time budget of the whole run (default 10); each category gets a share
 *   --seed S             the run's seed (default: random, printed); every case prints its own
 *   --only NAME[,NAME]   run only these categories
 *   --gpu                run the kernels on WebGPU instead of --cpu (much slower on a CPU-only machine)
 *   --keep               keep the scratch folder
 * @module
 */
import { parseArgs } from "node:util";
import type { Category, CategoryResult, Ctx } from "./lib.ts";
import { killResume } from "./kill_resume.ts";
import { gcsFaults } from "./gcs_faults.ts";
import { corruptInputs } from "./corrupt.ts";
import { hostileMsgpack } from "./hostile_msgpack.ts";
import { severalHosts } from "./hosts.ts";
import { badInput } from "./bad_input.ts";

const CATEGORIES: Category[] = [killResume, gcsFaults, corruptInputs, hostileMsgpack, severalHosts, badInput];

const HELP = `deno task chaos [--budget-minutes 10] [--seed S] [--only ${
  CATEGORIES.map((c) => c.name).join("|")
}] [--gpu] [--keep]`;

function fail(msg: string): never {
  console.error(`error: ${msg}`);
  Deno.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    options: {
      "budget-minutes": { type: "string", default: "10" },
      seed: { type: "string" },
      only: { type: "string" },
      gpu: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  }).values;
} catch (err) {
  fail((err as Error).message.split("\n")[0]);
}
if (parsed.help) {
  console.log(HELP);
  Deno.exit(0);
}
const budget = Number(parsed["budget-minutes"]);
if (!(budget > 0)) fail(`--budget-minutes must be a positive number (got "${parsed["budget-minutes"]}")`);
const seed = parsed.seed === undefined ? (Math.random() * 2 ** 31) >>> 0 : Number(parsed.seed);
if (!Number.isInteger(seed) || seed < 0) fail(`--seed must be a non-negative integer (got "${parsed.seed}")`);
let chosen = CATEGORIES;
if (parsed.only !== undefined) {
  const names = parsed.only.split(",");
  for (const n of names) {
    if (!CATEGORIES.some((c) => c.name === n)) {
      fail(`--only: no category "${n}" (${CATEGORIES.map((c) => c.name).join(", ")})`);
    }
  }
  chosen = CATEGORIES.filter((c) => names.includes(c.name));
}

// A stray rejection in the harness itself (a proxy socket, say) must not end the whole run: it is counted as a
// lost case of the category that was running, with its message.
const strays: string[] = [];
globalThis.addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  strays.push(String(e.reason).split("\n")[0]);
});

const tmp = await Deno.makeTempDir({ prefix: "sparsekd-chaos-" });
const t0 = Date.now();
const end = t0 + budget * 60_000;
console.log(
  `chaos: seed ${seed}, budget ${budget} min, ${parsed.gpu ? "WebGPU" : "--cpu"} kernels, scratch ${tmp}`,
);
const results: CategoryResult[] = [];
let weightLeft = chosen.reduce((s, c) => s + c.weight, 0);
for (const cat of chosen) {
  const now = Date.now();
  const share = Math.max(0, end - now) * (cat.weight / weightLeft);
  weightLeft -= cat.weight;
  const ctx: Ctx = {
    tmp: `${tmp}/${cat.name}`,
    seed,
    deadline: now + share,
    gpu: parsed.gpu,
    log: (line) => console.error(`  [${cat.name}] ${line}`),
  };
  await Deno.mkdir(ctx.tmp, { recursive: true });
  const c0 = Date.now();
  let r: CategoryResult;
  try {
    r = await cat.run(ctx);
  } catch (err) {
    // A failure of the harness itself is reported as one lost case of the category, never hidden.
    r = {
      name: cat.name,
      cases: [{ seed, what: "harness", survived: false, detail: `the harness failed: ${err}` }],
      notes: [],
    };
  }
  for (const msg of strays.splice(0)) {
    r.cases.push({
      seed,
      what: "harness",
      survived: false,
      detail: `unhandled rejection in the harness: ${msg}`,
    });
  }
  results.push(r);
  const lost = r.cases.filter((c) => !c.survived);
  console.log(
    `${r.name}: tried ${r.cases.length} / survived ${r.cases.length - lost.length} / lost ${lost.length}` +
      `  (${((Date.now() - c0) / 1000).toFixed(0)} s)`,
  );
  for (const n of r.notes) console.log(`  note: ${n}`);
  for (const c of lost) console.log(`  lost: seed ${c.seed}: ${c.what}: ${c.detail}`);
}
if (!parsed.keep) await Deno.remove(tmp, { recursive: true }).catch(() => {});
const allLost = results.reduce((s, r) => s + r.cases.filter((c) => !c.survived).length, 0);
const tried = results.reduce((s, r) => s + r.cases.length, 0);
console.log(
  `chaos: ${tried} cases, ${allLost} lost, ${((Date.now() - t0) / 60_000).toFixed(1)} min (seed ${seed})`,
);
Deno.exit(allLost > 0 ? 1 : 0);
