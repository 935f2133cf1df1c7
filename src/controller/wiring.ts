// What an informer event does: it updates the decision cache's inputs (marking, not computing)
// and puts the keys it names directly on the work queues — the object itself, its node(s), the
// claims naming it. Each event costs O(1) to route: who else is affected is found later, when a
// reconcile refreshes the cache (decisions that changed) or a node fans out (statuses its
// agent's report moved). Events that change nothing a decision or status reads are dropped:
// an agent's heartbeat, a reservation's own Ready write, a Node's kubelet status.
import type { APNodeState, APQNClaim, APQNReservation } from '../api/types.js';
import { reservationKey } from '../api/types.js';
import { significantStatusChange } from '../api/node-status.js';
import { parseApiTime } from '../k8s/clock.js';
import type { NodeObject } from '../k8s/informer.js';
import { deepEqual } from '../k8s/merge-patch.js';
import { conditionOf } from './cluster-view.js';
import type { Caches, Scope } from './context.js';
import type { DecisionCache } from './decision-cache.js';

export interface Queues {
  reservations: { add(key: string): void };
  nodes: { add(key: string): void };
  claims: { add(key: string): void };
}

export interface Wiring {
  decisions: DecisionCache;
  scope: Scope;
  queues: Queues;
  /** Called with each node's heartbeat time (ms) so its staleness timer can be set. */
  heartbeat(node: string, at: number): void;
  now(): number;
  heartbeatStaleMs: number;
  /** Whether this copy of the reservation is the echo of the controller's own status write (asked once per write). */
  ownStatusWrite?(key: string, resourceVersion: string | undefined): boolean;
}

function nodesOf(r: APQNReservation | undefined): string[] {
  if (!r) return [];
  return [r.status?.nodeName, r.spec?.nodeName].filter((n): n is string => !!n);
}

/** What of a reservation its node's spec writer reads (the gate) or its decision depends on. */
function nodeFacts(r: APQNReservation): unknown {
  const s = r.status;
  return [
    r.metadata.generation,
    r.metadata.uid,
    r.metadata.deletionTimestamp ?? null,
    r.metadata.finalizers ?? null,
    r.spec,
    s?.nodeName ?? null,
    s?.apqns ?? null,
    s?.displacedQueues ?? null,
    s?.matrix?.controlDomains ?? null,
    conditionOf(s?.conditions, 'Scheduled')?.status ?? null,
    conditionOf(s?.conditions, 'Conflict')?.status ?? null,
  ];
}

export function onReservation(w: Wiring, old: APQNReservation | undefined, r: APQNReservation, deleted = false): void {
  if (w.scope.namespace && r.metadata.namespace !== w.scope.namespace) return;
  const key = reservationKey(r);
  if (deleted) w.decisions.removeReservation(key);
  else w.decisions.setReservation(r);
  const echo = !deleted && old !== undefined && w.ownStatusWrite?.(key, r.metadata.resourceVersion) === true;
  if (!echo) w.queues.reservations.add(key);
  if (deleted || !old || !deepEqual(nodeFacts(old), nodeFacts(r))) {
    for (const n of new Set([...nodesOf(old), ...nodesOf(r)])) if (!w.scope.nodes || w.scope.nodes(n)) w.queues.nodes.add(n);
  }
  for (const c of w.decisions.claimsNaming(key)) w.queues.claims.add(reservationKey(c));
}

export function onClaim(w: Wiring, old: APQNClaim | undefined, c: APQNClaim, deleted = false): void {
  if (w.scope.namespace && c.metadata.namespace !== w.scope.namespace) return;
  const key = reservationKey(c);
  if (deleted) w.decisions.removeClaim(key);
  else w.decisions.setClaim(c);
  w.queues.claims.add(key);
  const names = new Set([old?.spec?.reservationName, c.spec?.reservationName].filter((n): n is string => !!n));
  for (const name of names) {
    const target = `${c.metadata.namespace}/${name}`;
    w.queues.reservations.add(target);
    // The other claims naming it: one of them may win now (or lose).
    for (const other of w.decisions.claimsNaming(target)) w.queues.claims.add(reservationKey(other));
  }
}

/** Whether an APNodeState update changes anything but the heartbeat and host counters. */
export function nodeStateChanged(old: APNodeState, s: APNodeState): boolean {
  return (
    old.metadata.generation !== s.metadata.generation ||
    old.metadata.deletionTimestamp !== s.metadata.deletionTimestamp ||
    !deepEqual(old.spec ?? {}, s.spec ?? {}) ||
    significantStatusChange(old.status, s.status)
  );
}

export function onNodeState(w: Wiring, old: APNodeState | undefined, s: APNodeState, deleted = false): void {
  const name = s.metadata.name ?? '';
  if (w.scope.nodes && !w.scope.nodes(name)) return;
  const beat = parseApiTime(s.status?.heartbeatTime);
  if (deleted) {
    w.decisions.removeNodeState(name);
    w.queues.nodes.add(name);
    return;
  }
  const relevant = !old || nodeStateChanged(old, s);
  w.decisions.setNodeState(s, relevant);
  // A heartbeat alone matters only to an agent that had gone stale: it is back.
  const before = parseApiTime(old?.status?.heartbeatTime);
  const wasStale = old !== undefined && (Number.isNaN(before) || w.now() >= before + w.heartbeatStaleMs);
  if (relevant || (wasStale && beat !== before)) w.queues.nodes.add(name);
  if (!Number.isNaN(beat)) w.heartbeat(name, beat);
}

export function onNode(w: Wiring, old: NodeObject | undefined, n: NodeObject, deleted = false): void {
  const name = n.metadata?.name ?? '';
  if (w.scope.nodes && !w.scope.nodes(name)) return;
  // Only labels matter (nodeSelector): a kubelet's status updates change nothing here.
  if (!deleted && old && deepEqual(old.metadata?.labels ?? {}, n.metadata?.labels ?? {})) return;
  w.decisions.setNodeLabels(name, deleted ? undefined : (n.metadata?.labels ?? {}));
  w.queues.nodes.add(name);
}

/** Everything, once: when this replica starts leading. */
export function enqueueAll(caches: Caches, scope: Scope, queues: Queues): void {
  for (const r of caches.reservations.list(scope.namespace)) queues.reservations.add(reservationKey(r));
  for (const c of caches.claims.list(scope.namespace)) queues.claims.add(reservationKey(c));
  for (const s of caches.nodeStates.list()) {
    const name = s.metadata.name ?? '';
    if (!scope.nodes || scope.nodes(name)) queues.nodes.add(name);
  }
  // Nodes named only by reservations (no APNodeState yet) are created by their reconcile.
  for (const r of caches.reservations.list(scope.namespace)) {
    for (const n of nodesOf(r)) if (!scope.nodes || scope.nodes(n)) queues.nodes.add(n);
  }
}
