// What the controller sees of the cluster at one moment: the informer caches as plain data.
// Every decision is a pure function of a ClusterView, so reconcilers rebuild one per pass and
// tests build them by hand.
import type { APNodeState, APQNClaim, APQNReservation, Condition } from '../api/types.js';
import { reservationKey } from '../api/types.js';
import { parseApiTime } from '../k8s/clock.js';

export interface ClusterView {
  /** Milliseconds since the epoch. */
  now: number;
  reservations: readonly APQNReservation[];
  claims: readonly APQNClaim[];
  /** By node name. */
  nodeStates: ReadonlyMap<string, APNodeState>;
  /** Labels of core Nodes by name (a node without a Node object has no labels). */
  nodeLabels: ReadonlyMap<string, Readonly<Record<string, string>>>;
  /** An agent whose heartbeat is older than this is unavailable. */
  heartbeatStaleMs: number;
}

export const DEFAULT_HEARTBEAT_STALE_MS = 40_000;

export type AgentAvailability =
  | { available: true; /** When the heartbeat goes stale (ms since the epoch). */ staleAt: number }
  | { available: false; message: string };

/** Whether the node's agent reports on its current spec generation. */
export function agentTookSpec(state: APNodeState): boolean {
  return (state.status?.observedGeneration ?? 0) >= (state.metadata.generation ?? 0);
}

/** Whether the node's agent reports: an APNodeState with a heartbeat newer than the limit. */
export function agentAvailability(view: ClusterView, node: string): AgentAvailability {
  const state = view.nodeStates.get(node);
  if (!state) return { available: false, message: `node ${node} has no APNodeState: its agent has not reported` };
  const beat = parseApiTime(state.status?.heartbeatTime);
  if (Number.isNaN(beat)) return { available: false, message: `the agent on node ${node} has not reported a heartbeat yet` };
  const staleAt = beat + view.heartbeatStaleMs;
  if (view.now >= staleAt) {
    const ago = Math.round((view.now - beat) / 1000);
    return {
      available: false,
      message: `the agent on node ${node} last reported ${ago} s ago (limit ${Math.round(view.heartbeatStaleMs / 1000)} s); its queues' state is unknown`,
    };
  }
  return { available: true, staleAt };
}

/** Creation time in ms; missing or unparsable sorts last. */
export function createdAt(obj: { metadata: { creationTimestamp?: string } }): number {
  const t = parseApiTime(obj.metadata.creationTimestamp);
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}

/** Older first, then namespace/name: the order in which reservations (and claims) win. */
export function byAge<T extends { metadata: { creationTimestamp?: string; namespace?: string; name?: string } }>(a: T, b: T): number {
  const ka = reservationKey(a);
  const kb = reservationKey(b);
  return createdAt(a) - createdAt(b) || (ka < kb ? -1 : ka > kb ? 1 : 0);
}

export function conditionOf(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** The claim a reservation is bound to (phase Bound, naming it), if any; the oldest when several say so. */
export function boundClaimOf(view: Pick<ClusterView, 'claims'>, r: APQNReservation): APQNClaim | undefined {
  return view.claims
    .filter(
      (c) =>
        c.metadata.namespace === r.metadata.namespace &&
        c.spec?.reservationName === r.metadata.name &&
        c.status?.phase === 'Bound' &&
        !c.metadata.deletionTimestamp,
    )
    .sort(byAge)[0];
}

/**
 * The one claim allowed to hold a reservation: a bound one keeps it; otherwise the oldest
 * live claim naming it.
 */
export function claimWinnerOf(view: ClusterView, namespace: string, reservationName: string): APQNClaim | undefined {
  const live = view.claims
    .filter(
      (c) => c.metadata.namespace === namespace && c.spec?.reservationName === reservationName && !c.metadata.deletionTimestamp,
    )
    .sort(byAge);
  return live.find((c) => c.status?.phase === 'Bound') ?? live[0];
}
