/**
 * A teacher server: any dense sparsekd teacher behind the OpenAI-compatible completions API subset that
 * `save-topk --teacher openai:` (vLLM's shape) and `sglang:` (SGLang's `/generate`) use, with fault injection
 * (HTTP statuses, cut and stalled answers, slow answers) and vLLM's `max_logprobs` cap. Tests use it to
 * exercise served teachers without a GPU server; `deno task teacher-server` puts one teacher behind many
 * save-topk hosts.
 *
 * @example Serve the demo teacher and list its model
 * ```ts
 * import { startTeacherServer } from "./mod.ts";
 * import { createRuntime } from "../../src/gpu/runtime.ts";
 * import { openTeacher } from "../../src/teacher/open_teacher.ts";
 *
 * const rt = await createRuntime({ cpu: true, quiet: true });
 * const teacher = await openTeacher("builtin:demo", rt);
 * const server = await startTeacherServer({ teacher, maxLogprobs: 64 });
 * try {
 *   const models = await (await fetch(`${server.url}/v1/models`)).json();
 *   if (models.data[0].vocab_size !== teacher.vocabSize) throw new Error("vocab_size is the teacher's");
 * } finally {
 *   await server.close();
 *   teacher.dispose();
 * }
 * ```
 * @module
 */
export { startTeacherServer } from "./server.ts";
export type {
  RunningTeacherServer,
  SlowHit,
  SlowRule,
  TeacherFaultRule,
  TeacherServerOptions,
} from "./server.ts";
