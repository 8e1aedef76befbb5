/**
 * `deno task study`: for each built-in teacher, CE-only, online full KD and offline students (top-K modes,
 * sampled targets, reverse KL and JSD) at each α and seed, scored on the held-out split (docs/study.md), in
 * this process; it resumes student by student. Run with `--help` for the flags.
 * @module
 */
import { runMain } from "../src/cli/run_main.ts";
import { stopOnSignals } from "../src/cli/stop_signals.ts";
import { intFlag, numberFlag, parseFlags } from "../src/cli/flags.ts";
import { readRunFlags, RUN_FLAG_SPEC, RUN_FLAGS, runFlagsHelp } from "../src/cli/run_flags.ts";
import { runStudy } from "../src/demo/run_study.ts";
import { SparsekdError } from "../src/errors.ts";

const HELP = `deno task study [flags]

${
  runFlagsHelp("runs/study", "finished students")
}  --teachers T1,T2     built-in teachers (default builtin:demo,builtin:tslib: flat and peaked); each
                       teacher's data are its own corpus (docs/data.md)
  --ks K1,K2,…         the K of the offline top-K students (default 8,64); the shards hold the largest
  --samples N1,N2,…    the N of the sampled students (default 16,64)
  --alphas A1,A2,…     weights of the KD term (default 1,0.5)
  --seeds S1,S2,…      train every student with each seed (default 1,2,3)
  --beta B             β of the JSD students (default 0.5)
  --methods M1,M2,…    train only these methods (e.g. ce-only,online-full,tail-k64,sampled-n64)
  --table-only         train nothing: write the tables from the students already finished
`;

const list = (v: string, parse: (s: string) => number) => v.split(",").map((x) => parse(x.trim()));

await runMain(async () => {
  const { values: f } = parseFlags(Deno.args, {
    ...RUN_FLAG_SPEC,
    teachers: { type: "string" },
    ks: { type: "string" },
    samples: { type: "string" },
    alphas: { type: "string" },
    seeds: { type: "string" },
    beta: { type: "string" },
    methods: { type: "string" },
    "table-only": { type: "boolean", default: false },
  });
  if (f.help) return void console.log(HELP);
  const run = readRunFlags(f);
  const stop = stopOnSignals("study", "finishing the current stage (a student: its step and a checkpoint)…");
  const r = await runStudy({
    signal: stop.signal,
    ...run,
    teachers: f.teachers?.split(",").map((t) => t.trim()),
    ks: list(f.ks ?? "8,64", (k) => intFlag("ks", k, 0, { min: 1 })),
    samples: list(f.samples ?? "16,64", (n) => intFlag("samples", n, 0, { min: 1, max: 1024 })),
    alphas: list(f.alphas ?? "1,0.5", (a) => numberFlag("alphas", a, 1, { min: 0, max: 1 })),
    seeds: list(f.seeds ?? "1,2,3", (x) => intFlag("seeds", x, 0, { min: 0 })),
    beta: numberFlag("beta", f.beta, 0.5, { min: 0, max: 1 }),
    methods: f.methods?.split(",").map((m) => m.trim()),
    tableOnly: f["table-only"],
  }).finally(() => stop.dispose());
  if (r.teachers.length === 0) {
    throw new SparsekdError("no teacher has shards yet: run the study without --table-only first");
  }
  console.log(r.markdown);
  console.log(
    `study: tables in ${run.dir ?? "runs/study"}/study.md; reports ${r.reports.join(", ")}` +
      (r.missing ? `; ${r.missing} students not finished yet (run the same command to go on)` : ""),
  );
}, {
  ...RUN_FLAGS,
  teachers: "--teachers",
  ks: "--ks",
  samples: "--samples",
  alphas: "--alphas",
  seeds: "--seeds",
  beta: "--beta",
  methods: "--methods",
  teacher: "--teachers",
});
