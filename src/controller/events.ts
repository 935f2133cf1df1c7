// The controller's events — what a person should notice: conflicts, displaced host queues,
// forced unbinds, stuck drains, deletions waiting for a claim — recorded through the shared
// EventRecorder (src/k8s/events.ts: events.k8s.io/v1, repeats folded into a series, never
// throws). emit() resolves once the event is written (or failed), so an event that must come
// before an action (displaced queues before the node spec moves them) really does.
import type * as k8s from '@kubernetes/client-node';
import { EventRecorder } from '../k8s/events.js';
import type { Logger } from '../log.js';
import type { EventSink } from './context.js';

export interface EventOptions {
  /** This replica (pod or host name). */
  host: string;
  log: Logger;
}

export function kubernetesEvents(kc: k8s.KubeConfig, options: EventOptions): EventSink & { flush(): Promise<void> } {
  const recorder = new EventRecorder(kc, {
    reportingInstance: options.host,
    log: options.log.child({ events: true }),
  });
  return {
    async emit(object, type, reason, message) {
      options.log.info('event', { object: `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`, type, reason, message });
      recorder.record(object, type, reason, message);
      await recorder.flush();
    },
    flush: () => recorder.flush(),
  };
}
