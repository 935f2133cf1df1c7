// The controller against the real API server with a fake agent: the happy path to Ready, and
// validation that leaves the node alone.
import test from 'ava';
import { RESERVATION_FINALIZER } from '../../src/api/types.js';
import { condition, harness, twoCardNode, watchReservationWrites } from './runtime-support.js';

test('a vfio_ap reservation becomes Ready with its mdev, matrix and displaced queues reported', async (t) => {
  const h = await harness(t);
  const agent = await h.agent('a', twoCardNode);
  await h.controller();
  // Count the controller's writes to the reservation (every MODIFIED event is one).
  const seen = await watchReservationWrites(t, h);
  await h.reserve('payments', { nodeName: h.node('a'), apqns: ['05.0004', '06.0004'], controlDomains: ['0004'] });

  const r = await h.waitFor('payments', 'Ready', 'True');
  // Heartbeats keep arriving (every 500 ms) and each one re-runs the reconcilers: none may write.
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  t.deepEqual(seen.map((w) => w.ready), ['no status', 'False', 'True'], 'finalizer, placement, Ready: three writes and no more');
  t.deepEqual(r.metadata.finalizers, [RESERVATION_FINALIZER]);
  t.is(r.status?.nodeName, h.node('a'));
  t.deepEqual(r.status?.apqns, ['05.0004', '06.0004']);
  t.deepEqual(r.status?.matrix, { adapters: ['05', '06'], domains: ['0004'], controlDomains: ['0004'] });
  t.regex(r.status?.mdevUUID ?? '', /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  for (const type of ['Accepted', 'Scheduled', 'Bound', 'Ready']) t.is(condition(r, type)?.status, 'True', type);
  t.is(condition(r, 'Conflict')?.status, 'False');
  for (const c of r.status?.conditions ?? []) t.is(c.observedGeneration, r.metadata.generation);
  t.deepEqual(
    r.status?.queues?.map((q) => [q.apqn, q.driver, q.state]),
    [
      ['05.0004', 'vfio_ap', 'Assigned'],
      ['06.0004', 'vfio_ap', 'Assigned'],
    ],
  );
  // Freeing two queues of one domain: clearing domain 0004 displaces 07.0004 only (one queue),
  // clearing adapters 05 and 06 would displace 30.
  t.deepEqual(r.status?.displacedQueues, ['07.0004']);

  // The node: the mdev exists with exactly the reserved matrix, seen by the guest.
  const mdev = agent.mdevs.get(r.status!.mdevUUID!);
  t.truthy(mdev);
  const state = await h.clients.nodeStates.get(h.node('a'));
  t.deepEqual(state.spec.aqmask, [{ id: '0004', host: false, original: true }]);
  t.deepEqual(state.spec.apmask, []);
  t.deepEqual(
    state.spec.queues?.map((q) => q.apqn),
    ['05.0004', '06.0004', '07.0004'],
  );
  const reported = state.status?.mdevs?.find((m) => m.uuid === r.status?.mdevUUID);
  t.deepEqual(reported?.guestMatrix, ['05.0004', '06.0004']);
});

test('a placement its spec fixes that displaces no host queue is Ready in two writes: the finalizer, then the status once', async (t) => {
  const h = await harness(t);
  await h.agent('a', twoCardNode);
  await h.controller();
  const seen = await watchReservationWrites(t, h);
  // Domain 0004 of every card: clearing its aqmask bit moves exactly these three queues.
  await h.reserve('whole-domain', { nodeName: h.node('a'), apqns: ['05.0004', '06.0004', '07.0004'] });
  const r = await h.waitFor('whole-domain', 'Ready', 'True');
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  t.deepEqual(seen.map((w) => w.ready), ['no status', 'True'], 'finalizer, then Ready: the progress in between was never written on its own');
  t.is(r.status?.displacedQueues, undefined);
  for (const type of ['Accepted', 'Scheduled', 'Bound', 'Ready']) t.is(condition(r, type)?.status, 'True', type);
});

test('NotAMatrix: Accepted=False names the missing pairs and nothing reaches the node', async (t) => {
  const h = await harness(t);
  await h.agent('a', twoCardNode);
  await h.controller();
  await h.reserve('ragged', { nodeName: h.node('a'), apqns: ['05.0004', '06.0005'] });

  const r = await h.waitFor('ragged', 'Accepted', 'False', 'NotAMatrix');
  t.regex(condition(r, 'Accepted')!.message, /add 05\.0005 and 06\.0004/);
  t.is(condition(r, 'Ready')?.status, 'False');
  t.is(condition(r, 'Scheduled')?.status, 'False');
  const state = await h.clients.nodeStates.get(h.node('a'));
  t.deepEqual(state.spec.mdevs ?? [], []);
  t.deepEqual(state.spec.queues ?? [], []);
  t.deepEqual(state.spec.aqmask ?? [], []);
});
