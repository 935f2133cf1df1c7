// Host (zcrypt) requests in flight on queues bound to cex4queue, indexed by apqnIndex. Each
// batch drains at a time on the model's clock; removing a queue from the host driver hands
// its batches back (the kernel's ap_flush_queue: "received" with -EAGAIN).

export interface LoadBatch {
  count: number;
  /** Clock time at which these requests complete; Infinity = never by themselves. */
  drainAt: number;
}

export class HostLoad {
  readonly #batches = new Map<number, LoadBatch[]>();
  #nextDrain = Infinity;

  add(index: number, batch: LoadBatch): void {
    if (batch.count <= 0) return;
    const list = this.#batches.get(index);
    if (list) list.push(batch);
    else this.#batches.set(index, [batch]);
    if (batch.drainAt < this.#nextDrain) this.#nextDrain = batch.drainAt;
  }

  /** Requests in flight on one queue. */
  inFlight(index: number): number {
    const list = this.#batches.get(index);
    if (!list) return 0;
    let n = 0;
    for (const b of list) n += b.count;
    return n;
  }

  /** Removes and returns a queue's batches (flush). */
  take(index: number): LoadBatch[] {
    const list = this.#batches.get(index);
    if (!list) return [];
    this.#batches.delete(index);
    return list;
  }

  /** Completes every batch due at `now`. Cheap when nothing is due. */
  drain(now: number): void {
    if (now < this.#nextDrain) return;
    let next = Infinity;
    for (const [index, list] of this.#batches) {
      const left = list.filter((b) => b.drainAt > now);
      if (left.length === 0) this.#batches.delete(index);
      else {
        if (left.length !== list.length) this.#batches.set(index, left);
        for (const b of left) if (b.drainAt < next) next = b.drainAt;
      }
    }
    this.#nextDrain = next;
  }

  indexes(): number[] {
    return [...this.#batches.keys()];
  }

  clear(): void {
    this.#batches.clear();
    this.#nextDrain = Infinity;
  }
}
