// Which changes of an APNodeState's status matter to a reader. The agent re-sends its status
// with every heartbeat, and host counters (a queue's requestCount and requestsInFlight) move
// whenever host programs use their queues: neither changes a decision or a condition, so the
// agent writes them only with heartbeats and the controller does not react to them.
import { deepEqual } from '../k8s/merge-patch.js';
import type { NodeStateStatus } from './types.js';

/** The status without heartbeatTime. */
export function withoutHeartbeat(status: NodeStateStatus | undefined): NodeStateStatus {
  const { heartbeatTime: _h, ...rest } = status ?? {};
  return rest;
}

/** The status with every queue's host counters zeroed. */
export function withoutCounters(status: NodeStateStatus): NodeStateStatus {
  if (!status.queues) return status;
  return { ...status, queues: status.queues.map((q) => ({ ...q, requestCount: 0, requestsInFlight: 0 })) };
}

export type StatusDifference = 'none' | 'counters' | 'significant';

export function classifyStatusDifference(stored: NodeStateStatus | undefined, wanted: NodeStateStatus | undefined): StatusDifference {
  const a = withoutHeartbeat(stored);
  const b = withoutHeartbeat(wanted);
  if (deepEqual(a, b)) return 'none';
  return deepEqual(withoutCounters(a), withoutCounters(b)) ? 'counters' : 'significant';
}

/** True when anything but the heartbeat and host counters changed. */
export function significantStatusChange(a: NodeStateStatus | undefined, b: NodeStateStatus | undefined): boolean {
  return classifyStatusDifference(a, b) === 'significant';
}
