/**
 * save-topk as one library call: opens the runtime, the store, the teacher and the data from their specs,
 * runs {@linkcode saveTopK} with progress on stderr, prints the end-of-run summary and writes it as JSON
 * when asked. `tasks/save_topk.ts` only parses flags into {@linkcode RunSaveTopKOptions}; the demo can
 * call it in-process.
 * @module
 */
import { SparsekdError } from "../errors.ts";
import { createProgress } from "../cli/progress.ts";
import { createRuntime, type Runtime } from "../gpu/runtime.ts";
import { openSource } from "../data/open_source.ts";
import { openAnyTeacher } from "../teacher/open_teacher.ts";
import type { RemoteTeacherOptions } from "../teacher/teacher.ts";
import { openStore } from "../store/open_store.ts";
import type { ValueDtype } from "../format/types.ts";
import { checkSaveOptions, type SaveSummary, saveTopK } from "./save_topk.ts";
import { parseTopKKernel, type TopKKernelChoice } from "../kernels/topk_select.ts";

/** Sequences of the demo corpus used when the data is builtin:demo and `maxSequences` is not given. */
export const DEMO_DEFAULT_SEQUENCES = 512;

/** Options of {@linkcode runSaveTopK}: what the command's flags say, typed. */
export interface RunSaveTopKOptions {
  /** `builtin:demo` | `tfjs:<model.json>` | `npy:<logits.npy>` | `openai:<base URL>` | `sglang:<base URL>`. */
  teacher: string;
  /** Settings of a served teacher (`openai:`, `sglang:`): model, API key variable, concurrency, …. */
  remote?: RemoteTeacherOptions;
  /** `builtin:demo` | `npy:<ids.npy>` | `tokens:<file>` | `text:<file or folder>` (with `tokenizer`). */
  data: string;
  /** `text:` data: the Hugging Face tokenizer.json. */
  tokenizer?: string;
  /** `text:` data: the end-of-text token between documents (default `<|endoftext|>`). */
  eotToken?: string;
  /** `text:` data: let targets cross document boundaries (run.json then records no `data.boundaryToken`). */
  crossDocuments?: boolean;
  /** A folder, `file://…` or `gs://bucket/prefix`. */
  out: string;
  /** Top-k entries kept per position (default 64; 0 with `sample`: samples only). */
  k?: number;
  /** Sampled targets: N draws per position from the teacher's softmax(z/t) (default: none). */
  sample?: number;
  /** The temperature t of the draws (default 1; only with `sample`). */
  sampleTemperature?: number;
  /** The seed of the draws (default 0; only with `sample`). */
  seed?: number;
  /** Tokens per sequence (default: the teacher's, else the data's, else 64 for builtin data). */
  seqLen?: number;
  /** Sequences per teacher pass (default 8; for a served teacher at least its concurrency). */
  batchSize?: number;
  /** Sequences per shard (default 64). */
  sequencesPerShard?: number;
  /** Stored logits (default f32). */
  valueDtype?: ValueDtype;
  /** Logsumexp temperatures (default [1]). */
  lseTemperatures?: number[];
  /** Use only the first S sequences; `"all"` for all (default: all, 512 for builtin:demo data). */
  maxSequences?: number | "all";
  /** This host and the host count (default 0 of 1). */
  host?: { index: number; count: number };
  /** GCS endpoint for gs:// outputs. */
  gcsEndpoint?: string;
  /** Also write the end-of-run summary as JSON to this file. */
  summary?: string;
  /** Run on the CPU, without WebGPU. */
  cpu?: boolean;
  /** The top-k kernel: `auto` (default: by adapter), `wg` or `radix`. */
  topkKernel?: TopKKernelChoice;
  /** Print progress and the summary lines (default true). */
  print?: boolean;
  /** A runtime to reuse (in-process callers such as the demo; `cpu` is then ignored): default a new one. */
  rt?: Runtime;
}

/**
 * Checks that `path` can be written now without leaving anything behind: an existing file is opened for
 * writing (not truncated), a new one is created and removed again.
 */
async function checkWritable(path: string): Promise<void> {
  try {
    let created = true;
    const f = await Deno.open(path, { write: true, createNew: true }).catch(async (err) => {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      created = false;
      return await Deno.open(path, { write: true });
    });
    f.close();
    if (created) await Deno.remove(path);
  } catch (err) {
    throw new SparsekdError(
      `summary ${path} cannot be written: ${String((err as Error).message).split("\n")[0]}`,
      { option: "summary" },
    );
  }
}

/**
 * Runs save-topk: every option is checked before anything is written, then teacher → top-k → shards in
 * `out`. Returns the summary (also printed to stdout unless `print` is false).
 *
 * @example
 * ```ts
 * const s = await runSaveTopK({ teacher: "builtin:demo", data: "builtin:demo", out: "runs/demo/topk" });
 * console.log(s.bytesPerToken);
 * ```
 */
export async function runSaveTopK(o: RunSaveTopKOptions): Promise<SaveSummary> {
  const print = o.print ?? true;
  const k = o.k ?? 64, sequencesPerShard = o.sequencesPerShard ?? 64;
  const valueDtype = o.valueDtype ?? "f32", lseTemperatures = o.lseTemperatures ?? [1];
  const host = o.host ?? { index: 0, count: 1 };
  const maxSequences = o.maxSequences === "all"
    ? undefined
    : o.maxSequences ?? (o.data.startsWith("builtin:") ? DEMO_DEFAULT_SEQUENCES : undefined);
  if (maxSequences !== undefined && !(Number.isSafeInteger(maxSequences) && maxSequences >= 1)) {
    throw new SparsekdError(`maxSequences must be an integer ≥ 1 (got ${maxSequences})`, {
      option: "maxSequences",
    });
  }
  if (o.seqLen !== undefined && !(Number.isSafeInteger(o.seqLen) && o.seqLen >= 1)) {
    throw new SparsekdError(`seqLen must be an integer ≥ 1 (got ${o.seqLen})`, { option: "seqLen" });
  }
  if (o.sample === undefined) {
    for (const option of ["sampleTemperature", "seed"] as const) {
      if (o[option] !== undefined) {
        throw new SparsekdError(`${option} needs sample N (the draws it configures)`, { option });
      }
    }
  }
  const sample = o.sample === undefined
    ? undefined
    : { n: o.sample, temperature: o.sampleTemperature ?? 1, seed: o.seed ?? 0 };
  if (o.summary !== undefined) await checkWritable(o.summary);
  if (o.topkKernel !== undefined) parseTopKKernel(o.topkKernel);

  const rt = o.rt ?? await createRuntime({ cpu: o.cpu });
  const teacher = await openAnyTeacher(o.teacher, rt, {
    k,
    lseTemperatures,
    remote: o.remote,
  });
  try {
    const batchSize = o.batchSize ?? Math.max(8, teacher.kind === "sparse" ? teacher.concurrency ?? 1 : 1);
    const seqLen = o.seqLen ?? teacher.seqLen;
    const source = await openSource(o.data, {
      seqLen: seqLen ?? (o.data.startsWith("builtin:") ? 64 : undefined),
      maxSequences,
      vocabSize: teacher.vocabSize,
      tokenizer: o.tokenizer,
      eotToken: o.eotToken,
      crossDocuments: o.crossDocuments,
    });
    const options = {
      teacher,
      source,
      k,
      sample,
      batchSize,
      sequencesPerShard,
      valueDtype,
      lseTemperatures,
      host,
    };
    checkSaveOptions(options);
    const store = await openStore(o.out, { endpoint: o.gcsEndpoint, create: true });
    if (print) {
      console.error(
        `save-topk: ${teacher.description} over ${source.description}: ${source.sequences} sequences × ` +
          `${source.seqLen} tokens, k=${k}${
            sample ? `, ${sample.n} draws per position at t=${sample.temperature} (seed ${sample.seed})` : ""
          }, host ${host.index}/${host.count} → ${store.uri}`,
      );
    }
    let progress: ReturnType<typeof createProgress> | null = null;
    const t0 = performance.now();
    const s = await saveTopK({
      ...options,
      rt,
      store,
      topkKernel: o.topkKernel,
      onNote: print ? (line) => console.error(`save-topk: ${line}`) : undefined,
      onProgress: print
        ? (p) => {
          progress ??= createProgress({ label: "save-topk", total: p.sequencesTotal, unit: "seq" });
          const secs = (performance.now() - t0) / 1000;
          const tokS = secs > 0 ? (p.sequencesComputed * source.seqLen) / secs : 0;
          progress.update(
            p.sequencesDone,
            `${(p.bytesWritten / 1e6).toFixed(1)} MB written, ${tokS.toFixed(0)} tok/s`,
          );
        }
        : undefined,
    });
    (progress as ReturnType<typeof createProgress> | null)?.finish();
    if (print) {
      console.log(
        `save-topk: ${s.shardsWritten} shards written, ${s.shardsSkipped} already there; ${s.tokens} tokens, ` +
          `${(s.bytes / 1e6).toFixed(2)} MB, ${s.bytesPerToken.toFixed(1)} bytes/token ` +
          (sample ? `(with ${s.sampleDistinctPerToken.toFixed(1)} distinct sampled ids per token) ` : "") +
          `(full float32 logits: ${s.fullLogitsBytesPerToken} bytes/token); ${
            s.wallSeconds.toFixed(1)
          } s wall, ` +
          `${s.tokensPerSecond.toFixed(0)} tokens/s; GPU waited ${s.gpuWaitSeconds.toFixed(2)} s for I/O`,
      );
      console.log(`save-topk: ${store.uri}`);
    }
    if (o.summary !== undefined) {
      const { run: _run, ...numbers } = s;
      await Deno.writeTextFile(o.summary, JSON.stringify({ out: store.uri, ...numbers }, null, 1) + "\n");
    }
    return s;
  } finally {
    teacher.dispose();
  }
}
