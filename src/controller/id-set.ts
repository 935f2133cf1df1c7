// Adapter or domain ids (0..255) as a 256-bit set. The mask planner copies a node's masks
// several times per composition (the masks as they are, as they will be, as they were): eight
// words copy in a few nanoseconds where a Set of up to 256 numbers is rebuilt entry by entry.

const WORDS = 8;

/** Set bits of a 32-bit word. */
export function popcount(word: number): number {
  let v = word;
  let n = 0;
  while (v !== 0) {
    v &= v - 1;
    n++;
  }
  return n;
}

/** Read access to a set of ids: a Set<number> or an IdSet. */
export interface Ids {
  has(id: number): boolean;
  [Symbol.iterator](): Iterator<number>;
}

export class IdSet implements Ids {
  readonly #words: Uint32Array;

  private constructor(words: Uint32Array) {
    this.#words = words;
  }

  static of(ids: Iterable<number>): IdSet {
    if (ids instanceof IdSet) return ids.copy();
    const set = new IdSet(new Uint32Array(WORDS));
    for (const id of ids) set.add(id);
    return set;
  }

  copy(): IdSet {
    return new IdSet(this.#words.slice());
  }

  has(id: number): boolean {
    // Ids outside 0..255 are never members (a Set of parsed ids behaves the same).
    return (id | 0) === id && id >= 0 && id < 256 && (this.#words[id >>> 5]! & (1 << (id & 31))) !== 0;
  }

  add(id: number): this {
    if (!Number.isInteger(id) || id < 0 || id > 255) throw new RangeError(`id ${id} is not 0..255`);
    this.#words[id >>> 5]! |= 1 << (id & 31);
    return this;
  }

  delete(id: number): boolean {
    if (!this.has(id)) return false;
    this.#words[id >>> 5]! &= ~(1 << (id & 31));
    return true;
  }

  get size(): number {
    let n = 0;
    for (const word of this.#words) n += popcount(word);
    return n;
  }

  /** How many ids are in exactly one of the two sets. */
  differences(o: IdSet): number {
    let n = 0;
    for (let w = 0; w < WORDS; w++) n += popcount(this.#words[w]! ^ o.#words[w]!);
    return n;
  }

  /** Ascending. */
  *[Symbol.iterator](): IterableIterator<number> {
    for (let w = 0; w < WORDS; w++) {
      const word = this.#words[w]!;
      if (word === 0) continue;
      for (let b = 0; b < 32; b++) if (word & (1 << b)) yield w * 32 + b;
    }
  }
}
