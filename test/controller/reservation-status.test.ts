import test from 'ava';
import type { APNodeState, APQNReservation, ReservationApplyStatus } from '../../src/api/types.js';
import { mdevUuidFor } from '../../src/controller/mdev-uuid.js';
import { decideCluster } from '../../src/controller/placement.js';
import { desiredStatus, judgeReservation, releasedFromNode } from '../../src/controller/reservation-status.js';
import { range } from './fixtures.js';
import { NOW, claim, cond, placed, res, state, threeCards, view } from './view-fixtures.js';

const UUID = mdevUuidFor('uid-vm');
const APQNS = ['05.0004', '06.0004'];

/** The node after the agent applied `vm`: domain 0004 off the host, the mdev with its matrix. */
function appliedNode(options: { guestMatrix?: string[]; phase?: ReservationApplyStatus; heartbeatAgoMs?: number } = {}): APNodeState {
  const s = state(
    'n',
    { ...threeCards, aqmask: range(0, 255).filter((d) => d !== 4) },
    {
      spec: {
        aqmask: [{ id: '0004', host: false, original: true }],
        mdevs: [{ uuid: UUID, reservation: 'ns/vm', adapters: ['05', '06'], domains: ['0004'], controlDomains: [] }],
      },
      heartbeatAgoMs: options.heartbeatAgoMs ?? 1000,
    },
  );
  s.status!.mdevs = [{ uuid: UUID, matrix: APQNS, guestMatrix: options.guestMatrix ?? APQNS, controlDomains: [], owned: true, reservation: 'ns/vm' }];
  s.status!.reservations = [options.phase ?? { reservation: 'ns/vm', phase: 'Applied', reason: 'Applied', message: '' }];
  return s;
}

function judge(r: APQNReservation, node: APNodeState, claims = [] as ReturnType<typeof claim>[]) {
  const v = view({ reservations: [r], states: [node], claims });
  const cluster = decideCluster(v);
  return judgeReservation(cluster.reservations.get('ns/vm')!, v, cluster);
}

const vm = (extra: Parameters<typeof res>[2] = {}) =>
  res('vm', { nodeName: 'n', apqns: APQNS }, { status: placed('n', APQNS, { displacedQueues: ['07.0004'] }), ...extra });

function conditions(j: ReturnType<typeof judge>): Record<string, string> {
  return Object.fromEntries(j.conditions.map((c) => [c.type, `${c.status} ${c.reason}`]));
}

const table: Array<{ why: string; node: APNodeState; expected: Record<string, string>; queueStates?: string[] }> = [
  {
    why: 'applied with the full guest matrix: Bound and Ready',
    node: appliedNode(),
    expected: { Bound: 'True Bound', Ready: 'True Ready' },
    queueStates: ['Assigned', 'Assigned'],
  },
  {
    why: 'the guest does not see every queue yet: Bound but not Ready',
    node: appliedNode({ guestMatrix: ['05.0004'], phase: { reservation: 'ns/vm', phase: 'Pending', reason: 'Pending', message: '' } }),
    expected: { Bound: 'True Bound', Ready: 'False MdevPending' },
  },
  {
    why: 'a card of the matrix went away: the agent says Degraded, and so does Ready',
    node: appliedNode({
      guestMatrix: ['05.0004'],
      phase: { reservation: 'ns/vm', phase: 'Applied', reason: 'Degraded', message: 'Applied; card 06 is offline' },
    }),
    expected: { Bound: 'True Bound', Ready: 'False Degraded' },
  },
  {
    why: 'a stale heartbeat makes both Unknown',
    node: appliedNode({ heartbeatAgoMs: 60_000 }),
    expected: { Bound: 'Unknown AgentUnavailable', Ready: 'Unknown AgentUnavailable' },
  },
  {
    why: 'the agent waits for host requests to drain: Draining',
    node: (() => {
      const s = state('n', threeCards);
      s.status!.reservations = [{ reservation: 'ns/vm', phase: 'Draining', reason: 'HostRequestsInFlight', message: '05.0004 has 3 host requests in flight' }];
      return s;
    })(),
    expected: { Bound: 'False Draining', Ready: 'False Draining' },
    queueStates: ['Draining', 'Draining'],
  },
  {
    why: 'the agent failed to apply: ApplyFailed',
    node: (() => {
      const s = state('n', threeCards);
      s.status!.reservations = [{ reservation: 'ns/vm', phase: 'Failed', reason: 'AssignFailed', message: 'assign_domain: EADDRINUSE' }];
      return s;
    })(),
    expected: { Bound: 'False ApplyFailed', Ready: 'False ApplyFailed' },
  },
  {
    why: 'nothing applied yet: Pending, naming the queues still on the host driver',
    node: state('n', threeCards),
    expected: { Bound: 'False Pending', Ready: 'False Pending' },
    queueStates: ['Pending', 'Pending'],
  },
];

for (const c of table) {
  test(c.why, (t) => {
    const j = judge(vm(), c.node);
    const got = conditions(j);
    t.like(got, { Accepted: 'True Valid', Scheduled: 'True Scheduled', Conflict: 'False NoConflict', ...c.expected });
    if (c.queueStates) t.deepEqual(j.fields.queues?.map((q) => q.state), c.queueStates);
    t.is(j.fields.mdevUUID, UUID);
    t.deepEqual(j.fields.displacedQueues, ['07.0004']);
  });
}

test('a Ready reservation is not requeued on a timer (its node’s staleness timer wakes it); one whose agent is unavailable is', (t) => {
  t.is(judge(vm(), appliedNode({ heartbeatAgoMs: 10_000 })).requeueAfterMs, undefined);
  t.is(judge(vm(), appliedNode({ heartbeatAgoMs: 50_000 })).requeueAfterMs, 5_000);
});

test('events: newly displaced queues before the write, a stuck drain after it — and no Normal event for Ready', (t) => {
  const fresh = res('vm', { nodeName: 'n', apqns: APQNS }, { status: placed('n', APQNS) });
  t.deepEqual(
    judge(fresh, state('n', threeCards)).eventsBefore.map((e) => e.reason),
    ['DisplacedQueues'],
  );
  t.deepEqual(judge(vm(), state('n', threeCards)).eventsBefore, [], 'already reported: no repeat');

  const stuck = state('n', threeCards);
  stuck.status!.reservations = [{ reservation: 'ns/vm', phase: 'Stuck', reason: 'DrainTimeout', message: 'still 3 in flight after 300 s' }];
  t.deepEqual(
    judge(vm(), stuck).eventsAfter.map((e) => e.reason),
    ['DrainStuck'],
  );
  t.deepEqual(
    judge(vm(), appliedNode()).eventsAfter.map((e) => e.reason),
    [],
    'the Ready condition says it; one Normal event per reservation was most of what a large cluster wrote',
  );
});

test('deleting with a bound claim: held, Ready=False ClaimedByGuest, with an event', (t) => {
  const j = judge(vm({ deleting: true }), appliedNode(), [claim('c', 'vm', { phase: 'Bound' })]);
  t.like(conditions(j), { Bound: 'True Bound', Ready: 'False ClaimedByGuest' });
  t.deepEqual(j.fields.claimedBy, { name: 'c' });
  t.false(j.released);
  t.deepEqual(
    j.eventsAfter.map((e) => e.reason),
    ['ClaimedByGuest'],
  );
});

test('deleting without a claim: Releasing until the node no longer names it and shows it gone', (t) => {
  const j = judge(vm({ deleting: true }), appliedNode());
  t.like(conditions(j), { Bound: 'False Releasing', Ready: 'False Releasing' });
  t.false(j.released);
  t.deepEqual(j.fields.queues?.map((q) => q.state), ['Releasing', 'Releasing']);
});

const releaseCases: Array<{ why: string; node: () => APNodeState | undefined; released: boolean }> = [
  { why: 'the node spec still names it', node: () => appliedNode(), released: false },
  {
    why: 'spec written, agent not there yet (old generation)',
    node: () => {
      const s = appliedNode();
      s.spec = { aqmask: [{ id: '0004', host: true, original: true }] };
      s.metadata.generation = 2;
      return s;
    },
    released: false,
  },
  {
    why: 'agent caught up but the mdev is still there (a guest has it open)',
    node: () => {
      const s = appliedNode();
      s.spec = { aqmask: [{ id: '0004', host: true, original: true }] };
      s.metadata.generation = 2;
      s.status!.observedGeneration = 2;
      return s;
    },
    released: false,
  },
  {
    why: 'mdev gone but the queues are not back on the host yet',
    node: () => {
      const s = appliedNode();
      s.spec = { aqmask: [{ id: '0004', host: true, original: true }] };
      s.metadata.generation = 2;
      s.status!.observedGeneration = 2;
      s.status!.mdevs = [];
      return s;
    },
    released: false,
  },
  {
    why: 'mdev gone and the bits restored',
    node: () => {
      const s = state('n', threeCards, { spec: { aqmask: [{ id: '0004', host: true, original: true }] }, generation: 2 });
      return s;
    },
    released: true,
  },
  { why: 'the node state is gone', node: () => undefined, released: true },
];

for (const c of releaseCases) {
  test(`releasedFromNode: ${c.why}`, (t) => {
    const node = c.node();
    const v = view({ reservations: [vm({ deleting: true })], states: node ? [node] : [] });
    const d = decideCluster(v).reservations.get('ns/vm')!;
    t.is(releasedFromNode(d, v), c.released);
  });
}

test('releasedFromNode: a placement fixed by its spec, deleted before its status said anything, waits for the agent like a recorded one', (t) => {
  // Never written: no status at all. Its spec names the node, and the node spec took it.
  const unwritten = res('vm', { nodeName: 'n', apqns: APQNS }, { deleting: true });
  const judgeRelease = (node: APNodeState) => {
    const v = view({ reservations: [unwritten], states: [node] });
    return releasedFromNode(decideCluster(v).reservations.get('ns/vm')!, v);
  };
  t.false(judgeRelease(appliedNode()), 'the node spec still names it');
  const dropped = appliedNode();
  dropped.spec = { aqmask: [{ id: '0004', host: true, original: true }] };
  dropped.metadata.generation = 2;
  t.false(judgeRelease(dropped), 'the spec dropped it, but the agent has not seen that spec yet (it may be applying the one before)');
  dropped.status!.observedGeneration = 2;
  t.false(judgeRelease(dropped), 'the agent saw it, and still reports the mdev and the reservation');
  dropped.status!.mdevs = [];
  dropped.status!.reservations = [];
  t.false(judgeRelease(dropped), 'the mdev is gone, but the queues are not back on the host yet');
  dropped.status = { ...state('n', threeCards).status!, observedGeneration: 2 };
  t.true(judgeRelease(dropped), 'nothing of it left on the node');
  const invalid = res('vm', { nodeName: 'n', apqns: ['05.0004', '06.0005'] }, { deleting: true });
  const v = view({ reservations: [invalid], states: [dropped] });
  t.true(releasedFromNode(decideCluster(v).reservations.get('ns/vm')!, v), 'a spec that was never valid never reached a node');
});

test('desiredStatus keeps lastTransitionTime for unchanged condition statuses and stamps the generation', (t) => {
  const current = placed('n', APQNS);
  current.conditions!.push(cond('Ready', 'False', 'Pending'));
  const j = judge(vm(), appliedNode());
  const next = desiredStatus(current, j, 7, NOW);
  const byType = Object.fromEntries(next.conditions!.map((c) => [c.type, c]));
  t.is(byType.Scheduled!.lastTransitionTime, current.conditions![1]!.lastTransitionTime, 'Scheduled stayed True');
  t.is(byType.Ready!.lastTransitionTime, '2026-11-25T10:00:00Z', 'Ready went False → True now');
  t.true(next.conditions!.every((c) => c.observedGeneration === 7));
  t.deepEqual(
    next.conditions!.map((c) => c.type),
    ['Accepted', 'Scheduled', 'Conflict', 'Bound', 'Ready'],
  );
  t.is(next.observedGeneration, 7);
});

test('conflict and rejection say why on every condition and record no mdev', (t) => {
  const holder = res('holder', { nodeName: 'n', apqns: ['05.0004'] }, { age: 60, status: placed('n', ['05.0004']) });
  const loser = res('vm', { nodeName: 'n', apqns: ['05.0004'] });
  const v = view({ reservations: [holder, loser], states: [state('n', threeCards)] });
  const cluster = decideCluster(v);
  const j = judgeReservation(cluster.reservations.get('ns/vm')!, v, cluster);
  t.like(conditions(j), { Conflict: 'True QueueHeld', Scheduled: 'False Conflict', Bound: 'False Conflict', Ready: 'False Conflict' });
  t.is(j.fields.mdevUUID, undefined);
  t.deepEqual(j.eventsAfter.map((e) => e.reason), ['Conflict']);

  const bad = res('vm', { nodeName: 'n', apqns: ['05.0004', '06.0005'] });
  const v2 = view({ reservations: [bad], states: [state('n', threeCards)] });
  const c2 = decideCluster(v2);
  t.like(conditions(judgeReservation(c2.reservations.get('ns/vm')!, v2, c2)), {
    Accepted: 'False NotAMatrix',
    Scheduled: 'False NotAccepted',
    Ready: 'False NotAccepted',
  });
});
