// AgentEvents as Kubernetes Events (events.k8s.io/v1) through the shared EventRecorder: about
// the reservation the event names — with its uid when the reservation can be read, so
// `kubectl describe apqnr` lists them — else about the node's APNodeState.
import type { ApiConfig } from '../k8s/kubeconfig.js';
import type { APQNReservation } from '../api/types.js';
import { CustomResourceClient, ReservationType } from '../k8s/client.js';
import { EventRecorder, type Regarding } from '../k8s/events.js';
import type { Logger } from '../log.js';
import { eventSubject, type AgentEventSink } from './event-sink.js';

const UID_TTL_MS = 60_000;

export function kubernetesEventSink(kc: ApiConfig, nodeName: string, log: Logger): AgentEventSink {
  const recorder = new EventRecorder(kc, { reportingInstance: `apqn-agent-${nodeName}`, log });
  const reservations = new CustomResourceClient<APQNReservation>(kc, ReservationType);
  const uids = new Map<string, { uid: string | undefined; atMs: number }>();

  async function reservationUid(namespace: string, name: string): Promise<string | undefined> {
    const key = `${namespace}/${name}`;
    const cached = uids.get(key);
    if (cached && Date.now() - cached.atMs < UID_TTL_MS) return cached.uid;
    let uid: string | undefined;
    try {
      uid = (await reservations.find({ namespace, name }))?.metadata.uid;
    } catch {
      uid = undefined; // unreadable: the event still names it
    }
    uids.set(key, { uid, atMs: Date.now() });
    return uid;
  }

  return {
    async emit(event, nodeState) {
      const subject = eventSubject(event, nodeState);
      const uid = subject.kind === 'APQNReservation' ? await reservationUid(subject.namespace!, subject.name) : subject.uid;
      const regarding: Regarding = {
        apiVersion: subject.apiVersion,
        kind: subject.kind,
        metadata: { name: subject.name, ...(subject.namespace ? { namespace: subject.namespace } : {}), ...(uid ? { uid } : {}) },
      };
      recorder.record(regarding, event.type, event.reason, event.message);
    },
    flush: () => recorder.flush(),
  };
}
