// What the reconcilers share: API clients, the informer caches (read as a ClusterView), an
// event sink, the clock and the logger. The reconcilers' I/O goes through here only.
import type { APNodeState, APQNClaim, APQNReservation, NodeStateStatus } from '../api/types.js';
import { reservationKey } from '../api/types.js';
import type { OperatorClients } from '../k8s/client.js';
import type { Informer, NodeObject } from '../k8s/informer.js';
import type { Logger } from '../log.js';
import type { ClusterView } from './cluster-view.js';
import type { DecisionCache } from './decision-cache.js';

export type EventType = 'Normal' | 'Warning';

/** Records a Kubernetes Event about an object (best effort: failures are logged, not thrown). */
export interface EventSink {
  emit(
    object: { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string; uid?: string } },
    type: EventType,
    reason: string,
    message: string,
  ): Promise<void>;
}

export interface Caches {
  reservations: Informer<APQNReservation>;
  claims: Informer<APQNClaim>;
  nodeStates: Informer<APNodeState>;
  nodes: Informer<NodeObject>;
}

/** Which objects this controller looks after (all, unless a test or a shard narrows it). */
export interface Scope {
  /** Only reservations and claims of this namespace. */
  namespace?: string;
  /** Only nodes (APNodeStates and core Nodes) whose name passes. */
  nodes?: (name: string) => boolean;
}

/** Where a reconciler puts keys it finds need another look. */
export interface Enqueue {
  reservation(key: string): void;
  node(name: string): void;
  claim(key: string): void;
}

/** What one node's spec writer remembers between passes (batching, and a cache that lags). */
export interface NodeWriteRecord {
  /** When the last spec write happened (ms). */
  at: number;
  /** The object's generation that write produced. */
  generation: number;
  /** Writes it could make at once after that one (a token bucket; see nodes.ts). */
  credit: number;
}

export interface ControllerContext {
  clients: OperatorClients;
  caches: Caches;
  /** The cluster decision, incrementally kept (fed by the informer handlers). */
  decisions: DecisionCache;
  enqueue: Enqueue;
  events: EventSink;
  log: Logger;
  now(): number;
  heartbeatStaleMs: number;
  scope: Scope;
  /** Per node: the last spec write. */
  nodeWrites: Map<string, NodeWriteRecord>;
  /** Per reservation: since when a progress-only status change waits, and when its write is due (ms). */
  progress: Map<string, ProgressWait>;
  /**
   * Per reservation: the resourceVersion its last status write by this controller returned.
   * The informer's copy at that version is the write's echo: nothing in it is news to a
   * reconcile (what else it moves reaches the queues through the decision cache).
   */
  ownStatusWrites: Map<string, string>;
  /** Per node: what its last fan-out judged from (nodes.ts). */
  fannedOut: Map<string, { status: NodeStateStatus | undefined; available: boolean }>;
}

export interface ProgressWait {
  since: number;
  /** The reconcile's requeue is set for then. */
  due: number;
}

/**
 * What judging one reservation reads: the clock, the agent's report of the nodes it names
 * (newest copy from the informer) — not the whole cluster.
 */
export function judgeView(ctx: Pick<ControllerContext, 'caches' | 'now' | 'heartbeatStaleMs'>, nodes: Iterable<string | undefined>): ClusterView {
  const nodeStates = new Map<string, APNodeState>();
  for (const name of nodes) {
    if (!name) continue;
    const state = ctx.caches.nodeStates.get(name);
    if (state) nodeStates.set(name, state);
  }
  return { now: ctx.now(), reservations: [], claims: [], nodeStates, nodeLabels: new Map(), heartbeatStaleMs: ctx.heartbeatStaleMs };
}

/** The caches as a ClusterView; `fresh` objects replace their cached copies (read after a write). */
export function clusterView(
  ctx: ControllerContext,
  fresh: { reservation?: APQNReservation; nodeState?: APNodeState } = {},
): ClusterView {
  const inScope = (name: string | undefined) => !ctx.scope.nodes || ctx.scope.nodes(name ?? '');
  const reservations = ctx.caches.reservations.list(ctx.scope.namespace);
  const freshKey = fresh.reservation ? reservationKey(fresh.reservation) : undefined;
  const nodeStates = new Map<string, APNodeState>();
  for (const s of ctx.caches.nodeStates.list()) if (inScope(s.metadata.name)) nodeStates.set(s.metadata.name ?? '', s);
  if (fresh.nodeState) nodeStates.set(fresh.nodeState.metadata.name ?? '', fresh.nodeState);
  const nodeLabels = new Map<string, Record<string, string>>();
  for (const n of ctx.caches.nodes.list()) {
    if (inScope(n.metadata?.name)) nodeLabels.set(n.metadata?.name ?? '', n.metadata?.labels ?? {});
  }
  return {
    now: ctx.now(),
    reservations: freshKey
      ? [...reservations.filter((r) => reservationKey(r) !== freshKey), fresh.reservation!]
      : reservations,
    claims: ctx.caches.claims.list(ctx.scope.namespace),
    nodeStates,
    nodeLabels,
    heartbeatStaleMs: ctx.heartbeatStaleMs,
  };
}
