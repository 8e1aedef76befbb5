/**
 * `deno task teacher-server --teacher SPEC [--port P] …`: serves a sparsekd teacher (`builtin:demo`,
 * `tfjs:<model.json>`, `npy:`) through the OpenAI-compatible API subset that `save-topk --teacher openai:` uses
 * (vLLM-shaped answers, and SGLang's `/generate`), until interrupted. Faults are injected with
 * `POST /_teacher_server/faults` (docs/teachers.md). This file only parses flags.
 * @module
 */
import { runMain } from "../src/cli/run_main.ts";
import { SparsekdError } from "../src/errors.ts";
import { intFlag, parseFlags } from "../src/cli/flags.ts";
import { createRuntime } from "../src/gpu/runtime.ts";
import { openTeacher } from "../src/teacher/open_teacher.ts";
import { startTeacherServer } from "../testing/teacher_server/server.ts";

const HELP = `deno task teacher-server [flags]

  --teacher SPEC            builtin:demo (default) | tfjs:<model.json path or URI> | npy:<logits.npy>
  --port P                  TCP port (0: any free port; default 8000)
  --hostname H              address to listen on (default 127.0.0.1)
  --model NAME              the model name it serves (default: the teacher spec)
  --max-logprobs N          most log-probabilities per position a request may ask for (default 20, as vLLM)
  --api-key-env VAR         require the API key held in this environment variable
  --gpu                     run the teacher on WebGPU (default: the CPU)
  --verbose                 print one line per request
`;

await runMain(async () => {
  const { values: f } = parseFlags(Deno.args, {
    teacher: { type: "string", default: "builtin:demo" },
    port: { type: "string" },
    hostname: { type: "string", default: "127.0.0.1" },
    model: { type: "string" },
    "max-logprobs": { type: "string" },
    "api-key-env": { type: "string" },
    gpu: { type: "boolean", default: false },
    verbose: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  });
  if (f.help) {
    console.log(HELP);
    return 0;
  }
  const port = intFlag("port", f.port, 8000, { min: 0, max: 65535 });
  const maxLogprobs = intFlag("max-logprobs", f["max-logprobs"], 20, { min: 0 });
  let apiKey: string | undefined;
  if (f["api-key-env"] !== undefined) {
    apiKey = Deno.env.get(f["api-key-env"]);
    if (!apiKey) throw new SparsekdError(`--api-key-env names ${f["api-key-env"]}, which is not set`);
  }
  const rt = await createRuntime({ cpu: !f.gpu });
  const teacher = await openTeacher(f.teacher!, rt);
  const server = await startTeacherServer({
    teacher,
    port,
    hostname: f.hostname,
    model: f.model,
    maxLogprobs,
    apiKey,
    log: f.verbose ? (line) => console.log(line) : undefined,
  });
  console.log(
    `teacher server: ${teacher.description} (vocabulary ${teacher.vocabSize}) listening on ${server.url}`,
  );
  console.log(`  use save-topk --teacher openai:${server.url} --k K (K ≤ ${maxLogprobs}); Ctrl-C stops it`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  });
  await server.close();
  teacher.dispose();
  return 0;
});
