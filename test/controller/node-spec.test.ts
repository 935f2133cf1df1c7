import test from 'ava';
import type { NodeStateSpec } from '../../src/api/types.js';
import { parseApqn } from '../../src/apbus/ids.js';
import { bindingModeOf, composeNodeSpec, type NodeMember } from '../../src/controller/node-spec.js';
import type { ValidSpec } from '../../src/controller/validate.js';
import { range } from './fixtures.js';
import { state, threeCards } from './view-fixtures.js';

function member(key: string, apqns: string[], spec: Partial<ValidSpec> = {}): NodeMember {
  const m: NodeMember = {
    key,
    apqns: apqns.map(parseApqn),
    spec: { driver: 'vfio_ap', controlDomains: [], nodeSelector: {}, inUsePolicy: 'Wait', drainTimeoutSeconds: 300, ...spec },
  };
  if (m.spec.driver === 'vfio_ap') m.mdevUUID = `uuid-${key.split('/')[1]}`;
  return m;
}

test('one vfio_ap reservation: the cheaper side is cleared, the displaced queue is attributed and gets an intent', (t) => {
  const c = composeNodeSpec('n', state('n', threeCards), [member('ns/vm', ['05.0004', '06.0004'], { inUsePolicy: 'Fail', drainTimeoutSeconds: 60 })]);
  t.deepEqual(c.spec.aqmask, [{ id: '0004', host: false, original: true }]);
  t.deepEqual(c.spec.apmask, []);
  t.deepEqual(c.displaced.get('ns/vm'), ['07.0004']);
  t.deepEqual(
    c.spec.queues.map((q) => [q.apqn, q.reservation, q.inUsePolicy, q.drainTimeoutSeconds]),
    [
      ['05.0004', 'ns/vm', 'Fail', 60],
      ['06.0004', 'ns/vm', 'Fail', 60],
      ['07.0004', 'ns/vm', 'Fail', 60],
    ],
  );
  t.deepEqual(c.spec.mdevs, [{ uuid: 'uuid-vm', reservation: 'ns/vm', adapters: ['05', '06'], domains: ['0004'], controlDomains: [] }]);
  t.deepEqual(c.included, ['ns/vm']);
  t.is(c.spec.bindingMode, 'Masks');
});

test('displaced queues are still reported once the node shows the bits cleared (from the recorded originals)', (t) => {
  const spec: NodeStateSpec = { aqmask: [{ id: '0004', host: false, original: true }] };
  const applied = state('n', { ...threeCards, aqmask: range(0, 255).filter((d) => d !== 4) }, { spec });
  const c = composeNodeSpec('n', applied, [member('ns/vm', ['05.0004', '06.0004'])]);
  t.deepEqual(c.spec.aqmask, [{ id: '0004', host: false, original: true }]);
  t.deepEqual(c.displaced.get('ns/vm'), ['07.0004']);
});

test('release: a bit no reservation needs goes back to its original value, and is forgotten once the node shows it', (t) => {
  const spec: NodeStateSpec = { aqmask: [{ id: '0004', host: false, original: true }] };
  const cleared = state('n', { ...threeCards, aqmask: range(0, 255).filter((d) => d !== 4) }, { spec });
  const releasing = composeNodeSpec('n', cleared, []);
  t.deepEqual(releasing.spec.aqmask, [{ id: '0004', host: true, original: true }]);
  t.deepEqual(releasing.spec.mdevs, []);
  t.deepEqual(releasing.spec.queues, []);

  const restored = state('n', threeCards, { spec: { aqmask: releasing.spec.aqmask } });
  t.deepEqual(composeNodeSpec('n', restored, []).spec.aqmask, []);
});

test('a restore is not forgotten on a status about an older spec: the agent may still apply that spec\'s clear (soak seed 3, synced-matches-bus)', (t) => {
  // Generation 2 clears aqmask 0004 for ns/vm; the node's status is still about generation 1
  // (0004 set). ns/vm is deleted: generation 3 restores 0004. Were the entry dropped because the
  // node shows 0004 set, the agent finishing generation 2 would clear 0004 and generation 3 would
  // not own it any more: cleared for nobody, never restored, while the node says Synced.
  const spec: NodeStateSpec = { aqmask: [{ id: '0004', host: false, original: true }] };
  const lagging = state('n', threeCards, { spec, generation: 2, status: { observedGeneration: 1 } });
  const releasing = composeNodeSpec('n', lagging, []);
  t.deepEqual(releasing.spec.aqmask, [{ id: '0004', host: true, original: true }]);

  // The agent applied generation 2 (0004 cleared) and reports it; generation 3 is written.
  const clearedOld = state('n', { ...threeCards, aqmask: range(0, 255).filter((d) => d !== 4) }, {
    spec: { aqmask: releasing.spec.aqmask }, generation: 3, status: { observedGeneration: 2 },
  });
  t.deepEqual(composeNodeSpec('n', clearedOld, []).spec.aqmask, [{ id: '0004', host: true, original: true }]);
  // A status about generation 3 still showing 0004 set before the agent read it again: kept
  // until a status about the spec that restores it shows it set.
  const restoredStale = state('n', threeCards, { spec: { aqmask: releasing.spec.aqmask }, generation: 3, status: { observedGeneration: 2 } });
  t.deepEqual(composeNodeSpec('n', restoredStale, []).spec.aqmask, [{ id: '0004', host: true, original: true }]);
  const restored = state('n', threeCards, { spec: { aqmask: releasing.spec.aqmask }, generation: 3, status: { observedGeneration: 3 } });
  t.deepEqual(composeNodeSpec('n', restored, []).spec.aqmask, []);
});

test('a bit that was clear before the operator is not set on release', (t) => {
  const spec: NodeStateSpec = { apmask: [{ id: '05', host: false, original: false }] };
  const c = composeNodeSpec('n', state('n', { ...threeCards, apmask: [6, 7] }, { spec }), []);
  t.deepEqual(c.spec.apmask, []);
});

test('driver: host reservations protect their queues: the plan goes around them', (t) => {
  const c = composeNodeSpec('n', state('n', threeCards), [
    member('ns/keep', ['07.0004'], { driver: 'host' }),
    member('ns/vm', ['05.0004', '06.0004']),
  ]);
  t.deepEqual(c.spec.aqmask, []);
  t.deepEqual(
    c.spec.apmask.map((b) => b.id),
    ['05', '06'],
  );
  t.false(c.displaced.get('ns/vm')!.includes('07.0004'));
  t.is(c.displaced.get('ns/vm')!.length, 30);
  t.deepEqual(c.included, ['ns/keep', 'ns/vm']);
});

test('a pair that cannot be freed without a protected queue blocks its reservation, not the others', (t) => {
  const c = composeNodeSpec('n', state('n', threeCards), [
    member('ns/keep', ['07.0004', '05.0005'], { driver: 'host' }),
    member('ns/blocked', ['05.0004']),
    member('ns/fine', ['06.0001']),
  ]);
  t.deepEqual(c.blocked.get('ns/blocked'), { pairs: ['05.0004'], holders: ['ns/keep'] });
  t.deepEqual(c.included, ['ns/keep', 'ns/fine']);
  t.deepEqual(
    c.spec.mdevs.map((m) => m.reservation),
    ['ns/fine'],
  );
});

test('a host reservation brings its queue back when that moves no reserved queue, and not otherwise', (t) => {
  const offHost = state('n', { ...threeCards, apmask: [5, 6] }); // card 07 off the host
  const back = composeNodeSpec('n', offHost, [member('ns/keep', ['07.0002'], { driver: 'host' })]);
  t.deepEqual(back.spec.apmask, [{ id: '07', host: true, original: false }]);
  t.is(back.hostBlocked.size, 0);

  const blocked = composeNodeSpec('n', offHost, [
    member('ns/guest', ['07.0001']),
    member('ns/keep', ['07.0002'], { driver: 'host' }),
  ]);
  t.deepEqual(blocked.hostBlocked.get('ns/keep'), { apqns: ['07.0002'], holders: ['ns/guest'] });
  t.deepEqual(blocked.spec.apmask, []);
});

test('driver_override nodes: overrides instead of mask bits; released queues go back to cex4queue until the node shows it', (t) => {
  const status = { kernel: { apConfig: true, driverOverride: true } };
  const node = state('n', threeCards, { status, spec: { bindingMode: 'DriverOverride', overrides: [{ apqn: '06.0001', driver: 'vfio_ap' }] } });
  t.is(bindingModeOf(node), 'DriverOverride');
  const c = composeNodeSpec('n', node, [member('ns/vm', ['05.0004'])]);
  t.is(c.spec.bindingMode, 'DriverOverride');
  t.deepEqual(c.spec.apmask, []);
  t.deepEqual(c.spec.aqmask, []);
  // 06.0001 shows cex4queue in the fixture (masks all ones): nothing left to restore.
  t.deepEqual(c.spec.overrides, [{ apqn: '05.0004', driver: 'vfio_ap' }]);
  t.is(c.displaced.size, 0);

  const stillVfio = state('n', threeCards, { status, spec: node.spec });
  stillVfio.status!.queues!.find((q) => q.apqn === '06.0001')!.driver = 'vfio_ap';
  t.deepEqual(composeNodeSpec('n', stillVfio, []).spec.overrides, [{ apqn: '06.0001', driver: 'cex4queue' }]);
});

test('driver_override with masks not all ones stays in mask mode', (t) => {
  const node = state('n', { ...threeCards, apmask: [5, 6] }, { status: { kernel: { apConfig: true, driverOverride: true } } });
  t.is(bindingModeOf(node), 'Masks');
});

test('Force moves of the reservation\'s own queues with host requests in flight are reported; the host queues its plan displaces never inherit Force (issue 2.3)', (t) => {
  const node = state('n', threeCards);
  node.status!.queues!.find((q) => q.apqn === '05.0004')!.requestsInFlight = 2;
  node.status!.queues!.find((q) => q.apqn === '07.0004')!.requestsInFlight = 3;
  const forced = composeNodeSpec('n', node, [member('ns/vm', ['05.0004', '06.0004'], { inUsePolicy: 'Force', drainTimeoutSeconds: 60 })]);
  t.deepEqual(forced.displaced.get('ns/vm'), ['07.0004']);
  t.deepEqual(forced.forced.get('ns/vm'), ['05.0004'], 'its own busy queue is forced; the displaced 07.0004 is not');
  const policies = Object.fromEntries(forced.spec.queues.map((q) => [q.apqn, [q.inUsePolicy, q.reservation, q.drainTimeoutSeconds]]));
  t.deepEqual(policies, { '05.0004': ['Force', 'ns/vm', 60], '06.0004': ['Force', 'ns/vm', 60], '07.0004': ['Wait', 'ns/vm', 60] });
  const waits = composeNodeSpec('n', node, [member('ns/vm', ['05.0004', '06.0004'])]);
  t.is(waits.forced.size, 0);
});

// One card whose every domain gets reserved, one reservation at a time, the agent applying each
// spec before the next: the masks as the node shows them after `spec`.
const oneCard = { cards: [{ id: '05', type: 'CEX8C', domains: [0, 1, 2, 3] }] };
function applied(spec: NodeStateSpec) {
  const cleared = (bits: NodeStateSpec['apmask'], id: number, fmt: (n: number) => string) =>
    (bits ?? []).some((b) => b.id === fmt(id) && !b.host);
  const hex = (width: number) => (n: number) => n.toString(16).padStart(width, '0');
  return state('n', {
    ...oneCard,
    apmask: range(0, 255).filter((a) => !cleared(spec.apmask, a, hex(2))),
    aqmask: range(0, 255).filter((d) => !cleared(spec.aqmask, d, hex(4))),
  }, { spec });
}

test('filling a card domain by domain keeps clearing domain bits: no flip to the adapter bit when the last domain is taken', (t) => {
  // At the last domain, clearing the adapter bit displaces nothing either and is one bit too;
  // taking it would give the other domain bits back (a second spec generation, more mask writes).
  let spec: NodeStateSpec = {};
  const members: NodeMember[] = [];
  for (const d of [0, 1, 2, 3]) {
    members.push(member(`ns/vm${d}`, [`05.000${d}`]));
    const c = composeNodeSpec('n', applied(spec), members);
    t.deepEqual(c.spec.apmask, [], `after domain ${d}`);
    t.deepEqual(c.spec.aqmask.map((b) => [b.id, b.host]), range(0, d).map((i) => [`000${i}`, false]), `after domain ${d}`);
    t.deepEqual(c.displaced, new Map());
    spec = { apmask: c.spec.apmask, aqmask: c.spec.aqmask };
  }
});

test('a reservation leaving a card held by its adapter bit gives its queue back: the plan switches to domain bits (mask-bits.ts releasePlan alone would keep it off the host)', (t) => {
  // A node as an earlier version left it: the adapter bit cleared for four one-domain reservations.
  const spec: NodeStateSpec = { apmask: [{ id: '05', host: false, original: true }] };
  const remaining = [0, 1, 2].map((d) => member(`ns/vm${d}`, [`05.000${d}`]));
  const c = composeNodeSpec('n', applied(spec), remaining);
  t.deepEqual(c.spec.apmask, [{ id: '05', host: true, original: true }]);
  t.deepEqual(c.spec.aqmask.map((b) => [b.id, b.host, b.original]), [
    ['0000', false, true],
    ['0001', false, true],
    ['0002', false, true],
  ]);
  t.deepEqual(c.displaced, new Map(), '05.0003 goes back to the host');
  t.deepEqual(c.included, ['ns/vm0', 'ns/vm1', 'ns/vm2']);
});
