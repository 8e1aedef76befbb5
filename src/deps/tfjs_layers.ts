/**
 * `@tensorflow/tfjs-layers`, pinned. Library code imports npm packages only through `src/deps/`, so that `mod.ts` can
 * be imported from another folder without this repository's `deno.json` (its import map applies only
 * inside the repository). The version here and in `deno.json` (used by the tests) must be the same.
 * @module
 */
export * from "npm:@tensorflow/tfjs-layers@4.22.0";
