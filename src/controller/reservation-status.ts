// A reservation's desired status, from the cluster decision and its node's report. Pure.
//
// Conditions (api.md): Accepted, Scheduled, Conflict, Bound, Ready — each with the reservation's
// generation. Bound and Ready come from the agent's APNodeState.status: the queues' drivers,
// the mdev's matrix and guest matrix, and the agent's per-reservation phase (Draining, InUse,
// Stuck, Failed, Releasing). A stale heartbeat makes both Unknown (AgentUnavailable).
import type {
  APNodeState,
  NodeStateSpec,
  Condition,
  ConditionStatus,
  ReservationApplyStatus,
  ReservationQueueStatus,
  ReservationStatus,
} from '../api/types.js';
import { type Apqn, apqnIndex, formatAdapterId, formatApqn, formatDomainId } from '../apbus/ids.js';
import { agentAvailability, agentTookSpec, conditionOf, type ClusterView } from './cluster-view.js';
import { setCondition } from './conditions.js';
import { effectiveMasks } from './mask-bits.js';
import { nodeInventory } from './node-inventory.js';
import { joinList, plural } from './phrases.js';
import type { NodeComposition } from './node-spec.js';
import type { ReservationDecision } from './placement.js';

/** The node compositions a judgement reads (a ClusterDecision, or the incremental cache's). */
export interface Compositions {
  nodes: { get(node: string): NodeComposition | undefined };
}

export interface ConditionSpec {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

export interface ReservationEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface ReservationJudgement {
  /** Everything but the conditions' transition times (see desiredStatus). */
  fields: Omit<ReservationStatus, 'conditions'>;
  conditions: ConditionSpec[];
  /** Events to emit before the status is written (displaced queues: reported before acting). */
  eventsBefore: ReservationEvent[];
  /** Events to emit once the status is written. */
  eventsAfter: ReservationEvent[];
  /** Deleting: the queues are handed back (or were never held): the finalizer may go. */
  released: boolean;
  /** When to look again even if nothing changes (heartbeat going stale, waiting). */
  requeueAfterMs?: number;
}

const RETRY_WAITING_MS = 30_000;
const RETRY_RELEASING_MS = 5_000;

/** The status to write: the judged fields and conditions, transition times kept from `current`. */
export function desiredStatus(current: ReservationStatus | undefined, j: ReservationJudgement, generation: number | undefined, now: number): ReservationStatus {
  let conditions: Condition[] = current?.conditions ?? [];
  for (const c of j.conditions) conditions = setCondition(conditions, { ...c, observedGeneration: generation }, now);
  const order = ['Accepted', 'Scheduled', 'Conflict', 'Bound', 'Ready'];
  conditions = [...conditions].sort((a, b) => rank(order, a.type) - rank(order, b.type));
  return { ...j.fields, observedGeneration: generation, conditions };
}

function rank(order: string[], type: string): number {
  const i = order.indexOf(type);
  return i < 0 ? order.length : i;
}

const cond = (type: string, status: ConditionStatus, reason: string, message: string): ConditionSpec => ({ type, status, reason, message });

export function judgeReservation(d: ReservationDecision, view: ClusterView, cluster: Compositions): ReservationJudgement {
  const r = d.reservation;
  const s = d.standing;
  const j: ReservationJudgement = { fields: {}, conditions: [], eventsBefore: [], eventsAfter: [], released: false };
  const old = r.status;
  const deleting = r.metadata.deletionTimestamp !== undefined;

  if (s.kind === 'released') {
    j.released = releasedFromNode(d, view);
    j.fields = { ...keepPlacementFields(old) };
    j.conditions = [cond('Ready', 'False', 'Releasing', 'being deleted; this reservation holds no queues')];
    if (!j.released) j.requeueAfterMs = RETRY_RELEASING_MS;
    return j;
  }

  if (s.kind === 'rejected') {
    j.conditions = [
      cond('Accepted', 'False', s.problem.reason, s.problem.message),
      cond('Scheduled', 'False', 'NotAccepted', 'not scheduled: the spec is not accepted (see Accepted)'),
      cond('Conflict', 'False', 'NoConflict', 'no other reservation holds these queues'),
      cond('Bound', 'False', 'NotAccepted', 'nothing is bound: the spec is not accepted (see Accepted)'),
      cond('Ready', 'False', 'NotAccepted', `the spec is not accepted: ${s.problem.message}`),
    ];
    if (conditionOf(old?.conditions, 'Accepted')?.status !== 'False') {
      j.eventsAfter.push({ type: 'Warning', reason: s.problem.reason, message: s.problem.message });
    }
    return j;
  }

  if (s.kind === 'unplaced') {
    j.conditions = [
      cond('Accepted', 'True', 'Valid', 'the spec is valid'),
      cond('Scheduled', 'False', s.reason, s.message),
      cond('Conflict', 'False', 'NoConflict', 'no other reservation holds these queues'),
      cond('Bound', 'False', 'NotScheduled', 'nothing is bound: not scheduled yet (see Scheduled)'),
      cond('Ready', 'False', 'NotScheduled', `not scheduled yet: ${s.message}`),
    ];
    j.requeueAfterMs = RETRY_WAITING_MS;
    return j;
  }

  const driver = d.spec!.driver;
  const matrixOf = (apqns: Apqn[]) => ({
    adapters: [...new Set(apqns.map((q) => q.adapter))].sort((a, b) => a - b).map(formatAdapterId),
    domains: [...new Set(apqns.map((q) => q.domain))].sort((a, b) => a - b).map(formatDomainId),
    ...(driver === 'vfio_ap' ? { controlDomains: d.spec!.controlDomains.map(formatDomainId) } : {}),
  });

  if (s.kind === 'conflict') {
    j.fields = s.node ? { nodeName: s.node, apqns: s.apqns.map(formatApqn), matrix: matrixOf(s.apqns) } : {};
    j.conditions = [
      cond('Accepted', 'True', 'Valid', 'the spec is valid'),
      cond('Scheduled', 'False', 'Conflict', `waiting for queues held by ${joinList(s.holders, 3) || 'another reservation'} (see Conflict)`),
      cond('Conflict', 'True', s.reason, s.message),
      cond('Bound', 'False', 'Conflict', 'nothing is bound while another reservation holds these queues (see Conflict)'),
      cond('Ready', 'False', 'Conflict', s.message),
    ];
    if (conditionOf(old?.conditions, 'Conflict')?.status !== 'True') {
      j.eventsAfter.push({ type: 'Warning', reason: 'Conflict', message: s.message });
    }
    j.requeueAfterMs = RETRY_WAITING_MS;
    return j;
  }

  // Holds its queues on s.node.
  const node = s.node;
  const composition = cluster.nodes.get(node);
  const displaced = composition?.displaced.get(d.key) ?? [];
  j.fields = {
    nodeName: node,
    apqns: s.apqns.map(formatApqn),
    matrix: matrixOf(s.apqns),
    ...(driver === 'vfio_ap' && d.mdevUUID ? { mdevUUID: d.mdevUUID } : {}),
    ...(d.claim ? { claimedBy: { name: d.claim.metadata.name ?? '' } } : {}),
    ...(displaced.length > 0 ? { displacedQueues: displaced } : {}),
  };
  const newlyDisplaced = displaced.filter((q) => !(old?.displacedQueues ?? []).includes(q));
  if (newlyDisplaced.length > 0 && !d.releasing) {
    j.eventsBefore.push({
      type: 'Warning',
      reason: 'DisplacedQueues',
      message: `freeing ${joinList(s.apqns.map(formatApqn))} on node ${node} takes ${plural(newlyDisplaced.length, 'other host queue')} from the host: ${joinList(newlyDisplaced, 12)}`,
    });
  }

  const accepted = d.specProblem
    ? cond('Accepted', 'False', d.specProblem.reason, `${d.specProblem.message}; ${d.claimWait ?? 'the old placement stays'}`)
    : cond('Accepted', 'True', 'Valid', 'the spec is valid');
  const scheduled = d.claimWait
    ? cond('Scheduled', 'True', 'ClaimedByGuest', d.claimWait)
    : cond('Scheduled', 'True', 'Scheduled', `placed on node ${node}`);
  j.conditions = [accepted, scheduled, cond('Conflict', 'False', 'NoConflict', 'no other reservation holds these queues')];

  const state = view.nodeStates.get(node);
  const agent = agentAvailability(view, node);
  const entry = state?.status?.reservations?.find((e) => e.reservation === d.key);
  j.fields.queues = queueStates(d, s.apqns, state, entry);

  if (d.releasing) {
    j.released = releasedFromNode(d, view);
    const why = entry?.phase === 'Releasing' ? entry.message : `handing the queues back on node ${node}: waiting for the agent to remove the mdev and restore the mask bits`;
    if (!agent.available) {
      j.conditions.push(cond('Bound', 'Unknown', 'AgentUnavailable', agent.message), cond('Ready', 'Unknown', 'AgentUnavailable', agent.message));
    } else {
      j.conditions.push(cond('Bound', 'False', 'Releasing', why), cond('Ready', 'False', 'Releasing', why));
    }
    j.fields.queues = j.fields.queues.map((q) => ({ ...q, state: 'Releasing' }));
    if (!j.released) j.requeueAfterMs = RETRY_RELEASING_MS;
    return j;
  }

  const { bound, ready } = boundAndReady(d, node, s.apqns, state, entry, agent, composition?.hostBlocked.get(d.key));
  if (deleting && d.claim) {
    const message = `deletion waits: claim ${d.claim.metadata.name} holds this reservation; delete the claim to release the queues`;
    j.conditions.push(bound, cond('Ready', 'False', 'ClaimedByGuest', message));
    if (conditionOf(old?.conditions, 'Ready')?.reason !== 'ClaimedByGuest') {
      j.eventsAfter.push({ type: 'Warning', reason: 'ClaimedByGuest', message });
    }
  } else {
    j.conditions.push(bound, ready);
  }

  const oldBound = conditionOf(old?.conditions, 'Bound');
  if (bound.reason === 'Stuck' && oldBound?.reason !== 'Stuck') {
    j.eventsAfter.push({ type: 'Warning', reason: 'DrainStuck', message: bound.message });
  }
  // No Normal event on Ready: the condition says it, and one event per reservation was most of
  // the events a large cluster wrote. The agent going stale is noticed by the controller's
  // timer per node, not by requeueing every holder.
  if (!agent.available) j.requeueAfterMs = RETRY_RELEASING_MS;
  return j;
}

function keepPlacementFields(old: ReservationStatus | undefined): Omit<ReservationStatus, 'conditions'> {
  if (!old) return {};
  const { conditions: _c, observedGeneration: _g, ...rest } = old;
  return rest;
}

function boundAndReady(
  d: ReservationDecision,
  node: string,
  apqns: Apqn[],
  state: APNodeState | undefined,
  entry: ReservationApplyStatus | undefined,
  agent: ReturnType<typeof agentAvailability>,
  hostBlocked: { apqns: string[]; holders: string[] } | undefined,
): { bound: ConditionSpec; ready: ConditionSpec } {
  if (!agent.available) {
    return { bound: cond('Bound', 'Unknown', 'AgentUnavailable', agent.message), ready: cond('Ready', 'Unknown', 'AgentUnavailable', agent.message) };
  }
  const driver = d.spec!.driver;
  const wanted = driver === 'vfio_ap' ? 'vfio_ap' : 'cex4queue';
  const inventory = nodeInventory(node, state?.status ?? {});
  const missing = apqns.filter((q) => !inventory.queues.has(apqnIndex(q.adapter, q.domain)));
  const notThere = apqns.filter((q) => inventory.queues.get(apqnIndex(q.adapter, q.domain))?.driver !== wanted);
  const notBound = (reason: string, message: string) => {
    const bound = cond('Bound', 'False', reason, message);
    return { bound, ready: cond('Ready', 'False', reason, message) };
  };

  if (notThere.length > 0 || (driver === 'vfio_ap' && entry && entry.phase !== 'Applied')) {
    if (missing.length > 0) {
      return notBound('QueueMissing', `node ${node} does not report ${joinList(missing.map(formatApqn))} (card removed or offline?)`);
    }
    if (hostBlocked) {
      return notBound(
        'Conflict',
        `${joinList(hostBlocked.apqns)} cannot come back to the host on node ${node} without taking queues from ${joinList(hostBlocked.holders, 3)}`,
      );
    }
    switch (entry?.phase) {
      case 'Draining':
        return notBound('Draining', entry.message);
      case 'InUse':
        return notBound('InUse', entry.message);
      case 'Stuck':
        return notBound('Stuck', entry.message);
      case 'Failed':
        return notBound('ApplyFailed', entry.message);
    }
    if (notThere.length > 0) {
      return notBound('Pending', `waiting for the agent on node ${node} to bind ${joinList(notThere.map(formatApqn))} to ${wanted}`);
    }
  }
  const bound = cond('Bound', 'True', 'Bound', `every queue is bound to ${wanted} on node ${node}`);
  if (driver !== 'vfio_ap') return { bound, ready: cond('Ready', 'True', 'Ready', `the queues are bound to ${wanted} on node ${node}`) };

  const want = new Set(apqns.map(formatApqn));
  const mdev = state?.status?.mdevs?.find((m) => m.uuid === d.mdevUUID);
  const equalsWanted = (list: readonly string[] | undefined) => {
    const got = new Set(list ?? []);
    return got.size === want.size && [...want].every((q) => got.has(q));
  };
  if (!mdev) return { bound, ready: cond('Ready', 'False', 'MdevPending', `waiting for the agent on node ${node} to create mdev ${d.mdevUUID}`) };
  const missingControl = d.spec!.controlDomains.map(formatDomainId).filter((c) => !(mdev.controlDomains ?? []).includes(c));
  if (equalsWanted(mdev.matrix) && !equalsWanted(mdev.guestMatrix) && entry?.reason === 'Degraded') {
    return { bound, ready: cond('Ready', 'False', 'Degraded', entry.message) };
  }
  if (!equalsWanted(mdev.matrix) || !equalsWanted(mdev.guestMatrix) || missingControl.length > 0) {
    return {
      bound,
      ready: cond('Ready', 'False', 'MdevPending', `mdev ${d.mdevUUID} on node ${node} does not have the reserved matrix yet (guest sees ${mdev.guestMatrix.length} of ${want.size} queues)`),
    };
  }
  return { bound, ready: cond('Ready', 'True', 'Ready', `mdev ${d.mdevUUID} on node ${node} has the reserved matrix`) };
}

function queueStates(d: ReservationDecision, apqns: Apqn[], state: APNodeState | undefined, entry: ReservationApplyStatus | undefined): ReservationQueueStatus[] {
  const inventory = nodeInventory(state?.metadata.name ?? '', state?.status ?? {});
  const mdev = state?.status?.mdevs?.find((m) => m.uuid === d.mdevUUID);
  const inGuest = new Set(mdev?.guestMatrix ?? []);
  return apqns.map((q) => {
    const apqn = formatApqn(q);
    const nodeQueue = inventory.queues.get(apqnIndex(q.adapter, q.domain));
    if (!nodeQueue) return { apqn, driver: '', state: 'Missing' as const, message: 'not reported by the node' };
    const perQueue = entry?.queues?.find((e) => e.apqn === apqn);
    const base = { apqn, driver: nodeQueue.driver };
    if (d.spec!.driver === 'host') return { ...base, state: nodeQueue.driver === 'cex4queue' ? ('Bound' as const) : ('Pending' as const) };
    if (nodeQueue.driver === 'vfio_ap' && inGuest.has(apqn)) return { ...base, state: 'Assigned' as const };
    if (perQueue && perQueue.state !== 'Assigned') {
      return { ...base, state: perQueue.state, message: `${plural(perQueue.requestsInFlight, 'host request')} in flight` };
    }
    if (nodeQueue.driver === 'cex4queue' && entry && ['Draining', 'InUse', 'Stuck'].includes(entry.phase)) {
      return { ...base, state: entry.phase as 'Draining' | 'InUse' | 'Stuck', message: `${plural(nodeQueue.requestsInFlight, 'host request')} in flight` };
    }
    return { ...base, state: 'Pending' as const };
  });
}

/** Whether a node spec names the reservation (an mdev of it, or a queue intent for it). */
export function specNames(spec: NodeStateSpec | undefined, key: string): boolean {
  return (spec?.mdevs ?? []).some((m) => m.reservation === key) || (spec?.queues ?? []).some((q) => q.reservation === key);
}

/**
 * Deleting: true once nothing of the reservation is left on its node — the node spec no longer
 * names it, and the agent reports its mdev gone and its queues where the spec puts them.
 */
export function releasedFromNode(d: ReservationDecision, view: ClusterView): boolean {
  const r = d.reservation;
  // A placement its spec fixes may have reached the node spec (and the bus) before its status
  // recorded anything: its spec names the node then.
  const fixed = !d.specProblem && !!r.spec?.nodeName && !!r.spec.apqns;
  const node = r.status?.nodeName ?? (fixed ? r.spec?.nodeName : undefined);
  if (!node) return true;
  const state = view.nodeStates.get(node);
  if (!state) return true; // no node state: nothing was ever applied there (or the node is gone)
  const spec = state.spec ?? {};
  if (specNames(spec, d.key)) return false;
  const status = state.status;
  const everHeld = conditionOf(r.status?.conditions, 'Scheduled')?.status === 'True' || (fixed && r.status?.nodeName === undefined);
  if (!everHeld) return true;
  if (!status) return false;
  // The agent has not seen the spec without it yet: it may still be applying the one with it.
  if (!agentTookSpec(state)) return false;
  if ((status.reservations ?? []).some((e) => e.reservation === d.key)) return false;
  if (d.mdevUUID && (status.mdevs ?? []).some((m) => m.uuid === d.mdevUUID)) return false;
  // Each queue where the spec now puts it (mask bits restored, overrides cleared).
  const inventory = nodeInventory(node, status);
  const masks = effectiveMasks({ apmask: spec.apmask ?? [], aqmask: spec.aqmask ?? [] }, inventory);
  const overrides = new Map((spec.overrides ?? []).map((o) => [o.apqn, o.driver]));
  for (const text of r.status?.apqns ?? (fixed ? r.spec!.apqns! : [])) {
    const [a, dom] = text.split('.');
    const i = apqnIndex(parseInt(a!, 16), parseInt(dom!, 16));
    if (Number.isNaN(i)) continue;
    const queue = inventory.queues.get(i);
    if (!queue) continue;
    const expected =
      spec.bindingMode === 'DriverOverride'
        ? (overrides.get(queue.apqn) ?? queue.driver)
        : masks.apmask.has(i >> 8) && masks.aqmask.has(i & 0xff)
          ? 'cex4queue'
          : 'vfio_ap';
    if (queue.driver !== expected) return false;
  }
  return true;
}
