// The soak's seeded randomness. One seed fixes every choice an actor makes (which reservation,
// which queues, which fault, how long to wait); each actor draws from its own stream, forked
// from the seed by name, so adding an actor does not change what the others choose. What a
// seed cannot fix is the interleaving: the actors, the controller and the agents run on real
// timers against a real API server, so two runs of one seed make the same choices but may see
// them land in a different order.
//
// The generator is a 32-bit counter-based mix (a Weyl sequence through an avalanche
// finalizer): small, fast, and good enough for picking test inputs.

/** 32-bit avalanche of a number (every input bit affects every output bit). */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** A 32-bit hash of a text (for forking streams by name). */
function hashText(text: string, seed: number): number {
  let h = mix32(seed ^ 0x9e3779b9);
  for (let i = 0; i < text.length; i++) h = mix32(h ^ text.charCodeAt(i));
  return h;
}

export class Random {
  #state: number;

  constructor(readonly seed: number) {
    this.#state = mix32(seed >>> 0) ^ 0x5bd1e995;
  }

  /** An independent stream for one actor, named (the same seed and name give the same stream). */
  fork(name: string): Random {
    return new Random(hashText(name, this.seed));
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    return mix32(this.#state) / 4294967296;
  }

  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Random.pick: no items');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** One of the keys, with probability proportional to its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = (Object.entries(weights) as Array<[K, number]>).filter(([, w]) => w > 0);
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    if (total <= 0) throw new Error('Random.weighted: no positive weight');
    let x = this.next() * total;
    for (const [key, w] of entries) {
      x -= w;
      if (x < 0) return key;
    }
    return entries[entries.length - 1]![0];
  }

  /** `count` distinct items, in random order (all of them when there are fewer). */
  sample<T>(items: readonly T[], count: number): T[] {
    return this.shuffle(items).slice(0, Math.max(0, count));
  }

  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
}
