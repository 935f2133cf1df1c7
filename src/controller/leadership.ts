// The controller's leadership: the shared Lease elector (src/k8s/leader.ts, client-go's
// rules) with the controller's defaults. Reconcilers run between onStart and onStop; onStop
// is awaited (the reconcilers drain) before a clean stop releases the lease.
import type { ApiConfig } from '../k8s/kubeconfig.js';
import { LeaderElector } from '../k8s/leader.js';
import type { Logger } from '../log.js';
import type { Leadership } from './controller.js';

export interface LeaseSettings {
  name: string;
  namespace: string;
  identity: string;
  /** How long a lease holds without renewal (client-go: 15 s). */
  leaseDurationMs: number;
  /** A leader that has not renewed for this long stops leading (10 s; < leaseDuration). */
  renewDeadlineMs: number;
  /** Between attempts to acquire or renew (2 s). */
  retryPeriodMs: number;
  /** Give the lease up on stop (default true); false behaves like a crash. */
  releaseOnStop: boolean;
}

export function defaultLeaseSettings(identity: string): LeaseSettings {
  return {
    name: 'apqn-operator-controller',
    namespace: process.env.POD_NAMESPACE ?? 'default',
    identity,
    leaseDurationMs: 15_000,
    renewDeadlineMs: 10_000,
    retryPeriodMs: 2_000,
    releaseOnStop: true,
  };
}

export function leaseLeadership(kc: ApiConfig, settings: Partial<LeaseSettings> & { identity: string }, log: Logger): Leadership {
  const s: LeaseSettings = { ...defaultLeaseSettings(settings.identity) };
  for (const [key, value] of Object.entries(settings)) if (value !== undefined) Object.assign(s, { [key]: value });
  let elector: LeaderElector | undefined;
  return {
    start(callbacks) {
      if (elector) return;
      elector = new LeaderElector(kc, {
        ...s,
        onStartedLeading: callbacks.onStart,
        onStoppedLeading: callbacks.onStop,
        log,
      });
      elector.start();
    },
    async stop() {
      await elector?.stop();
    },
  };
}
