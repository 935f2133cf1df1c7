// Deletion hands the queues back (mdev removed, mask bits restored) before the finalizer goes;
// claims bind one at a time and block what would take queues from a guest.
import test from 'ava';
import { condition, harness, twoCardNode, waitUntil } from './runtime-support.js';

test('delete: the finalizer stays until the node reports the mdev gone and the mask bits restored', async (t) => {
  const h = await harness(t);
  const agent = await h.agent('a', twoCardNode);
  await h.controller();
  await h.reserve('vm', { nodeName: h.node('a'), apqns: ['05.0004', '06.0004'] });
  const r = await h.waitFor('vm', 'Ready', 'True');
  const uuid = r.status!.mdevUUID!;
  t.false(agent.aqmask.has(4));

  // A guest (no claim) still has the mdev open: the agent will not remove it, so neither goes the finalizer.
  agent.setGuestAttached(uuid, true);
  await h.clients.reservations.delete({ namespace: h.ns, name: 'vm' });
  await h.waitFor('vm', 'Ready', 'False', 'Releasing');
  const releasing = await waitUntil('the agent to say a guest holds the mdev', async () => {
    const v = await h.reservation('vm');
    return /guest/.test(condition(v, 'Ready')?.message ?? '') ? v : undefined;
  });
  t.true(agent.mdevs.has(uuid));
  t.truthy(releasing.metadata.deletionTimestamp);
  t.is(condition(releasing, 'Ready')?.reason, 'Releasing');

  agent.setGuestAttached(uuid, false);
  await waitUntil('the reservation to be gone', async () => ((await h.reservation('vm')) ? undefined : true), 60_000);
  t.false(agent.mdevs.has(uuid), 'mdev removed');
  t.true(agent.aqmask.has(4), 'domain 0004 back on the host');
  const state = await waitUntil('the node spec to forget the restored bit', async () => {
    const s = await h.clients.nodeStates.get(h.node('a'));
    return (s.spec.aqmask ?? []).length === 0 ? s : undefined;
  });
  t.deepEqual(state.spec.mdevs, []);
  t.deepEqual(state.spec.queues, []);
  t.true(state.status?.queues?.filter((q) => q.apqn.endsWith('.0004')).every((q) => q.driver === 'cex4queue'));
});

test('claims: one claim per reservation; the bound claim blocks deletion and queue removal; Lost when it goes', async (t) => {
  const h = await harness(t);
  const agent = await h.agent('a', twoCardNode);
  await h.controller();
  await h.reserve('vm', { nodeName: h.node('a'), apqns: ['05.0004', '06.0004'] });
  const r = await h.waitFor('vm', 'Ready', 'True');
  await h.claim('c1', { reservationName: 'vm', guest: { kind: 'VirtualMachineInstance', name: 'vm1' } });
  const c1 = await h.waitForClaim('c1', (c) => c.status?.phase === 'Bound', 'phase Bound');
  t.is(c1.status?.nodeName, h.node('a'));
  t.is(c1.status?.mdevUUID, r.status?.mdevUUID);
  t.deepEqual(c1.status?.apqns, ['05.0004', '06.0004']);
  t.is(condition(c1, 'Bound')?.status, 'True');
  await waitUntil('claimedBy on the reservation', async () => ((await h.reservation('vm'))?.status?.claimedBy?.name === 'c1' ? true : undefined));

  await h.claim('c2', { reservationName: 'vm' });
  const c2 = await h.waitForClaim('c2', (c) => condition(c, 'Bound')?.reason === 'AlreadyClaimed', 'AlreadyClaimed');
  t.is(c2.status?.phase, 'Pending');
  t.regex(condition(c2, 'Bound')!.message, /held by claim c1/);

  // A spec change that removes a queue waits while the claim holds it.
  await h.clients.reservations.patch({ namespace: h.ns, name: 'vm' }, { spec: { apqns: ['05.0004'] } });
  const waiting = await h.waitFor('vm', 'Scheduled', 'True', 'ClaimedByGuest');
  t.deepEqual(waiting.status?.apqns, ['05.0004', '06.0004'], 'the old placement stays');
  t.is(condition(waiting, 'Ready')?.status, 'True');
  t.deepEqual(agent.mdevs.get(r.status!.mdevUUID!) && [...agent.mdevs.get(r.status!.mdevUUID!)!.adapters], [5, 6]);

  // Deletion waits too.
  await h.clients.reservations.delete({ namespace: h.ns, name: 'vm' });
  const deleting = await h.waitFor('vm', 'Ready', 'False', 'ClaimedByGuest');
  t.regex(condition(deleting, 'Ready')!.message, /claim c1/);
  t.true(agent.mdevs.has(r.status!.mdevUUID!), 'the guest keeps its mdev');

  // Someone removes the finalizer by hand: the reservation goes, the bound claim is Lost.
  await h.clients.reservations.patch({ namespace: h.ns, name: 'vm' }, { metadata: { finalizers: null } });
  const lost = await h.waitForClaim('c1', (c) => c.status?.phase === 'Lost', 'phase Lost');
  t.is(condition(lost, 'Bound')?.reason, 'ReservationDeleted');
  const c2After = await h.waitForClaim('c2', (c) => condition(c, 'Bound')?.reason === 'ReservationNotFound', 'ReservationNotFound');
  t.is(c2After.status?.phase, 'Pending', 'never bound: not lost, just pending');
});

test('claims: deleting the claim lets a waiting deletion proceed', async (t) => {
  const h = await harness(t);
  const agent = await h.agent('a', twoCardNode);
  await h.controller();
  await h.reserve('vm', { nodeName: h.node('a'), apqns: ['07.0001'] });
  const r = await h.waitFor('vm', 'Ready', 'True');
  await h.claim('c', { reservationName: 'vm' });
  await h.waitForClaim('c', (c) => c.status?.phase === 'Bound', 'phase Bound');
  await h.clients.reservations.delete({ namespace: h.ns, name: 'vm' });
  await h.waitFor('vm', 'Ready', 'False', 'ClaimedByGuest');
  await h.clients.claims.delete({ namespace: h.ns, name: 'c' });
  await waitUntil('the reservation to be gone', async () => ((await h.reservation('vm')) ? undefined : true), 60_000);
  t.false(agent.mdevs.has(r.status!.mdevUUID!));
});

test('a host reservation cannot be claimed; a claim waits for its reservation to be Ready', async (t) => {
  const h = await harness(t);
  await h.agent('a', twoCardNode);
  await h.controller();
  await h.claim('early', { reservationName: 'later' });
  await h.waitForClaim('early', (c) => condition(c, 'Bound')?.reason === 'ReservationNotFound', 'ReservationNotFound');
  await h.reserve('hostq', { nodeName: h.node('a'), driver: 'host', apqns: ['05.0001'] });
  await h.claim('onhost', { reservationName: 'hostq' });
  await h.waitForClaim('onhost', (c) => condition(c, 'Bound')?.reason === 'NotVfioAp', 'NotVfioAp');
  await h.reserve('later', { nodeName: h.node('a'), apqns: ['06.0002'] });
  const bound = await h.waitForClaim('early', (c) => c.status?.phase === 'Bound', 'phase Bound');
  t.is(bound.status?.nodeName, h.node('a'));
});
