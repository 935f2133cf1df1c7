// The cluster-wide decision, recomputed from a ClusterView on every pass: for each reservation,
// whether its spec is accepted, where it is placed, whether it holds its queues or waits in
// conflict; for each node, the spec those holders compose to. Pure.
//
// Order of decisions (each one deterministic, so every reconciler reaches the same answer):
//  1. validate every spec (validate.ts);
//  2. placements already recorded in status (Scheduled=True) or in the node spec are sticky (a
//     request-based reservation never moves by itself; a claimed one keeps its old placement
//     while its spec asks for something else; a deleting one holds until released); those the
//     node spec serves hold their queues against newcomers, older or not;
//  3. explicit nodeName placements are checked on their node, then conflicts are resolved among
//     them and the recorded ones (conflicts.ts: holders keep, then the older wins);
//  4. the rest are scheduled oldest first (schedule.ts), each seeing the queues held so far;
//  5. each node's holders compose its spec (node-spec.ts); vfio_ap holders whose pairs cannot
//     be freed without moving a `driver: host` reservation's queue become conflicts.
import type { APNodeState, APQNClaim, APQNReservation, Driver } from '../api/types.js';
import { RESERVATION_FINALIZER, reservationKey } from '../api/types.js';
import { type Apqn, apqnIndex, compareApqn, formatApqn, parseApqn, parseDomainId } from '../apbus/ids.js';
import { boundClaimOf, byAge, conditionOf, type ClusterView } from './cluster-view.js';
import { resolveHolders, type ConflictResolution, type QueueWant } from './conflicts.js';
import { mdevUuidFor } from './mdev-uuid.js';
import { joinList } from './phrases.js';
import { bindingModeOf, composeNodeSpec, type NodeComposition, type NodeMember } from './node-spec.js';
import { schedule, type HeldQueue, type NodeCandidate, type ScheduleResult } from './schedule.js';
import { DEFAULT_DRAIN_TIMEOUT_SECONDS, validateSpec, type Problem, type ValidSpec } from './validate.js';

export type Standing =
  /** The spec is invalid, or cannot work on its node: nothing is touched. */
  | { kind: 'rejected'; problem: Problem }
  /** Valid, but no node (or not its node, yet) can take it. */
  | { kind: 'unplaced'; reason: string; message: string; temporary: boolean }
  /** Placed, but another reservation holds (or protects) some of its queues. */
  | { kind: 'conflict'; node: string; apqns: Apqn[]; holders: string[]; reason: 'QueueHeld' | 'ProtectedQueue'; message: string }
  /** Holds its queues on `node`. */
  | { kind: 'holds'; node: string; apqns: Apqn[] }
  /** Being deleted and holding nothing. */
  | { kind: 'released' };

export interface ReservationDecision {
  key: string;
  reservation: APQNReservation;
  /** The spec in force: the valid spec, or (claimed, spec invalid) what the recorded placement implies. */
  spec?: ValidSpec;
  /** Why the current spec is not accepted (also set when a claim keeps the old placement). */
  specProblem?: Problem;
  standing: Standing;
  mdevUUID?: string;
  /** The claim bound to it. */
  claim?: APQNClaim;
  /** Set while a claim keeps the old placement although the spec asks for another. */
  claimWait?: string;
  /** Deleting and not held by a claim: its queues are being handed back. */
  releasing: boolean;
}

export interface ClusterDecision {
  reservations: Map<string, ReservationDecision>;
  /** Composition of every node with an APNodeState or a holder. */
  nodes: Map<string, NodeComposition>;
  /** Holders composing each node's spec, oldest first (releasing ones excluded). */
  members: Map<string, NodeMember[]>;
}

/** A recorded placement: status says Scheduled=True on a node with these queues. */
export function recordedPlacement(r: APQNReservation): { node: string; apqns: Apqn[] } | undefined {
  const s = r.status;
  if (!s?.nodeName || !s.apqns?.length) return undefined;
  if (conditionOf(s.conditions, 'Scheduled')?.status !== 'True') return undefined;
  if (conditionOf(s.conditions, 'Conflict')?.status === 'True') return undefined;
  try {
    return { node: s.nodeName, apqns: s.apqns.map(parseApqn).sort(compareApqn) };
  } catch {
    return undefined;
  }
}

/**
 * The placement a node spec gives the reservation (its mdev's adapters × domains), if any. The
 * node spec is what really holds queues: when the status lost its record (someone else wrote
 * it), the placement is recovered from here instead of being chosen anew.
 */
export function placementInSpec(nodeStates: ReadonlyMap<string, APNodeState>, key: string): { node: string; apqns: Apqn[] } | undefined {
  for (const [node, state] of nodeStates) {
    const mdev = state.spec?.mdevs?.find((m) => m.reservation === key);
    if (!mdev) continue;
    try {
      const apqns = mdev.adapters.flatMap((a) => mdev.domains.map((d) => parseApqn(`${a}.${d}`)));
      return { node, apqns: apqns.sort(compareApqn) };
    } catch {
      return undefined;
    }
  }
  return undefined;
}

export function sameApqns(a: readonly Apqn[], b: readonly Apqn[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a.map((q) => apqnIndex(q.adapter, q.domain)));
  return b.every((q) => set.has(apqnIndex(q.adapter, q.domain)));
}

/**
 * A placement the spec itself fixes (its nodeName and exactly its apqns): nobody chose it, so
 * it needs no status record before the node spec takes it — the spec is its record.
 */
export function fixedBySpec(r: APQNReservation, node: string, apqns: readonly Apqn[]): boolean {
  if (r.spec?.nodeName !== node || !r.spec.apqns) return false;
  try {
    return sameApqns(r.spec.apqns.map(parseApqn), apqns);
  } catch {
    return false;
  }
}

/** Whether a recorded placement still gives the spec what it asks for. */
function placementFits(spec: ValidSpec, placed: { node: string; apqns: Apqn[] }): boolean {
  if (spec.nodeName && spec.nodeName !== placed.node) return false;
  if (spec.apqns) return sameApqns(spec.apqns, placed.apqns);
  const adapters = new Set(placed.apqns.map((q) => q.adapter)).size;
  const domains = new Set(placed.apqns.map((q) => q.domain)).size;
  return adapters === spec.request!.adapters && domains === spec.request!.domains && adapters * domains === placed.apqns.length;
}

/** What a claimed reservation with an invalid spec keeps running with: its recorded matrix. */
function recordedSpec(r: APQNReservation): ValidSpec {
  return {
    driver: r.spec?.driver === 'host' ? 'host' : 'vfio_ap',
    controlDomains: (r.status?.matrix?.controlDomains ?? []).map(parseDomainId),
    nodeSelector: {},
    inUsePolicy: r.spec?.inUsePolicy ?? 'Wait',
    drainTimeoutSeconds: r.spec?.drainTimeoutSeconds ?? DEFAULT_DRAIN_TIMEOUT_SECONDS,
  };
}

export function nodeCandidates(view: ClusterView): NodeCandidate[] {
  return [...view.nodeStates.values()].map((state) => candidateOf(state, view.nodeLabels.get(state.metadata.name ?? '')));
}

/** A node as the scheduler sees it: its labels, its spec (owned bits count as applied) and its report. */
export function candidateOf(state: APNodeState, labels: Readonly<Record<string, string>> | undefined): NodeCandidate {
  const name = state.metadata.name ?? '';
  const candidate: NodeCandidate = {
    name,
    labels: labels ?? {},
    spec: { ...(state.spec ?? {}), bindingMode: bindingModeOf(state) },
  };
  // A node whose agent has never written inventory cannot be scheduled on.
  if (state.status?.cards) candidate.status = state.status;
  return candidate;
}

/** Validates a spec; the incremental decider passes a memoised one (one parse per uid and generation). */
export type SpecValidator = (r: APQNReservation) => ReturnType<typeof validateSpec>;
export const validateReservation: SpecValidator = (r) => validateSpec(r.spec ?? ({} as APQNReservation['spec']));

/** A reservation after steps 1–2: its own facts, and what it wants from steps 3–4. */
export interface PreDecision {
  d: ReservationDecision;
  /** A sticky placement (holding), for the conflict resolution. */
  want?: QueueWant;
  /** Valid and not placed yet: step 3 (explicit nodeName) or step 4 (request pool). */
  pending: boolean;
}

/**
 * Steps 1–2 for one reservation: validate, and keep a recorded placement (status, or the node
 * spec when the status lost it). Depends on the reservation, its bound claim and the node spec
 * naming it only — so the incremental decider can compute it per reservation.
 */
export function preDecide(
  r: APQNReservation,
  claim: APQNClaim | undefined,
  inSpec: { node: string; apqns: Apqn[] } | undefined,
  validate: SpecValidator = validateReservation,
  mdevUuid: (uid: string) => string = mdevUuidFor,
): PreDecision {
  const key = reservationKey(r);
  const verdict = validate(r);
  const deleting = r.metadata.deletionTimestamp !== undefined;
  const d: ReservationDecision = {
    key,
    reservation: r,
    standing: { kind: 'released' },
    releasing: deleting && !claim,
  };
  if (claim) d.claim = claim;
  if (r.metadata.uid && (r.spec?.driver ?? 'vfio_ap') === 'vfio_ap') d.mdevUUID = mdevUuid(r.metadata.uid);
  if (verdict.ok) d.spec = verdict.spec;
  else d.specProblem = verdict.problem;

  const recorded = recordedPlacement(r) ?? inSpec;
  if (recorded && (deleting || claim)) {
    // Held until released (deleting) or until the claim goes (claimed).
    if (!d.spec) d.spec = recordedSpec(r);
    else if (claim) d.spec = { ...d.spec, controlDomains: recordedSpec(r).controlDomains };
    if (claim && !deleting && (!verdict.ok || !placementFits(verdict.spec, recorded))) {
      d.claimWait = `claim ${claim.metadata.name} holds this reservation: the spec change waits until the claim is deleted; the queues stay ${joinList(recorded.apqns.map(formatApqn))} on node ${recorded.node}`;
    }
    d.standing = { kind: 'holds', ...recorded };
    return { d, want: { reservation: r, node: recorded.node, apqns: recorded.apqns.map(formatApqn), holding: true }, pending: false };
  }
  // Deleting and never held (or not any more): nothing to keep; conflicts.ts gives it nothing new.
  if (deleting) return { d, pending: false };
  if (!verdict.ok) {
    d.standing = { kind: 'rejected', problem: verdict.problem };
    return { d, pending: false };
  }
  if (recorded && placementFits(verdict.spec, recorded)) {
    // It keeps its queues against any newcomer only once the node spec gives them to it: the
    // node spec, written by one serialized writer per node, is the one authority on who holds
    // a queue. A placement recorded in status alone (a lagging cache may have written two such
    // records for one queue) is sticky, but contested by age like any other.
    const held = inSpec !== undefined && inSpec.node === recorded.node && sameApqns(inSpec.apqns, recorded.apqns);
    d.standing = { kind: 'holds', ...recorded };
    return { d, want: { reservation: r, node: recorded.node, apqns: recorded.apqns.map(formatApqn), holding: held }, pending: false };
  }
  return { d, pending: true };
}

/**
 * The node a reservation's decision belongs to: the node of its sticky placement or of its
 * spec.nodeName; `undefined` when no node decides it (rejected, released); '' for the request
 * pool (valid, request-based or unpinned, not placed yet: scheduled over every node in step 4).
 */
export function homeOf(pre: PreDecision): string | undefined {
  if (pre.want) return pre.want.node;
  if (!pre.pending) return undefined;
  return pre.d.spec!.nodeName ?? '';
}

/** node -> APQN -> holder with its driver, from a conflict resolution's winners. */
export function heldQueues(
  holders: ReadonlyMap<string, ReadonlyMap<string, string>>,
  driverOf: (key: string) => Driver | undefined,
): Map<string, Map<string, HeldQueue>> {
  const held = new Map<string, Map<string, HeldQueue>>();
  for (const [node, queues] of holders) {
    const m = new Map<string, HeldQueue>();
    for (const [apqn, key] of queues) m.set(apqn, { reservation: key, driver: driverOf(key) ?? 'vfio_ap' });
    held.set(node, m);
  }
  return held;
}

/**
 * Step 3: explicit nodeName placements, checked on their node against the sticky holders, then
 * the conflict resolution among sticky and explicit ones. `pres` in age order; nodes never
 * interact here (a queue is contested on one node only), so a caller may pass one node's
 * reservations and that node's candidate alone. Sets each pending explicit decision's standing.
 */
export function resolvePlacements(pres: readonly PreDecision[], candidates: readonly NodeCandidate[]): ConflictResolution {
  const decisions = new Map(pres.map((p) => [p.d.key, p.d]));
  const driverOf = (key: string) => decisions.get(key)?.spec?.driver;
  const wants = pres.flatMap((p) => (p.want ? [p.want] : []));
  const sticky = resolveHolders(wants);
  const stickyHeld = heldQueues(sticky.holders, driverOf);
  for (const { d } of pres.filter((p) => p.pending && p.d.spec!.nodeName)) {
    const result = schedule({ reservation: d.key, spec: d.spec!, nodes: candidates, held: stickyHeld, weigh: false });
    if (!result.ok && result.reason === 'Conflict') {
      // Freeing its pairs would move a queue a driver: host reservation keeps on the host.
      const apqns = d.spec!.apqns ?? [];
      const holders = new Set<string>();
      for (const [apqn, key] of sticky.holders.get(d.spec!.nodeName!) ?? []) {
        const q = parseApqn(apqn);
        const shares = apqns.some((p) => p.adapter === q.adapter || p.domain === q.domain);
        if (shares && driverOf(key) === 'host') holders.add(key);
      }
      d.standing = { kind: 'conflict', node: d.spec!.nodeName!, apqns, holders: [...holders].sort(), reason: 'ProtectedQueue', message: result.message };
      continue;
    }
    if (!result.ok) {
      d.standing = missStanding(result);
      continue;
    }
    const apqns = result.placement.apqns.map(parseApqn).sort(compareApqn);
    wants.push({ reservation: d.reservation, node: result.placement.node, apqns: result.placement.apqns, holding: false });
    d.standing = { kind: 'holds', node: result.placement.node, apqns };
  }
  const resolution = resolveHolders(wants);
  for (const [key, verdict] of resolution.verdicts) {
    const d = decisions.get(key)!;
    if (verdict.holds) continue;
    if (verdict.reason === 'Deleting') {
      d.standing = { kind: 'released' };
      continue;
    }
    const placed = d.standing.kind === 'holds' ? d.standing : undefined;
    d.standing = {
      kind: 'conflict',
      node: placed?.node ?? '',
      apqns: placed?.apqns ?? [],
      holders: verdict.holders,
      reason: 'QueueHeld',
      message: verdict.message,
    };
  }
  return resolution;
}

/** Step 4: the request pool, oldest first, each against what is held so far (`held` grows). */
export function scheduleRequests(pool: readonly ReservationDecision[], candidates: readonly NodeCandidate[], held: Map<string, Map<string, HeldQueue>>): void {
  for (const d of pool) {
    const result = schedule({ reservation: d.key, spec: d.spec!, nodes: candidates, held });
    if (!result.ok) {
      d.standing = missStanding(result);
      continue;
    }
    const apqns = result.placement.apqns.map(parseApqn).sort(compareApqn);
    d.standing = { kind: 'holds', node: result.placement.node, apqns };
    const onNode = held.get(result.placement.node) ?? new Map<string, HeldQueue>();
    for (const q of result.placement.apqns) onNode.set(q, { reservation: d.key, driver: d.spec!.driver });
    held.set(result.placement.node, onNode);
  }
}

/**
 * Step 5 for one node: its holders (age order; those handing their queues back left out)
 * compose its spec; vfio_ap holders whose pairs cannot be freed without moving a `driver: host`
 * reservation's queue become conflicts. Returns the composition and the members it kept.
 */
export function composeNode(node: string, state: APNodeState | undefined, holders: readonly ReservationDecision[]): { composition: NodeComposition; members: NodeMember[] } {
  const members: NodeMember[] = [];
  for (const d of holders) {
    if (d.standing.kind !== 'holds' || d.releasing) continue;
    const member: NodeMember = { key: d.key, spec: d.spec!, apqns: d.standing.apqns };
    if (d.spec!.driver === 'vfio_ap' && d.mdevUUID) member.mdevUUID = d.mdevUUID;
    members.push(member);
  }
  const composition = composeNodeSpec(node, state, members);
  const byKey = new Map(holders.map((d) => [d.key, d]));
  for (const [key, blocked] of composition.blocked) {
    const d = byKey.get(key)!;
    const placed = d.standing as { node: string; apqns: Apqn[] };
    d.standing = {
      kind: 'conflict',
      node: placed.node,
      apqns: placed.apqns,
      holders: blocked.holders,
      reason: 'ProtectedQueue',
      message: `freeing ${joinList(blocked.pairs)} on node ${node} would take queues from the host that ${joinList(blocked.holders, 3)} (driver: host) ${blocked.holders.length === 1 ? 'holds' : 'hold'}; this reservation waits and proceeds by itself once ${blocked.holders.length === 1 ? 'it releases them' : 'they release them'}`,
    };
  }
  return { composition, members: members.filter((m) => !composition.blocked.has(m.key)) };
}

/**
 * The whole cluster at once, steps 1–5. The controller decides incrementally, per node
 * (decision-cache.ts); this is the reference it must equal (a property test compares the two)
 * and what `kubectl apqn plan` previews with.
 */
export function decideCluster(view: ClusterView): ClusterDecision {
  const reservations = [...view.reservations].sort(byAge);
  const pres = reservations.map((r) => preDecide(r, boundClaimOf(view, r), placementInSpec(view.nodeStates, reservationKey(r))));
  const decisions = new Map(pres.map((p) => [p.d.key, p.d]));
  const candidates = nodeCandidates(view);
  const resolution = resolvePlacements(pres, candidates);
  const held = heldQueues(resolution.holders, (key) => decisions.get(key)?.spec?.driver);
  scheduleRequests(pres.filter((p) => p.pending && !p.d.spec!.nodeName).map((p) => p.d), candidates, held);

  const byNode = new Map<string, ReservationDecision[]>();
  for (const d of decisions.values()) {
    if (d.standing.kind !== 'holds') continue;
    const list = byNode.get(d.standing.node) ?? [];
    list.push(d);
    byNode.set(d.standing.node, list);
  }
  const members = new Map<string, NodeMember[]>();
  const nodes = new Map<string, NodeComposition>();
  for (const node of new Set([...view.nodeStates.keys(), ...[...byNode.entries()].filter(([, l]) => l.some((d) => !d.releasing)).map(([n]) => n)])) {
    const composed = composeNode(node, view.nodeStates.get(node), byNode.get(node) ?? []);
    nodes.set(node, composed.composition);
    members.set(node, composed.members);
  }
  return { reservations: decisions, nodes, members };
}

function missStanding(result: Extract<ScheduleResult, { ok: false }>): Standing {
  if (!result.temporary && result.reason !== 'NoFittingNode' && result.reason !== 'NodeNotFound' && result.reason !== 'Conflict') {
    return { kind: 'rejected', problem: { reason: result.reason as Problem['reason'], message: result.message, temporary: false } };
  }
  return { kind: 'unplaced', reason: result.reason, message: result.message, temporary: result.temporary };
}

/** Whether the reservation carries the release finalizer (a node spec may name it only then). */
export function hasFinalizer(r: APQNReservation): boolean {
  return r.metadata.finalizers?.includes(RESERVATION_FINALIZER) ?? false;
}
