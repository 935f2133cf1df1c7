// Mask planning for nodes in mask mode: which apmask (adapter) and aqmask (domain) bits to
// clear so that every reserved APQN leaves the host, displacing as few other host queues as
// possible. Pure: sets of numeric ids in, a plan out.
//
// THE OBJECTIVE. A queue (a,d) is host-owned iff a ∈ apmask and d ∈ aqmask. Clearing the
// bits X ⊆ apmask and Y ⊆ aqmask frees reserved pair (a,d) iff a ∈ X or d ∈ Y, and displaces
// every other host queue in a cleared row or column. What we really want to minimise is
//
//     displaced(X, Y) = Σ { w(a,d) : (a,d) host, not reserved, a ∈ X or d ∈ Y }
//                     = Σ_{a∈X} row(a) + Σ_{d∈Y} col(d) − Σ_{a∈X, d∈Y} w(a,d)
//
// subject to X × Y covering every reserved pair. The last term is the overlap: a queue in a
// cleared row AND a cleared column moves once, not twice. Without it this would be a plain
// weighted bipartite vertex cover (vertex weights row(a), col(d)), which a min cut solves
// exactly. With it the problem is NP-hard: take unit weights on a full grid of host queues;
// the queues that STAY are exactly A'×D' for the kept rows A' and columns D', and A'×D' may
// contain no reserved pair, so minimising displaced queues is maximising |A'|·|D'| over
// bicliques of the bipartite complement of the reserved set — the Maximum Edge Biclique
// problem, NP-complete on bipartite graphs (Peeters, Discrete Appl. Math. 131, 2003). Any
// bipartite graph is such a complement, because 1×1 reservations can form any pattern.
//
// WHAT THE PLANNER DOES, therefore:
//  1. Exact, when the reserved pairs touch few adapters or few domains (≤ exactSideLimit on
//     the smaller side, default 12 — the usual case: reservations use a handful of cards).
//     Fixing the cleared set on the small side forces the other side (it must cover every
//     pair left uncovered, and clearing more never helps), so enumerating 2^k subsets
//     solves the true objective.
//  2. Otherwise the vertex-cover relaxation, exactly, by min cut — its value over-counts
//     the overlap, so it is an upper bound on the displaced weight of the cover it picks —
//     followed by a local search on the true objective (swap one cleared bit for its
//     uncovered neighbours, or add a bit and drop what became redundant). The plan reports
//     the true displaced set either way, and never does worse than the min-cut cover.
//
// Plans are irredundant: every cleared bit frees a pair the other cleared bits leave on the
// host (dropping a redundant bit never displaces more). Every comparison uses one total order,
// so plans are deterministic:
//   (protected queues displaced, displaced weight, bits changed from the preferred (cleared now)
//    ones, number of bits cleared, lowest ids first: adapters ascending, then domains ascending).
// Without preferred bits, "changed" counts the bits cleared, and the order is as without it.
// With them, a tie on displacement keeps what the node has: re-planning a node whose
// reservations came and went does not flip between equally good plans (each flip is a spec
// generation, a mask write on the node and a message on every reservation there).
// Protected queues (held by `driver: host` reservations, weight Infinity) are counted apart
// and first: a plan displaces one only when no plan avoids it, and reports it as a conflict.

import { type Apqn, apqnFromIndex, apqnIndex, formatApqn } from '../apbus/ids.js';
import { FlowNetwork } from './maxflow.js';
import type { Ids } from './id-set.js';

export { releasePlan } from './mask-bits.js';

/** Weight of a queue held by a `driver: host` reservation: never displaced silently. */
export const PROTECTED = Infinity;

export interface HostQueue {
  readonly apqn: Apqn;
  /** Cost of displacing it: a non-negative integer, default 1; PROTECTED (Infinity) for host reservations. */
  readonly weight?: number;
}

export interface MaskPlanInput {
  /** Adapters whose apmask bit is set (host-owned rows). */
  readonly apmask: Ids;
  /** Domains whose aqmask bit is set (host-owned columns). */
  readonly aqmask: Ids;
  /** Pairs that must leave the host (held by vfio_ap reservations). Pairs already outside the masks are free already. */
  readonly reserved: Iterable<Apqn>;
  /** Existing host queues. Entries outside the masks are ignored (they are not host-owned). */
  readonly hostQueues: Iterable<HostQueue>;
}

export interface MaskPlanOptions {
  /** Solve exactly when the reserved pairs touch at most this many ids on their smaller side (default 12; 0 = never). */
  readonly exactSideLimit?: number;
  /** Bits cleared now: among plans that displace as much, the one changing fewest of these wins. */
  readonly prefer?: { readonly adapters: ReadonlySet<number>; readonly domains: ReadonlySet<number> };
}

export type PlanMethod = 'nothing-to-free' | 'exact' | 'min-cut' | 'min-cut+local-search';

export interface MaskPlan {
  clearAdapters: number[];
  clearDomains: number[];
  /** Host queues, not reserved, that the plan takes from the host (protected ones included), APQN order. */
  displacedQueues: string[];
  /** Protected queues the plan would take from the host: a conflict to report, never a silent move. */
  conflicts: string[];
  /** Reserved pairs that cannot be freed without displacing a protected queue. */
  blockedPairs: string[];
  /** Σ weights of the displaced non-protected queues (the true objective, not the relaxation). */
  displacedWeight: number;
  method: PlanMethod;
}

export const DEFAULT_EXACT_SIDE_LIMIT = 12;

// ---------------------------------------------------------------------------------------------

interface Cost {
  protectedCount: number;
  weight: number;
}

/** A candidate plan: cleared[v] for every vertex v (adapters first, then domains). */
export type Cover = Uint8Array;

/** The reserved pairs still inside the masks, as a bipartite graph, with the cost data. */
export class MaskProblem {
  /** Adapters / domains touched by a pair that must be freed, ascending. Vertex ids: adapters 0..nA-1, domains nA.. */
  readonly adapters: number[];
  readonly domains: number[];
  /** neighbours[v]: vertices joined to v by a pair to free. */
  readonly neighbours: number[][];
  readonly rowCost: Cost[];
  readonly colCost: Cost[];
  /** Host, non-reserved queues inside the masks: apqnIndex -> weight (PROTECTED allowed). */
  readonly hostCells: Map<number, number>;
  readonly protectedReserved: number[];
  /** preferred[v]: 1 when v's bit is cleared now (MaskPlanOptions.prefer). */
  readonly preferred: Cover;
  readonly #vertexOfAdapter = new Map<number, number>();
  readonly #vertexOfDomain = new Map<number, number>();

  constructor(input: MaskPlanInput, prefer?: MaskPlanOptions['prefer']) {
    const { apmask, aqmask } = input;
    const reserved = new Set<number>();
    for (const q of input.reserved) reserved.add(apqnIndex(q.adapter, q.domain));
    const toFree = [...reserved].filter((i) => {
      const q = apqnFromIndex(i);
      return apmask.has(q.adapter) && aqmask.has(q.domain);
    });
    toFree.sort((x, y) => x - y);

    this.hostCells = new Map();
    const protectedReserved: number[] = [];
    for (const hq of input.hostQueues) {
      const w = hq.weight ?? 1;
      if (!(w === PROTECTED || (Number.isSafeInteger(w) && w >= 0))) {
        throw new RangeError(`weight of ${formatApqn(hq.apqn)} must be a non-negative integer or PROTECTED, got ${w}`);
      }
      if (!apmask.has(hq.apqn.adapter) || !aqmask.has(hq.apqn.domain)) continue;
      const i = apqnIndex(hq.apqn.adapter, hq.apqn.domain);
      if (reserved.has(i)) {
        if (w === PROTECTED) protectedReserved.push(i);
        continue;
      }
      this.hostCells.set(i, Math.max(w, this.hostCells.get(i) ?? 0));
    }
    this.protectedReserved = [...new Set(protectedReserved)].sort((x, y) => x - y);

    this.adapters = [...new Set(toFree.map((i) => i >> 8))].sort((x, y) => x - y);
    this.domains = [...new Set(toFree.map((i) => i & 0xff))].sort((x, y) => x - y);
    this.adapters.forEach((a, v) => this.#vertexOfAdapter.set(a, v));
    this.domains.forEach((d, j) => this.#vertexOfDomain.set(d, this.adapters.length + j));
    this.neighbours = Array.from({ length: this.vertexCount }, () => []);
    for (const i of toFree) {
      const va = this.#vertexOfAdapter.get(i >> 8)!;
      const vd = this.#vertexOfDomain.get(i & 0xff)!;
      this.neighbours[va]!.push(vd);
      this.neighbours[vd]!.push(va);
    }

    this.preferred = prefer
      ? Uint8Array.from({ length: this.vertexCount }, (_, v) =>
          (this.isAdapter(v) ? prefer.adapters.has(this.adapters[v]!) : prefer.domains.has(this.domains[v - this.adapters.length]!)) ? 1 : 0,
        )
      : new Uint8Array(this.vertexCount);

    const zero = (): Cost => ({ protectedCount: 0, weight: 0 });
    this.rowCost = this.adapters.map(zero);
    this.colCost = this.domains.map(zero);
    for (const [i, w] of this.hostCells) {
      const va = this.#vertexOfAdapter.get(i >> 8);
      const vd = this.#vertexOfDomain.get(i & 0xff);
      if (va !== undefined) addCost(this.rowCost[va]!, w);
      if (vd !== undefined) addCost(this.colCost[vd - this.adapters.length]!, w);
    }
  }

  get vertexCount(): number {
    return this.adapters.length + this.domains.length;
  }

  isAdapter(v: number): boolean {
    return v < this.adapters.length;
  }

  /** Vertex-cover weight of v (row or column cost, overlap not subtracted). */
  vertexCost(v: number): Cost {
    return this.isAdapter(v) ? this.rowCost[v]! : this.colCost[v - this.adapters.length]!;
  }

  isCover(cover: Cover): boolean {
    for (let v = 0; v < this.adapters.length; v++) {
      if (cover[v]) continue;
      for (const u of this.neighbours[v]!) if (!cover[u]) return false;
    }
    return true;
  }

  /** True displaced cost of a cover: rows + columns − the overlap counted twice. */
  trueCost(cover: Cover): Cost {
    const cost: Cost = { protectedCount: 0, weight: 0 };
    const rows: number[] = [];
    const cols: number[] = [];
    for (let v = 0; v < this.vertexCount; v++) {
      if (!cover[v]) continue;
      const c = this.vertexCost(v);
      cost.protectedCount += c.protectedCount;
      cost.weight += c.weight;
      if (this.isAdapter(v)) rows.push(this.adapters[v]!);
      else cols.push(this.domains[v - this.adapters.length]!);
    }
    for (const a of rows) {
      for (const d of cols) {
        const w = this.hostCells.get(a * 256 + d);
        if (w === undefined) continue;
        if (w === PROTECTED) cost.protectedCount--;
        else cost.weight -= w;
      }
    }
    return cost;
  }

  /** Vertex-cover (relaxed) cost: overlap counted in both its row and its column. */
  relaxedCost(cover: Cover): Cost {
    const cost: Cost = { protectedCount: 0, weight: 0 };
    for (let v = 0; v < this.vertexCount; v++) {
      if (!cover[v]) continue;
      const c = this.vertexCost(v);
      cost.protectedCount += c.protectedCount;
      cost.weight += c.weight;
    }
    return cost;
  }

  /** The planners' total order; negative when `a` is the better plan. */
  compare(a: Cover, costA: Cost, b: Cover, costB: Cost): number {
    return (
      costA.protectedCount - costB.protectedCount ||
      costA.weight - costB.weight ||
      this.changes(a) - this.changes(b) ||
      countBits(a) - countBits(b) ||
      compareLowestIdsFirst(a, b)
    );
  }

  /** Bits the cover sets differently from the preferred ones. */
  changes(cover: Cover): number {
    let n = 0;
    for (let v = 0; v < cover.length; v++) if (cover[v] !== this.preferred[v]) n++;
    return n;
  }

  coverOf(clearAdapters: Iterable<number>, clearDomains: Iterable<number>): Cover {
    const cover = new Uint8Array(this.vertexCount);
    for (const a of clearAdapters) {
      const v = this.#vertexOfAdapter.get(a);
      if (v !== undefined) cover[v] = 1;
    }
    for (const d of clearDomains) {
      const v = this.#vertexOfDomain.get(d);
      if (v !== undefined) cover[v] = 1;
    }
    return cover;
  }
}

function addCost(c: Cost, w: number): void {
  if (w === PROTECTED) c.protectedCount++;
  else c.weight += w;
}

function countBits(cover: Cover): number {
  let n = 0;
  for (const b of cover) n += b;
  return n;
}

/** Equal-cost tie-break: the plan clearing the earliest vertex (lowest adapter, then lowest domain) wins. */
function compareLowestIdsFirst(a: Cover, b: Cover): number {
  for (let v = 0; v < a.length; v++) if (a[v] !== b[v]) return a[v] ? -1 : 1;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Solvers

/**
 * The minimum vertex cover of the relaxation (row and column costs added, overlap counted
 * twice), exactly, by min cut: source → adapter (its row cost), adapter → domain (∞, one per
 * pair to free), domain → sink (its column cost). A finite cut must cut s→a or d→t for every
 * pair: a on the sink side = adapter bit cleared, d on the source side = domain bit cleared.
 * Capacities encode the whole order: ((protected·P + weight)·M + 1) with P above any
 * relaxed weight and M above any bit count, then the lowest-ids preference picks among the
 * minimum cuts.
 */
export function minCutCover(problem: MaskProblem): Cover {
  const n = problem.vertexCount;
  let totalProtected = 0;
  let totalWeight = 0;
  for (let v = 0; v < n; v++) {
    totalProtected += problem.vertexCost(v).protectedCount;
    totalWeight += problem.vertexCost(v).weight;
  }
  const P = totalWeight + 1;
  const M = n + 1;
  if (!Number.isSafeInteger((totalProtected * P + totalWeight) * M + M)) {
    throw new RangeError('mask plan weights are too large to plan exactly; use small integer weights');
  }
  const SOURCE = 0;
  const SINK = 1;
  const net = new FlowNetwork(n + 2);
  for (let v = 0; v < n; v++) {
    const c = problem.vertexCost(v);
    const capacity = (c.protectedCount * P + c.weight) * M + 1;
    if (problem.isAdapter(v)) net.addEdge(SOURCE, v + 2, capacity);
    else net.addEdge(v + 2, SINK, capacity);
  }
  for (let v = 0; problem.isAdapter(v) && v < n; v++) {
    for (const u of problem.neighbours[v]!) net.addEdge(v + 2, u + 2, Infinity);
  }
  net.maxFlow(SOURCE, SINK);
  const preferences = Array.from({ length: n }, (_, v) => ({
    node: v + 2,
    side: problem.isAdapter(v) ? ('sink' as const) : ('source' as const), // "cleared" side
  }));
  const side = net.preferredMinCut(SOURCE, SINK, preferences);
  const cover = new Uint8Array(n);
  for (let v = 0; v < n; v++) cover[v] = (side[v + 2] === 'sink') === problem.isAdapter(v) ? 1 : 0;
  return cover;
}

/** Exact optimum of the true objective by enumerating the smaller side (2^k covers). */
export function exactCover(problem: MaskProblem): Cover {
  const nA = problem.adapters.length;
  const n = problem.vertexCount;
  const smallIsAdapters = nA <= n - nA;
  const small = smallIsAdapters ? range(0, nA) : range(nA, n);
  if (small.length > 24) throw new RangeError(`exact mask planning over ${small.length} ids is too large`);
  let best: Cover | undefined;
  let bestCost: Cost | undefined;
  for (let subset = 0; subset < 1 << small.length; subset++) {
    const cover = new Uint8Array(n);
    small.forEach((v, bit) => {
      if (subset & (1 << bit)) cover[v] = 1;
      else for (const u of problem.neighbours[v]!) cover[u] = 1; // forced: cover what v leaves open
    });
    // A small-side bit all of whose pairs the forced side frees anyway is redundant; the same
    // cover without it is enumerated too. Skipping these keeps every plan irredundant, which
    // matters once preferred bits are in the order (the operator gives redundant bits back).
    if (small.some((v) => cover[v] && problem.neighbours[v]!.every((u) => cover[u]))) continue;
    const cost = problem.trueCost(cover);
    if (!best || problem.compare(cover, cost, best, bestCost!) < 0) {
      best = cover;
      bestCost = cost;
    }
  }
  return best!;
}

/**
 * Steepest-descent on the true objective from a valid cover. Moves: un-clear one bit and
 * clear its uncovered neighbours; or clear one more bit. Either is followed by dropping bits
 * that became redundant (highest ids first). Each accepted move is strictly better in the
 * total order, so this stops.
 */
export function improveCover(problem: MaskProblem, start: Cover): Cover {
  let current = start;
  let currentCost = problem.trueCost(current);
  for (;;) {
    let best: Cover | undefined;
    let bestCost: Cost | undefined;
    for (let v = 0; v < problem.vertexCount; v++) {
      const next = current.slice();
      if (next[v]) {
        next[v] = 0;
        for (const u of problem.neighbours[v]!) next[u] = 1;
      } else {
        next[v] = 1;
      }
      dropRedundant(problem, next);
      const cost = problem.trueCost(next);
      if (problem.compare(next, cost, best ?? current, bestCost ?? currentCost) < 0) {
        best = next;
        bestCost = cost;
      }
    }
    if (!best) return current;
    current = best;
    currentCost = bestCost!;
  }
}

function dropRedundant(problem: MaskProblem, cover: Cover): void {
  for (let v = problem.vertexCount - 1; v >= 0; v--) {
    if (cover[v] && problem.neighbours[v]!.every((u) => cover[u])) cover[v] = 0;
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

// ---------------------------------------------------------------------------------------------

/** Chooses the bits to clear; see the top of this file for the objective. */
export function planMaskClears(input: MaskPlanInput, options: MaskPlanOptions = {}): MaskPlan {
  const problem = new MaskProblem(input, options.prefer);
  const limit = options.exactSideLimit ?? DEFAULT_EXACT_SIDE_LIMIT;
  let cover: Cover;
  let method: PlanMethod;
  if (problem.vertexCount === 0) {
    cover = new Uint8Array(0);
    method = 'nothing-to-free';
  } else if (Math.min(problem.adapters.length, problem.domains.length) <= limit) {
    cover = exactCover(problem);
    method = 'exact';
  } else {
    const cut = minCutCover(problem);
    cover = improveCover(problem, cut);
    method = compareLowestIdsFirst(cover, cut) === 0 ? 'min-cut' : 'min-cut+local-search';
  }
  return describePlan(problem, input, cover, method);
}

/** The plan for a given cover: what it clears, displaces and conflicts with. */
export function describePlan(problem: MaskProblem, input: MaskPlanInput, cover: Cover, method: PlanMethod): MaskPlan {
  const clearAdapters = problem.adapters.filter((_, v) => cover[v]);
  const clearDomains = problem.domains.filter((_, j) => cover[problem.adapters.length + j]);
  const rows = new Set(clearAdapters);
  const cols = new Set(clearDomains);
  const displaced: number[] = [];
  const conflicts: number[] = [...problem.protectedReserved];
  let displacedWeight = 0;
  for (const [i, w] of problem.hostCells) {
    if (!rows.has(i >> 8) && !cols.has(i & 0xff)) continue;
    displaced.push(i);
    if (w === PROTECTED) conflicts.push(i);
    else displacedWeight += w;
  }
  const protectedRow = new Set<number>();
  const protectedCol = new Set<number>();
  for (const [i, w] of problem.hostCells) {
    if (w !== PROTECTED) continue;
    protectedRow.add(i >> 8);
    protectedCol.add(i & 0xff);
  }
  const protectedReserved = new Set(problem.protectedReserved);
  const blocked: number[] = [];
  for (const q of input.reserved) {
    const i = apqnIndex(q.adapter, q.domain);
    if (!input.apmask.has(q.adapter) || !input.aqmask.has(q.domain)) continue;
    if (protectedReserved.has(i) || (protectedRow.has(q.adapter) && protectedCol.has(q.domain))) blocked.push(i);
  }
  return {
    clearAdapters,
    clearDomains,
    displacedQueues: formatSorted(displaced),
    conflicts: formatSorted(conflicts),
    blockedPairs: formatSorted(blocked),
    displacedWeight,
    method,
  };
}

function formatSorted(indices: Iterable<number>): string[] {
  return [...new Set(indices)].sort((x, y) => x - y).map((i) => formatApqn(apqnFromIndex(i)));
}
