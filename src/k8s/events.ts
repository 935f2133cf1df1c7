// An event recorder: events.k8s.io/v1 Events about our objects, which `kubectl describe` and
// `kubectl get events` show (the API server serves the same objects as core/v1 Events, with
// `regarding` as involvedObject and `note` as message).
//
// Repeats of the same event (same object, type, reason, action and note) within the series
// window update one Event's `series` (count, lastObservedTime) instead of creating new ones,
// so a flapping condition does not flood the namespace. Recording never throws and never
// blocks the caller: failures are logged.
import { randomInt } from 'node:crypto';
import { logger, type Logger } from '../log.js';
import { formatMicroTime, realClock, type Clock } from './clock.js';
import { PatchStrategy, describeError, isNotFound } from './client.js';
import type { ApiConfig } from './kubeconfig.js';
import { apiRequest } from './rest.js';

export type EventType = 'Normal' | 'Warning';

export const REPORTING_CONTROLLER = 'ap.s390x.io/apqn-operator';

/** The object an event is about (kind and uid matter: `kubectl describe` selects on them). */
export interface Regarding {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export interface EventRecorderOptions {
  /** Who reports: the pod or node name (at most 128 characters). */
  reportingInstance: string;
  reportingController?: string;
  /** Repeats closer together than this join one series (default 10 min). */
  seriesWindowMs?: number;
  /** Series remembered at most (oldest forgotten first; default 4096). */
  maxSeries?: number;
  clock?: Clock;
  log?: Logger;
}

// API server limits (validation of events.k8s.io/v1).
const NOTE_MAX_BYTES = 1024;
const REASON_MAX = 128;
const ACTION_MAX = 128;

/** An events.k8s.io/v1 Event as written (MicroTimes as text, see formatMicroTime). */
interface EventBody {
  apiVersion: 'events.k8s.io/v1';
  kind: 'Event';
  metadata: { name?: string; namespace?: string };
  eventTime: string;
  series?: { count: number; lastObservedTime: string };
  reportingController: string;
  reportingInstance: string;
  action: string;
  reason: string;
  note: string;
  type: EventType;
  regarding: { apiVersion?: string; kind?: string; name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

interface Series {
  namespace: string;
  body: EventBody;
  /** The Event's name once created. */
  name?: string;
  firstSeen: number;
  lastSeen: number;
  count: number;
  /** A write in flight; repeats meanwhile set `dirty` and are folded into the next write. */
  writing?: Promise<void>;
  dirty: boolean;
}

export class EventRecorder {
  private readonly series = new Map<string, Series>();
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly windowMs: number;
  private readonly maxSeries: number;
  private readonly controller: string;
  private readonly instance: string;

  constructor(
    private readonly kc: ApiConfig,
    options: EventRecorderOptions,
  ) {
    this.clock = options.clock ?? realClock;
    this.log = options.log ?? logger('events');
    this.windowMs = options.seriesWindowMs ?? 10 * 60_000;
    this.maxSeries = options.maxSeries ?? 4096;
    this.controller = options.reportingController ?? REPORTING_CONTROLLER;
    this.instance = options.reportingInstance.slice(0, 128);
  }

  normal(regarding: Regarding, reason: string, note: string, action?: string): void {
    this.record(regarding, 'Normal', reason, note, action);
  }

  warning(regarding: Regarding, reason: string, note: string, action?: string): void {
    this.record(regarding, 'Warning', reason, note, action);
  }

  /** Records an event in the background. `action` (what was done or failed) defaults to reason. */
  record(regarding: Regarding, type: EventType, reason: string, note: string, action = reason): void {
    try {
      const now = this.clock.now();
      reason = reason.slice(0, REASON_MAX);
      action = action.slice(0, ACTION_MAX);
      note = truncateBytes(note, NOTE_MAX_BYTES);
      const meta = regarding.metadata ?? {};
      const key = [regarding.kind, meta.namespace, meta.name, meta.uid, type, reason, action, note].join('\u0000');
      const existing = this.series.get(key);
      if (existing && now - existing.lastSeen <= this.windowMs) {
        existing.count++;
        existing.lastSeen = now;
        this.series.delete(key); // re-insert: the map's order is least recently seen first
        this.series.set(key, existing);
        this.schedule(existing);
        return;
      }
      const series: Series = {
        namespace: meta.namespace || 'default', // events about cluster-scoped objects live in default
        body: {
          apiVersion: 'events.k8s.io/v1',
          kind: 'Event',
          metadata: {},
          eventTime: formatMicroTime(now),
          reportingController: this.controller,
          reportingInstance: this.instance,
          action,
          reason,
          note,
          type,
          regarding: {
            apiVersion: regarding.apiVersion,
            kind: regarding.kind,
            name: meta.name,
            namespace: meta.namespace,
            uid: meta.uid,
            resourceVersion: meta.resourceVersion,
          },
        },
        firstSeen: now,
        lastSeen: now,
        count: 1,
        dirty: false,
      };
      this.series.delete(key);
      this.series.set(key, series);
      this.forgetOld(now);
      this.schedule(series);
    } catch (err) {
      this.log.warn('could not record event', { reason, error: describeError(err) });
    }
  }

  /** Waits for every event write in flight (tests, and a clean shutdown). */
  async flush(): Promise<void> {
    for (;;) {
      const pending = [...this.series.values()].map((s) => s.writing).filter((w): w is Promise<void> => !!w);
      if (pending.length === 0) return;
      await Promise.all(pending);
    }
  }

  private schedule(series: Series): void {
    if (series.writing) {
      series.dirty = true;
      return;
    }
    series.writing = this.write(series).finally(() => {
      series.writing = undefined;
      if (series.dirty) {
        series.dirty = false;
        this.schedule(series);
      }
    });
  }

  private async write(series: Series): Promise<void> {
    const { namespace } = series;
    try {
      if (series.name && series.count > 1) {
        try {
          await apiRequest(this.kc, `${eventsPath(namespace)}/${encodeURIComponent(series.name)}`, {
            method: 'PATCH',
            body: { series: { count: series.count, lastObservedTime: formatMicroTime(series.lastSeen) } },
            contentType: PatchStrategy.MergePatch,
          });
          return;
        } catch (err) {
          if (!isNotFound(err)) throw err;
          // The Event expired (the API server's event TTL): start a new one.
          series.name = undefined;
          series.count = 1;
          series.firstSeen = series.lastSeen;
          series.body.eventTime = formatMicroTime(series.lastSeen);
        }
      }
      if (series.name) return;
      const name = eventName(series.body.regarding?.name ?? 'event', this.clock.now());
      const body: EventBody = { ...series.body, metadata: { name, namespace } };
      if (series.count > 1) {
        body.series = { count: series.count, lastObservedTime: formatMicroTime(series.lastSeen) };
      }
      await apiRequest(this.kc, eventsPath(namespace), { method: 'POST', body });
      series.name = name;
    } catch (err) {
      const r = series.body.regarding;
      this.log.warn('could not write event', {
        object: `${r?.kind ?? ''} ${r?.namespace ? `${r.namespace}/` : ''}${r?.name ?? ''}`,
        reason: series.body.reason,
        error: describeError(err),
      });
    }
  }

  /** Drops series whose window has passed, and the least recently seen beyond the cap. */
  private forgetOld(now: number): void {
    for (const [key, s] of this.series) {
      if (this.series.size <= this.maxSeries && now - s.lastSeen <= this.windowMs) break;
      if (s.writing) continue;
      this.series.delete(key);
    }
  }
}

function eventsPath(namespace: string): string {
  return `/apis/events.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/events`;
}

/** `<object name>.<hex time>`, unique enough (client-go uses the nanosecond time). */
function eventName(objectName: string, now: number): string {
  const stamp = (BigInt(now) * 1_000_000n + BigInt(randomInt(1_000_000))).toString(16);
  return `${objectName.slice(0, 200)}.${stamp}`;
}

function truncateBytes(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let cut = text.slice(0, maxBytes);
  while (Buffer.byteLength(cut) > maxBytes - 3) cut = cut.slice(0, -1);
  return `${cut}...`;
}
