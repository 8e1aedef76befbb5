/**
 * The TypeScript standard-library declarations as a corpus (`builtin:tslib`): the `lib/lib.*.d.ts` files of
 * the npm package `typescript` (pinned in `src/deps/typescript_lib.ts`), without the worker libraries (which
 * repeat most of `lib.dom.d.ts`), cut into documents of {@linkcode TSLIB_DOC_LINES} lines, and the
 * train / held-out split.
 *
 * Source code is far more predictable than 1960s prose: a small model trained on it puts most of its
 * probability on a few tokens, like a large LM does on natural text (the point of the second teacher).
 * @module
 */
import { join } from "node:path";
import { TYPESCRIPT_VERSION, typescriptLibDir } from "../deps/typescript_lib.ts";
import { SparsekdError } from "../errors.ts";
import type { DemoSplit } from "./brown.ts";

/** Where the corpus came from, for descriptions and cache keys. */
export const TSLIB_VERSION = `typescript@${TYPESCRIPT_VERSION}`;

/** Lines per document: each file is cut into runs of this many lines (its last one shorter). */
export const TSLIB_DOC_LINES = 100;

/** One document of the corpus. */
export interface TslibDocument {
  /** `<file>:<first line>`, e.g. `lib.es5.d.ts:101` (lines of the normalized text, from 1). */
  id: string;
  /** The document's lines, each followed by `\n`. */
  text: string;
}

/**
 * The folder that holds the `lib.*.d.ts` files.
 *
 * @example
 * ```ts
 * const dir = tslibDir();
 * ```
 */
export function tslibDir(): string {
  try {
    return typescriptLibDir();
  } catch (err) {
    throw new SparsekdError(`cannot locate the typescript package files (${String(err).split("\n")[0]})`);
  }
}

/**
 * Whether a file of the package's `lib/` folder is part of the corpus: `lib.<name>.d.ts`, except the worker
 * libraries (`webworker`, `sharedworker`, `serviceworker`, `audioworklet`), which largely duplicate the DOM's.
 *
 * @example
 * ```ts
 * isTslibFile("lib.es5.d.ts"); // true
 * isTslibFile("lib.webworker.d.ts"); // false
 * ```
 */
export function isTslibFile(name: string): boolean {
  return /^lib\.[a-z0-9.]+\.d\.ts$/.test(name) && !/worker|worklet/.test(name);
}

/**
 * Normalizes one declaration file: the leading licence comment (`/*! … *\/`, the same in every file) is
 * dropped, line ends become `\n`, trailing blanks are trimmed, runs of blank lines become one, and leading
 * and trailing blank lines go.
 *
 * @example
 * ```ts
 * normalizeTslib("/*! licence *\/\r\n\r\n\r\ndeclare var NaN: number;  \n"); // "declare var NaN: number;"
 * ```
 */
export function normalizeTslib(text: string): string {
  let t = text.replace(/\r\n?/g, "\n");
  const header = /^\s*\/\*![\s\S]*?\*\//.exec(t);
  if (header) t = t.slice(header[0].length);
  return t.split("\n").map((l) => l.trimEnd()).join("\n").replace(/\n{3,}/g, "\n\n").trim();
}

/**
 * Whether the document at position `index` (over all documents, in file-name then line order) belongs to
 * `split`: every 10th document (index 9, 19, …) is held out.
 *
 * @example
 * ```ts
 * tslibInSplit(19, "heldout"); // true
 * ```
 */
export function tslibInSplit(index: number, split: DemoSplit): boolean {
  return (index % 10 === 9) === (split === "heldout");
}

/**
 * The sorted names of the corpus files.
 *
 * @example
 * ```ts
 * const names = await tslibFileNames(); // ["lib.d.ts", "lib.decorators.d.ts", …]
 * ```
 */
export async function tslibFileNames(dir = tslibDir()): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && isTslibFile(e.name)) names.push(e.name);
  }
  if (names.length === 0) throw new SparsekdError(`no lib.*.d.ts files in ${dir}`);
  return names.sort();
}

/**
 * Yields the documents of one split in order (one file in memory at a time): each normalized file cut into
 * runs of {@linkcode TSLIB_DOC_LINES} lines, numbered across files; every 10th is held out.
 *
 * @example
 * ```ts
 * for await (const doc of tslibDocuments("heldout")) console.log(doc.id, doc.text.length);
 * ```
 */
export async function* tslibDocuments(split: DemoSplit): AsyncGenerator<TslibDocument> {
  const dir = tslibDir();
  let index = 0;
  for (const name of await tslibFileNames(dir)) {
    const text = normalizeTslib(await Deno.readTextFile(join(dir, name)));
    if (text === "") continue;
    const lines = text.split("\n");
    for (let a = 0; a < lines.length; a += TSLIB_DOC_LINES) {
      if (tslibInSplit(index++, split)) {
        const doc = lines.slice(a, a + TSLIB_DOC_LINES);
        yield { id: `${name}:${a + 1}`, text: doc.join("\n") + "\n" };
      }
    }
  }
}
