import test from 'ava';
import { formatApqn } from '../../src/apbus/ids.js';
import { decideCluster, type Standing } from '../../src/controller/placement.js';
import { claim, placed, res, state, threeCards, view } from './view-fixtures.js';

function summary(s: Standing): string {
  switch (s.kind) {
    case 'holds':
      return `holds ${s.node} ${s.apqns.map(formatApqn).join(',')}`;
    case 'conflict':
      return `conflict ${s.reason} ${s.holders.join(',')}`;
    case 'unplaced':
      return `unplaced ${s.reason}`;
    case 'rejected':
      return `rejected ${s.problem.reason}`;
    case 'released':
      return 'released';
  }
}

const node = state('n', threeCards);

const cases: Array<{ why: string; reservations: ReturnType<typeof res>[]; claims?: ReturnType<typeof claim>[]; states?: ReturnType<typeof state>[]; expected: Record<string, string> }> = [
  {
    why: 'explicit placements on one queue: the older holds, the newer waits naming it',
    reservations: [
      res('b', { nodeName: 'n', apqns: ['05.0004'] }, { age: 5 }),
      res('a', { nodeName: 'n', apqns: ['05.0004', '05.0005'] }, { age: 9 }),
    ],
    expected: { 'ns/a': 'holds n 05.0004,05.0005', 'ns/b': 'conflict QueueHeld ns/a' },
  },
  {
    why: 'a holder the node spec serves keeps its queues against an older reservation that now wants them',
    reservations: [
      res('old', { nodeName: 'n', apqns: ['06.0001'] }, { age: 60 }),
      res('new', { nodeName: 'n', apqns: ['06.0001'] }, { age: 1, status: placed('n', ['06.0001']) }),
    ],
    states: [state('n', threeCards, { spec: { mdevs: [{ uuid: 'u', reservation: 'ns/new', adapters: ['06'], domains: ['0001'], controlDomains: [] }] } })],
    expected: { 'ns/new': 'holds n 06.0001', 'ns/old': 'conflict QueueHeld ns/new' },
  },
  {
    why: 'a placement recorded in status only (the node spec does not serve it yet) is contested by age: the older wins',
    reservations: [
      res('old', { nodeName: 'n', apqns: ['06.0001'] }, { age: 60 }),
      res('new', { nodeName: 'n', apqns: ['06.0001'] }, { age: 1, status: placed('n', ['06.0001']) }),
    ],
    expected: { 'ns/old': 'holds n 06.0001', 'ns/new': 'conflict QueueHeld ns/old' },
  },
  {
    why: 'request-based reservations are placed oldest first on disjoint queues',
    reservations: [
      res('r2', { request: { adapters: 2, domains: 1, mode: 'CCA' } }, { age: 1 }),
      res('r1', { request: { adapters: 2, domains: 1, mode: 'CCA' } }, { age: 2 }),
    ],
    expected: { 'ns/r1': 'holds n 05.0000,06.0000', 'ns/r2': 'holds n 05.0001,06.0001' },
  },
  {
    why: 'a request-based placement recorded in status is sticky',
    reservations: [res('r', { request: { adapters: 1, domains: 1 } }, { status: placed('n', ['07.000f']) })],
    expected: { 'ns/r': 'holds n 07.000f' },
  },
  {
    why: 'a recorded placement that no longer fits the spec is placed again',
    reservations: [res('r', { nodeName: 'n', apqns: ['05.0001'] }, { status: placed('n', ['05.0002']) })],
    expected: { 'ns/r': 'holds n 05.0001' },
  },
  {
    why: 'a claimed reservation keeps its old placement while its spec asks for another',
    reservations: [res('r', { nodeName: 'n', apqns: ['05.0001'] }, { status: placed('n', ['05.0001', '06.0001']) })],
    claims: [claim('c', 'r', { phase: 'Bound' })],
    expected: { 'ns/r': 'holds n 05.0001,06.0001' },
  },
  {
    why: 'a claimed reservation with an invalid spec keeps its old placement too',
    reservations: [res('r', { nodeName: 'n', apqns: ['05.0001', '06.0002'] }, { status: placed('n', ['05.0001']) })],
    claims: [claim('c', 'r', { phase: 'Bound' })],
    expected: { 'ns/r': 'holds n 05.0001' },
  },
  {
    why: 'a deleting reservation that never held anything is released; one that holds keeps blocking newcomers',
    reservations: [
      res('gone', { nodeName: 'n', apqns: ['05.0003'] }, { deleting: true, age: 30 }),
      res('leaving', { nodeName: 'n', apqns: ['05.0004'] }, { deleting: true, age: 20, status: placed('n', ['05.0004']) }),
      res('waiting', { nodeName: 'n', apqns: ['05.0004'] }, { age: 40 }),
    ],
    expected: { 'ns/gone': 'released', 'ns/leaving': 'holds n 05.0004', 'ns/waiting': 'conflict QueueHeld ns/leaving' },
  },
  {
    why: 'NotAMatrix and queues the node lacks are rejected',
    reservations: [
      res('ragged', { nodeName: 'n', apqns: ['05.0001', '06.0002'] }),
      res('absent', { nodeName: 'n', apqns: ['0a.0001'] }),
    ],
    expected: { 'ns/ragged': 'rejected NotAMatrix', 'ns/absent': 'rejected QueueNotFound' },
  },
  {
    why: 'a node without an APNodeState, and a request nothing fits, wait unplaced',
    reservations: [res('elsewhere', { nodeName: 'other', apqns: ['05.0001'] }), res('big', { request: { adapters: 4, domains: 1 } })],
    expected: { 'ns/elsewhere': 'unplaced NodeNotFound', 'ns/big': 'unplaced NoFittingNode' },
  },
  {
    why: 'a vfio_ap pair that only a protected queue move could free is a ProtectedQueue conflict',
    reservations: [
      res('keep', { nodeName: 'n', driver: 'host', apqns: ['07.0004', '05.0005'] }, { age: 9, status: placed('n', ['05.0005', '07.0004']) }),
      res('guest', { nodeName: 'n', apqns: ['05.0004'] }, { age: 1 }),
    ],
    expected: { 'ns/keep': 'holds n 05.0005,07.0004', 'ns/guest': 'conflict ProtectedQueue ns/keep' },
  },
];

for (const c of cases) {
  test(c.why, (t) => {
    const decision = decideCluster(view({ reservations: c.reservations, claims: c.claims ?? [], states: c.states ?? [node] }));
    const got = Object.fromEntries([...decision.reservations].map(([k, d]) => [k, summary(d.standing)]));
    t.deepEqual(got, c.expected);
  });
}

test('members: holders compose their node, oldest first; releasing ones are left out', (t) => {
  const decision = decideCluster(
    view({
      reservations: [
        res('b', { nodeName: 'n', apqns: ['06.0001'] }, { age: 5 }),
        res('a', { nodeName: 'n', apqns: ['05.0001'] }, { age: 9 }),
        res('leaving', { nodeName: 'n', apqns: ['07.0001'] }, { deleting: true, status: placed('n', ['07.0001']) }),
      ],
      states: [node],
    }),
  );
  t.deepEqual(
    decision.members.get('n')!.map((m) => m.key),
    ['ns/a', 'ns/b'],
  );
  t.true(decision.reservations.get('ns/leaving')!.releasing);
  t.deepEqual(
    decision.nodes.get('n')!.spec.mdevs.map((m) => m.reservation),
    ['ns/a', 'ns/b'],
  );
});

test('claimWait explains why a claimed reservation does not follow its spec', (t) => {
  const decision = decideCluster(
    view({
      reservations: [res('r', { nodeName: 'n', apqns: ['05.0001'] }, { status: placed('n', ['05.0001', '06.0001']) })],
      claims: [claim('c', 'r', { phase: 'Bound' })],
      states: [node],
    }),
  );
  t.regex(decision.reservations.get('ns/r')!.claimWait ?? '', /claim c holds this reservation/);
});
