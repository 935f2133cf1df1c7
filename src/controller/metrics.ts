// `--metrics-port`: Prometheus metrics and health probes over plain HTTP.
//   /metrics  reconcile counts and failures per queue, leadership, cached objects
//   /healthz  200 while the process runs;  /readyz  200 once the caches have synced
import * as http from 'node:http';
import { Gauge, Registry } from 'prom-client';
import type { Logger } from '../log.js';
import type { Controller } from './controller.js';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export function controllerRegistry(controller: Controller): Registry {
  const registry = new Registry();
  const queues = ['reservations', 'nodes', 'claims'] as const;
  new Gauge({
    name: 'apqn_controller_syncs_total',
    help: 'Reconciles run, per queue (a counter, read from the controller).',
    labelNames: ['queue'],
    registers: [registry],
    collect() {
      for (const q of queues) this.set({ queue: q }, controller.stats.syncs[q]);
    },
  });
  new Gauge({
    name: 'apqn_controller_sync_failures_total',
    help: 'Reconciles that failed and were retried with backoff, per queue.',
    labelNames: ['queue'],
    registers: [registry],
    collect() {
      for (const q of queues) this.set({ queue: q }, controller.stats.failures[q]);
    },
  });
  new Gauge({
    name: 'apqn_controller_leading',
    help: '1 while this replica holds the Lease and reconciles.',
    registers: [registry],
    collect() {
      this.set(controller.isLeading() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'apqn_controller_cached_objects',
    help: 'Objects in the informer caches, per resource.',
    labelNames: ['resource'],
    registers: [registry],
    collect() {
      this.set({ resource: 'apqnreservations' }, controller.caches.reservations.list().length);
      this.set({ resource: 'apqnclaims' }, controller.caches.claims.list().length);
      this.set({ resource: 'apnodestates' }, controller.caches.nodeStates.list().length);
    },
  });
  return registry;
}

export async function serveMetrics(port: number, controller: Controller, log: Logger): Promise<MetricsServer> {
  const registry = controllerRegistry(controller);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200).end('ok\n');
      return;
    }
    if (path === '/readyz') {
      const synced = Object.values(controller.caches).every((i) => i.hasSynced());
      res.writeHead(synced ? 200 : 503).end(synced ? 'ok\n' : 'caches not synced\n');
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve());
  });
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  log.info('metrics and probes listening', { port: actual });
  return { port: actual, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
