// `apqn-operator controller [--kubeconfig PATH] [--leader-elect] [--metrics-port N]`: the
// cluster reconcile loop. startController() is the same thing in-process, for `dev` and tests.
import * as os from 'node:os';
import type { ApiConfig } from '../k8s/kubeconfig.js';
import { loadKubeConfig } from '../k8s/client.js';
import { logger, type Logger } from '../log.js';
import { Controller } from '../controller/controller.js';
import { startDraController } from '../controller/dra.js';
import type { Scope } from '../controller/context.js';
import { kubernetesEvents } from '../controller/events.js';
import { leaseLeadership, type LeaseSettings } from '../controller/leadership.js';
import { serveMetrics } from '../metrics/server.js';
import { UsageError, parseFlags } from '../util/args.js';

export const summary = 'run the cluster reconcile loop (reservations → node states, claims, conditions)';

export interface StartControllerOptions {
  kubeConfig: ApiConfig;
  /** Reconcile only while holding the Lease. */
  leaderElect?: boolean;
  /** This replica's name in the Lease (default: hostname_pid). */
  identity?: string;
  log?: Logger;
  /** Lease name/namespace and timings (defaults: apqn-operator-controller in $POD_NAMESPACE or default; 15 s / 10 s / 2 s). */
  lease?: Partial<LeaseSettings>;
  /** Agents whose heartbeat is older than this are unavailable (default 40 s). */
  heartbeatStaleMs?: number;
  /** Narrows what this controller looks after (tests sharing one API server; shards). */
  scope?: Scope;
}

export interface RunningController {
  stop(): Promise<void>;
  /** True while this replica reconciles (always, without leader election). */
  isLeading(): boolean;
  readonly controller: Controller;
}

export async function startController(options: StartControllerOptions): Promise<RunningController> {
  const log = options.log ?? logger('controller');
  const identity = options.identity ?? `${os.hostname()}_${process.pid}`;
  const leadership = options.leaderElect
    ? leaseLeadership(options.kubeConfig, { ...options.lease, identity }, log.child({ leaderElection: identity }))
    : undefined;
  const controller = new Controller({
    kubeConfig: options.kubeConfig,
    log,
    events: kubernetesEvents(options.kubeConfig, { host: identity, log }),
    heartbeatStaleMs: options.heartbeatStaleMs,
    scope: options.scope,
    ...(leadership ? { leadership } : {}),
  });
  await controller.start();
  // DRA devices and ResourceClaims for KubeVirt guests (issue 7), on the same caches and leadership.
  const shared = { caches: controller.caches, isLeading: () => controller.isLeading(), scope: options.scope, log };
  const dra = await startDraController({ kubeConfig: options.kubeConfig, ...shared });
  return { controller, stop: () => dra.stop().then(() => controller.stop()), isLeading: () => controller.isLeading() };
}

const USAGE = 'usage: apqn-operator controller [--kubeconfig PATH] [--leader-elect] [--metrics-port N]';

export async function run(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseFlags(args, { kubeconfig: 'string', 'leader-elect': 'boolean', 'metrics-port': 'number', help: 'boolean' });
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  if (flags.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (flags._.length > 0) {
    process.stderr.write(`unexpected arguments: ${flags._.join(' ')}\n${USAGE}\n`);
    return 2;
  }
  const log = logger('controller');
  const kubeConfig = loadKubeConfig(flags.kubeconfig);
  const running = await startController({ kubeConfig, leaderElect: flags['leader-elect'] ?? false, log });
  const metrics = flags['metrics-port'] !== undefined ? await serveMetrics(flags['metrics-port'], { controller: running.controller }, log) : undefined;
  log.info('controller started', { leaderElect: flags['leader-elect'] ?? false, metricsPort: flags['metrics-port'] });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log.info('stopping');
  await metrics?.close();
  await running.stop();
  return 0;
}
