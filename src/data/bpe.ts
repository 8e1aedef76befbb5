/**
 * A byte-level BPE tokenizer that the toolkit trains itself (deterministically), GPT-2 style: text is split
 * into pre-tokens (a word with its leading space, a number, a run of punctuation, whitespace), each
 * pre-token's UTF-8 bytes are merged by the learned merge list in rank order.
 *
 * Ids: 0..255 are the bytes, 256 is the end-of-text token, 257.. are the merges in order.
 * @module
 */
import { SparsekdError } from "../errors.ts";

/** Id of the end-of-text token that separates documents. */
export const END_OF_TEXT = 256;
const FIRST_MERGE = 257;
const PRETOKEN = / ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** The JSON form of a trained tokenizer (the committed asset). */
export interface BpeJson {
  /** Format marker. */
  format: "sparsekd-byte-bpe-v1";
  /** Total vocabulary: 256 bytes + end-of-text + merges. */
  vocabSize: number;
  /** Id of the end-of-text token (256). */
  endOfText: number;
  /** Where the tokenizer was trained (free text). */
  trainedOn: string;
  /** Merges in rank order: merge i makes id 257+i out of the pair [left, right]. */
  merges: [number, number][];
}

/** `s` with every non-overlapping pair `l r`, left to right, replaced by the merged token `id`. */
function applyMerge(s: readonly number[], l: number, r: number, id: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (i + 1 < s.length && s[i] === l && s[i + 1] === r) {
      out.push(id);
      i++;
    } else out.push(s[i]);
  }
  return out;
}

/** Splits text into pre-tokens (the units BPE merges never cross). */
function pretokens(text: string): string[] {
  return text.match(PRETOKEN) ?? [];
}

/**
 * A trained byte-level BPE tokenizer.
 *
 * @example
 * ```ts
 * const bpe = BpeTokenizer.train(new Map([["the cat", 3]]), 300, "example");
 * const ids = bpe.encode("the cat");
 * console.log(bpe.decode(ids)); // "the cat"
 * ```
 */
export class BpeTokenizer {
  /** Vocabulary size. */
  readonly vocabSize: number;
  /** End-of-text id. */
  readonly endOfText = END_OF_TEXT;
  readonly #json: BpeJson;
  readonly #rank = new Map<number, number>(); // pair key → merge index
  readonly #bytes: Uint8Array[] = [];
  readonly #cache = new Map<string, Uint32Array>();
  readonly #enc = new TextEncoder();

  private constructor(json: BpeJson) {
    this.#json = json;
    this.vocabSize = FIRST_MERGE + json.merges.length;
    for (let b = 0; b < 256; b++) this.#bytes.push(Uint8Array.of(b));
    this.#bytes.push(this.#enc.encode("<|endoftext|>"));
    json.merges.forEach(([l, r], i) => {
      const id = FIRST_MERGE + i;
      if (!(l >= 0 && r >= 0 && l < id && r < id && l !== END_OF_TEXT && r !== END_OF_TEXT)) {
        throw new SparsekdError(`tokenizer: merge ${i} [${l}, ${r}] refers to an unknown id`);
      }
      this.#rank.set(l * 65536 + r, i);
      const a = this.#bytes[l], b = this.#bytes[r];
      const both = new Uint8Array(a.length + b.length);
      both.set(a);
      both.set(b, a.length);
      this.#bytes.push(both);
    });
  }

  /**
   * Restores a tokenizer from its JSON form.
   *
   * @example
   * ```ts
   * const bpe = BpeTokenizer.fromJSON(JSON.parse(await Deno.readTextFile("tok.json")));
   * ```
   */
  static fromJSON(json: BpeJson): BpeTokenizer {
    if (json?.format !== "sparsekd-byte-bpe-v1" || !Array.isArray(json.merges)) {
      throw new SparsekdError("tokenizer: not a sparsekd-byte-bpe-v1 JSON file");
    }
    const bpe = new BpeTokenizer(json);
    if (bpe.vocabSize !== json.vocabSize) {
      throw new SparsekdError(`tokenizer: vocabSize ${json.vocabSize} ≠ 257 + ${json.merges.length} merges`);
    }
    return bpe;
  }

  /**
   * Trains on a text-frequency table (each key is split into pre-tokens) until the vocabulary reaches
   * `vocabSize` or no pair occurs twice. Deterministic: ties go to the smallest (left, right) pair.
   *
   * @example
   * ```ts
   * const bpe = BpeTokenizer.train(new Map([["low lower lowest", 1]]), 260, "example");
   * ```
   */
  static train(texts: Map<string, number>, vocabSize: number, trainedOn: string): BpeTokenizer {
    if (!Number.isInteger(vocabSize) || vocabSize < FIRST_MERGE || vocabSize > 65536) {
      throw new SparsekdError(`tokenizer: vocabSize must be in [${FIRST_MERGE}, 65536] (got ${vocabSize})`);
    }
    const enc = new TextEncoder();
    const freq = new Map<string, number>();
    for (const [text, n] of texts) {
      for (const p of pretokens(text)) freq.set(p, (freq.get(p) ?? 0) + n);
    }
    const words: number[][] = [];
    const counts: number[] = [];
    for (const [w, n] of freq) {
      words.push(Array.from(enc.encode(w)));
      counts.push(n);
    }
    const pairCount = new Map<number, number>();
    const pairWords = new Map<number, Set<number>>();
    const add = (wi: number, sign: number) => {
      const s = words[wi], c = counts[wi] * sign;
      for (let i = 0; i + 1 < s.length; i++) {
        const key = s[i] * 65536 + s[i + 1];
        const v = (pairCount.get(key) ?? 0) + c;
        if (v === 0) pairCount.delete(key);
        else pairCount.set(key, v);
        if (sign > 0) {
          let set = pairWords.get(key);
          if (!set) pairWords.set(key, set = new Set());
          set.add(wi);
        }
      }
    };
    for (let wi = 0; wi < words.length; wi++) add(wi, 1);
    const merges: [number, number][] = [];
    while (FIRST_MERGE + merges.length < vocabSize) {
      let best = -1, bestCount = 1;
      for (const [key, c] of pairCount) {
        if (c > bestCount || (c === bestCount && best >= 0 && key < best)) {
          best = key;
          bestCount = c;
        }
      }
      if (best < 0) break;
      const l = Math.floor(best / 65536), r = best % 65536, id = FIRST_MERGE + merges.length;
      merges.push([l, r]);
      const affected = pairWords.get(best) ?? new Set<number>();
      pairWords.delete(best);
      for (const wi of affected) {
        const s = words[wi];
        let has = false;
        for (let i = 0; i + 1 < s.length; i++) if (s[i] === l && s[i + 1] === r) has = true;
        if (!has) continue;
        add(wi, -1);
        words[wi] = applyMerge(s, l, r, id);
        add(wi, 1);
      }
    }
    return new BpeTokenizer({
      format: "sparsekd-byte-bpe-v1",
      vocabSize: FIRST_MERGE + merges.length,
      endOfText: END_OF_TEXT,
      trainedOn,
      merges,
    });
  }

  /** The JSON form (what `fromJSON` reads). */
  toJSON(): BpeJson {
    return this.#json;
  }

  /**
   * Encodes text to token ids (never emits end-of-text: add it between documents yourself).
   *
   * @example
   * ```ts
   * const ids = bpe.encode("the jury said , `` no evidence ''");
   * ```
   */
  encode(text: string): Uint32Array {
    const out: number[] = [];
    for (const p of pretokens(text)) {
      for (const id of this.#encodePretoken(p)) out.push(id);
    }
    return Uint32Array.from(out);
  }

  /**
   * Decodes token ids back to text (end-of-text decodes as `<|endoftext|>`); an id outside the vocabulary
   * is a {@linkcode SparsekdError}.
   *
   * @example
   * ```ts
   * const text = bpe.decode(bpe.encode("hello"));
   * ```
   */
  decode(ids: ArrayLike<number>): string {
    let n = 0;
    for (let i = 0; i < ids.length; i++) {
      const b = this.#bytes[ids[i]];
      if (!b) {
        throw new SparsekdError(`tokenizer: id ${ids[i]} is outside the vocabulary of ${this.vocabSize}`);
      }
      n += b.length;
    }
    const out = new Uint8Array(n);
    let o = 0;
    for (let i = 0; i < ids.length; i++) {
      const b = this.#bytes[ids[i]];
      out.set(b, o);
      o += b.length;
    }
    return new TextDecoder().decode(out);
  }

  #encodePretoken(p: string): Uint32Array {
    const hit = this.#cache.get(p);
    if (hit) return hit;
    let s: number[] = Array.from(this.#enc.encode(p));
    for (;;) {
      let bestRank = Infinity, bestAt = -1;
      for (let i = 0; i + 1 < s.length; i++) {
        const rank = this.#rank.get(s[i] * 65536 + s[i + 1]);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          bestAt = i;
        }
      }
      if (bestAt < 0) break;
      const [l, r] = this.#json.merges[bestRank];
      const id = FIRST_MERGE + bestRank;
      s = applyMerge(s, l, r, id);
    }
    const ids = Uint32Array.from(s);
    if (this.#cache.size < 200_000) this.#cache.set(p, ids);
    return ids;
  }
}
