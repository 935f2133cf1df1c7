// Which events reach the DRA node queue, and the indexes by node behind them (pure): a node is
// enqueued only when its pool can change — a device appears, goes or changes — never for agent
// heartbeats, Node status updates or reservation changes that leave the device as it was.
import test from 'ava';
import type { APNodeState, APQNReservation, Condition } from '../../src/api/types.js';
import { mdevUuidFor } from '../../src/controller/mdev-uuid.js';
import { ByNode, nodeMatters, nodeStateMatters, nodesToRepublish } from '../../src/controller/dra-routing.js';

const ready = (status: Condition['status']): Condition => ({ type: 'Ready', status, reason: 'R', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' });

function reservation(name: string, over: { node?: string; ready?: Condition['status']; uid?: string; annotations?: Record<string, string>; adapters?: string[]; deleting?: boolean; message?: string } = {}): APQNReservation {
  const uid = over.uid ?? `uid-${name}`;
  const adapters = over.adapters ?? ['05'];
  return {
    apiVersion: 'ap.s390x.io/v1alpha1',
    kind: 'APQNReservation',
    metadata: {
      name,
      namespace: 'ns',
      uid,
      ...(over.annotations ? { annotations: over.annotations } : {}),
      ...(over.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    spec: { driver: 'vfio_ap' },
    status: {
      nodeName: over.node ?? 'node-a',
      mdevUUID: mdevUuidFor(uid),
      apqns: adapters.map((a) => `${a}.0004`),
      matrix: { adapters, domains: ['0004'], controlDomains: [] },
      queues: adapters.map((a) => ({ apqn: `${a}.0004`, driver: 'vfio_ap', state: 'Assigned' as const, ...(over.message ? { message: over.message } : {}) })),
      conditions: [ready(over.ready ?? 'True')],
    },
  };
}

const cases: Array<{ why: string; old?: APQNReservation; now?: APQNReservation; want: string[] }> = [
  { why: 'a reservation created not Ready: nothing to publish', now: reservation('a', { ready: 'False' }), want: [] },
  { why: 'a reservation becoming Ready: its node', old: reservation('a', { ready: 'False' }), now: reservation('a'), want: ['node-a'] },
  { why: 'a reservation no longer Ready: its node', old: reservation('a'), now: reservation('a', { ready: 'Unknown' }), want: ['node-a'] },
  { why: 'an annotation on a Ready reservation: nothing', old: reservation('a'), now: reservation('a', { annotations: { x: 'y' } }), want: [] },
  { why: 'a queue message in the status of a Ready reservation: nothing', old: reservation('a'), now: reservation('a', { message: 'checked' }), want: [] },
  { why: 'a not-Ready reservation moved between nodes: nothing', old: reservation('a', { ready: 'False' }), now: reservation('a', { ready: 'False', node: 'node-b' }), want: [] },
  { why: 'a Ready reservation moved between nodes: both', old: reservation('a'), now: reservation('a', { node: 'node-b' }), want: ['node-a', 'node-b'] },
  { why: 'a Ready reservation whose matrix changed: its node', old: reservation('a'), now: reservation('a', { adapters: ['05', '06'] }), want: ['node-a'] },
  { why: 'a Ready reservation being deleted: its node', old: reservation('a'), now: reservation('a', { deleting: true }), want: ['node-a'] },
  { why: 'a Ready reservation gone: its node', old: reservation('a'), want: ['node-a'] },
  { why: 'a not-Ready reservation gone: nothing', old: reservation('a', { ready: 'False' }), want: [] },
];
for (const c of cases) {
  test(`reservation event: ${c.why}`, (t) => {
    t.deepEqual(nodesToRepublish(c.old, c.now), c.want);
  });
}

function nodeState(over: { heartbeat?: string; mode?: 'CCA' | 'EP11'; cards?: number; requestCount?: number } = {}): APNodeState {
  return {
    apiVersion: 'ap.s390x.io/v1alpha1',
    kind: 'APNodeState',
    metadata: { name: 'node-a' },
    spec: {},
    status: {
      heartbeatTime: over.heartbeat ?? '2026-01-01T00:00:00.000000Z',
      cards: Array.from({ length: over.cards ?? 1 }, (_, i) => ({
        id: `0${5 + i}`,
        type: 'CEX8C',
        mode: i === 0 ? (over.mode ?? 'CCA') : 'CCA',
        online: true,
        config: true,
        chkstop: false,
      })),
      queues: [{ apqn: '05.0004', driver: 'vfio_ap', online: true, requestsInFlight: 0, requestCount: over.requestCount ?? 0 }],
    },
  } as APNodeState;
}

const stateCases: Array<{ why: string; now: APNodeState; want: boolean }> = [
  { why: 'a heartbeat: ignored', now: nodeState({ heartbeat: '2026-01-01T00:00:05.000000Z' }), want: false },
  { why: 'queue counters: ignored', now: nodeState({ requestCount: 12 }), want: false },
  { why: "a card's mode changed: the node's devices say it", now: nodeState({ mode: 'EP11' }), want: true },
  { why: 'a card appeared: the node', now: nodeState({ cards: 2 }), want: true },
];
for (const c of stateCases) {
  test(`APNodeState update: ${c.why}`, (t) => {
    t.is(nodeStateMatters(nodeState(), c.now), c.want);
  });
}

test('Node update: only a new uid (the Node recreated) changes the slices owner', (t) => {
  t.false(nodeMatters({ metadata: { uid: 'u1' } }, { metadata: { uid: 'u1' } }));
  t.true(nodeMatters({ metadata: { uid: 'u1' } }, { metadata: { uid: 'u2' } }));
});

test('ByNode: follows adds, moves and deletes; a node with nothing left is forgotten', (t) => {
  const index = new ByNode<APQNReservation>((r) => r.status?.nodeName);
  index.set(reservation('a'));
  index.set(reservation('b'));
  index.set(reservation('c', { node: 'node-b' }));
  t.deepEqual(index.of('node-a').map((r) => r.metadata.name).sort(), ['a', 'b']);
  index.set(reservation('a', { node: 'node-b' })); // moved
  t.deepEqual(index.of('node-a').map((r) => r.metadata.name), ['b']);
  t.deepEqual(index.of('node-b').map((r) => r.metadata.name).sort(), ['a', 'c']);
  const unplaced = reservation('b');
  delete unplaced.status!.nodeName;
  index.set(unplaced); // no node any more
  t.deepEqual(index.of('node-a'), []);
  t.deepEqual(index.nodes(), ['node-b']);
  index.delete(reservation('c', { node: 'node-b' }));
  index.delete(reservation('zzz')); // never seen: nothing happens
  t.deepEqual(index.of('node-b').map((r) => r.metadata.name), ['a']);
  // The latest object is what a node reads.
  index.set(reservation('a', { node: 'node-b', ready: 'False' }));
  t.is(index.of('node-b')[0]!.status!.conditions![0]!.status, 'False');
});
