/** Shared by the save-topk tests: random npy teacher/data fixtures and the task run as a child process. */
import { npyBytes } from "../src/data/npy.ts";

/** The save-topk task's entry point. */
export const TASK = new URL("../tasks/save_topk.ts", import.meta.url).pathname;

/** A random fixture: logits [S, L, V] and ids [S, L], also written as npy files in `dir`. */
export interface Fixture {
  dir: string;
  S: number;
  L: number;
  V: number;
  logits: Float32Array;
  ids: Int32Array;
}

/** Writes a random fixture (logits on a 0.01 grid, so ties happen); `edit` may change it first. */
export async function fixture(
  S: number,
  L: number,
  V: number,
  edit?: (f: Fixture) => void,
): Promise<Fixture> {
  const dir = await Deno.makeTempDir({ prefix: "sparsekd-save-" });
  const logits = new Float32Array(S * L * V);
  for (let i = 0; i < logits.length; i++) logits[i] = Math.round((Math.random() - 0.5) * 4000) / 100;
  const ids = new Int32Array(S * L);
  for (let i = 0; i < ids.length; i++) ids[i] = Math.floor(Math.random() * V);
  const f = { dir, S, L, V, logits, ids };
  edit?.(f);
  await Deno.writeFile(`${dir}/logits.npy`, npyBytes("<f4", [S, L, V], f.logits));
  await Deno.writeFile(`${dir}/ids.npy`, npyBytes("<i4", [S, L], f.ids));
  return f;
}

/** The task on fixture `f`; flags in `extra` come last and win (e.g. another `--teacher`). */
export function save(f: Fixture, out: string, extra: string[] = [], env: Record<string, string> = {}) {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      TASK,
      "--teacher",
      `npy:${f.dir}/logits.npy`,
      "--data",
      `npy:${f.dir}/ids.npy`,
      "--out",
      out,
      ...extra,
    ],
    env,
    stdout: "piped",
    stderr: "piped",
  });
}

/** Runs a command, collecting its exit code and output. */
export async function run(cmd: Deno.Command) {
  const o = await cmd.output();
  return {
    code: o.code,
    stdout: new TextDecoder().decode(o.stdout),
    stderr: new TextDecoder().decode(o.stderr),
  };
}
