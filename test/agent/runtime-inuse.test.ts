// Host programs still using a queue the spec moves to vfio_ap (inUsePolicy Wait, Fail, Force),
// a guest holding an mdev the spec releases, and a spec that cannot be applied — against the
// real API server, with the model (real-time clock: host requests drain in real seconds).
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { parseApqn } from '../../src/apbus/ids.js';
import { ManualClock } from '../../src/apbus/model/index.js';
import { testNamespace } from '../support/cluster.js';
import {
  agentFor,
  condition,
  eventsIn,
  reservationStatus,
  simulatedModel,
  syncedAtGeneration,
  uniqueNode,
  vfioSpec,
  waitForNodeState,
  wire,
  writeSpec,
} from './runtime-support.js';
import { eventually } from '../support/cluster.js';

const twoCards = [
  { id: '05', domains: '0004-0005' },
  { id: '06', domains: '0004-0005' },
];

test('Wait: the move waits until the host requests drained, then applies; nothing is cut off', async (t) => {
  const ns = await testNamespace(t, 'wait');
  const name = uniqueNode('wait');
  // The model's clock moves only when the test says: the requests drain exactly then.
  const model = simulatedModel(name, twoCards, {}, new ManualClock());
  const agent = await agentFor(t, model, name);
  await agent.ready();
  const reservation = `${ns}/r1`;
  model.addHostLoad(parseApqn('05.0004'), 3, 4);
  const spec = vfioSpec({ reservation, adapters: ['05', '06'], domains: ['0004'], clearDomains: ['0004'], inUsePolicy: 'Wait' });
  await writeSpec(name, wire(spec));

  const draining = await waitForNodeState(name, 'phase Draining', (o) => reservationStatus(o.status, reservation)?.phase === 'Draining');
  const r = reservationStatus(draining.status, reservation)!;
  t.is(r.reason, 'Draining');
  t.regex(r.message, /05\.0004/);
  t.deepEqual(r.queues?.find((q) => q.apqn === '05.0004'), { apqn: '05.0004', requestsInFlight: 3, requestCount: 3, state: 'Draining' });
  t.is(condition(draining.status, 'Synced')?.status, 'False');
  t.is(condition(draining.status, 'Synced')?.reason, 'Draining');
  t.true(model.aqmask.has(4), 'aqmask bit 0004 still set while draining');
  model.tick(4); // the host requests complete

  const applied = await waitForNodeState(name, 'Applied after the drain', (o) => syncedAtGeneration(o) && reservationStatus(o.status, reservation)?.phase === 'Applied');
  t.false(model.aqmask.has(4));
  t.is(model.stats.eagainReturned, 0, 'no host request was cut off');
  t.is(applied.status?.mdevs?.[0]?.uuid, spec.uuid);
});

test('Wait past drainTimeoutSeconds: Stuck, naming the queue and its counters, with a Warning event; nothing moves', async (t) => {
  const ns = await testNamespace(t, 'stuck');
  const name = uniqueNode('stuck');
  const model = simulatedModel(name, twoCards);
  const agent = await agentFor(t, model, name);
  await agent.ready();
  const reservation = `${ns}/r1`;
  model.addHostLoad(parseApqn('06.0004'), 2); // never drains
  const spec = vfioSpec({ reservation, adapters: ['05', '06'], domains: ['0004'], clearDomains: ['0004'], inUsePolicy: 'Wait', drainTimeoutSeconds: 1 });
  await writeSpec(name, wire(spec));

  const stuck = await waitForNodeState(name, 'phase Stuck', (o) => reservationStatus(o.status, reservation)?.phase === 'Stuck');
  const r = reservationStatus(stuck.status, reservation)!;
  t.is(r.reason, 'DrainTimeout');
  t.regex(r.message, /06\.0004/);
  t.deepEqual(r.queues?.find((q) => q.apqn === '06.0004')?.state, 'Stuck');
  t.is(condition(stuck.status, 'Synced')?.reason, 'Stuck');
  t.true(model.aqmask.has(4), 'still waiting: the bit is not cleared');
  t.is(model.mdevs.count, 0);
  const event = await eventually('a DrainStuck Warning event', async () =>
    (await eventsIn(ns)).find((e) => e.reason === 'DrainStuck' && e.type === 'Warning'),
  );
  t.is(event.regarding?.kind, 'APQNReservation');
  t.is(event.regarding?.name, 'r1');
  t.regex(event.note ?? '', /06\.0004/);
  t.is(model.stats.eagainReturned, 0);
});

test('Fail refuses while the host uses the queue; switching to Force moves it and says what was cut off', async (t) => {
  const ns = await testNamespace(t, 'force');
  const name = uniqueNode('force');
  // Different card modes: zcrypt cannot retry a cut-off CCA request on the EP11 card's queue
  // (which the same mask write displaces), so exactly the three are lost.
  const model = simulatedModel(name, [
    { id: '05', type: 'CEX8C', domains: '0004-0005' },
    { id: '06', type: 'CEX8P', domains: '0004-0005' },
  ]);
  const agent = await agentFor(t, model, name);
  await agent.ready();
  const reservation = `${ns}/r1`;
  model.addHostLoad(parseApqn('05.0004'), 3); // never drains by itself
  const uuid = randomUUID();
  await writeSpec(name, wire(vfioSpec({ uuid, reservation, adapters: ['05', '06'], domains: ['0004'], clearDomains: ['0004'], inUsePolicy: 'Fail' })));

  const refused = await waitForNodeState(name, 'phase InUse', (o) => reservationStatus(o.status, reservation)?.phase === 'InUse');
  t.is(reservationStatus(refused.status, reservation)?.reason, 'InUse');
  t.regex(reservationStatus(refused.status, reservation)!.message, /05\.0004.*inUsePolicy Fail/);
  t.is(condition(refused.status, 'Synced')?.reason, 'InUse');
  t.true(model.aqmask.has(4), 'Fail changes nothing');
  t.is(model.stats.eagainReturned, 0);

  await writeSpec(name, wire(vfioSpec({ uuid, reservation, adapters: ['05', '06'], domains: ['0004'], clearDomains: ['0004'], inUsePolicy: 'Force' })));
  await waitForNodeState(name, 'Applied under Force', (o) => syncedAtGeneration(o) && reservationStatus(o.status, reservation)?.phase === 'Applied');
  t.false(model.aqmask.has(4));
  t.is(model.stats.eagainReturned, 3, 'the three host requests went back with EAGAIN');
  const event = await eventually('a ForcedMove Warning event', async () =>
    (await eventsIn(ns)).find((e) => e.reason === 'ForcedMove' && e.type === 'Warning'),
  );
  t.is(event.regarding?.kind, 'APQNReservation');
  t.is(event.regarding?.namespace, ns);
  t.regex(event.note ?? '', /05\.0004/);
  t.regex(event.note ?? '', /3 host requests were cut off/);
});

test('a guest holding the mdev blocks its release; once it lets go the mdev goes and the bits come back', async (t) => {
  const name = uniqueNode('guest');
  const model = simulatedModel(name, twoCards);
  const agent = await agentFor(t, model, name);
  await agent.ready();
  const reservation = 'team-a/vm1';
  const spec = vfioSpec({ reservation, adapters: ['05', '06'], domains: ['0004'], clearDomains: ['0004'] });
  await writeSpec(name, wire(spec));
  await waitForNodeState(name, 'Applied', (o) => syncedAtGeneration(o) && reservationStatus(o.status, reservation)?.phase === 'Applied');
  model.attachGuest(spec.uuid);

  // The controller releases: mdev out of the spec, the bit back to the host.
  await writeSpec(name, { bindingMode: 'Masks', aqmask: [{ id: '0004', host: true, original: true }], queues: [], mdevs: [] });
  const releasing = await waitForNodeState(name, 'Releasing/GuestAttached', (o) => reservationStatus(o.status, reservation)?.reason === 'GuestAttached');
  t.is(reservationStatus(releasing.status, reservation)?.phase, 'Releasing');
  t.is(condition(releasing.status, 'Synced')?.status, 'False');
  t.truthy(model.mdevs.get(spec.uuid), 'the mdev stays while the guest has it open');
  t.false(model.aqmask.has(4), 'the bit is not set back while the mdev holds the queues');
  t.true(releasing.status?.mdevs?.find((m) => m.uuid === spec.uuid)?.inUse);

  model.detachGuest(spec.uuid);
  const released = await waitForNodeState(name, 'released and Synced', (o) => syncedAtGeneration(o) && (o.status?.mdevs?.length ?? 1) === 0);
  t.is(model.mdevs.get(spec.uuid), undefined);
  t.true(model.aqmask.has(4));
  t.is(reservationStatus(released.status, reservation), undefined, 'nothing left to report for it');
});

test('a bad spec (two mdevs claiming one queue) is reported in Synced; the agent keeps running and recovers', async (t) => {
  const name = uniqueNode('badspec');
  const model = simulatedModel(name, twoCards);
  const agent = await agentFor(t, model, name, { heartbeatMs: 1000 });
  await agent.ready();
  const a = vfioSpec({ reservation: 'team-a/r1', adapters: ['05'], domains: ['0004'], clearDomains: ['0004'] });
  const b = vfioSpec({ reservation: 'team-b/r2', adapters: ['05', '06'], domains: ['0004'], clearDomains: ['0004'] });
  const bad = await writeSpec(name, { ...wire(a), mdevs: [...a.mdevs!, ...b.mdevs!] });

  const reported = await waitForNodeState(name, 'Synced=False for the bad spec', (o) => o.status?.observedGeneration === bad.metadata.generation && condition(o.status, 'Synced')?.status === 'False');
  const synced = condition(reported.status, 'Synced')!;
  t.log(`${synced.reason}: ${synced.message}`);
  t.regex(synced.message, /05\.0004/);
  t.is(model.mdevs.count, 0, 'nothing of an inconsistent spec is applied');
  t.true(model.aqmask.has(4));
  // Still alive: the heartbeat moves on.
  const beat = reported.status!.heartbeatTime!;
  await waitForNodeState(name, 'a later heartbeat', (o) => (o.status?.heartbeatTime ?? '') > beat);
  t.is(agent.stats().passErrors, 0, 'a bad spec is a condition, not an error');

  await writeSpec(name, wire(a));
  await waitForNodeState(name, 'Synced on the corrected spec', (o) => syncedAtGeneration(o) && (o.metadata.generation ?? 0) > (bad.metadata.generation ?? 0));
  t.truthy(model.mdevs.get(a.uuid));
});
