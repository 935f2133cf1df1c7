// Kubernetes Events (events.k8s.io/v1) about reservations and claims: what a person should
// notice — conflicts, displaced host queues, forced unbinds, stuck drains, deletions waiting
// for a claim. Best effort: an event that cannot be written is logged, never retried, never
// fails a reconcile. The same event about the same object is not repeated within
// `dedupeMs` (reconcilers are level-based and may decide the same thing twice).
//
// Written as raw JSON through CustomObjectsApi: eventTime is a MicroTime (six fractional digits).
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { describeError } from '../k8s/client.js';
import { formatMicroTime, realClock, type Clock } from '../k8s/clock.js';
import type { Logger } from '../log.js';
import type { EventSink, EventType } from './context.js';

export interface EventOptions {
  component: string;
  host: string;
  log: Logger;
  dedupeMs?: number;
  clock?: Clock;
}

const EVENTS = { group: 'events.k8s.io', version: 'v1', plural: 'events' };
const NOTE_MAX = 1024;

export function kubernetesEvents(kc: k8s.KubeConfig, options: EventOptions): EventSink {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const clock = options.clock ?? realClock;
  const dedupeMs = options.dedupeMs ?? 10 * 60_000;
  const recent = new Map<string, number>();
  return {
    async emit(object, type: EventType, reason: string, message: string) {
      const meta = object.metadata ?? {};
      const fingerprint = `${meta.uid ?? `${meta.namespace}/${meta.name}`}|${type}|${reason}|${message}`;
      const now = clock.now();
      const last = recent.get(fingerprint);
      if (last !== undefined && now - last < dedupeMs) return;
      recent.set(fingerprint, now);
      if (recent.size > 5000) for (const [k, t] of recent) if (now - t >= dedupeMs) recent.delete(k);

      const namespace = meta.namespace || 'default';
      const body = {
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name: `${meta.name ?? 'object'}.${randomBytes(8).toString('hex')}`, namespace },
        eventTime: formatMicroTime(now),
        reportingController: `ap.s390x.io/${options.component}`,
        reportingInstance: options.host.slice(0, 128),
        action: reason,
        reason,
        type,
        note: message.length > NOTE_MAX ? `${message.slice(0, NOTE_MAX - 1)}…` : message,
        regarding: {
          apiVersion: object.apiVersion,
          kind: object.kind,
          name: meta.name,
          namespace: meta.namespace,
          uid: meta.uid,
        },
      };
      try {
        await api.createNamespacedCustomObject({ ...EVENTS, namespace, body });
        options.log.info('event', { object: `${meta.namespace ?? ''}/${meta.name ?? ''}`, type, reason, message });
      } catch (err) {
        recent.delete(fingerprint);
        options.log.warn('could not record an event', { reason, object: meta.name, error: describeError(err) });
      }
    },
  };
}
