// Leader election on a coordination.k8s.io/v1 Lease, the way client-go's leaderelection does
// it: optimistic concurrency on the Lease's resourceVersion (a 409 means someone else wrote
// first), expiry judged by OUR clock from when we last saw the record change (never by the
// holder's renewTime, so clock skew between replicas does not matter), a renew deadline
// after which a leader that could not renew stops leading, and a release on a clean stop so
// the next replica does not wait out the lease.
//
// The Lease is read and written as raw JSON through CustomObjectsApi: the typed
// CoordinationV1Api serialises MicroTime fields from Dates, and the server wants six
// fractional digits (stack.md).
import * as k8s from '@kubernetes/client-node';
import { describeError, isConflict, isNotFound } from '../k8s/client.js';
import { formatMicroTime, realClock, type Clock, type Timer } from '../k8s/clock.js';
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

interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

const LEASES = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases' };

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

export function leaseLeadership(
  kc: k8s.KubeConfig,
  settings: Partial<LeaseSettings> & { identity: string },
  log: Logger,
  clock: Clock = realClock,
): LeaseElector {
  return new LeaseElector(kc, { ...defaultLeaseSettings(settings.identity), ...stripUndefined(settings) }, log, clock);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export class LeaseElector implements Leadership {
  private readonly api: k8s.CustomObjectsApi;
  private callbacks: { onStart(): void; onStop(): void } | undefined;
  private timer: Timer | undefined;
  private running = false;
  private leading = false;
  private lastRenew = 0;
  private observed: { holder: string; renewTime: string; at: number } | undefined;
  private current: LeaseObject | undefined;
  private pass: Promise<void> = Promise.resolve();

  constructor(
    kc: k8s.KubeConfig,
    readonly settings: LeaseSettings,
    private readonly log: Logger,
    private readonly clock: Clock = realClock,
  ) {
    this.api = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  start(callbacks: { onStart(): void; onStop(): void }): void {
    if (this.running) return;
    this.callbacks = callbacks;
    this.running = true;
    this.tick();
  }

  isLeader(): boolean {
    return this.leading;
  }

  async stop(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    await this.pass;
    if (this.leading) {
      this.setLeading(false);
      if (this.settings.releaseOnStop) await this.release();
    }
  }

  private tick(): void {
    this.pass = this.attempt().finally(() => {
      if (!this.running) return;
      this.timer = this.clock.setTimer(() => this.tick(), this.settings.retryPeriodMs);
    });
  }

  private async attempt(): Promise<void> {
    if (!this.running) return;
    let ok = false;
    try {
      ok = await this.tryAcquireOrRenew();
    } catch (err) {
      this.log.warn('lease update failed', { lease: this.leaseName(), error: describeError(err) });
    }
    const now = this.clock.now();
    if (ok) {
      this.lastRenew = now;
      if (!this.leading) this.setLeading(true);
    } else if (this.leading && now - this.lastRenew >= this.settings.renewDeadlineMs) {
      this.log.warn('could not renew the lease in time; stopping', { lease: this.leaseName() });
      this.setLeading(false);
    }
  }

  private setLeading(leading: boolean): void {
    if (this.leading === leading) return;
    this.leading = leading;
    this.log.info(leading ? 'became leader' : 'stopped leading', { lease: this.leaseName(), identity: this.settings.identity });
    if (leading) this.callbacks?.onStart();
    else this.callbacks?.onStop();
  }

  private leaseName(): string {
    return `${this.settings.namespace}/${this.settings.name}`;
  }

  /** One round: true when we hold the lease afterwards. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { name, namespace, identity } = this.settings;
    const now = this.clock.now();
    const micro = formatMicroTime(now);
    const durationSeconds = Math.max(1, Math.ceil(this.settings.leaseDurationMs / 1000));
    let lease: LeaseObject;
    try {
      lease = (await this.api.getNamespacedCustomObject({ ...LEASES, namespace, name })) as LeaseObject;
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const body: LeaseObject = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace },
        spec: { holderIdentity: identity, leaseDurationSeconds: durationSeconds, acquireTime: micro, renewTime: micro, leaseTransitions: 0 },
      };
      try {
        this.current = (await this.api.createNamespacedCustomObject({ ...LEASES, namespace, body })) as LeaseObject;
      } catch (createErr) {
        if (isConflict(createErr)) return false; // someone else created it first
        throw createErr;
      }
      this.observe(this.current);
      return true;
    }
    this.observe(lease);
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    const held = holder !== '' && holder !== identity;
    // Expiry by our own clock: the record has not changed for the lease's duration.
    const durationMs = (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (held && this.observed && now < this.observed.at + durationMs) return false;

    const mine = holder === identity;
    const body: LeaseObject = {
      ...lease,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds: durationSeconds,
        renewTime: micro,
        acquireTime: mine ? (spec.acquireTime ?? micro) : micro,
        leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
      },
    };
    try {
      this.current = (await this.api.replaceNamespacedCustomObject({ ...LEASES, namespace, name, body })) as LeaseObject;
    } catch (err) {
      if (isConflict(err)) return false;
      throw err;
    }
    this.observe(this.current);
    if (!mine) this.log.info('lease acquired', { lease: this.leaseName(), from: holder || '(nobody)' });
    return true;
  }

  private observe(lease: LeaseObject): void {
    const holder = lease.spec?.holderIdentity ?? '';
    const renewTime = lease.spec?.renewTime ?? '';
    if (!this.observed || this.observed.holder !== holder || this.observed.renewTime !== renewTime) {
      this.observed = { holder, renewTime, at: this.clock.now() };
    }
  }

  /** Gives the lease up: holder cleared, duration 1 s, so a waiting replica takes over at once. */
  private async release(): Promise<void> {
    const { name, namespace } = this.settings;
    try {
      const lease = (await this.api.getNamespacedCustomObject({ ...LEASES, namespace, name })) as LeaseObject;
      if (lease.spec?.holderIdentity !== this.settings.identity) return;
      const body: LeaseObject = {
        ...lease,
        spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, renewTime: formatMicroTime(this.clock.now()) },
      };
      await this.api.replaceNamespacedCustomObject({ ...LEASES, namespace, name, body });
      this.log.info('lease released', { lease: this.leaseName() });
    } catch (err) {
      this.log.warn('could not release the lease', { lease: this.leaseName(), error: describeError(err) });
    }
  }
}
