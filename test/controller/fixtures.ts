// Builders for APNodeState statuses and reservations, shaped the way the agent and users write them.
import type { APQNReservation, CardMode, CardStatus, MdevStatus, NodeStateStatus, QueueStatus, ReservationSpec } from '../../src/api/types.js';
import { formatApqn, parseAdapterId } from '../../src/apbus/ids.js';
import { Mask } from '../../src/apbus/mask.js';

export interface CardFixture {
  id: string;
  type: string; // CEX8P, CEX7C, CEX3A …
  domains: number[];
  online?: boolean;
  config?: boolean;
  chkstop?: boolean;
}

export interface NodeFixture {
  cards: CardFixture[];
  /** Host-owned adapters / domains; default every bit (boot default). */
  apmask?: number[];
  aqmask?: number[];
  maxDomainId?: number;
  mdevs?: MdevStatus[];
}

const MODE: Record<string, CardMode> = { C: 'CCA', P: 'EP11', A: 'Accel' };

export function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

export function nodeStatus(f: NodeFixture): NodeStateStatus {
  const apmask = f.apmask ? Mask.of(f.apmask) : Mask.all();
  const aqmask = f.aqmask ? Mask.of(f.aqmask) : Mask.all();
  const cards: CardStatus[] = [];
  const queues: QueueStatus[] = [];
  for (const c of f.cards) {
    const hwtype = Number(/^CEX(\d+)/.exec(c.type)![1]) + 6;
    cards.push({
      id: c.id,
      type: c.type,
      hwtype,
      mode: MODE[c.type.slice(-1)] ?? 'Unknown',
      online: c.online ?? true,
      config: c.config ?? true,
      chkstop: c.chkstop ?? false,
    });
    const adapter = parseAdapterId(c.id);
    for (const domain of c.domains) {
      const host = apmask.has(adapter) && aqmask.has(domain);
      queues.push({
        apqn: formatApqn({ adapter, domain }),
        driver: host ? 'cex4queue' : hwtype >= 10 && hwtype <= 14 ? 'vfio_ap' : '',
        online: host,
        requestsInFlight: 0,
        requestCount: 0,
      });
    }
  }
  return {
    apmask: apmask.toKernelString(),
    aqmask: aqmask.toKernelString(),
    maxDomainId: f.maxDomainId ?? 255,
    cards,
    queues,
    mdevs: f.mdevs ?? [],
  };
}

export function reservation(
  namespace: string,
  name: string,
  spec: ReservationSpec,
  meta: { created?: string; deleted?: string } = {},
): APQNReservation {
  return {
    apiVersion: 'ap.s390x.io/v1alpha1',
    kind: 'APQNReservation',
    metadata: {
      namespace,
      name,
      ...(meta.created ? { creationTimestamp: meta.created } : {}),
      ...(meta.deleted ? { deletionTimestamp: meta.deleted } : {}),
    },
    spec,
  };
}
