// Leader election on a Lease (two controllers, one acts; the other takes over within the
// lease duration), and convergence under a storm of concurrent writes (409s).
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { retryOnConflict } from '../../src/k8s/client.js';
import { kubeConfig } from '../support/cluster.js';
import { condition, harness, twoCardNode, waitUntil } from './runtime-support.js';

const LEASE_MS = 2_000;

test('leader failover: one controller acts; when it dies the other takes over within the lease duration', async (t) => {
  const h = await harness(t);
  await h.agent('a', twoCardNode);
  const lease = { name: `apqn-${h.ns}`, namespace: h.ns, leaseDurationMs: LEASE_MS, renewDeadlineMs: 1_500, retryPeriodMs: 200, releaseOnStop: false };
  const one = await h.controller({ leaderElect: true, identity: 'one', lease });
  const two = await h.controller({ leaderElect: true, identity: 'two', lease });
  const leader = await waitUntil('a leader', () => (one.isLeading() ? one : two.isLeading() ? two : undefined));
  const standby = leader === one ? two : one;
  t.false(standby.isLeading(), 'exactly one leads');

  await h.reserve('before', { nodeName: h.node('a'), apqns: ['05.0001'] });
  await h.waitFor('before', 'Ready', 'True');
  t.is(standby.controller.stats.syncs.reservations, 0, 'the standby reconciled nothing');

  // The leader dies without releasing the lease (releaseOnStop: false behaves like a crash).
  await leader.stop();
  const died = Date.now();
  await waitUntil('the standby to lead', () => (standby.isLeading() ? true : undefined), 10_000, 20);
  const takeover = Date.now() - died;
  t.log(`takeover after ${takeover} ms`);
  t.true(takeover <= LEASE_MS + 2 * lease.retryPeriodMs + 1_000, `took over in ${takeover} ms`);

  await h.reserve('after', { nodeName: h.node('a'), apqns: ['06.0001'] });
  const after = await h.waitFor('after', 'Ready', 'True');
  t.is(condition(after, 'Accepted')?.status, 'True');
  const coord = kubeConfig().makeApiClient(k8s.CoordinationV1Api);
  const stored = await coord.readNamespacedLease({ name: lease.name, namespace: lease.namespace });
  t.is(stored.spec?.holderIdentity, standby === one ? 'one' : 'two');
  t.true((stored.spec?.leaseTransitions ?? 0) >= 1);
});

test('a leader that loses its lease stops reconciling', async (t) => {
  const h = await harness(t);
  await h.agent('a', twoCardNode);
  const lease = { name: `apqn-${h.ns}`, namespace: h.ns, leaseDurationMs: LEASE_MS, renewDeadlineMs: 1_000, retryPeriodMs: 200 };
  const only = await h.controller({ leaderElect: true, identity: 'only', lease });
  await waitUntil('it leads', () => (only.isLeading() ? true : undefined));

  // Someone else takes the lease (as if this replica had been partitioned away).
  const api = kubeConfig().makeApiClient(k8s.CustomObjectsApi);
  const ref = { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', namespace: lease.namespace, name: lease.name };
  // The leader renews every 200 ms: retry our read-modify-write until it lands between renewals.
  await retryOnConflict(
    async () => {
      const current = (await api.getNamespacedCustomObject(ref)) as { spec: Record<string, unknown> };
      const micro = new Date().toISOString().replace('Z', '000Z');
      await api.replaceNamespacedCustomObject({
        ...ref,
        body: { ...current, spec: { ...current.spec, holderIdentity: 'intruder', leaseDurationSeconds: 3600, renewTime: micro, acquireTime: micro } },
      });
    },
    { attempts: 50 },
  );
  await waitUntil('it stops leading', () => (only.isLeading() ? undefined : true), 10_000, 20);

  await h.reserve('orphan', { nodeName: h.node('a'), apqns: ['05.0002'] });
  // Give a leader plenty of time to act; a follower must not.
  await new Promise((r) => setTimeout(r, 1_500));
  const orphan = await h.reservation('orphan');
  t.is(orphan?.status, undefined, 'no status written without the lease');
  t.deepEqual(orphan?.metadata.finalizers, undefined);
});

test('409 storm: concurrent writers bumping the reservation and its status do not stop it converging', async (t) => {
  const h = await harness(t);
  const agent = await h.agent('a', twoCardNode);
  await h.controller();
  let bumps = 0;
  const started = Date.now();
  const storm = (async () => {
    const key = { namespace: h.ns, name: 'vm' };
    // Until 10 writes landed and 2 s passed (the controller is busy by then), at most 30 s.
    while (Date.now() - started < 30_000 && !(bumps >= 10 && Date.now() - started > 2_000)) {
      try {
        // Metadata churn (new resourceVersion, same generation) and a status writer that disagrees.
        await h.clients.reservations.patch(key, { metadata: { annotations: { bump: String(bumps) } } });
        await h.clients.reservations.patchStatus(key, { status: { queues: [], conditions: [] } });
        bumps++;
      } catch {
        await new Promise((r) => setTimeout(r, 5)); // not created yet
      }
    }
  })();
  await h.reserve('vm', { nodeName: h.node('a'), apqns: ['05.0004', '06.0004'] });
  await storm;
  t.true(bumps >= 10, `the storm landed ${bumps} writes`);

  const r = await h.waitFor('vm', 'Ready', 'True');
  t.deepEqual(r.status?.apqns, ['05.0004', '06.0004']);
  t.deepEqual(
    r.status?.queues?.map((q) => q.state),
    ['Assigned', 'Assigned'],
  );
  for (const type of ['Accepted', 'Scheduled', 'Bound', 'Ready']) t.is(condition(r, type)?.status, 'True', type);
  t.is(agent.mdevs.size, 1, 'one mdev, not one per retry');
  const state = await h.clients.nodeStates.get(h.node('a'));
  t.deepEqual(state.spec.aqmask, [{ id: '0004', host: false, original: true }]);
});
