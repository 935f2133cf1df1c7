// The controller's metrics: reconciles (count, errors, duration) per controller, work queue
// depth, leadership, cache sizes, reservations by condition, and each node's capacity (what
// `kubectl apqn capacity` shows) — read from the Controller at scrape time, except the duration
// histogram, fed by Controller.onSync after each reconcile.
import { Gauge, Histogram, type Registry } from 'prom-client';
import { ReservationCondition, type APNodeState, type APQNReservation } from '../api/types.js';
import { nodeCapacity, type NodeCapacity } from '../kubectl-apqn/capacity.js';
import { mirroredCounter } from './counters.js';

export const CONTROLLER_QUEUES = ['reservations', 'nodes', 'claims'] as const;
export type ControllerQueue = (typeof CONTROLLER_QUEUES)[number];

/** The parts of a Controller the metrics read (a Controller has them all). */
export interface ControllerMetricsSource {
  readonly stats: {
    syncs: Record<ControllerQueue, number>;
    failures: Record<ControllerQueue, number>;
  };
  isLeading(): boolean;
  queueDepths(): Record<ControllerQueue, { depth: number; delayed: number }>;
  onSync: ((queue: ControllerQueue, seconds: number, failed: boolean) => void) | undefined;
  readonly caches: {
    reservations: { list(): APQNReservation[] };
    claims: { list(): unknown[] };
    nodeStates: { list(): APNodeState[] };
  };
}

const CONDITION_TYPES = Object.values(ReservationCondition);
const STATUSES = ['True', 'False', 'Unknown'] as const;

/** Reservations counted per condition type and status; a missing condition counts as Unknown. */
export function reservationsByCondition(reservations: readonly APQNReservation[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of CONDITION_TYPES) for (const s of STATUSES) counts.set(`${type}/${s}`, 0);
  for (const r of reservations) {
    for (const type of CONDITION_TYPES) {
      const status = r.status?.conditions?.find((c) => c.type === type)?.status ?? 'Unknown';
      const key = `${type}/${status}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  }
  return counts;
}

/** Every named node's capacity, from the cached node states and reservations. */
function capacities(source: ControllerMetricsSource): NodeCapacity[] {
  const reservations = source.caches.reservations.list();
  return source.caches.nodeStates.list().flatMap((s) => (s?.metadata?.name ? [nodeCapacity(s, reservations)] : []));
}

/**
 * `compute` once per scrape for the gauges that read it: a registry calls every metric's
 * collect() in one synchronous pass before it awaits anything, so the value is kept until the
 * next microtask.
 */
function perScrape<T>(compute: () => T): () => T {
  let memo: { value: T } | undefined;
  return () => {
    if (!memo) {
      memo = { value: compute() };
      queueMicrotask(() => {
        memo = undefined;
      });
    }
    return memo.value;
  };
}

export function registerControllerMetrics(registry: Registry, source: ControllerMetricsSource): void {
  mirroredCounter(registry, {
    name: 'apqn_controller_reconcile_total',
    help: 'Reconciles run, per controller (reservations, nodes, claims).',
    labelNames: ['controller'],
    read: () => CONTROLLER_QUEUES.map((q) => [{ controller: q }, source.stats.syncs[q]]),
  });
  mirroredCounter(registry, {
    name: 'apqn_controller_reconcile_errors_total',
    help: 'Reconciles that failed (and were retried with backoff), per controller.',
    labelNames: ['controller'],
    read: () => CONTROLLER_QUEUES.map((q) => [{ controller: q }, source.stats.failures[q]]),
  });
  const duration = new Histogram({
    name: 'apqn_controller_reconcile_duration_seconds',
    help: 'Time one reconcile took, per controller.',
    labelNames: ['controller'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const previous = source.onSync;
  source.onSync = (queue, seconds, failed) => {
    duration.observe({ controller: queue }, seconds);
    previous?.(queue, seconds, failed);
  };
  new Gauge({
    name: 'apqn_controller_workqueue_depth',
    help: 'Keys waiting in the work queue, per queue (0 while this replica does not lead).',
    labelNames: ['queue'],
    registers: [registry],
    collect() {
      const depths = source.queueDepths();
      for (const q of CONTROLLER_QUEUES) this.set({ queue: q }, depths[q].depth);
    },
  });
  new Gauge({
    name: 'apqn_controller_workqueue_delayed',
    help: 'Keys waiting for a delayed (backoff or requeue-after) add, per queue.',
    labelNames: ['queue'],
    registers: [registry],
    collect() {
      const depths = source.queueDepths();
      for (const q of CONTROLLER_QUEUES) this.set({ queue: q }, depths[q].delayed);
    },
  });
  new Gauge({
    name: 'apqn_controller_leading',
    help: '1 while this replica holds the Lease and reconciles.',
    registers: [registry],
    collect() {
      this.set(source.isLeading() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'apqn_controller_cached_objects',
    help: 'Objects in the informer caches, per resource.',
    labelNames: ['resource'],
    registers: [registry],
    collect() {
      this.set({ resource: 'apqnreservations' }, source.caches.reservations.list().length);
      this.set({ resource: 'apqnclaims' }, source.caches.claims.list().length);
      this.set({ resource: 'apnodestates' }, source.caches.nodeStates.list().length);
    },
  });
  // Capacity: computed once per scrape for the three gauges; label sets come and go with nodes
  // and cards, so each scrape starts afresh.
  const capacity = perScrape(() => capacities(source));
  new Gauge({
    name: 'apqn_capacity_free_queues',
    help: 'Queues free to reserve, per node, adapter and card type (no reservation or foreign mdev holds them, their card serves).',
    labelNames: ['node', 'adapter', 'type'],
    registers: [registry],
    collect() {
      this.reset();
      for (const n of capacity()) {
        for (const a of n.adapters) this.set({ node: n.node, adapter: a.adapter, type: a.type }, a.freeDomains.length);
      }
    },
  });
  new Gauge({
    name: 'apqn_capacity_largest_free_matrix_queues',
    help: 'Queues of the largest adapters x domains matrix whose every queue is free, per node and card type.',
    labelNames: ['node', 'type'],
    registers: [registry],
    collect() {
      this.reset();
      for (const n of capacity()) for (const t of n.types) this.set({ node: n.node, type: t.type }, t.largest.queues);
    },
  });
  new Gauge({
    name: 'apqn_capacity_fragmented_free_queues',
    help: 'Free queues the largest free matrix leaves outside, per node and card type (free space no single guest can use together).',
    labelNames: ['node', 'type'],
    registers: [registry],
    collect() {
      this.reset();
      for (const n of capacity()) for (const t of n.types) this.set({ node: n.node, type: t.type }, t.freeQueues - t.largest.queues);
    },
  });
  new Gauge({
    name: 'apqn_reservations',
    help: 'APQNReservations by condition type and status (a missing condition counts as Unknown).',
    labelNames: ['condition', 'status'],
    registers: [registry],
    collect() {
      for (const [key, n] of reservationsByCondition(source.caches.reservations.list())) {
        const [condition, status] = key.split('/') as [string, string];
        this.set({ condition, status }, n);
      }
    },
  });
}
