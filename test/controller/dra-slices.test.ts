// The DRA contract's names and values, and the pure pool planner: which reservations are
// devices, their attributes within the API's limits, the 128-device split, the fewest slice
// writes (only slices whose content changed, filled up to 128), generation bumps only when a
// device leaves, no write at all for an unchanged pool, and one write per publish window.
import test from 'ava';
import {
  DRA_DRIVER,
  MAX_ATTRIBUTES_PER_DEVICE,
  MAX_ATTRIBUTE_STRING,
  boundedString,
  draDeviceName,
  reservationSelector,
  resourceSliceName,
  type ResourceSlice,
} from '../../src/api/dra.js';
import type { APNodeState, APQNReservation, Condition } from '../../src/api/types.js';
import { mdevUuidFor } from '../../src/controller/mdev-uuid.js';
import { chunk, deviceOf, devicesForNode, isPublishable, planPool } from '../../src/controller/dra-slices.js';
import { PublishWindow } from '../../src/controller/dra-window.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const ready = (status: Condition['status']): Condition => ({ type: 'Ready', status, reason: 'R', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' });

function reservation(name: string, over: { ns?: string; node?: string; ready?: Condition['status']; driver?: 'vfio_ap' | 'host'; deleting?: boolean; uid?: string } = {}): APQNReservation {
  const uid = over.uid ?? `uid-${over.ns ?? 'ns'}-${name}`;
  return {
    apiVersion: 'ap.s390x.io/v1alpha1',
    kind: 'APQNReservation',
    metadata: { name, namespace: over.ns ?? 'ns', uid, ...(over.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
    spec: { driver: over.driver ?? 'vfio_ap' },
    status: {
      nodeName: over.node ?? 'node-a',
      mdevUUID: mdevUuidFor(uid),
      apqns: ['05.0004', '06.0004'],
      matrix: { adapters: ['05', '06'], domains: ['0004'], controlDomains: ['0004'] },
      conditions: [ready(over.ready ?? 'True')],
    },
  };
}

const nodeState: APNodeState = {
  apiVersion: 'ap.s390x.io/v1alpha1',
  kind: 'APNodeState',
  metadata: { name: 'node-a' },
  spec: {},
  status: {
    cards: [
      { id: '05', type: 'CEX8C', mode: 'CCA', online: true, config: true, chkstop: false },
      { id: '06', type: 'CEX7C', mode: 'CCA', online: true, config: true, chkstop: false },
      { id: '07', type: 'CEX8P', mode: 'EP11', online: true, config: true, chkstop: false },
    ],
  },
};

test('device names are DNS labels, readable, and differ for a recreated reservation', (t) => {
  const uuid = '6d2f1c3e-0a1b-5c2d-8e3f-0123456789ab';
  t.is(draDeviceName('payments/vm-1', uuid), `payments-vm-1-${uuid}`);
  const long = draDeviceName(`${'n'.repeat(63)}/${'x'.repeat(253)}`, uuid);
  t.true(long.length <= 63);
  t.regex(long, DNS_LABEL);
  t.regex(draDeviceName('Odd_NS/Name.With.Dots', uuid), DNS_LABEL);
  t.regex(draDeviceName('-/-', uuid), DNS_LABEL);
  t.not(draDeviceName('ns/r', mdevUuidFor('uid-1')), draDeviceName('ns/r', mdevUuidFor('uid-2')));
  t.throws(() => draDeviceName('ns/r', 'not-a-uuid'));
});

test('string attribute values stay within 64 characters and remain distinct', (t) => {
  t.is(boundedString('ns/short'), 'ns/short');
  const a = boundedString(`ns/${'a'.repeat(100)}`);
  const b = boundedString(`ns/${'a'.repeat(99)}b`);
  t.is(a.length, MAX_ATTRIBUTE_STRING);
  t.not(a, b);
  t.is(reservationSelector('ns/vm'), 'device.attributes["ap.s390x.io"].reservation == "ns/vm"');
});

test('slice names are DNS subdomains even for the longest node names', (t) => {
  t.is(resourceSliceName('node-a', 0), 'node-a-ap.s390x.io-0');
  const long = resourceSliceName(`${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}`, 12);
  t.true(long.length <= 253);
  t.regex(long, DNS_SUBDOMAIN);
});

const publishCases: Array<{ why: string; r: APQNReservation; node?: string; want: boolean }> = [
  { why: 'a Ready vfio_ap reservation on the node is published', r: reservation('a'), want: true },
  { why: 'not Ready: no device', r: reservation('a', { ready: 'False' }), want: false },
  { why: 'Ready unknown (agent away): no device', r: reservation('a', { ready: 'Unknown' }), want: false },
  { why: 'being deleted: no device', r: reservation('a', { deleting: true }), want: false },
  { why: 'host-driver reservations have no mdev: no device', r: reservation('a', { driver: 'host' }), want: false },
  { why: 'placed on another node: not in this pool', r: reservation('a', { node: 'node-b' }), want: false },
];
for (const c of publishCases) {
  test(`publishable: ${c.why}`, (t) => {
    t.is(isPublishable(c.r, c.node ?? 'node-a'), c.want);
  });
}

test('a device carries the reservation, mdev, node, counts, card type and mode', (t) => {
  const r = reservation('vm', { ns: 'payments' });
  const d = deviceOf(r, 'node-a', nodeState);
  t.is(d.name, draDeviceName('payments/vm', r.status!.mdevUUID!));
  t.deepEqual(d.attributes, {
    reservation: { string: 'payments/vm' },
    namespace: { string: 'payments' },
    mdevUUID: { string: r.status!.mdevUUID! },
    node: { string: 'node-a' },
    adapters: { int: 2 },
    domains: { int: 1 },
    controlDomains: { int: 1 },
    cardType: { string: 'CEX7C,CEX8C' },
    cardGeneration: { int: 7 },
    mode: { string: 'CCA' },
  });
  t.true(Object.keys(d.attributes!).length <= MAX_ATTRIBUTES_PER_DEVICE);
  // Without the agent's report the card facts are left out rather than guessed.
  t.deepEqual(Object.keys(deviceOf(r, 'node-a').attributes!).sort(), [
    'adapters',
    'controlDomains',
    'domains',
    'mdevUUID',
    'namespace',
    'node',
    'reservation',
  ]);
  for (const v of Object.values(deviceOf(reservation('x'.repeat(200), { ns: 'n'.repeat(63), node: 'z'.repeat(200) }), 'z'.repeat(200)).attributes!)) {
    if (v.string !== undefined) t.true(v.string.length <= MAX_ATTRIBUTE_STRING);
  }
});

test("devicesForNode: only this node's Ready reservations, sorted by device name", (t) => {
  const rs = [reservation('b'), reservation('a'), reservation('c', { node: 'node-b' }), reservation('d', { ready: 'False' })];
  const devices = devicesForNode('node-a', rs);
  t.deepEqual(
    devices.map((d) => d.attributes?.reservation?.string),
    ['ns/a', 'ns/b'],
  );
  t.deepEqual(devices.map((d) => d.name), devices.map((d) => d.name).sort());
  // The same reservation listed twice (a cache replay) is one device.
  t.is(devicesForNode('node-a', [reservation('a'), reservation('a')]).length, 1);
});

function stored(plan: NonNullable<ReturnType<typeof planPool>>): ResourceSlice[] {
  return plan.writes.map((w, i) => ({ ...w, metadata: { ...w.metadata, resourceVersion: String(i + 1) } }));
}

test('planPool: first publication is generation 1; an unchanged pool is not written again', (t) => {
  const devices = devicesForNode('node-a', [reservation('a'), reservation('b')], nodeState);
  const first = planPool('node-a', devices, [])!;
  t.is(first.generation, 1);
  t.is(first.writes.length, 1);
  t.deepEqual(first.deletes, []);
  const s = first.writes[0]!;
  t.is(s.metadata?.name, 'node-a-ap.s390x.io-0');
  t.deepEqual(s.spec.pool, { name: 'node-a', generation: 1, resourceSliceCount: 1 });
  t.is(s.spec.driver, DRA_DRIVER);
  t.is(s.spec.nodeName, 'node-a');
  t.is(planPool('node-a', devices, stored(first)), undefined);
});

const numbered = (n: number, from = 0) => Array.from({ length: n }, (_, i) => reservation(`r${String(from + i).padStart(3, '0')}`));
const names = (slice: ResourceSlice) => slice.spec.devices.map((d) => d.attributes?.reservation?.string);

test('planPool: a device added rewrites only the slice it joins, under the same generation', (t) => {
  const first = planPool('node-a', devicesForNode('node-a', numbered(130)), [])!;
  t.deepEqual(first.writes.map((w) => w.spec.devices.length), [128, 2]);
  // r200 sorts after every stored device: it joins slice 1, the first with room; slice 0 is not touched.
  const added = planPool('node-a', devicesForNode('node-a', [...numbered(130), reservation('r200')]), stored(first))!;
  t.is(added.generation, 1);
  t.false(added.bumped);
  t.deepEqual(added.writes.map((w) => w.metadata?.name), ['node-a-ap.s390x.io-1']);
  t.deepEqual(names(added.writes[0]!), ['ns/r128', 'ns/r129', 'ns/r200']);
  t.deepEqual(added.writes[0]!.spec.pool, { name: 'node-a', generation: 1, resourceSliceCount: 2 });
  t.deepEqual(added.deletes, []);
});

test('planPool: stored devices stay in their slice; new ones fill slices up to 128 before a new slice', (t) => {
  // r000 sorts first, but r001..r128 already fill slice 0: it goes where there is room.
  const full = planPool('node-a', devicesForNode('node-a', numbered(128, 1)), [])!;
  const plan = planPool('node-a', devicesForNode('node-a', [reservation('r000'), ...numbered(128, 1)]), stored(full))!;
  t.is(plan.generation, 1);
  t.deepEqual(plan.writes.map((w) => [w.metadata?.name, w.spec.devices.length]), [
    ['node-a-ap.s390x.io-0', 128], // unchanged devices, rewritten only for resourceSliceCount 2
    ['node-a-ap.s390x.io-1', 1],
  ]);
  t.deepEqual(names(plan.writes[1]!), ['ns/r000']);
  for (const w of plan.writes) t.deepEqual(w.spec.pool, { name: 'node-a', generation: 1, resourceSliceCount: 2 });
});

test('planPool: a device whose attributes changed rewrites its slice, same generation', (t) => {
  const first = planPool('node-a', devicesForNode('node-a', numbered(130)), [])!;
  const changed = devicesForNode('node-a', numbered(130)).map((d) =>
    d.attributes?.reservation?.string === 'ns/r129' ? { ...d, attributes: { ...d.attributes, mode: { string: 'EP11' } } } : d,
  );
  const plan = planPool('node-a', changed, stored(first))!;
  t.is(plan.generation, 1);
  t.deepEqual(plan.writes.map((w) => w.metadata?.name), ['node-a-ap.s390x.io-1']);
});

test('planPool: a device that leaves bumps the generation and rewrites every slice', (t) => {
  const first = planPool('node-a', devicesForNode('node-a', numbered(130)), [])!;
  const plan = planPool('node-a', devicesForNode('node-a', numbered(130).filter((r) => r.metadata.name !== 'r129')), stored(first))!;
  t.is(plan.generation, 2);
  t.true(plan.bumped);
  t.deepEqual(plan.writes.map((w) => w.metadata?.name), ['node-a-ap.s390x.io-0', 'node-a-ap.s390x.io-1']);
  for (const w of plan.writes) t.deepEqual(w.spec.pool, { name: 'node-a', generation: 2, resourceSliceCount: 2 });
  // One leaves and one comes in the same pass: still a bump.
  const swap = planPool('node-a', devicesForNode('node-a', [...numbered(129), reservation('r900')]), stored(first))!;
  t.is(swap.generation, 2);
});

test('planPool: a new owner (the Node appeared) rewrites the slices under the same generation', (t) => {
  const before = planPool('node-a', devicesForNode('node-a', [reservation('a')]), [])!;
  const owner = { apiVersion: 'v1', kind: 'Node', name: 'node-a', uid: 'u1', controller: true };
  const owned = planPool('node-a', before.writes[0]!.spec.devices, stored(before), owner)!;
  t.is(owned.generation, 1);
  t.deepEqual(owned.writes[0]!.metadata?.ownerReferences, [owner]);
  // Without a Node object the stored owner stays: nothing to write.
  t.is(planPool('node-a', before.writes[0]!.spec.devices, stored(owned)), undefined);
});

test('planPool: a slice deleted by someone else (kubelet) is published again, nothing else rewritten', (t) => {
  const first = planPool('node-a', devicesForNode('node-a', numbered(130)), [])!;
  const plan = planPool('node-a', devicesForNode('node-a', numbered(130)), stored(first).slice(0, 1))!;
  t.is(plan.generation, 1);
  t.deepEqual(plan.writes.map((w) => [w.metadata?.name, w.spec.devices.length]), [['node-a-ap.s390x.io-1', 2]]);
});

test('planPool + PublishWindow: adds arriving within a window go out in one write', (t) => {
  let now = 0;
  const window = new PublishWindow(300, () => now);
  let pool: ResourceSlice[] = [];
  const writes: number[] = [];
  const readyOnes: APQNReservation[] = [];
  // What reconcileNodeSlices does for each event: wait out the window, else plan and write.
  const reconcile = (): number => {
    const wait = window.wait('node-a');
    if (wait > 0) return wait;
    const plan = planPool('node-a', devicesForNode('node-a', readyOnes), pool);
    if (!plan) return 0;
    window.open('node-a');
    writes.push(plan.writes.length + plan.deletes.length);
    const byName = new Map(pool.map((s) => [s.metadata!.name!, s]));
    for (const w of plan.writes) byName.set(w.metadata!.name!, w);
    pool = [...byName.values()];
    t.false(plan.bumped);
    return 0;
  };
  readyOnes.push(reservation('r000'));
  t.is(reconcile(), 0, 'an idle node publishes at once');
  t.deepEqual(writes, [1]);
  let retryAt = 0;
  for (let i = 1; i < 50; i++) {
    now = i * 5; // 49 more Ready within 245 ms
    readyOnes.push(reservation(`r${String(i).padStart(3, '0')}`));
    const wait = reconcile();
    t.true(wait > 0);
    retryAt = now + wait;
  }
  t.is(retryAt, 300, 'looked at again when the window closes');
  now = retryAt;
  t.is(reconcile(), 0);
  t.deepEqual(writes, [1, 1], 'one write for the 49 that came during the window');
  t.is(pool[0]!.spec.devices.length, 50);
  t.is(pool[0]!.spec.pool.generation, 1);
  now = 2000;
  t.is(window.wait('node-a'), 0, 'quiet again: the next change goes out at once');
});

test('planPool: more than 128 devices split into slices of at most 128 that count each other', (t) => {
  const many = Array.from({ length: 300 }, (_, i) => reservation(`r${String(i).padStart(3, '0')}`));
  const plan = planPool('node-a', devicesForNode('node-a', many), [])!;
  t.deepEqual(
    plan.writes.map((w) => w.spec.devices.length),
    [128, 128, 44],
  );
  for (const w of plan.writes) t.deepEqual(w.spec.pool, { name: 'node-a', generation: 1, resourceSliceCount: 3 });
  t.deepEqual(
    plan.writes.map((w) => w.metadata?.name),
    ['node-a-ap.s390x.io-0', 'node-a-ap.s390x.io-1', 'node-a-ap.s390x.io-2'],
  );
  // Shrinking to 100 devices: one slice rewritten, two deleted.
  const shrink = planPool('node-a', devicesForNode('node-a', many.slice(0, 100)), stored(plan))!;
  t.is(shrink.generation, 2);
  t.is(shrink.writes.length, 1);
  t.deepEqual(shrink.deletes, ['node-a-ap.s390x.io-1', 'node-a-ap.s390x.io-2']);
  t.deepEqual(chunk([1, 2, 3], 2), [[1, 2], [3]]);
});

test('planPool: no devices deletes every slice of the pool; none stored, nothing to do', (t) => {
  const plan = planPool('node-a', devicesForNode('node-a', [reservation('a')]), [])!;
  const gone = planPool('node-a', [], stored(plan))!;
  t.deepEqual(gone.writes, []);
  t.deepEqual(gone.deletes, ['node-a-ap.s390x.io-0']);
  t.is(planPool('node-a', [], []), undefined);
});

test('planPool: a pool with mixed generations (a crash mid-rewrite) is rewritten above both', (t) => {
  const devices = devicesForNode('node-a', Array.from({ length: 130 }, (_, i) => reservation(`r${i}`)));
  const plan = planPool('node-a', devices, [])!;
  const half = stored(plan);
  half[1] = { ...half[1]!, spec: { ...half[1]!.spec, pool: { ...half[1]!.spec.pool, generation: 7 } } };
  const again = planPool('node-a', devices, half)!;
  t.is(again.generation, 8);
  t.is(again.writes.length, 2);
});
