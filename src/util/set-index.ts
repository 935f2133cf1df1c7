// A one-to-many index (key → set of values) that forgets a key once its set is empty, so an
// index kept from informer events does not grow with every name it has ever seen.
export class SetIndex<K, V> {
  private readonly sets = new Map<K, Set<V>>();

  add(key: K, value: V): void {
    let set = this.sets.get(key);
    if (!set) this.sets.set(key, (set = new Set()));
    set.add(value);
  }

  remove(key: K, value: V): void {
    const set = this.sets.get(key);
    if (!set) return;
    set.delete(value);
    if (set.size === 0) this.sets.delete(key);
  }

  /** The values of `key` (an empty set when it has none). */
  get(key: K): ReadonlySet<V> {
    return this.sets.get(key) ?? EMPTY;
  }
}

const EMPTY: ReadonlySet<never> = new Set();
