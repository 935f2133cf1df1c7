// Where the core's AgentEvents go. An event is about the reservation it names (so
// `kubectl describe apqnr` shows "3 host requests were cut off"), else about the node's
// APNodeState. Recording is best effort: a lost event never holds up a pass.
import type { Logger } from '../log.js';
import { API_VERSION, type APNodeState } from '../api/types.js';
import type { AgentEvent } from './core.js';

export interface AgentEventSink {
  emit(event: AgentEvent, nodeState: APNodeState): Promise<void>;
  /** Waits for event writes in flight (stop). */
  flush?(): Promise<void>;
}

/** The object an event is about, as an ObjectReference. */
export interface EventSubject {
  apiVersion: string;
  kind: 'APQNReservation' | 'APNodeState';
  namespace?: string;
  name: string;
  uid?: string;
}

/** The reservation the event names (`namespace/name`), or else the APNodeState. */
export function eventSubject(event: AgentEvent, nodeState: APNodeState): EventSubject {
  const slash = event.reservation ? event.reservation.indexOf('/') : -1;
  if (event.reservation && slash > 0 && slash < event.reservation.length - 1) {
    return {
      apiVersion: API_VERSION,
      kind: 'APQNReservation',
      namespace: event.reservation.slice(0, slash),
      name: event.reservation.slice(slash + 1),
    };
  }
  return {
    apiVersion: API_VERSION,
    kind: 'APNodeState',
    name: nodeState.metadata?.name ?? '',
    ...(nodeState.metadata?.uid ? { uid: nodeState.metadata.uid } : {}),
  };
}

/** No API writes: the runtime's log line is all (unit tests, or no events permission). */
export function logOnlyEventSink(_log: Logger): AgentEventSink {
  return { emit: async () => undefined };
}
