// /metrics (Prometheus text format), /healthz and /readyz over plain HTTP, for the controller,
// for agents, or for both in one process (`dev`).
//   /healthz  200 while the process runs and every agent's loop passed recently
//   /readyz   200 once the controller's caches synced and every agent wrote its first status
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from '../log.js';
import { registerAgentMetrics, type AgentMetricsSource } from './agent.js';
import { registerControllerMetrics, type ControllerMetricsSource } from './controller.js';

export interface MetricsServer {
  readonly port: number;
  readonly registry: Registry;
  close(): Promise<void>;
}

export interface ProbedAgent extends AgentMetricsSource {
  isHealthy(): boolean;
  isReady(): boolean;
}

type Synced = { hasSynced(): boolean };
export interface ProbedController extends ControllerMetricsSource {
  readonly caches: {
    reservations: ControllerMetricsSource['caches']['reservations'] & Synced;
    claims: ControllerMetricsSource['caches']['claims'] & Synced;
    nodeStates: ControllerMetricsSource['caches']['nodeStates'] & Synced;
    nodes: Synced;
  };
}

/** What to serve: a Controller, AgentRuntimes, or both. */
export interface MetricsTargets {
  controller?: ProbedController;
  agents?: readonly ProbedAgent[];
}

const synced = ({ caches }: ProbedController) =>
  [caches.reservations, caches.claims, caches.nodeStates, caches.nodes].every((c) => c.hasSynced());

/** A registry with the process metrics (RSS, CPU, event loop lag) and the targets' metrics. */
export function metricsRegistry(targets: MetricsTargets): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'apqn_' });
  if (targets.controller) registerControllerMetrics(registry, targets.controller);
  const agents = targets.agents ?? [];
  if (agents.length > 0) registerAgentMetrics(registry, () => agents);
  return registry;
}

export async function serveMetrics(port: number, targets: MetricsTargets, log?: Logger, host?: string): Promise<MetricsServer> {
  const registry = metricsRegistry(targets);
  const agents = targets.agents ?? [];
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const text = (code: number, body: string) => {
      res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(body);
    };
    if (path === '/metrics') {
      registry.metrics().then(
        (body) => {
          res.writeHead(200, { 'Content-Type': registry.contentType });
          res.end(body);
        },
        (err: unknown) => text(500, `${err instanceof Error ? err.message : String(err)}\n`),
      );
      return;
    }
    if (path === '/healthz' || path === '/livez') {
      const sick = agents.filter((a) => !a.isHealthy()).map((a) => a.nodeName);
      return sick.length ? text(503, `agent loop stalled: ${sick.join(', ')}\n`) : text(200, 'ok\n');
    }
    if (path === '/readyz') {
      if (targets.controller && !synced(targets.controller)) return text(503, 'controller caches not synced\n');
      const waiting = agents.filter((a) => !a.isReady()).map((a) => a.nodeName);
      return waiting.length ? text(503, `agent not ready: ${waiting.join(', ')}\n`) : text(200, 'ok\n');
    }
    text(404, 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  log?.info('metrics and probes listening', { port: actual, paths: ['/metrics', '/healthz', '/readyz'] });
  return {
    port: actual,
    registry,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
