// AgentEvents as Kubernetes Events (events.k8s.io/v1), through src/k8s/events.ts.
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { logOnlyEventSink, type AgentEventSink } from './event-sink.js';

export function kubernetesEventSink(_kc: k8s.KubeConfig, _nodeName: string, log: Logger): AgentEventSink {
  return logOnlyEventSink(log); // replaced once src/k8s/events.ts lands
}
