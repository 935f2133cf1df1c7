// Shared set-up for the controller runtime's integration tests: a namespace, a controller
// scoped to it (tests share one API server, so each test's controller sees only its own
// namespace and its own nodes, named `<namespace>-<suffix>`), fake agents, and waiting for
// conditions the way `kubectl wait` does.
import type { ExecutionContext } from 'ava';
import * as k8s from '@kubernetes/client-node';
import type { APQNClaim, APQNReservation, ClaimSpec, Condition, ReservationSpec } from '../../src/api/types.js';
import { API_VERSION } from '../../src/api/types.js';
import { startController, type RunningController, type StartControllerOptions } from '../../src/commands/controller.js';
import { operatorClients, type OperatorClients } from '../../src/k8s/client.js';
import { logger } from '../../src/log.js';
import { FakeAgent, type FakeAgentOptions } from '../support/fake-agent.js';
import { eventually, kubeConfig, testNamespace } from '../support/cluster.js';

export interface Harness {
  ns: string;
  clients: OperatorClients;
  node(suffix: string): string;
  controller(overrides?: Partial<StartControllerOptions>): Promise<RunningController>;
  agent(suffix: string, options: Omit<FakeAgentOptions, 'kubeConfig' | 'node'>): Promise<FakeAgent>;
  reserve(name: string, spec: ReservationSpec): Promise<APQNReservation>;
  claim(name: string, spec: ClaimSpec): Promise<APQNClaim>;
  reservation(name: string): Promise<APQNReservation | undefined>;
  /** Waits until the reservation's condition has this status (and reason, if given). */
  waitFor(name: string, type: string, status: string, reason?: string, timeoutMs?: number): Promise<APQNReservation>;
  waitForClaim(name: string, predicate: (c: APQNClaim) => boolean, what: string, timeoutMs?: number): Promise<APQNClaim>;
}

/** `eventually` with the patience these tests need when many controllers share two cores. */
export function waitUntil<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000, intervalMs = 100): Promise<T> {
  return eventually(what, probe, timeoutMs, intervalMs);
}

export function condition(obj: { status?: { conditions?: Condition[] } } | undefined, type: string): Condition | undefined {
  return obj?.status?.conditions?.find((c) => c.type === type);
}

export async function harness(t: ExecutionContext, options: { heartbeatStaleMs?: number } = {}): Promise<Harness> {
  const ns = await testNamespace(t, 'rt');
  const kc = kubeConfig();
  const clients = operatorClients(kc);
  const node = (suffix: string) => `${ns}-${suffix}`;
  const h: Harness = {
    ns,
    clients,
    node,
    async controller(overrides = {}) {
      const running = await startController({
        kubeConfig: kubeConfig(),
        scope: { namespace: ns, nodes: (n) => n.startsWith(`${ns}-`) },
        heartbeatStaleMs: options.heartbeatStaleMs ?? 40_000,
        log: logger('controller', { test: ns }),
        ...overrides,
      });
      t.teardown(() => running.stop());
      return running;
    },
    async agent(suffix, agentOptions) {
      const agent = await FakeAgent.start({ kubeConfig: kc, node: node(suffix), ...agentOptions });
      t.teardown(() => agent.stop());
      return agent;
    },
    reserve(name, spec) {
      return clients.reservations.create({ apiVersion: API_VERSION, kind: 'APQNReservation', metadata: { name, namespace: ns }, spec });
    },
    claim(name, spec) {
      return clients.claims.create({ apiVersion: API_VERSION, kind: 'APQNClaim', metadata: { name, namespace: ns }, spec });
    },
    reservation(name) {
      return clients.reservations.find({ namespace: ns, name });
    },
    async waitFor(name, type, status, reason, timeoutMs = 60_000) {
      let last: APQNReservation | undefined;
      try {
        return await eventually(
          `${name} ${type}=${status}${reason ? ` (${reason})` : ''}`,
          async () => {
            last = await clients.reservations.find({ namespace: ns, name });
            const c = condition(last, type);
            return c && c.status === status && (!reason || c.reason === reason) ? last : undefined;
          },
          timeoutMs,
        );
      } catch (err) {
        t.log(JSON.stringify(last?.status ?? null, null, 1));
        throw err;
      }
    },
    async waitForClaim(name, predicate, what, timeoutMs = 60_000) {
      let last: APQNClaim | undefined;
      try {
        return await eventually(
          `claim ${name}: ${what}`,
          async () => {
            last = await clients.claims.find({ namespace: ns, name });
            return last && predicate(last) ? last : undefined;
          },
          timeoutMs,
        );
      } catch (err) {
        t.log(JSON.stringify(last?.status ?? null, null, 1));
        throw err;
      }
    },
  };
  return h;
}

/** A node with two CCA cards (05, 06) and one EP11 card (07), 16 domains each, all on the host. */
export const twoCardNode: Omit<FakeAgentOptions, 'kubeConfig' | 'node'> = {
  cards: [
    { id: '05', type: 'CEX8C', domains: '0000-000f' },
    { id: '06', type: 'CEX7C', domains: '0000-000f' },
    { id: '07', type: 'CEX8P', domains: '0000-000f' },
  ],
  heartbeatMs: 500,
};

/**
 * Every write to the namespace's reservations after their create, as the watch sees it (each
 * MODIFIED event is one write): the Ready status it left, and the whole status for messages.
 */
export async function watchReservationWrites(t: ExecutionContext, h: Harness): Promise<Array<{ ready: string; status: unknown }>> {
  const seen: Array<{ ready: string; status: unknown }> = [];
  const watch = await new k8s.Watch(kubeConfig()).watch(
    h.clients.reservations.path(h.ns),
    {},
    (type, obj: APQNReservation) => {
      if (type === 'MODIFIED') seen.push({ ready: condition(obj, 'Ready')?.status ?? 'no status', status: obj.status ?? null });
    },
    () => undefined,
  );
  t.teardown(() => watch.abort());
  return seen;
}
