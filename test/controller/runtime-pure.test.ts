// Small pure pieces of the controller runtime: mdev UUIDs, the node-spec gate, spec
// comparison, agent availability, and which keys informer events enqueue.
import test from 'ava';
import type { APQNReservation } from '../../src/api/types.js';
import { agentAvailability } from '../../src/controller/cluster-view.js';
import type { Scope } from '../../src/controller/context.js';
import { DecisionCache } from '../../src/controller/decision-cache.js';
import { formatMicroTime } from '../../src/k8s/clock.js';
import { mdevUuidFor } from '../../src/controller/mdev-uuid.js';
import { composeNodeSpec } from '../../src/controller/node-spec.js';
import { gateClosed, gatedComposition, sameSpec } from '../../src/controller/nodes.js';
import { decideCluster } from '../../src/controller/placement.js';
import { onClaim, onNode, onNodeState, onReservation, type Wiring } from '../../src/controller/wiring.js';
import { NOW, claim, cond, minutesAgo, placed, res, state, threeCards, view } from './view-fixtures.js';

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
  { why: 'placement chosen by the controller (no nodeName) and not recorded', r: res('vm', { apqns: ['05.0004', '06.0004'] }), closed: /not recorded/ },
  { why: 'placement fixed by the spec needs no record, but its displacement must still be reported', r: res('vm', { nodeName: 'n', apqns: ['05.0004', '06.0004'] }), closed: /07\.0004 not reported/ },
  { why: 'placement fixed by the spec (other spellings) that displaces nothing reported: open', r: res('vm', { nodeName: 'n', apqns: ['5.4', '0x06.0x0004'] }, { status: { displacedQueues: ['07.0004'] } }), closed: undefined },
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
// Wiring: which keys an event enqueues (O(1): the object, its nodes, its claims — never a scan).

function recorder(scope: Scope = {}, now = NOW) {
  const seen = { reservations: new Set<string>(), nodes: new Set<string>(), claims: new Set<string>(), beats: new Map<string, number>() };
  const queues = {
    reservations: { add: (k: string) => void seen.reservations.add(k) },
    nodes: { add: (k: string) => void seen.nodes.add(k) },
    claims: { add: (k: string) => void seen.claims.add(k) },
  };
  const wiring: Wiring = {
    decisions: new DecisionCache(),
    scope,
    queues,
    now: () => now,
    heartbeatStaleMs: 40_000,
    heartbeat: (node, at) => void seen.beats.set(node, at),
  };
  const clear = () => {
    seen.reservations.clear();
    seen.nodes.clear();
    seen.claims.clear();
  };
  return { seen, wiring, clear };
}

test('a reservation event enqueues it, its nodes and the claims naming it — not its node-mates', (t) => {
  const r = res('vm', { nodeName: 'n', apqns: ['05.0001'] }, { status: placed('m', ['05.0001']) });
  const mate = res('mate', { apqns: ['05.0002'] }, { status: placed('n', ['05.0002']) });
  const { seen, wiring, clear } = recorder();
  onReservation(wiring, undefined, mate);
  onClaim(wiring, undefined, claim('c', 'vm'));
  clear();
  onReservation(wiring, undefined, r);
  t.deepEqual([...seen.reservations], ['ns/vm']);
  t.deepEqual([...seen.nodes].sort(), ['m', 'n']);
  t.deepEqual([...seen.claims], ['ns/c']);
});

test('a reservation update that changes nothing its node reads (its Ready write) does not wake the node', (t) => {
  const r = res('vm', { nodeName: 'n', apqns: ['05.0001'] }, { status: placed('n', ['05.0001']) });
  const ready = { ...r, status: { ...r.status!, conditions: [...r.status!.conditions!, cond('Ready', 'True')] } };
  const { seen, wiring, clear } = recorder();
  onReservation(wiring, undefined, r);
  clear();
  onReservation(wiring, r, ready);
  t.deepEqual([...seen.reservations], ['ns/vm'], 'the reservation itself looks again');
  t.deepEqual([...seen.nodes], []);
  onReservation(wiring, ready, { ...ready, metadata: { ...ready.metadata, deletionTimestamp: minutesAgo(0) } });
  t.deepEqual([...seen.nodes], ['n'], 'a deletion does');
});

test('the echo of the controller\'s own status write is not reconciled again; a later change by anyone is', (t) => {
  const r = res('vm', { nodeName: 'n', apqns: ['05.0001'] }, { status: placed('n', ['05.0001']) });
  const at = (rv: string, x: APQNReservation): APQNReservation => ({ ...x, metadata: { ...x.metadata, resourceVersion: rv } });
  const ready = { ...r, status: { ...r.status!, conditions: [...r.status!.conditions!, cond('Ready', 'True')] } };
  const written = new Map([['ns/vm', '12']]); // what the controller's write returned
  const { seen, wiring, clear } = recorder();
  wiring.ownStatusWrite = (key, rv) => {
    const mine = written.get(key);
    written.delete(key);
    return mine === rv;
  };
  onReservation(wiring, undefined, at('11', r));
  clear();
  onReservation(wiring, at('11', r), at('12', ready));
  t.deepEqual([...seen.reservations], [], 'its own write comes back: nothing new to judge');
  t.is(wiring.decisions.reservation('ns/vm')?.metadata.resourceVersion, '12', 'the decision cache still takes the newer copy');
  onReservation(wiring, at('12', ready), at('13', { ...ready, status: { ...ready.status, conditions: [] } }));
  t.deepEqual([...seen.reservations], ['ns/vm'], 'someone else changed it: looked at again');
});

test('events outside the scope are ignored', (t) => {
  const r = res('vm', { nodeName: 'n', apqns: ['05.0001'] });
  const { seen, wiring } = recorder({ namespace: 'other', nodes: (n) => n.startsWith('mine-') });
  onReservation(wiring, undefined, r);
  onNodeState(wiring, undefined, state('n', threeCards));
  t.is(seen.reservations.size + seen.nodes.size + seen.claims.size, 0);
});

test('a claim event enqueues it, the reservation it names (old and new) and the rival claims', (t) => {
  const c = claim('c', 'vm');
  const rival = claim('rival', 'vm');
  const { seen, wiring } = recorder();
  onClaim(wiring, undefined, rival);
  onClaim(wiring, claim('c', 'before'), c);
  t.deepEqual([...seen.reservations].sort(), ['ns/before', 'ns/vm']);
  t.deepEqual([...seen.claims].sort(), ['ns/c', 'ns/rival']);
});

test('APNodeState events: a heartbeat or host counters alone enqueue nothing; a report that moved a queue does; a heartbeat after the agent went stale does', (t) => {
  const { seen, wiring, clear } = recorder();
  const s = state('n', threeCards, { heartbeatAgoMs: 1000 });
  onNodeState(wiring, undefined, s);
  t.deepEqual([...seen.nodes], ['n']);
  t.is(seen.beats.get('n'), NOW - 1000, 'the staleness timer follows the heartbeat');
  clear();
  const beat = { ...s, status: { ...s.status!, heartbeatTime: formatMicroTime(NOW) } };
  onNodeState(wiring, s, beat);
  const counters = { ...beat, status: { ...beat.status!, queues: beat.status!.queues!.map((q) => ({ ...q, requestCount: q.requestCount + 5 })) } };
  onNodeState(wiring, beat, counters);
  t.deepEqual([...seen.nodes], [], 'heartbeat and counters only');
  const moved = { ...counters, status: { ...counters.status!, queues: counters.status!.queues!.map((q, i) => (i === 0 ? { ...q, driver: 'vfio_ap' } : q)) } };
  onNodeState(wiring, counters, moved);
  t.deepEqual([...seen.nodes], ['n'], 'a queue moved');
  const late = recorder({}, NOW + 60_000);
  onNodeState(late.wiring, undefined, s);
  late.clear();
  onNodeState(late.wiring, s, { ...s, status: { ...s.status!, heartbeatTime: formatMicroTime(NOW + 59_000) } });
  t.deepEqual([...late.seen.nodes], ['n'], 'the agent is back after its heartbeat went stale');
});

test('Node events: only label changes wake the node', (t) => {
  const { seen, wiring, clear } = recorder();
  const node = { metadata: { name: 'n', labels: { zone: 'a' } } };
  onNode(wiring, undefined, node);
  t.deepEqual([...seen.nodes], ['n']);
  clear();
  onNode(wiring, node, { metadata: { name: 'n', labels: { zone: 'a' } }, status: { conditions: [] } } as never);
  t.deepEqual([...seen.nodes], [], 'a kubelet status update');
  onNode(wiring, node, { metadata: { name: 'n', labels: { zone: 'b' } } });
  t.deepEqual([...seen.nodes], ['n']);
});
