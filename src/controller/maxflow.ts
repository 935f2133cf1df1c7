// Maximum flow / minimum cut (Dinic's algorithm) on a small directed network, plus a way to
// pick ONE minimum cut deterministically by per-node side preferences. The mask planner uses
// it for a weighted bipartite vertex cover; nothing here knows about adapters or domains.
//
// Capacities are non-negative numbers; `Infinity` marks an edge a cut may never cross. Keep
// finite capacities integral and below 2^53 so sums stay exact.

export type CutSide = 'source' | 'sink';

export class FlowNetwork {
  readonly nodeCount: number;
  // Edge e and its residual twin e ^ 1 are stored side by side.
  readonly #to: number[] = [];
  readonly #residual: number[] = [];
  readonly #out: number[][];
  #solved = false;
  #unbounded = false;

  constructor(nodeCount: number) {
    if (!Number.isInteger(nodeCount) || nodeCount < 2) throw new RangeError(`a flow network needs at least 2 nodes, got ${nodeCount}`);
    this.nodeCount = nodeCount;
    this.#out = Array.from({ length: nodeCount }, () => []);
  }

  /** Adds `from -> to` with `capacity`; returns the edge id. */
  addEdge(from: number, to: number, capacity: number): number {
    this.#checkNode(from);
    this.#checkNode(to);
    if (!(capacity >= 0)) throw new RangeError(`capacity must be >= 0, got ${capacity}`);
    if (this.#solved) throw new Error('edges cannot be added after maxFlow()');
    const id = this.#to.length;
    this.#to.push(to, from);
    this.#residual.push(capacity, 0);
    this.#out[from]!.push(id);
    this.#out[to]!.push(id + 1);
    return id;
  }

  /** Remaining capacity of an edge (or of a residual twin) after maxFlow(). */
  residualCapacity(edge: number): number {
    return this.#residual[edge]!;
  }

  /** Runs Dinic's algorithm once; the network keeps the residual graph for the cut queries. */
  maxFlow(source: number, sink: number): number {
    this.#checkNode(source);
    this.#checkNode(sink);
    if (source === sink) throw new RangeError('source and sink must differ');
    if (this.#solved) throw new Error('maxFlow() already ran on this network');
    this.#solved = true;
    let total = 0;
    const level = new Int32Array(this.nodeCount);
    const next = new Int32Array(this.nodeCount);
    while (this.#buildLevels(source, sink, level)) {
      next.fill(0);
      for (;;) {
        const pushed = this.#augment(source, sink, Infinity, level, next);
        if (pushed === 0) break;
        total += pushed;
        if (pushed === Infinity) {
          this.#unbounded = true; // an all-infinite path: no finite cut (residuals are meaningless now)
          return Infinity;
        }
      }
    }
    return total;
  }

  /**
   * Among all minimum cuts, the one chosen by `preferences`, in order: each node goes to its
   * preferred side when some minimum cut agreeing with every earlier decision allows it.
   * Nodes not named end on the sink side unless forced. Call after maxFlow().
   *
   * Why this works: after a maximum flow, the source sides of the minimum cuts are exactly
   * the node sets that contain the source, not the sink, and are closed under residual edges
   * (Picard & Queyranne). Putting v on the source side forces everything v reaches in the
   * residual graph there too; putting v on the sink side forces everything that reaches v.
   * Those closures never contradict earlier ones unless the choice is impossible, so a
   * greedy pass decides each node exactly (lexicographically best cut for the given order).
   */
  preferredMinCut(source: number, sink: number, preferences: ReadonlyArray<{ node: number; side: CutSide }>): CutSide[] {
    if (!this.#solved) throw new Error('preferredMinCut() needs maxFlow() first');
    if (this.#unbounded) throw new Error('no finite minimum cut: an infinite-capacity path joins source and sink');
    const UNDECIDED = 0;
    const SOURCE = 1;
    const SINK = 2;
    const side = new Uint8Array(this.nodeCount);
    const mark = (start: number, value: number, dry: boolean): boolean => {
      // Forward closure for SOURCE, backward closure for SINK. In a dry run, report whether
      // the closure would touch a node already decided the other way.
      const seen = new Uint8Array(this.nodeCount);
      const stack = [start];
      seen[start] = 1;
      while (stack.length > 0) {
        const u = stack.pop()!;
        if (side[u] !== UNDECIDED && side[u] !== value) return false;
        if (!dry) side[u] = value;
        for (const e of this.#out[u]!) {
          // forward: u -> to[e] usable when residual[e] > 0
          // backward: to[e] -> u usable when residual[e ^ 1] > 0
          const usable = value === SOURCE ? this.#residual[e]! > 0 : this.#residual[e ^ 1]! > 0;
          const v = this.#to[e]!;
          if (usable && !seen[v]) {
            seen[v] = 1;
            stack.push(v);
          }
        }
      }
      return true;
    };
    mark(source, SOURCE, false);
    if (!mark(sink, SINK, true)) throw new Error('no finite minimum cut: the sink is reachable in the residual graph');
    mark(sink, SINK, false);
    for (const { node, side: wanted } of preferences) {
      this.#checkNode(node);
      if (side[node] !== UNDECIDED) continue;
      const first = wanted === 'source' ? SOURCE : SINK;
      const other = first === SOURCE ? SINK : SOURCE;
      if (mark(node, first, true)) mark(node, first, false);
      else mark(node, other, false);
    }
    // Leftovers: the sink side is always consistent for an undecided node (nothing decided
    // SOURCE reaches it, or it would have been marked).
    for (let v = 0; v < this.nodeCount; v++) if (side[v] === UNDECIDED) mark(v, SINK, false);
    return Array.from(side, (s) => (s === SOURCE ? 'source' : 'sink'));
  }

  #buildLevels(source: number, sink: number, level: Int32Array): boolean {
    level.fill(-1);
    level[source] = 0;
    const queue = [source];
    for (let head = 0; head < queue.length; head++) {
      const u = queue[head]!;
      for (const e of this.#out[u]!) {
        const v = this.#to[e]!;
        if (level[v] === -1 && this.#residual[e]! > 0) {
          level[v] = level[u]! + 1;
          queue.push(v);
        }
      }
    }
    return level[sink] !== -1;
  }

  #augment(u: number, sink: number, limit: number, level: Int32Array, next: Int32Array): number {
    if (u === sink) return limit;
    const out = this.#out[u]!;
    for (; next[u]! < out.length; next[u]!++) {
      const e = out[next[u]!]!;
      const v = this.#to[e]!;
      if (level[v] !== level[u]! + 1 || !(this.#residual[e]! > 0)) continue;
      const pushed = this.#augment(v, sink, Math.min(limit, this.#residual[e]!), level, next);
      if (pushed > 0) {
        this.#residual[e]! -= pushed;
        this.#residual[e ^ 1]! += pushed;
        return pushed;
      }
    }
    return 0;
  }

  #checkNode(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n >= this.nodeCount) throw new RangeError(`node ${n} is not 0..${this.nodeCount - 1}`);
  }
}
