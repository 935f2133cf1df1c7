// Hand-built ClusterViews for the controller runtime's pure decisions (placement, node specs,
// statuses, claims): the objects shaped as the API server returns them.
import type {
  APNodeState,
  APQNClaim,
  APQNReservation,
  Condition,
  NodeStateSpec,
  NodeStateStatus,
  ReservationSpec,
  ReservationStatus,
} from '../../src/api/types.js';
import { RESERVATION_FINALIZER } from '../../src/api/types.js';
import type { ClusterView } from '../../src/controller/cluster-view.js';
import { formatMicroTime } from '../../src/k8s/clock.js';
import { nodeStatus, type NodeFixture } from './fixtures.js';

export const NOW = Date.parse('2026-11-25T10:00:00Z');
export const NS = 'ns';

export function minutesAgo(n: number): string {
  return new Date(NOW - n * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function cond(type: string, status: Condition['status'], reason = type): Condition {
  return { type, status, reason, message: '', lastTransitionTime: minutesAgo(30) };
}

export function res(
  name: string,
  spec: ReservationSpec,
  options: { age?: number; status?: ReservationStatus; deleting?: boolean; finalizer?: boolean; uid?: string } = {},
): APQNReservation {
  return {
    apiVersion: 'ap.s390x.io/v1alpha1',
    kind: 'APQNReservation',
    metadata: {
      namespace: NS,
      name,
      uid: options.uid ?? `uid-${name}`,
      generation: 1,
      creationTimestamp: minutesAgo(options.age ?? 10),
      ...(options.deleting ? { deletionTimestamp: minutesAgo(1) } : {}),
      ...(options.finalizer === false ? {} : { finalizers: [RESERVATION_FINALIZER] }),
    },
    spec,
    ...(options.status ? { status: options.status } : {}),
  };
}

/** A status saying the reservation holds `apqns` on `node` (Scheduled=True). */
export function placed(node: string, apqns: string[], extra: Partial<ReservationStatus> = {}): ReservationStatus {
  return {
    nodeName: node,
    apqns,
    conditions: [cond('Accepted', 'True', 'Valid'), cond('Scheduled', 'True', 'Scheduled'), cond('Conflict', 'False', 'NoConflict')],
    ...extra,
  };
}

export function claim(name: string, reservationName: string, options: { age?: number; phase?: 'Pending' | 'Bound' | 'Lost' } = {}): APQNClaim {
  return {
    apiVersion: 'ap.s390x.io/v1alpha1',
    kind: 'APQNClaim',
    metadata: { namespace: NS, name, uid: `uid-${name}`, generation: 1, creationTimestamp: minutesAgo(options.age ?? 5) },
    spec: { reservationName },
    ...(options.phase ? { status: { phase: options.phase } } : {}),
  };
}

export function state(
  name: string,
  fixture: NodeFixture,
  options: { spec?: NodeStateSpec; heartbeatAgoMs?: number; status?: Partial<NodeStateStatus>; generation?: number } = {},
): APNodeState {
  return {
    apiVersion: 'ap.s390x.io/v1alpha1',
    kind: 'APNodeState',
    metadata: { name, generation: options.generation ?? 1 },
    spec: options.spec ?? {},
    status: {
      ...nodeStatus(fixture),
      observedGeneration: options.generation ?? 1,
      kernel: { apConfig: true, driverOverride: false },
      heartbeatTime: formatMicroTime(NOW - (options.heartbeatAgoMs ?? 1000)),
      ...options.status,
    },
  };
}

export function view(parts: {
  reservations?: APQNReservation[];
  claims?: APQNClaim[];
  states?: APNodeState[];
  labels?: Record<string, Record<string, string>>;
}): ClusterView {
  return {
    now: NOW,
    reservations: parts.reservations ?? [],
    claims: parts.claims ?? [],
    nodeStates: new Map((parts.states ?? []).map((s) => [s.metadata.name!, s])),
    nodeLabels: new Map(Object.entries(parts.labels ?? {})),
    heartbeatStaleMs: 40_000,
  };
}

/** Cards 05, 06 (CCA) and 07 (EP11), domains 0..15, all on the host. */
export const threeCards: NodeFixture = {
  cards: [
    { id: '05', type: 'CEX8C', domains: Array.from({ length: 16 }, (_, i) => i) },
    { id: '06', type: 'CEX7C', domains: Array.from({ length: 16 }, (_, i) => i) },
    { id: '07', type: 'CEX8P', domains: Array.from({ length: 16 }, (_, i) => i) },
  ],
};
