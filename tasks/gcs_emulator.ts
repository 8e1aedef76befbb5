/**
 * `deno task gcs-emulator --port P [--bucket NAME]… [--verbose]`: runs the in-memory GCS emulator on 127.0.0.1
 * until interrupted. Faults are injected with `POST /_emulator/faults` (see docs/gcs.md).
 * @module
 */
import { runMain } from "../src/cli/run_main.ts";
import { intFlag, parseFlags } from "../src/cli/flags.ts";
import { startEmulator } from "../testing/gcs_emulator/server.ts";

await runMain(async () => {
  const { values } = parseFlags(Deno.args, {
    port: { type: "string" },
    bucket: { type: "string", multiple: true },
    verbose: { type: "boolean" },
    help: { type: "boolean" },
  });
  if (values.help) {
    console.log(
      "usage: deno task gcs-emulator --port P [--bucket NAME]... [--verbose]\n" +
        "  --port P       TCP port on 127.0.0.1 (0: any free port; default 4443)\n" +
        "  --bucket NAME  create this bucket at start (repeatable)\n" +
        "  --verbose      print one line per request",
    );
    return 0;
  }
  const port = intFlag("port", values.port, 4443, { min: 0, max: 65535 });
  const emu = await startEmulator({
    port,
    buckets: values.bucket ?? [],
    log: values.verbose ? (line) => console.log(line) : undefined,
  });
  console.log(`GCS emulator listening on ${emu.url}`);
  for (const b of values.bucket ?? []) console.log(`  bucket gs://${b} created`);
  console.log(`  use --gcs-endpoint ${emu.url} (or STORAGE_EMULATOR_HOST=${emu.url}); Ctrl-C stops it`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
  });
  await emu.close();
  return 0;
});
