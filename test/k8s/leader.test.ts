// Leader election against the real API server, with short durations (3 s leases: short enough
// for quick tests, long enough that a busy test machine does not make leaders miss renewals).
import test, { type ExecutionContext } from 'ava';
import * as k8s from '@kubernetes/client-node';
import { retryOnConflict } from '../../src/k8s/client.js';
import { LeaderElector, leaseRenewedAt, type LeaderElectionOptions } from '../../src/k8s/leader.js';
import { parseApiTime } from '../../src/k8s/clock.js';
import { eventually, kubeConfig, kubectl, testNamespace } from '../support/cluster.js';

const FAST = { leaseDurationMs: 3000, renewDeadlineMs: 2400, retryPeriodMs: 300 };

interface Candidate {
  elector: LeaderElector;
  log: string[];
}

function candidate(
  t: ExecutionContext,
  namespace: string,
  identity: string,
  extra: Partial<LeaderElectionOptions> = {},
): Candidate {
  const log: string[] = [];
  const elector = new LeaderElector(kubeConfig(), {
    namespace,
    name: 'apqn-operator',
    identity,
    ...FAST,
    onStartedLeading: () => log.push('started'),
    onStoppedLeading: () => {
      log.push('stopped');
    },
    ...extra,
  });
  t.teardown(() => elector.stop());
  return { elector, log };
}

const leaseApi = () => kubeConfig().makeApiClient(k8s.CoordinationV1Api);

const leaseAcquiredAt = (lease: k8s.V1Lease) => parseApiTime(lease.spec?.acquireTime);

async function readLease(namespace: string): Promise<k8s.V1Lease> {
  return leaseApi().readNamespacedLease({ namespace, name: 'apqn-operator' });
}

test('of two candidates exactly one leads, and the lease names it', async (t) => {
  const ns = await testNamespace(t);
  const a = candidate(t, ns, 'a');
  const b = candidate(t, ns, 'b');
  a.elector.start();
  b.elector.start();
  const leader = await eventually('a leader', () =>
    a.elector.isLeader() ? a : b.elector.isLeader() ? b : undefined,
  );
  const follower = leader === a ? b : a;
  const lease = await readLease(ns);
  t.is(lease.spec?.holderIdentity, leader === a ? 'a' : 'b');
  t.is(lease.spec?.leaseDurationSeconds, 3);
  // Several renew periods later the follower still follows and knows who leads.
  const renewed = Date.parse(String(lease.spec?.renewTime));
  await eventually('a few renewals', async () => {
    const l = await readLease(ns);
    return Date.parse(String(l.spec?.renewTime)) >= renewed + 3 * FAST.retryPeriodMs ? true : undefined;
  });
  t.false(follower.elector.isLeader());
  t.true(leader.elector.isLeader());
  t.is(follower.elector.leader(), leader === a ? 'a' : 'b');
  t.deepEqual(leader.log, ['started']);
  t.deepEqual(follower.log, []);
});

test('lease times are MicroTime with six fractional digits', async (t) => {
  const ns = await testNamespace(t);
  const a = candidate(t, ns, 'a');
  a.elector.start();
  await eventually('leading', () => (a.elector.isLeader() ? true : undefined));
  const out = kubectl(['get', 'lease', 'apqn-operator', '-n', ns, '-o', 'json']);
  t.is(out.status, 0, out.stderr);
  const spec = JSON.parse(out.stdout).spec;
  t.regex(spec.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  t.regex(spec.acquireTime, /\.\d{6}Z$/);
});

test('a cleanly stopped leader steps down, then releases the lease', async (t) => {
  const ns = await testNamespace(t);
  const a = candidate(t, ns, 'a');
  a.elector.start();
  await eventually('a leads', () => (a.elector.isLeader() ? true : undefined));
  await a.elector.stop();
  t.deepEqual(a.log, ['started', 'stopped']);
  t.false(a.elector.isLeader());
  const released = await readLease(ns);
  t.falsy(released.spec?.holderIdentity, 'no holder');
  t.is(released.spec?.leaseDurationSeconds, 1);
});

test('after a clean stop the other candidate takes over well before the lease would expire', async (t) => {
  const ns = await testNamespace(t);
  // A long lease, so that taking over by expiry (≥ 5 s) and by release (≈ one retry period)
  // cannot be mistaken for each other.
  const slow = { leaseDurationMs: 5000, renewDeadlineMs: 4000, retryPeriodMs: 250 };
  const a = candidate(t, ns, 'a', slow);
  a.elector.start();
  await eventually('a leads', () => (a.elector.isLeader() ? true : undefined));
  const b = candidate(t, ns, 'b', slow);
  b.elector.start();
  await eventually('b has seen the lease', () => (b.elector.leader() === 'a' ? true : undefined));

  await a.elector.stop();
  const stoppedAt = Date.now();
  await eventually('b leads', () => (b.elector.isLeader() ? true : undefined), slow.leaseDurationMs);
  const lease = await readLease(ns);
  t.is(lease.spec?.holderIdentity, 'b');
  t.is(lease.spec?.leaseTransitions, 1);
  t.true(leaseAcquiredAt(lease) - stoppedAt < slow.leaseDurationMs / 2, 'taken over after the release, not by expiry');
});

test('a leader that vanishes without releasing is replaced only after the lease expires', async (t) => {
  const ns = await testNamespace(t);
  const a = candidate(t, ns, 'a', { releaseOnStop: false });
  a.elector.start();
  await eventually('a leads', () => (a.elector.isLeader() ? true : undefined));
  const b = candidate(t, ns, 'b');
  b.elector.start();
  await eventually('b has seen the lease', () => (b.elector.leader() === 'a' ? true : undefined));
  await a.elector.stop(); // like a crash: the lease still names a
  const abandoned = await readLease(ns);
  t.is(abandoned.spec?.holderIdentity, 'a');
  await eventually('b leads', () => (b.elector.isLeader() ? true : undefined), 3 * FAST.leaseDurationMs);
  const taken = await readLease(ns);
  t.is(taken.spec?.holderIdentity, 'b');
  // b saw a's last renewal no earlier than it happened, and waited a full lease from there.
  t.true(leaseAcquiredAt(taken) >= leaseRenewedAt(abandoned) + FAST.leaseDurationMs);
});

test('a stolen lease is noticed: the leader steps down, and takes over again once the thief lets it expire', async (t) => {
  const ns = await testNamespace(t);
  const a = candidate(t, ns, 'a');
  a.elector.start();
  await eventually('a leads', () => (a.elector.isLeader() ? true : undefined));

  // The thief writes with the resourceVersion it read; a renewal in between means: read again.
  await retryOnConflict(async () => {
    const lease = await readLease(ns);
    await leaseApi().replaceNamespacedLease({
      namespace: ns,
      name: 'apqn-operator',
      body: {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: 'thief',
          renewTime: new k8s.V1MicroTime(Date.now()),
          acquireTime: new k8s.V1MicroTime(Date.now()),
        },
      },
    });
  });
  await eventually('a sees the thief and steps down', () =>
    a.elector.leader() === 'thief' && a.log.includes('stopped') ? true : undefined,
  );
  t.false(a.elector.isLeader());
  t.is((await readLease(ns)).spec?.holderIdentity, 'thief', 'a did not overwrite a valid lease');

  await eventually('a leads again after the thief’s lease expired', () => (a.elector.isLeader() ? true : undefined), 4 * FAST.leaseDurationMs);
  t.deepEqual(a.log, ['started', 'stopped', 'started']);
});

const invalid: Array<{ options: Partial<LeaderElectionOptions>; why: string }> = [
  { options: { leaseDurationMs: 1000, renewDeadlineMs: 1000 }, why: 'the renew deadline must be shorter than the lease' },
  { options: { renewDeadlineMs: 1000, retryPeriodMs: 900 }, why: 'the retry period must fit in the renew deadline' },
  { options: { leaseDurationMs: 500, renewDeadlineMs: 400, retryPeriodMs: 100 }, why: 'leases are whole seconds' },
  { options: { identity: '' }, why: 'an identity is required' },
];
for (const c of invalid) {
  test(`configuration check: ${c.why}`, (t) => {
    t.throws(
      () =>
        new LeaderElector(new k8s.KubeConfig(), {
          namespace: 'x',
          name: 'l',
          identity: 'me',
          ...c.options,
        }),
    );
  });
}
