// The controller's events — what a person should notice: conflicts, displaced host queues,
// forced unbinds, stuck drains, deletions waiting for a claim — recorded through the shared
// EventRecorder (src/k8s/events.ts: events.k8s.io/v1, repeats folded into a series, never
// throws). emit() only records: the write happens in the background, so a slow or failing
// event write never holds up a reconcile. What must be said before an action is said in the
// reservation's status (displacedQueues gate the node spec), not by an event.
import type { ApiConfig } from '../k8s/kubeconfig.js';
import { EventRecorder } from '../k8s/events.js';
import type { Logger } from '../log.js';
import type { EventSink } from './context.js';

export interface EventOptions {
  /** This replica (pod or host name). */
  host: string;
  log: Logger;
}

export function kubernetesEvents(kc: ApiConfig, options: EventOptions): EventSink & { flush(): Promise<void> } {
  const recorder = new EventRecorder(kc, {
    reportingInstance: options.host,
    log: options.log.child({ events: true }),
  });
  return {
    async emit(object, type, reason, message) {
      options.log.info('event', { object: `${object.metadata?.namespace ?? ''}/${object.metadata?.name ?? ''}`, type, reason, message });
      recorder.record(object, type, reason, message);
    },
    flush: () => recorder.flush(),
  };
}
