// The cluster decision (placement.ts), kept up to date incrementally instead of recomputed per
// reconcile. Why it can be: a queue is contested on one node only, so conflicts, explicit
// placements and mask plans depend on one node's reservations and its APNodeState; only the
// request pool (request-based reservations not placed yet) looks at every node.
//
//   inputs (set by informer events, O(1) each: they only mark things dirty)
//     reservations, claims, APNodeStates, node labels
//   per reservation: steps 1–2 (preDecide) → its home: a node, the request pool (''), or none
//   per dirty node:  step 3 (resolvePlacements) over the reservations whose home it is
//   the request pool: step 4 (scheduleRequests), only while it is not empty
//   per node:        step 5 (composeNode) over its holders
//
// refresh() does the work for everything marked dirty since the last call, so a burst of
// events costs one recomputation per node touched. A spec is validated once per (uid,
// generation) and an mdev UUID derived once per uid. decideCluster over view() must equal
// what this keeps (test/controller/decision-cache.test.ts checks it on randomized clusters).
import type { APNodeState, APQNClaim, APQNReservation } from '../api/types.js';
import { reservationKey } from '../api/types.js';
import { deepEqual } from '../k8s/merge-patch.js';
import { boundClaimOf, byAge, type ClusterView } from './cluster-view.js';
import { SetIndex } from '../util/set-index.js';
import { mdevUuidFor } from './mdev-uuid.js';
import type { NodeComposition, NodeMember } from './node-spec.js';
import {
  candidateOf,
  composeNode,
  heldQueues,
  homeOf,
  placementInSpec,
  preDecide,
  resolvePlacements,
  scheduleRequests,
  validateReservation,
  type PreDecision,
  type ReservationDecision,
  type Standing,
} from './placement.js';
import type { NodeCandidate } from './schedule.js';

export interface NodeDecision {
  composition: NodeComposition;
  /** Holders composing the node's spec, oldest first. */
  members: NodeMember[];
}

/** What a refresh changed: nodes recomposed and reservations whose decision differs. */
export interface RefreshResult {
  nodes: Set<string>;
  reservations: Set<string>;
}

const POOL = '';

export class DecisionCache {
  private readonly reservations = new Map<string, APQNReservation>();
  private readonly claims = new Map<string, APQNClaim>();
  private readonly claimsByReservation = new SetIndex<string, string>();
  private readonly nodeStates = new Map<string, APNodeState>();
  private readonly nodeLabels = new Map<string, Readonly<Record<string, string>>>();
  /** node -> reservations whose spec.nodeName or status.nodeName names it. */
  private readonly named = new SetIndex<string, string>();
  /** reservation key -> nodes whose spec names it in an mdev (normally one). */
  private readonly specIndex = new SetIndex<string, string>();

  private readonly validated = new Map<string, { version: string; verdict: ReturnType<typeof validateReservation> }>();
  private readonly uuids = new Map<string, string>();

  private readonly homes = new Map<string, string | undefined>();
  private readonly partitions = new SetIndex<string, string>();
  private readonly pool = new Set<string>();
  /** reservation key -> node where step 4 placed it. */
  private stepFour = new Map<string, string>();
  /** node -> APQN -> holder after step 3. */
  private readonly resolved = new Map<string, ReadonlyMap<string, string>>();
  private readonly decisions = new Map<string, ReservationDecision>();
  /** Each decision's standing after steps 3–4, before composition may turn it into a conflict. */
  private readonly baseStanding = new Map<string, Standing>();
  private readonly composed = new Map<string, NodeDecision>();
  private readonly signatures = new Map<string, string>();

  private readonly dirtyReservations = new Set<string>();
  private readonly dirtyNodes = new Set<string>();
  private poolDirty = false;

  /** `onChange` hears, after each refresh, which decisions and node compositions changed. */
  constructor(private readonly onChange?: (changed: RefreshResult) => void) {}

  /** A cache holding exactly what a ClusterView shows (tests compare it with decideCluster). */
  static fromView(view: Pick<ClusterView, 'reservations' | 'claims' | 'nodeStates' | 'nodeLabels'>): DecisionCache {
    const cache = new DecisionCache();
    for (const [name, labels] of view.nodeLabels) cache.setNodeLabels(name, labels);
    for (const state of view.nodeStates.values()) cache.setNodeState(state);
    for (const claim of view.claims) cache.setClaim(claim);
    for (const r of view.reservations) cache.setReservation(r);
    return cache;
  }

  // ---------------------------------------------------------------------------------------
  // Inputs. Each marks what it can change; nothing is computed here.

  setReservation(r: APQNReservation): void {
    const key = reservationKey(r);
    this.unname(key, this.reservations.get(key));
    this.reservations.set(key, r);
    for (const node of namedNodes(r)) this.named.add(node, key);
    this.dirtyReservations.add(key);
  }

  removeReservation(key: string): void {
    const old = this.reservations.get(key);
    if (!old) return;
    this.unname(key, old);
    this.reservations.delete(key);
    this.validated.delete(key);
    this.dirtyReservations.add(key);
  }

  private unname(key: string, r: APQNReservation | undefined): void {
    if (!r) return;
    for (const node of namedNodes(r)) this.named.remove(node, key);
  }

  setClaim(claim: APQNClaim): void {
    const key = reservationKey(claim);
    this.removeClaim(key);
    this.claims.set(key, claim);
    const target = claimTarget(claim);
    if (!target) return;
    this.claimsByReservation.add(target, key);
    this.dirtyReservations.add(target);
  }

  removeClaim(key: string): void {
    const old = this.claims.get(key);
    if (!old) return;
    this.claims.delete(key);
    const target = claimTarget(old);
    if (!target) return;
    this.claimsByReservation.remove(target, key);
    this.dirtyReservations.add(target);
  }

  /** Claims naming a reservation (any phase), by reservation key. */
  claimsNaming(reservation: string): APQNClaim[] {
    return [...this.claimsByReservation.get(reservation)].map((k) => this.claims.get(k)!);
  }

  /**
   * A node's APNodeState. `relevant: false` stores a newer copy whose decision inputs did not
   * change (a heartbeat), so readers see the newest object but nothing is recomputed.
   */
  setNodeState(state: APNodeState, relevant = true): void {
    const name = state.metadata.name ?? '';
    const old = this.nodeStates.get(name);
    this.nodeStates.set(name, state);
    if (!relevant && old) return;
    this.reindexSpec(name, old, state);
    this.dirtyNodes.add(name);
  }

  removeNodeState(name: string): void {
    const old = this.nodeStates.get(name);
    if (!old) return;
    this.nodeStates.delete(name);
    this.reindexSpec(name, old, undefined);
    this.dirtyNodes.add(name);
  }

  /** A core Node's labels (nodeSelector); undefined when the Node is gone. */
  setNodeLabels(name: string, labels: Readonly<Record<string, string>> | undefined): void {
    const old = this.nodeLabels.get(name);
    if (labels === undefined) {
      if (!this.nodeLabels.delete(name)) return;
    } else {
      this.nodeLabels.set(name, labels);
      if (old && deepEqual(old, labels)) return;
    }
    this.dirtyNodes.add(name);
  }

  private reindexSpec(node: string, old: APNodeState | undefined, state: APNodeState | undefined): void {
    const before = new Set((old?.spec?.mdevs ?? []).map((m) => m.reservation));
    const after = new Set((state?.spec?.mdevs ?? []).map((m) => m.reservation));
    for (const key of before) {
      if (!after.has(key)) this.specIndex.remove(key, node);
      this.dirtyReservations.add(key); // its mdev's matrix may have changed too
    }
    for (const key of after) {
      this.specIndex.add(key, node);
      this.dirtyReservations.add(key);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Reads (each refreshes first).

  decision(key: string): ReservationDecision | undefined {
    this.refresh();
    return this.decisions.get(key);
  }

  node(name: string): NodeDecision | undefined {
    this.refresh();
    return this.composed.get(name);
  }

  reservation(key: string): APQNReservation | undefined {
    return this.reservations.get(key);
  }

  nodeState(name: string): APNodeState | undefined {
    return this.nodeStates.get(name);
  }

  /** Every node with an APNodeState or a decision. */
  nodeNames(): string[] {
    this.refresh();
    return [...new Set([...this.nodeStates.keys(), ...this.composed.keys()])];
  }

  /** The reservations a node decides (home there, or placed there from the pool). */
  holdersOn(node: string): string[] {
    this.refresh();
    return this.decidedOn(node);
  }

  /** Reservations whose home is the node, and those step 4 placed on it (as of the last refresh). */
  private decidedOn(node: string): string[] {
    const keys = [...this.partitions.get(node)];
    for (const [key, n] of this.stepFour) if (n === node) keys.push(key);
    return keys;
  }

  /** Every reservation whose status a change of this node can move: its holders, and those naming it. */
  attachedTo(node: string): Set<string> {
    const keys = new Set(this.holdersOn(node));
    for (const key of this.named.get(node)) keys.add(key);
    return keys;
  }

  /** The inputs as a ClusterView (the oracle's input, in the same orders). */
  view(now = 0, heartbeatStaleMs = 40_000): ClusterView {
    return {
      now,
      reservations: [...this.reservations.values()],
      claims: [...this.claims.values()],
      nodeStates: new Map(this.nodeStates),
      nodeLabels: new Map(this.nodeLabels),
      heartbeatStaleMs,
    };
  }

  // ---------------------------------------------------------------------------------------
  // The work.

  /** Recomputes what the inputs changed since the last call; says what changed. */
  refresh(): RefreshResult {
    const changedNodes = new Set<string>();
    if (this.dirtyReservations.size === 0 && this.dirtyNodes.size === 0 && !this.poolDirty) {
      return { nodes: changedNodes, reservations: new Set() };
    }
    const touched = new Set<string>(this.dirtyReservations);

    // Steps 1–2 per reservation: where it belongs now.
    for (const key of this.dirtyReservations) {
      const r = this.reservations.get(key);
      const before = this.homes.get(key);
      const had = this.homes.has(key);
      let home: string | undefined;
      if (r) {
        const pre = this.preDecision(r);
        home = homeOf(pre);
        this.homes.set(key, home);
        if (home === undefined) this.settle(pre.d);
      } else {
        this.homes.delete(key);
        this.decisions.delete(key);
        this.baseStanding.delete(key);
        this.signatures.delete(key);
        this.uuids.delete(key);
      }
      if (had && before !== home) this.leave(key, before);
      if (r && home !== undefined) this.join(key, home);
      // The node (or pool) it left and the one it is in decide again: it may have been in both.
      for (const h of [before, home]) this.markHome(h);
    }
    this.dirtyReservations.clear();

    // Step 3 per dirty node.
    const compose = new Set<string>();
    for (const node of this.dirtyNodes) {
      this.resolveNode(node);
      compose.add(node);
      if (this.pool.size > 0 || this.stepFour.size > 0) this.poolDirty = true;
    }
    this.dirtyNodes.clear();

    // Step 4: the pool against what every node holds.
    if (this.poolDirty) {
      this.poolDirty = false;
      for (const node of this.stepFour.values()) compose.add(node);
      this.stepFour = new Map();
      if (this.pool.size > 0) {
        const pool = [...this.pool].map((k) => this.reservations.get(k)!).sort(byAge).map((r) => this.preDecision(r).d);
        const held = heldQueues(this.resolved, (key) => this.decisions.get(key)?.spec?.driver);
        scheduleRequests(pool, this.candidates(), held);
        for (const d of pool) {
          this.settle(d);
          touched.add(d.key);
          if (d.standing.kind === 'holds') {
            this.stepFour.set(d.key, d.standing.node);
            compose.add(d.standing.node);
          }
        }
      }
    }

    // Step 5 per node whose holders or state changed.
    for (const node of compose) {
      const holders = this.decidedOn(node).map((k) => this.decisions.get(k)!).filter((d) => d !== undefined);
      for (const d of holders) d.standing = this.baseStanding.get(d.key) ?? d.standing;
      holders.sort((a, b) => byAge(a.reservation, b.reservation));
      const onNode = holders.filter((d) => d.standing.kind === 'holds' && d.standing.node === node);
      const before = this.composed.get(node);
      if (this.nodeStates.has(node) || onNode.some((d) => !d.releasing)) {
        this.composed.set(node, composeNode(node, this.nodeStates.get(node), onNode));
      } else {
        this.composed.delete(node);
      }
      if (!deepEqual(before?.composition.spec, this.composed.get(node)?.composition.spec)) changedNodes.add(node);
      for (const d of holders) touched.add(d.key);
    }

    const changed = new Set<string>();
    for (const key of touched) {
      const d = this.decisions.get(key);
      const sig = d ? this.signature(d) : '';
      if (this.signatures.get(key) !== sig) changed.add(key);
      if (d) this.signatures.set(key, sig);
      else this.signatures.delete(key);
    }
    const result = { nodes: changedNodes, reservations: changed };
    this.onChange?.(result);
    return result;
  }

  private preDecision(r: APQNReservation): PreDecision {
    const key = reservationKey(r);
    return preDecide(r, this.boundClaim(r), this.inSpec(key), (x) => this.validate(x), (uid) => this.uuid(key, uid));
  }

  private validate(r: APQNReservation): ReturnType<typeof validateReservation> {
    const key = reservationKey(r);
    // The generation moves with every spec change (status has its own subresource).
    const version =
      r.metadata.uid !== undefined && r.metadata.generation !== undefined ? `${r.metadata.uid}/${r.metadata.generation}` : JSON.stringify(r.spec ?? null);
    const memo = this.validated.get(key);
    if (memo && memo.version === version) return memo.verdict;
    const verdict = validateReservation(r);
    this.validated.set(key, { version, verdict });
    return verdict;
  }

  private uuid(key: string, uid: string): string {
    const memo = this.uuids.get(key);
    if (memo && memo.startsWith(`${uid} `)) return memo.slice(uid.length + 1);
    const uuid = mdevUuidFor(uid);
    this.uuids.set(key, `${uid} ${uuid}`);
    return uuid;
  }

  private boundClaim(r: APQNReservation): APQNClaim | undefined {
    const set = this.claimsByReservation.get(reservationKey(r));
    if (!set) return undefined;
    return boundClaimOf({ claims: [...set].map((k) => this.claims.get(k)!) }, r);
  }

  private inSpec(key: string): ReturnType<typeof placementInSpec> {
    const nodes = this.specIndex.get(key);
    if (!nodes || nodes.size === 0) return undefined;
    if (nodes.size === 1) {
      const [node] = nodes;
      return placementInSpec(new Map([[node!, this.nodeStates.get(node!)!]]), key);
    }
    // Named by several nodes' specs (should not happen): the first in the states' order, as the oracle does.
    const states = new Map([...this.nodeStates].filter(([n]) => nodes.has(n)));
    return placementInSpec(states, key);
  }

  private join(key: string, home: string): void {
    if (home === POOL) {
      this.pool.add(key);
      return;
    }
    this.partitions.add(home, key);
  }

  private leave(key: string, home: string | undefined): void {
    if (home === undefined) return;
    if (home === POOL) {
      this.pool.delete(key);
      const placedOn = this.stepFour.get(key);
      if (placedOn !== undefined) {
        // The node it was placed on composes without it.
        this.stepFour.delete(key);
        this.dirtyNodes.add(placedOn);
      }
      return;
    }
    this.partitions.remove(home, key);
  }

  private markHome(home: string | undefined): void {
    if (home === undefined) return;
    if (home === POOL) this.poolDirty = true;
    else this.dirtyNodes.add(home);
  }

  private settle(d: ReservationDecision): void {
    this.decisions.set(d.key, d);
    this.baseStanding.set(d.key, d.standing);
  }

  private resolveNode(node: string): void {
    const keys = [...this.partitions.get(node)];
    const pres = keys
      .map((k) => this.reservations.get(k)!)
      .sort(byAge)
      .map((r) => this.preDecision(r));
    const candidate = this.candidate(node);
    const resolution = resolvePlacements(pres, candidate ? [candidate] : []);
    const holders = resolution.holders.get(node);
    if (holders && holders.size > 0) this.resolved.set(node, holders);
    else this.resolved.delete(node);
    for (const p of pres) this.settle(p.d);
  }

  private candidate(name: string): NodeCandidate | undefined {
    const state = this.nodeStates.get(name);
    return state ? candidateOf(state, this.nodeLabels.get(name)) : undefined;
  }

  private candidates(): NodeCandidate[] {
    return [...this.nodeStates.keys()].map((n) => this.candidate(n)!);
  }

  /** What a reservation's status is judged from, as text: equal texts judge the same. */
  private signature(d: ReservationDecision): string {
    const node = d.standing.kind === 'holds' || d.standing.kind === 'conflict' ? d.standing.node : undefined;
    const composition = node ? this.composed.get(node)?.composition : undefined;
    return JSON.stringify([
      d.standing,
      d.specProblem ?? null,
      d.claimWait ?? null,
      d.claim?.metadata.name ?? null,
      d.releasing,
      d.mdevUUID ?? null,
      d.spec?.driver ?? null,
      d.spec?.controlDomains ?? null,
      composition?.displaced.get(d.key) ?? null,
      composition?.hostBlocked.get(d.key) ?? null,
    ]);
  }
}

function namedNodes(r: APQNReservation): string[] {
  const nodes = [r.spec?.nodeName, r.status?.nodeName].filter((n): n is string => !!n);
  return nodes.length === 2 && nodes[0] === nodes[1] ? [nodes[0]!] : nodes;
}

function claimTarget(claim: APQNClaim): string | undefined {
  const name = claim.spec?.reservationName;
  return name ? `${claim.metadata.namespace ?? ''}/${name}` : undefined;
}
