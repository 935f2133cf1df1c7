// Conflicts (oldest wins, holders keep, hand-over when the holder goes), mask plans reported
// before they act, and `driver: host` reservations protecting their queues.
import test from 'ava';
import type { NodeStateSpec } from '../../src/api/types.js';
import { getJson } from '../../src/k8s/client.js';
import { kubeConfig } from '../support/cluster.js';
import { condition, harness, twoCardNode, waitUntil } from './runtime-support.js';

async function eventsFor(h: { ns: string }, name: string) {
  const list = await getJson<{ items: Array<{ reason: string; note: string; type: string; regarding: { name: string } }> }>(
    kubeConfig(),
    `/apis/events.k8s.io/v1/namespaces/${h.ns}/events`,
  );
  return list.items.filter((e) => e.regarding.name === name);
}

test('conflict: the newer reservation waits with Conflict=True naming the holder, and takes over when it goes', async (t) => {
  const h = await harness(t);
  const agent = await h.agent('a', twoCardNode);
  await h.controller();
  await h.reserve('first', { nodeName: h.node('a'), apqns: ['05.0004'] });
  const first = await h.waitFor('first', 'Ready', 'True');
  await h.reserve('second', { nodeName: h.node('a'), apqns: ['05.0004', '05.0005'] });

  const second = await h.waitFor('second', 'Conflict', 'True');
  t.regex(condition(second, 'Conflict')!.message, new RegExp(`05\\.0004 on node ${h.node('a')} is held by ${h.ns}/first`));
  t.is(condition(second, 'Ready')?.status, 'False');
  t.is(condition(second, 'Scheduled')?.reason, 'Conflict');
  t.is(second.status?.mdevUUID, undefined);
  const state = await h.clients.nodeStates.get(h.node('a'));
  t.deepEqual(
    state.spec.mdevs?.map((m) => m.reservation),
    [`${h.ns}/first`],
    'the loser is in no node spec',
  );
  await waitUntil('a Conflict event', async () =>
    (await eventsFor(h, 'second')).find((e) => e.reason === 'Conflict' && e.type === 'Warning'),
  );

  // The holder goes: the waiting reservation gets the queues by itself.
  await h.clients.reservations.delete({ namespace: h.ns, name: 'first' });
  const after = await h.waitFor('second', 'Ready', 'True');
  t.is(condition(after, 'Conflict')?.status, 'False');
  t.is(await h.reservation('first'), undefined);
  t.false(agent.mdevs.has(first.status!.mdevUUID!), 'the first mdev is gone');
  t.true(agent.mdevs.has(after.status!.mdevUUID!));
  t.deepEqual(after.status?.apqns, ['05.0004', '05.0005']);
});

test('holders keep their queues: an older reservation edited to want them waits', async (t) => {
  const h = await harness(t);
  await h.agent('a', twoCardNode);
  await h.controller();
  await h.reserve('older', { nodeName: h.node('a'), apqns: ['06.0001'] });
  await h.waitFor('older', 'Ready', 'True');
  await h.reserve('newer', { nodeName: h.node('a'), apqns: ['05.0002'] });
  await h.waitFor('newer', 'Ready', 'True');

  await h.clients.reservations.patch({ namespace: h.ns, name: 'older' }, { spec: { apqns: ['05.0002'] } });
  const older = await h.waitFor('older', 'Conflict', 'True');
  t.regex(condition(older, 'Conflict')!.message, new RegExp(`held by ${h.ns}/newer \\(already holds them\\)`));
  const newer = await h.reservation('newer');
  t.is(condition(newer, 'Ready')?.status, 'True');
});

test('a mask plan is reported (status.displacedQueues and an event) before the node spec acts on it', async (t) => {
  const h = await harness(t);
  const seen: Array<{ generation: number; clearsDomain4: boolean; reported: string[] | undefined }> = [];
  const agent = await h.agent('a', {
    ...twoCardNode,
    onNewSpec: async (spec: NodeStateSpec, generation: number) => {
      const clearsDomain4 = (spec.aqmask ?? []).some((b) => b.id === '0004' && !b.host);
      const r = await h.reservation('vm');
      seen.push({ generation, clearsDomain4, reported: r?.status?.displacedQueues });
    },
  });
  await h.controller();
  await h.reserve('vm', { nodeName: h.node('a'), apqns: ['05.0004', '06.0004'] });
  const r = await h.waitFor('vm', 'Ready', 'True');
  t.deepEqual(r.status?.displacedQueues, ['07.0004']);

  const acting = seen.filter((s) => s.clearsDomain4);
  t.true(acting.length > 0, 'the agent saw the spec that clears domain 0004');
  for (const s of acting) t.deepEqual(s.reported, ['07.0004'], `generation ${s.generation} came after the report`);
  const events = await eventsFor(h, 'vm');
  const displaced = events.find((e) => e.reason === 'DisplacedQueues');
  t.truthy(displaced);
  t.regex(displaced!.note, /07\.0004/);
  t.false(agent.aqmask.has(4));
});

test('driver: host reservations protect their queues: plans go around them, or wait in conflict', async (t) => {
  const h = await harness(t);
  const agent = await h.agent('a', twoCardNode);
  await h.controller();
  await h.reserve('keep', { nodeName: h.node('a'), driver: 'host', apqns: ['07.0004', '05.0005'] });
  const keep = await h.waitFor('keep', 'Ready', 'True');
  t.deepEqual(
    keep.status?.queues?.map((q) => q.state),
    ['Bound', 'Bound'],
  );

  await h.reserve('guest', { nodeName: h.node('a'), apqns: ['06.0004', '06.0006'] });
  const guest = await h.waitFor('guest', 'Ready', 'True');
  // Clearing adapter 06 displaces the 14 other queues of card 06; clearing domains 0004 and 0006
  // would take the protected 07.0004. The planner goes around it.
  t.false((guest.status?.displacedQueues ?? []).includes('07.0004'));
  t.is(guest.status?.displacedQueues?.length, 14);
  t.false(agent.apmask.has(6));
  t.true(agent.aqmask.has(4));

  // 05.0004 can only be freed through adapter 05 (protected 05.0005) or domain 0004 (protected
  // 07.0004): a conflict, never a silent move.
  await h.reserve('blocked', { nodeName: h.node('a'), apqns: ['05.0004'] });
  const blocked = await h.waitFor('blocked', 'Conflict', 'True', 'ProtectedQueue');
  t.regex(condition(blocked, 'Conflict')!.message, /driver: host/);
  t.true(agent.apmask.has(5) && agent.aqmask.has(4), 'nothing moved for it');
  const again = await h.reservation('keep');
  t.is(condition(again, 'Ready')?.status, 'True');
});
