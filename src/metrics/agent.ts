// The node agent's metrics, per node: queues by driver and state, queues of reservations by
// their state (drains waiting among them), mdevs, passes, sysfs steps and status writes — all
// read from the agent at scrape time (its last status and its stats), so a scrape never
// touches the bus or the API server. One registry can serve many agents (`dev` runs one per
// simulated node in one process).
import { Gauge, type Registry } from 'prom-client';
import type { NodeStateStatus, QueueStatus } from '../api/types.js';
import { mirroredCounter } from './counters.js';

/** The parts of an AgentRuntime the metrics read (an AgentRuntime has them all). */
export interface AgentMetricsSource {
  readonly nodeName: string;
  lastStatus(): NodeStateStatus | undefined;
  stats(): {
    passes: number;
    steps: number;
    passErrors: number;
    synced: boolean;
    status: { writes: number; heartbeats: number; conflicts: number; failures: number };
  };
}

/**
 * A queue's state as the metric shows it: `offline` (not online or not configured),
 * `checkstop`, for vfio_ap the kernel's `assigned` / `unassigned` / `in_use`, otherwise `busy`
 * while host requests are in flight, else `idle`.
 */
export function queueState(q: QueueStatus): string {
  if (q.chkstop) return 'checkstop';
  if (!q.online || q.config === false) return 'offline';
  if (q.driver === 'vfio_ap') return (q.vfioStatus ?? 'unassigned').replace(' ', '_');
  return q.requestsInFlight > 0 ? 'busy' : 'idle';
}

/** Queue counts keyed `driver/state` (driver `none` when unbound). */
export function queuesByDriverAndState(status: NodeStateStatus | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (const q of status?.queues ?? []) {
    const key = `${q.driver || 'none'}/${queueState(q)}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Queues of reservations by their state (Pending, Draining, Stuck, Assigned …). */
export function reservationQueuesByState(status: NodeStateStatus | undefined): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of status?.reservations ?? []) {
    for (const q of r.queues ?? []) counts.set(q.state, (counts.get(q.state) ?? 0) + 1);
  }
  return counts;
}

export function registerAgentMetrics(registry: Registry, agents: () => readonly AgentMetricsSource[]): void {
  new Gauge({
    name: 'apqn_agent_queues',
    help: 'Queues on the node by kernel driver (cex4queue, vfio_ap, none) and state.',
    labelNames: ['node', 'driver', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const a of agents()) {
        for (const [key, n] of queuesByDriverAndState(a.lastStatus())) {
          const [driver, state] = key.split('/') as [string, string];
          this.set({ node: a.nodeName, driver, state }, n);
        }
      }
    },
  });
  new Gauge({
    name: 'apqn_agent_reservation_queues',
    help: "Reserved queues on the node by the agent's state for them (Pending, Draining, InUse, Stuck, Assigned, Bound, Releasing …).",
    labelNames: ['node', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const a of agents()) {
        for (const [state, n] of reservationQueuesByState(a.lastStatus())) this.set({ node: a.nodeName, state }, n);
      }
    },
  });
  new Gauge({
    name: 'apqn_agent_drains_waiting',
    help: 'Queues waiting for host requests to drain before they move (inUsePolicy Wait), Stuck ones included.',
    labelNames: ['node'],
    registers: [registry],
    collect() {
      for (const a of agents()) {
        const byState = reservationQueuesByState(a.lastStatus());
        this.set({ node: a.nodeName }, (byState.get('Draining') ?? 0) + (byState.get('Stuck') ?? 0));
      }
    },
  });
  new Gauge({
    name: 'apqn_agent_mdevs',
    help: 'Matrix mdevs on the node, by whether this operator owns them.',
    labelNames: ['node', 'owned'],
    registers: [registry],
    collect() {
      for (const a of agents()) {
        const mdevs = a.lastStatus()?.mdevs ?? [];
        const owned = mdevs.filter((m) => m.owned).length;
        this.set({ node: a.nodeName, owned: 'true' }, owned);
        this.set({ node: a.nodeName, owned: 'false' }, mdevs.length - owned);
      }
    },
  });
  new Gauge({
    name: 'apqn_agent_synced',
    help: "1 when the agent's last pass found the bus as the spec wants it.",
    labelNames: ['node'],
    registers: [registry],
    collect() {
      for (const a of agents()) this.set({ node: a.nodeName }, a.stats().synced ? 1 : 0);
    },
  });
  mirroredCounter(registry, {
    name: 'apqn_agent_passes_total',
    help: 'Reconcile passes over the bus.',
    labelNames: ['node'],
    read: () => agents().map((a) => [{ node: a.nodeName }, a.stats().passes]),
  });
  mirroredCounter(registry, {
    name: 'apqn_agent_pass_errors_total',
    help: 'Passes that stopped with an error (retried with backoff).',
    labelNames: ['node'],
    read: () => agents().map((a) => [{ node: a.nodeName }, a.stats().passErrors]),
  });
  mirroredCounter(registry, {
    name: 'apqn_agent_sysfs_steps_total',
    help: 'Sysfs writes (mask, bind, mdev steps) executed.',
    labelNames: ['node'],
    read: () => agents().map((a) => [{ node: a.nodeName }, a.stats().steps]),
  });
  mirroredCounter(registry, {
    name: 'apqn_agent_status_writes_total',
    help: 'APNodeState status patches, by kind (change, heartbeat).',
    labelNames: ['node', 'kind'],
    read: () =>
      agents().flatMap((a) => {
        const s = a.stats().status;
        return [
          [{ node: a.nodeName, kind: 'change' }, s.writes - s.heartbeats],
          [{ node: a.nodeName, kind: 'heartbeat' }, s.heartbeats],
        ] as Array<[Record<string, string>, number]>;
      }),
  });
  mirroredCounter(registry, {
    name: 'apqn_agent_status_write_failures_total',
    help: 'Status writes that failed (unreachable, 5xx …) and were retried; 409 conflicts are counted apart.',
    labelNames: ['node', 'kind'],
    read: () =>
      agents().flatMap((a) => {
        const s = a.stats().status;
        return [
          [{ node: a.nodeName, kind: 'error' }, s.failures],
          [{ node: a.nodeName, kind: 'conflict' }, s.conflicts],
        ] as Array<[Record<string, string>, number]>;
      }),
  });
}
