/**
 * `@huggingface/tokenizers` (Tokenizers.js), pinned: Hugging Face's own pure-JS implementation of
 * `tokenizer.json` (no native addon, no dependencies). Library code imports npm packages only through
 * `src/deps/`, so that `mod.ts` can be imported from another folder without this repository's `deno.json`.
 * The version here and in `deno.json` (used by the tests) must be the same.
 * @module
 */
export { Tokenizer } from "npm:@huggingface/tokenizers@0.2.0";
