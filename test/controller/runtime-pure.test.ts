// Small pure pieces of the controller runtime: mdev UUIDs, the node-spec gate, spec
// comparison, agent availability, and which keys informer events enqueue.
import test from 'ava';
import type { APQNReservation } from '../../src/api/types.js';
import { agentAvailability } from '../../src/controller/cluster-view.js';
import type { Caches } from '../../src/controller/context.js';
import { mdevUuidFor } from '../../src/controller/mdev-uuid.js';
import { composeNodeSpec } from '../../src/controller/node-spec.js';
import { gateClosed, gatedComposition, sameSpec } from '../../src/controller/nodes.js';
import { decideCluster } from '../../src/controller/placement.js';
import { onClaim, onNodeState, onReservation } from '../../src/controller/wiring.js';
import { claim, placed, res, state, threeCards, view } from './view-fixtures.js';

test('mdev UUIDs are name-based (v5) UUIDs of the reservation uid: stable, lower case, distinct', (t) => {
  const a = mdevUuidFor('0b5c2a7e-1111-4c4c-9d9d-000000000001');
  t.regex(a, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.is(mdevUuidFor('0b5c2a7e-1111-4c4c-9d9d-000000000001'), a);
  t.not(mdevUuidFor('0b5c2a7e-1111-4c4c-9d9d-000000000002'), a);
  t.throws(() => mdevUuidFor(''));
});

const gateCases: Array<{ why: string; r: APQNReservation | undefined; closed: RegExp | undefined }> = [
  { why: 'recorded, finalized, displacement reported: open', r: res('vm', { nodeName: 'n', apqns: ['05.0004', '06.0004'] }, { status: placed('n', ['05.0004', '06.0004'], { displacedQueues: ['07.0004'] }) }), closed: undefined },
  { why: 'no finalizer', r: res('vm', { nodeName: 'n', apqns: ['05.0004', '06.0004'] }, { finalizer: false, status: placed('n', ['05.0004', '06.0004'], { displacedQueues: ['07.0004'] }) }), closed: /finalizer/ },
  { why: 'placement not recorded', r: res('vm', { nodeName: 'n', apqns: ['05.0004', '06.0004'] }), closed: /not recorded/ },
  { why: 'displacement not reported', r: res('vm', { nodeName: 'n', apqns: ['05.0004', '06.0004'] }, { status: placed('n', ['05.0004', '06.0004']) }), closed: /07\.0004 not reported/ },
  { why: 'not in the cache', r: undefined, closed: /cache/ },
];

for (const c of gateCases) {
  test(`node-spec gate: ${c.why}`, (t) => {
    const r = c.r ?? res('vm', { nodeName: 'n', apqns: ['05.0004', '06.0004'] });
    const cluster = decideCluster(view({ reservations: [r], states: [state('n', threeCards)] }));
    const m = cluster.members.get('n')![0]!;
    const composition = composeNodeSpec('n', state('n', threeCards), [m]);
    const why = gateClosed(c.r, m, 'n', composition);
    if (c.closed) t.regex(why ?? '', c.closed);
    else t.is(why, undefined);
  });
}

test('gated composition: a reservation that has not reported its displacement is left out, the others go ahead', (t) => {
  const ready = res('ready', { nodeName: 'n', apqns: ['07.0001'] }, { age: 9, status: placed('n', ['07.0001'], { displacedQueues: ['05.0001', '06.0001'] }) });
  const unreported = res('new', { nodeName: 'n', apqns: ['05.0004', '06.0004'] }, { status: placed('n', ['05.0004', '06.0004']) });
  const v = view({ reservations: [ready, unreported], states: [state('n', threeCards)] });
  const gated = gatedComposition('n', v, decideCluster(v));
  t.deepEqual(gated.composition.included, ['ns/ready']);
  t.deepEqual(gated.waiting.map((w) => w.key), ['ns/new']);
  t.deepEqual(gated.composition.spec.aqmask, [{ id: '0001', host: false, original: true }], 'nothing moves for the unannounced plan');
});

test('a holder the node spec already serves stays in it when its status lost the record', (t) => {
  const uuidSpec = { mdevs: [{ uuid: 'u', reservation: 'ns/vm', adapters: ['05', '06'], domains: ['0004'], controlDomains: [] }] };
  const wiped = res('vm', { request: { adapters: 2, domains: 1 } }, { status: { conditions: [] } });
  const node = state('n', threeCards, { spec: { ...uuidSpec, aqmask: [{ id: '0004', host: false, original: true }] } });
  const v = view({ reservations: [wiped], states: [node] });
  const cluster = decideCluster(v);
  const d = cluster.reservations.get('ns/vm')!;
  t.deepEqual(d.standing.kind === 'holds' && d.standing.apqns.length, 2, 'the request-based placement is recovered, not chosen anew');
  const gated = gatedComposition('n', v, cluster);
  t.deepEqual(gated.composition.included, ['ns/vm']);
  t.deepEqual(gated.waiting, []);
});

test('sameSpec: empty lists are absent lists, no bindingMode is Masks', (t) => {
  t.true(sameSpec({}, { bindingMode: 'Masks', apmask: [], aqmask: [], overrides: [], queues: [], mdevs: [] }));
  t.false(sameSpec({}, { bindingMode: 'DriverOverride' }));
  t.false(sameSpec({ apmask: [{ id: '05', host: false }] }, { apmask: [] }));
});

test('agent availability: no state, no heartbeat, stale, fresh', (t) => {
  t.false(agentAvailability(view({}), 'n').available);
  const noBeat = state('n', threeCards);
  delete noBeat.status!.heartbeatTime;
  t.false(agentAvailability(view({ states: [noBeat] }), 'n').available);
  t.false(agentAvailability(view({ states: [state('n', threeCards, { heartbeatAgoMs: 41_000 })] }), 'n').available);
  const fresh = agentAvailability(view({ states: [state('n', threeCards, { heartbeatAgoMs: 1_000 })] }), 'n');
  t.true(fresh.available);
});

// ---------------------------------------------------------------------------------------------
// Wiring: which keys an event enqueues.

function fakeCaches(parts: { reservations?: APQNReservation[]; claims?: ReturnType<typeof claim>[] }): Caches {
  const informer = <T extends { metadata?: { namespace?: string } }>(items: T[]) =>
    ({ list: (ns?: string) => items.filter((i) => ns === undefined || i.metadata?.namespace === ns) }) as never;
  return {
    reservations: informer(parts.reservations ?? []),
    claims: informer(parts.claims ?? []),
    nodeStates: informer([]),
    nodes: informer([]),
  };
}

function recorder() {
  const seen = { reservations: new Set<string>(), nodes: new Set<string>(), claims: new Set<string>() };
  const queues = {
    reservations: { add: (k: string) => void seen.reservations.add(k) },
    nodes: { add: (k: string) => void seen.nodes.add(k) },
    claims: { add: (k: string) => void seen.claims.add(k) },
  };
  return { seen, queues };
}

test('a reservation event enqueues it, its node, its node-mates, unplaced reservations and its claims', (t) => {
  const r = res('vm', { nodeName: 'n', apqns: ['05.0001'] }, { status: placed('n', ['05.0001']) });
  const mate = res('mate', { apqns: ['05.0002'] }, { status: placed('n', ['05.0002']) });
  const elsewhere = res('far', { apqns: ['05.0002'] }, { status: placed('m', ['05.0002']) });
  const unplaced = res('waiting', { request: { adapters: 1, domains: 1 } });
  const c = claim('c', 'vm');
  const caches = fakeCaches({ reservations: [r, mate, elsewhere, unplaced], claims: [c] });
  const { seen, queues } = recorder();
  onReservation(caches, {}, queues, undefined, r);
  t.deepEqual([...seen.reservations].sort(), ['ns/mate', 'ns/vm', 'ns/waiting']);
  t.deepEqual([...seen.nodes], ['n']);
  t.deepEqual([...seen.claims], ['ns/c']);
});

test('events outside the scope are ignored', (t) => {
  const r = res('vm', { nodeName: 'n', apqns: ['05.0001'] });
  const { seen, queues } = recorder();
  onReservation(fakeCaches({ reservations: [r] }), { namespace: 'other' }, queues, undefined, r);
  onNodeState(fakeCaches({}), { nodes: (n) => n.startsWith('mine-') }, queues, state('n', threeCards));
  t.is(seen.reservations.size + seen.nodes.size + seen.claims.size, 0);
});

test('a claim event enqueues it, the reservation it names (old and new) and the rival claims', (t) => {
  const c = claim('c', 'vm');
  const rival = claim('rival', 'vm');
  const { seen, queues } = recorder();
  onClaim(fakeCaches({ claims: [c, rival] }), {}, queues, claim('c', 'before'), c);
  t.deepEqual([...seen.reservations].sort(), ['ns/before', 'ns/vm']);
  t.deepEqual([...seen.claims].sort(), ['ns/c', 'ns/rival']);
});
