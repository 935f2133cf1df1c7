// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection:
// - a candidate takes the lease when it is free or its holder has not renewed it for
//   leaseDurationSeconds (measured on our own clock from when we saw the record change, so
//   clock skew between nodes does not matter);
// - the leader renews every retryPeriod, and steps down if it could not renew for
//   renewDeadline (< leaseDuration, so it stops before anyone else may start);
// - every write carries the resourceVersion that was read: 409 means someone else wrote first;
// - seeing another holder on a still-valid lease means the lease was taken: step down at once;
// - on a clean stop the leader releases the lease so a successor need not wait for expiry.
import { logger, type Logger } from '../log.js';
import { formatMicroTime, parseApiTime, realClock, sleep, type Clock } from './clock.js';
import { describeError, isAlreadyExists, isConflict, isNotFound } from './client.js';
import type { ApiConfig } from './kubeconfig.js';
import { apiRequest } from './rest.js';

export interface LeaderElectionOptions {
  namespace: string;
  /** The Lease's name. */
  name: string;
  /** This candidate (pod name, or host name plus a random suffix); must be unique. */
  identity: string;
  /** How long a lease stays valid without renewal (default 15 s; whole seconds on the wire). */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it steps down (default 10 s). */
  renewDeadlineMs?: number;
  /** Time between attempts to acquire or renew (default 2 s). */
  retryPeriodMs?: number;
  /** Release the lease when stopped (default true). Stop your work before calling stop(). */
  releaseOnStop?: boolean;
  onStartedLeading?: () => void;
  /** Called when leadership ends, for any reason; awaited before the lease is released. */
  onStoppedLeading?: () => void | Promise<void>;
  /** Called when the observed holder changes (including to ourselves). */
  onNewLeader?: (identity: string) => void;
  clock?: Clock;
  log?: Logger;
}

type Attempt = 'acquired' | 'held' | 'failed';

/** A coordination.k8s.io/v1 Lease as the server sends it (MicroTimes as text). */
export interface Lease {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; [field: string]: unknown };
  spec?: LeaseSpec;
}

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
  [field: string]: unknown;
}

export class LeaderElector {
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private leading = false;
  private lastRenew = 0;
  private observedVersion: string | undefined;
  private observedAt = 0;
  private observedHolder: string | undefined;
  private stopping: AbortController | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly kc: ApiConfig,
    private readonly options: LeaderElectionOptions,
  ) {
    this.clock = options.clock ?? realClock;
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    this.log = options.log ?? logger('leader', { lease: `${options.namespace}/${options.name}`, identity: options.identity });
    if (!options.identity) throw new Error('leader election needs an identity');
    if (this.leaseDurationMs < 1000) throw new Error('leaseDurationMs must be at least 1000 (whole seconds on the wire)');
    if (this.renewDeadlineMs >= this.leaseDurationMs) throw new Error('renewDeadlineMs must be less than leaseDurationMs');
    if (this.retryPeriodMs * 1.2 >= this.renewDeadlineMs) throw new Error('retryPeriodMs·1.2 must be less than renewDeadlineMs');
  }

  /** Starts campaigning in the background. */
  start(): void {
    if (this.loop) return;
    this.stopping = new AbortController();
    this.loop = this.run(this.stopping.signal);
  }

  /** Stops campaigning; a leader steps down (onStoppedLeading) and releases the lease. */
  async stop(): Promise<void> {
    if (!this.loop) return;
    this.stopping!.abort();
    await this.loop;
    this.loop = undefined;
  }

  /** True while we hold the lease and renewed it within the renew deadline. */
  isLeader(): boolean {
    return this.leading && this.clock.now() - this.lastRenew < this.renewDeadlineMs;
  }

  /** The holder we last saw on the lease. */
  leader(): string | undefined {
    return this.observedHolder;
  }

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      // Campaign until we hold the lease.
      while (!signal.aborted) {
        if ((await this.attempt()) === 'acquired') break;
        await sleep(this.clock, this.retryPeriodMs * (1 + Math.random() * 1.2), signal);
      }
      if (signal.aborted) break;
      this.lastRenew = this.clock.now();
      this.leading = true;
      this.log.info('started leading');
      this.callback(() => this.options.onStartedLeading?.());

      // Renew until stopped, taken, or out of time.
      while (!signal.aborted) {
        await sleep(this.clock, this.retryPeriodMs, signal);
        if (signal.aborted) break;
        const result = await this.attempt(this.lastRenew + this.renewDeadlineMs - this.clock.now());
        if (result === 'acquired') {
          this.lastRenew = this.clock.now();
          continue;
        }
        if (result === 'held') {
          this.log.warn('lost the lease to another holder', { holder: this.observedHolder });
          break;
        }
        if (this.clock.now() - this.lastRenew >= this.renewDeadlineMs) {
          this.log.warn('could not renew the lease within the renew deadline', { deadlineMs: this.renewDeadlineMs });
          break;
        }
      }
      this.leading = false;
      this.log.info('stopped leading');
      try {
        await this.options.onStoppedLeading?.();
      } catch (err) {
        this.log.error('onStoppedLeading threw', { error: describeError(err) });
      }
      if (signal.aborted && (this.options.releaseOnStop ?? true)) await this.release();
    }
  }

  /** One try to acquire or renew, given up (as failed) after `budgetMs`. */
  private async attempt(budgetMs = this.renewDeadlineMs): Promise<Attempt> {
    if (budgetMs <= 0) return 'failed';
    let timer: { cancel(): void } | undefined;
    const timeout = new Promise<Attempt>((resolve) => {
      timer = this.clock.setTimer(() => resolve('failed'), budgetMs);
    });
    try {
      return await Promise.race([this.tryAcquireOrRenew(), timeout]);
    } finally {
      timer?.cancel();
    }
  }

  private async tryAcquireOrRenew(): Promise<Attempt> {
    const { namespace, name, identity } = this.options;
    const now = this.clock.now();
    const spec = (at: number, transitions: number, acquired: string | undefined): LeaseSpec => ({
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      acquireTime: acquired ?? formatMicroTime(at),
      renewTime: formatMicroTime(at),
      leaseTransitions: transitions,
    });
    let lease: Lease;
    try {
      lease = await this.read();
    } catch (err) {
      if (!isNotFound(err)) {
        this.log.debug('reading the lease failed', { error: describeError(err) });
        return 'failed';
      }
      try {
        const created = await apiRequest<Lease>(this.kc, leasesPath(namespace), {
          method: 'POST',
          body: { metadata: { namespace, name }, spec: spec(now, 0, undefined) },
        });
        this.observe(created, now);
        return 'acquired';
      } catch (createErr) {
        if (!isAlreadyExists(createErr)) this.log.debug('creating the lease failed', { error: describeError(createErr) });
        return 'failed';
      }
    }

    this.observe(lease, now);
    const current = lease.spec ?? {};
    const holder = current.holderIdentity;
    const validForMs = (current.leaseDurationSeconds ?? 0) * 1000;
    if (holder && holder !== identity && this.observedAt + validForMs > now) return 'held';

    const renewing = holder === identity;
    const next = renewing
      ? spec(now, current.leaseTransitions ?? 0, current.acquireTime)
      : spec(now, (current.leaseTransitions ?? 0) + 1, undefined);
    try {
      const updated = await this.replace({ ...lease, spec: next }); // carries the resourceVersion we read
      this.observe(updated, now);
      return 'acquired';
    } catch (err) {
      // 409: another candidate wrote between our read and write; try again next period.
      if (!isConflict(err)) this.log.debug('writing the lease failed', { error: describeError(err) });
      return 'failed';
    }
  }

  /** Remembers when the lease record last changed, on our clock. */
  private observe(lease: Lease, now: number): void {
    const version = lease.metadata?.resourceVersion;
    if (version !== this.observedVersion) {
      this.observedVersion = version;
      this.observedAt = now;
    }
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== (this.observedHolder ?? '')) {
      this.observedHolder = holder || undefined;
      if (holder) this.callback(() => this.options.onNewLeader?.(holder));
    }
  }

  /** Gives the lease up (if still ours) so that another candidate can take it at once. */
  private async release(): Promise<void> {
    const { identity } = this.options;
    try {
      const lease = await this.read();
      if (lease.spec?.holderIdentity !== identity) return;
      const now = this.clock.now();
      await this.replace({
        ...lease,
        spec: {
          leaseDurationSeconds: 1,
          acquireTime: formatMicroTime(now),
          renewTime: formatMicroTime(now),
          leaseTransitions: lease.spec?.leaseTransitions ?? 0,
        },
      });
      this.log.info('released the lease');
    } catch (err) {
      this.log.warn('could not release the lease; others wait for it to expire', { error: describeError(err) });
    }
  }

  private read(): Promise<Lease> {
    const { namespace, name } = this.options;
    return apiRequest<Lease>(this.kc, `${leasesPath(namespace)}/${encodeURIComponent(name)}`);
  }

  private replace(lease: Lease): Promise<Lease> {
    const { namespace, name } = this.options;
    return apiRequest<Lease>(this.kc, `${leasesPath(namespace)}/${encodeURIComponent(name)}`, { method: 'PUT', body: lease });
  }

  private callback(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error('leader election callback threw', { error: describeError(err) });
    }
  }
}

/** When the lease was last renewed, in ms since the epoch (NaN if never). For status and tests. */
export function leaseRenewedAt(lease: { spec?: { renewTime?: unknown } }): number {
  return parseApiTime(lease.spec?.renewTime);
}

function leasesPath(namespace: string): string {
  return `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
}
