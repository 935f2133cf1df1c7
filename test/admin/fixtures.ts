// Hand-written cluster objects for the kubectl-apqn tests: an APNodeState status built from a
// short description the way an agent would report it (drivers from the masks' rule unless
// said otherwise, vfio_ap queue status from the mdevs), reservations and claims with the
// conditions the controller writes.
import type {
  APNodeState,
  APQNClaim,
  APQNReservation,
  CardStatus,
  ClaimPhase,
  Condition,
  MdevIntent,
  MdevStatus,
  NodeStateSpec,
  QueueStatus,
  ReservationSpec,
  ReservationStatus,
} from '../../src/api/types.js';
import { API_VERSION } from '../../src/api/types.js';
import { formatApqn, parseAdapterId, parseDomainId } from '../../src/apbus/ids.js';
import { Mask } from '../../src/apbus/mask.js';

export const T0 = Date.parse('2026-11-25T10:00:00Z');
export const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
export const micro = (ms: number) => new Date(ms).toISOString().replace(/Z$/, '000Z');

/** '0000-0007' or '0004,0005' -> domain numbers. */
export function domainsOf(text: string): number[] {
  const out: number[] = [];
  for (const part of text.split(',')) {
    const [a, b] = part.split('-');
    const from = parseDomainId(a!);
    const to = b ? parseDomainId(b) : from;
    for (let d = from; d <= to; d++) out.push(d);
  }
  return out;
}

export interface CardDesc {
  id: string;
  type: string; // CEX8C …
  domains: string;
  online?: boolean;
  config?: boolean;
  chkstop?: boolean;
}

export interface MdevDesc {
  uuid: string;
  reservation?: string; // namespace/name: owned by the operator and named in the spec
  adapters: string[];
  domains: string[];
  controlDomains?: string[];
  inUse?: boolean;
}

export interface NodeDesc {
  name: string;
  kernel?: '5.15' | '6.10' | '6.19';
  maxDomainId?: number;
  cards: CardDesc[];
  /** Adapters / domains cleared in apmask / aqmask (their queues are on vfio_ap). */
  clearAdapters?: string[];
  clearDomains?: string[];
  /** Per-queue driver where it is not the masks' (driver_override, unbound by hand). */
  drivers?: Record<string, '' | 'cex4queue' | 'vfio_ap'>;
  /** Host requests in flight per queue. */
  load?: Record<string, number>;
  mdevs?: MdevDesc[];
  spec?: NodeStateSpec;
  /** Heartbeat age in seconds (default 5). */
  heartbeatAgeSeconds?: number;
}

export function nodeState(desc: NodeDesc, now = T0): APNodeState {
  const kernel = desc.kernel ?? '6.10';
  const cleared = { a: new Set((desc.clearAdapters ?? []).map(parseAdapterId)), d: new Set((desc.clearDomains ?? []).map(parseDomainId)) };
  const apmask = Mask.of([...Array(256).keys()].filter((i) => !cleared.a.has(i)));
  const aqmask = Mask.of([...Array(256).keys()].filter((i) => !cleared.d.has(i)));
  const inMdev = new Map<string, MdevDesc>();
  for (const m of desc.mdevs ?? []) for (const a of m.adapters) for (const d of m.domains) inMdev.set(`${a}.${d}`, m);

  const cards: CardStatus[] = desc.cards.map((c) => ({
    id: c.id,
    type: c.type,
    hwtype: Number(c.type.slice(3, 4)) + 6,
    mode: c.type.endsWith('C') ? 'CCA' : c.type.endsWith('P') ? 'EP11' : 'Accel',
    online: c.online ?? true,
    config: c.config ?? true,
    chkstop: c.chkstop ?? false,
  }));
  const queues: QueueStatus[] = [];
  for (const c of desc.cards) {
    const a = parseAdapterId(c.id);
    for (const d of domainsOf(c.domains)) {
      const apqn = formatApqn({ adapter: a, domain: d });
      const byMasks = cleared.a.has(a) || cleared.d.has(d) ? 'vfio_ap' : 'cex4queue';
      const driver = desc.drivers?.[apqn] ?? byMasks;
      const usable = (c.online ?? true) && (c.config ?? true) && !(c.chkstop ?? false);
      const q: QueueStatus = {
        apqn,
        driver,
        online: driver === 'cex4queue' && usable,
        config: c.config ?? true,
        chkstop: c.chkstop ?? false,
        requestsInFlight: desc.load?.[apqn] ?? 0,
        requestCount: (desc.load?.[apqn] ?? 0) * 4,
      };
      if (driver === 'vfio_ap') {
        const m = inMdev.get(apqn);
        q.vfioStatus = m ? (m.inUse ? 'in use' : 'assigned') : 'unassigned';
      }
      queues.push(q);
    }
  }
  const vfio = new Set(queues.filter((q) => q.driver === 'vfio_ap').map((q) => q.apqn));
  const mdevs: MdevStatus[] = (desc.mdevs ?? []).map((m) => {
    const product = m.adapters.flatMap((a) => m.domains.map((d) => `${a}.${d}`));
    // guest_matrix drops an adapter whole when any of its queues is not on vfio_ap.
    const guestAdapters = m.adapters.filter((a) => m.domains.every((d) => vfio.has(`${a}.${d}`)));
    return {
      uuid: m.uuid,
      matrix: product,
      guestMatrix: guestAdapters.flatMap((a) => m.domains.map((d) => `${a}.${d}`)),
      controlDomains: m.controlDomains ?? [],
      owned: m.reservation !== undefined,
      ...(m.reservation ? { reservation: m.reservation } : {}),
      inUse: m.inUse ?? false,
    };
  });
  const specMdevs: MdevIntent[] = (desc.mdevs ?? [])
    .filter((m) => m.reservation)
    .map((m) => ({ uuid: m.uuid, reservation: m.reservation!, adapters: m.adapters, domains: m.domains, controlDomains: m.controlDomains ?? [] }));
  const maxDomainId = desc.maxDomainId ?? 84;
  return {
    apiVersion: API_VERSION,
    kind: 'APNodeState',
    metadata: { name: desc.name, generation: 3, creationTimestamp: iso(now - 3_600_000) },
    spec: desc.spec ?? { bindingMode: 'Masks', apmask: [], aqmask: [], overrides: [], queues: [], mdevs: specMdevs },
    status: {
      observedGeneration: 3,
      heartbeatTime: micro(now - (desc.heartbeatAgeSeconds ?? 5) * 1000),
      kernel: { apConfig: kernel !== '5.15', driverOverride: kernel === '6.19', profile: kernel },
      maxAdapterId: 255,
      maxDomainId,
      apmask: apmask.toKernelString(),
      aqmask: aqmask.toKernelString(),
      queueCount: queues.length,
      cards,
      queues,
      mdevs,
      reservations: [],
      conditions: [cond('Synced', 'True', 'Synced', 'The bus matches the spec.', now)],
    },
  };
}

export function cond(type: string, status: Condition['status'], reason: string, message: string, at = T0): Condition {
  return { type, status, reason, message, lastTransitionTime: iso(at), observedGeneration: 1 };
}

export interface ReservationDesc {
  namespace: string;
  name: string;
  uid?: string;
  createdSecondsAgo?: number;
  spec: ReservationSpec;
  status?: ReservationStatus;
  deleting?: boolean;
}

export function reservation(desc: ReservationDesc, now = T0): APQNReservation {
  return {
    apiVersion: API_VERSION,
    kind: 'APQNReservation',
    metadata: {
      namespace: desc.namespace,
      name: desc.name,
      uid: desc.uid ?? `uid-${desc.namespace}-${desc.name}`,
      generation: 1,
      creationTimestamp: iso(now - (desc.createdSecondsAgo ?? 600) * 1000),
      finalizers: ['ap.s390x.io/release-queues'],
      ...(desc.deleting ? { deletionTimestamp: iso(now - 10_000) } : {}),
    },
    spec: desc.spec,
    ...(desc.status ? { status: desc.status } : {}),
  };
}

/** The status the controller writes for a reservation that holds `apqns` on `node` and is Ready. */
export function readyStatus(node: string, apqns: string[], mdevUUID: string | undefined, extra: Partial<ReservationStatus> = {}): ReservationStatus {
  const adapters = [...new Set(apqns.map((q) => q.slice(0, 2)))].sort();
  const domains = [...new Set(apqns.map((q) => q.slice(3)))].sort();
  return {
    observedGeneration: 1,
    nodeName: node,
    apqns,
    matrix: { adapters, domains, controlDomains: [] },
    ...(mdevUUID ? { mdevUUID } : {}),
    queues: apqns.map((apqn) => ({ apqn, driver: mdevUUID ? 'vfio_ap' : 'cex4queue', state: mdevUUID ? 'Assigned' : 'Bound' })),
    conditions: [
      cond('Accepted', 'True', 'Valid', 'the spec is valid'),
      cond('Scheduled', 'True', 'Scheduled', `placed on node ${node}`),
      cond('Conflict', 'False', 'NoConflict', 'no other reservation holds these queues'),
      cond('Bound', 'True', 'Bound', `every queue is bound to ${mdevUUID ? 'vfio_ap' : 'cex4queue'} on node ${node}`),
      cond('Ready', 'True', 'Ready', mdevUUID ? `mdev ${mdevUUID} on node ${node} has the reserved matrix` : `the queues are bound to cex4queue on node ${node}`),
    ],
    ...extra,
  };
}

export function claim(namespace: string, name: string, reservationName: string, phase: ClaimPhase | undefined, bound?: Condition, extra: Partial<APQNClaim['status']> = {}): APQNClaim {
  return {
    apiVersion: API_VERSION,
    kind: 'APQNClaim',
    metadata: { namespace, name, uid: `uid-claim-${name}`, creationTimestamp: iso(T0 - 300_000) },
    spec: { reservationName, guest: { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: 'vm1' } },
    ...(phase ? { status: { phase, ...(bound ? { conditions: [bound] } : {}), ...extra } } : {}),
  };
}
