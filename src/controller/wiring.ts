// Which keys an informer event puts on which queue. Handlers only enqueue: every decision is
// made later by a reconciler reading the caches. A change to one object can change what its
// neighbours should say (a released queue ends a conflict; a new holder changes a node's mask
// plan), so events fan out to the node and to the reservations that share it.
import type { APNodeState, APQNClaim, APQNReservation } from '../api/types.js';
import { reservationKey } from '../api/types.js';
import type { NodeObject } from '../k8s/informer.js';
import type { Caches, Scope } from './context.js';

export interface Queues {
  reservations: { add(key: string): void };
  nodes: { add(key: string): void };
  claims: { add(key: string): void };
}

function nodesOf(r: APQNReservation | undefined): string[] {
  if (!r) return [];
  return [r.status?.nodeName, r.spec?.nodeName].filter((n): n is string => !!n);
}

/** Reservations on `node` (placed or pinned there), and those that may still go to any node
 *  (request-based, not placed yet). A reservation pinned to another node is not touched: its
 *  placement, conflicts and mask plan depend on that node only. (Re-enqueueing every pinned but
 *  not yet placed reservation on each event made a burst of N creates cost N² reconciles.) */
function reservationsTouching(caches: Caches, scope: Scope, nodes: ReadonlySet<string>): string[] {
  return caches.reservations
    .list(scope.namespace)
    .filter((r) => {
      const on = nodesOf(r);
      return on.length === 0 || on.some((n) => nodes.has(n));
    })
    .map(reservationKey);
}

function claimsNaming(caches: Caches, scope: Scope, namespace: string | undefined, name: string | undefined): string[] {
  return caches.claims
    .list(scope.namespace)
    .filter((c) => c.metadata.namespace === namespace && c.spec?.reservationName === name)
    .map(reservationKey);
}

export function onReservation(caches: Caches, scope: Scope, queues: Queues, old: APQNReservation | undefined, r: APQNReservation): void {
  if (scope.namespace && r.metadata.namespace !== scope.namespace) return;
  queues.reservations.add(reservationKey(r));
  const nodes = new Set([...nodesOf(old), ...nodesOf(r)].filter((n) => !scope.nodes || scope.nodes(n)));
  for (const n of nodes) queues.nodes.add(n);
  for (const key of reservationsTouching(caches, scope, nodes)) queues.reservations.add(key);
  for (const key of claimsNaming(caches, scope, r.metadata.namespace, r.metadata.name)) queues.claims.add(key);
}

export function onClaim(caches: Caches, scope: Scope, queues: Queues, old: APQNClaim | undefined, c: APQNClaim): void {
  if (scope.namespace && c.metadata.namespace !== scope.namespace) return;
  const names = new Set([old?.spec?.reservationName, c.spec?.reservationName].filter((n): n is string => !!n));
  queues.claims.add(reservationKey(c));
  for (const name of names) {
    queues.reservations.add(`${c.metadata.namespace}/${name}`);
    // The other claims naming it: one of them may win now (or lose).
    for (const key of claimsNaming(caches, scope, c.metadata.namespace, name)) queues.claims.add(key);
  }
}

export function onNodeState(caches: Caches, scope: Scope, queues: Queues, s: APNodeState): void {
  const name = s.metadata.name ?? '';
  if (scope.nodes && !scope.nodes(name)) return;
  queues.nodes.add(name);
  for (const key of reservationsTouching(caches, scope, new Set([name]))) queues.reservations.add(key);
}

export function onNode(caches: Caches, scope: Scope, queues: Queues, n: NodeObject): void {
  const name = n.metadata?.name ?? '';
  if (scope.nodes && !scope.nodes(name)) return;
  // Labels matter to nodeSelector scheduling: reservations not placed yet look again.
  for (const key of reservationsTouching(caches, scope, new Set([name]))) queues.reservations.add(key);
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
