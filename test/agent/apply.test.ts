// Applying and releasing a spec on the model: whole rows/columns by mask bits, mdevs with
// ap_config (6.10) or assign_* (5.15), guest_matrix verified, per-queue driver_override
// (6.19), release only after the guest let go, mdev first and mask bits after.
import test from 'ava';
import type { KernelProfile } from '../../src/apbus/model/index.js';
import type { NodeStateSpec } from '../../src/api/types.js';
import { MATRIX, SimNode, UUID_A, UUID_B, busDiffers, condition, intent, mdevIntent, reservationOf, standardQueues } from './fixture.js';

const fast = { pass: { drainLookIntervalMs: 0 } };

const moves: Array<{ why: string; spec: NodeStateSpec; vfio: (apqn: string) => boolean; apmask: string; aqmask: string }> = [
  {
    why: 'clearing one aqmask bit moves that domain on every adapter, nothing else',
    spec: { aqmask: [{ id: '0004', host: false }] },
    vfio: (q) => q.endsWith('.0004'),
    apmask: '0x' + 'f'.repeat(64),
    aqmask: '0xf7' + 'f'.repeat(62),
  },
  {
    why: 'clearing one apmask bit moves that adapter in every domain, nothing else',
    spec: { apmask: [{ id: '06', host: false }] },
    vfio: (q) => q.startsWith('06.'),
    apmask: '0xfd' + 'f'.repeat(62),
    aqmask: '0x' + 'f'.repeat(64),
  },
  {
    why: 'a row and a column together move their union',
    spec: { apmask: [{ id: '07', host: false }], aqmask: [{ id: '0000', host: false }, { id: '0001', host: false }] },
    vfio: (q) => q.startsWith('07.') || q.endsWith('.0000') || q.endsWith('.0001'),
    apmask: '0xfe' + 'f'.repeat(62),
    aqmask: '0x3f' + 'f'.repeat(62),
  },
];

for (const c of moves) {
  test(`mask moves: ${c.why}`, (t) => {
    const node = new SimNode();
    node.converge(c.spec, fast);
    for (const q of standardQueues()) t.is(node.driver(q), c.vfio(q) ? 'vfio_ap' : 'cex4queue', q);
    t.is(node.read('bus/ap/apmask'), c.apmask);
    t.is(node.read('bus/ap/aqmask'), c.aqmask);
    // Every mask write was relative and named only the spec's bits.
    const maskWrites = node.io.writes.filter((w) => /\/(apmask|aqmask)$/.test(w.path));
    t.true(maskWrites.length > 0);
    for (const w of maskWrites) t.regex(w.value, /^[+-]0x[0-9a-f]+(-0x[0-9a-f]+)?(,[+-]0x[0-9a-f]+(-0x[0-9a-f]+)?)*$/);
    // Each queue the masks moved was cordoned (online 0) before the first mask write, and no other.
    const firstMask = node.io.writes.indexOf(maskWrites[0]!);
    const cordoned = node.io.writes.slice(0, firstMask).filter((w) => w.path.endsWith('/online') && w.value === '0').map((w) => w.path.split('/').at(-2));
    t.deepEqual(cordoned.sort(), standardQueues().filter(c.vfio).sort());
    t.deepEqual(node.io.writes.slice(firstMask).filter((w) => w.path.endsWith('/online')), [], 'nothing cordoned or uncordoned after');
  });
}

const kernels: Array<{ kernel: KernelProfile; via: RegExp }> = [
  { kernel: '6.10', via: /\/ap_config$/ },
  { kernel: '5.15', via: /\/assign_(adapter|domain|control_domain)$/ },
];

for (const k of kernels) {
  test(`kernel ${k.kernel}: the mdev is created, its matrix set (${k.via.source.includes('ap_config') ? 'ap_config' : 'assign_*'}), guest_matrix verified`, (t) => {
    const node = new SimNode({ kernel: k.kernel });
    const spec: NodeStateSpec = {
      aqmask: [{ id: '0004', host: false }, { id: '0005', host: false }],
      queues: ['05.0004', '05.0005', '06.0004', '06.0005'].map((q) => intent(q, 'ns/a')),
      mdevs: [mdevIntent(UUID_A, 'ns/a', ['05', '06'], ['0004', '0005'], ['0004'])],
    };
    const results = node.converge(spec, fast);
    const steps = results.flatMap((r) => r.stepsExecuted);
    t.deepEqual(steps, [
      'cordon 05.0004,05.0005,06.0004,06.0005,07.0004,07.0005 (online 0)',
      'aqmask clear 0004,0005',
      `create mdev ${UUID_A}`,
      `set matrix of mdev ${UUID_A} to 05,06 x 0004,0005 control 0004`,
    ]);
    const matrixWrites = node.io.writes.filter((w) => w.path.startsWith(`${MATRIX}/${UUID_A}/`));
    t.true(matrixWrites.length > 0 && matrixWrites.every((w) => k.via.test(w.path)), JSON.stringify(matrixWrites));
    t.deepEqual(node.lines(`${MATRIX}/${UUID_A}/matrix`), ['05.0004', '05.0005', '06.0004', '06.0005']);
    t.deepEqual(node.lines(`${MATRIX}/${UUID_A}/guest_matrix`), ['05.0004', '05.0005', '06.0004', '06.0005']);
    t.deepEqual(node.lines(`${MATRIX}/${UUID_A}/control_domains`), ['0004']);
    const last = results[results.length - 1]!;
    t.like(reservationOf(last.status, 'ns/a'), { phase: 'Applied', reason: 'Applied' });
    t.like(last.status.mdevs?.[0], { uuid: UUID_A, owned: true, reservation: 'ns/a', guestMatrix: ['05.0004', '05.0005', '06.0004', '06.0005'] });
    t.is(last.status.kernel?.apConfig, k.kernel !== '5.15');
    t.deepEqual(busDiffers(node, spec), []);
  });
}

test('a queue of our mdev unbound by hand is bound back so guest_matrix is whole again', (t) => {
  const node = new SimNode();
  const spec: NodeStateSpec = { aqmask: [{ id: '0004', host: false }], mdevs: [mdevIntent(UUID_A, 'ns/a', ['05', '06'], ['0004'])] };
  node.converge(spec, fast);
  node.sys.write('bus/ap/drivers/vfio_ap/unbind', '06.0004');
  t.deepEqual(node.lines(`${MATRIX}/${UUID_A}/guest_matrix`), ['05.0004']);
  const r = node.pass(spec, fast.pass);
  t.deepEqual(r.stepsExecuted, ['bind 06.0004 to vfio_ap']);
  t.true(r.synced);
  t.deepEqual(node.lines(`${MATRIX}/${UUID_A}/guest_matrix`), ['05.0004', '06.0004']);
});

test('kernel 6.19 DriverOverride: per-queue moves with masks all ones, and back', (t) => {
  const node = new SimNode({ kernel: '6.19' });
  const take: NodeStateSpec = {
    bindingMode: 'DriverOverride',
    overrides: [
      { apqn: '05.0004', driver: 'vfio_ap' },
      { apqn: '06.0004', driver: 'vfio_ap' },
    ],
    queues: [intent('05.0004', 'ns/a'), intent('06.0004', 'ns/a')],
    mdevs: [mdevIntent(UUID_A, 'ns/a', ['05', '06'], ['0004'])],
  };
  const results = node.converge(take, fast);
  t.is(results[results.length - 1]!.status.kernel?.driverOverride, true);
  t.is(node.read('bus/ap/apmask'), '0x' + 'f'.repeat(64));
  t.is(node.read('bus/ap/aqmask'), '0x' + 'f'.repeat(64));
  for (const q of standardQueues()) t.is(node.driver(q), q === '05.0004' || q === '06.0004' ? 'vfio_ap' : 'cex4queue', q);
  t.deepEqual(node.lines(`${MATRIX}/${UUID_A}/guest_matrix`), ['05.0004', '06.0004']);
  t.deepEqual(busDiffers(node, take), []);

  const giveBack: NodeStateSpec = {
    bindingMode: 'DriverOverride',
    overrides: [
      { apqn: '05.0004', driver: 'cex4queue' },
      { apqn: '06.0004', driver: 'cex4queue' },
    ],
  };
  const back = node.converge(giveBack, fast);
  const steps = back.flatMap((r) => r.stepsExecuted);
  t.is(steps[0], `remove mdev ${UUID_A}`, 'the mdev goes first');
  t.deepEqual(node.mdevs(), []);
  for (const q of standardQueues()) t.is(node.driver(q), 'cex4queue', q);
  t.is(node.read('devices/ap/card05/05.0004/driver_override'), '');
  t.deepEqual(busDiffers(node, giveBack, [UUID_A]), []);
});

function applied(node: SimNode) {
  const spec: NodeStateSpec = {
    aqmask: [{ id: '0004', host: false }],
    queues: [intent('05.0004', 'ns/a'), intent('06.0004', 'ns/a'), intent('07.0004', 'ns/a')],
    mdevs: [mdevIntent(UUID_A, 'ns/a', ['05', '06'], ['0004'])],
  };
  node.converge(spec, fast);
  return spec;
}

/** What the controller writes to release ns/a: the mdev leaves the spec, the bit goes back. */
const release: NodeStateSpec = { aqmask: [{ id: '0004', host: true }] };

test('a guest holding the mdev blocks the release: Releasing/GuestAttached, nothing removed, bit not set', (t) => {
  const node = new SimNode();
  applied(node);
  node.model.attachGuest(UUID_A);
  const writes = node.io.writes.length;
  const r = node.pass(release, fast.pass);
  t.false(r.synced);
  t.deepEqual(r.stepsExecuted, []);
  t.is(node.io.writes.length, writes, 'no sysfs write while the guest holds it');
  t.deepEqual(node.mdevs(), [UUID_A]);
  t.is(node.driver('05.0004'), 'vfio_ap');
  t.like(reservationOf(r.status, 'ns/a'), { phase: 'Releasing', reason: 'GuestAttached' });
  t.is(condition(r.status, 'Synced')?.reason, 'GuestAttached');
  t.like(r.status.mdevs?.[0], { uuid: UUID_A, owned: true, inUse: true });
  t.is(r.requeueAfterMs, 5000, 'a guest closing the mdev is not in the fingerprint: look again');

  node.model.detachGuest(UUID_A);
  node.model.tick(5);
  const done = node.pass(release, fast.pass);
  t.true(done.synced);
  t.deepEqual(done.stepsExecuted, [`remove mdev ${UUID_A}`, 'aqmask set 0004']);
  t.deepEqual(node.mdevs(), []);
  for (const q of standardQueues()) t.is(node.driver(q), 'cex4queue', q);
  const normal = done.events.filter((e) => e.type === 'Normal');
  t.deepEqual(normal.map((e) => [e.reason, e.reservation]), [['Released', undefined]], 'one Normal event, about the node');
  t.regex(normal[0]!.message, /: 1 reservation released \(ns\/a; mdevs removed, their queues reset and zeroized by the kernel\)\.$/);
  t.is(reservationOf(done.status, 'ns/a'), undefined, 'a released reservation leaves the status');
  t.deepEqual(done.status.mdevs, []);
});

test('release order: the mdev is removed before the mask bit is set (the kernel would say EBUSY)', (t) => {
  const node = new SimNode();
  applied(node);
  const from = node.io.writes.length;
  const order: string[] = [];
  node.converge(release, { pass: { ...fast.pass, onStep: (_i, s) => order.push(s) } });
  t.deepEqual(order, [`remove mdev ${UUID_A}`, 'aqmask set 0004']);
  t.deepEqual(node.io.writes.slice(from).map((w) => w.path), [`${MATRIX}/${UUID_A}/remove`, 'bus/ap/aqmask']);
});

test('an mdev this agent does not own is never removed, even when it sits on queues being released', (t) => {
  const node = new SimNode();
  applied(node);
  // Someone else's mdev on column 0004 of card 07 (off the host since our bit is cleared).
  node.sys.write(`${MATRIX}/mdev_supported_types/vfio_ap-passthrough/create`, UUID_B);
  node.sys.write(`${MATRIX}/${UUID_B}/assign_adapter`, '7');
  node.sys.write(`${MATRIX}/${UUID_B}/assign_domain`, '4');
  const r = node.pass(release, fast.pass);
  t.deepEqual(node.mdevs(), [UUID_B], 'ours removed, theirs left');
  t.false(r.synced);
  t.is(condition(r.status, 'Synced')?.reason, 'ForeignChange');
  t.is(condition(r.status, 'Drift')?.reason, 'ForeignChange');
  t.regex(condition(r.status, 'Drift')!.message, new RegExp(`mdev ${UUID_B} \\(not the operator's\\) holds 07\\.0004; left alone`));
  t.is(node.read('bus/ap/aqmask').slice(0, 4), '0xf7', 'bit 4 stays cleared while a foreign mdev holds 07.0004');
});

for (const seeded of [true, false]) {
  test(`restart (${seeded ? 'with' : 'without'} its last status): ownership survives in the journal on the node; an owned mdev dropped from the spec is released`, (t) => {
    const node = new SimNode();
    applied(node);
    node.restart(seeded ? node.lastStatus : null);
    node.converge(release, fast);
    t.deepEqual(node.mdevs(), []);
    t.deepEqual(node.journal(), [], 'nothing left to hand back');
  });
}

test('a forged status that marks a foreign mdev owned makes a restarted agent own nothing of it', (t) => {
  const node = new SimNode();
  const spec = applied(node);
  node.sys.write(`${MATRIX}/mdev_supported_types/vfio_ap-passthrough/create`, UUID_B);
  node.pass(spec, fast.pass);
  const forged = { ...node.lastStatus!, mdevs: node.lastStatus!.mdevs!.map((m) => ({ ...m, owned: true, reservation: 'ns/x' })) };
  node.restart(forged);
  const r = node.pass(spec, fast.pass);
  t.deepEqual(node.mdevs(), [UUID_A, UUID_B].sort(), 'the foreign mdev is left alone');
  t.like(r.status.mdevs?.find((m) => m.uuid === UUID_B), { owned: false });
});

test('journal gone (a new node, or the file removed): an mdev not in the spec is not known to be ours and is left alone', (t) => {
  const node = new SimNode();
  applied(node);
  node.journalStore.text = null;
  node.restart(null);
  const r = node.pass(release, fast.pass);
  t.deepEqual(node.mdevs(), [UUID_A]);
  t.false(r.synced, 'the bit cannot be set while that mdev holds the column');
  t.like(r.status.mdevs?.[0], { uuid: UUID_A, owned: false });
});

test('the plan switches from domain bits to the adapter bit under a kept mdev: the adapter is cleared first, then the domain bits go back, and the kept reservation stays Applied throughout — never a SpecConflict (6.10 checks the APQNs a mask write gives the host against the other mask as it is then)', (t) => {
  // One card, four domains: ns/a holds 0000-0001 by their domain bits; ns/b takes 0002-0003 and
  // the plan frees all four by the adapter bit instead (a tie), giving the domain bits back.
  const node = new SimNode({
    cards: [{ id: '05', type: 'CEX8P', domains: ['0000', '0001', '0002', '0003'] }],
    hostLoad: [{ apqn: '05.0002', pendingRequests: 1, drainsAfterSeconds: 2 }],
  });
  const a = mdevIntent(UUID_A, 'ns/a', ['05'], ['0000', '0001']);
  const b = mdevIntent(UUID_B, 'ns/b', ['05'], ['0002', '0003']);
  const queuesA = ['05.0000', '05.0001'].map((q) => intent(q, 'ns/a'));
  const queuesB = ['05.0002', '05.0003'].map((q) => intent(q, 'ns/b'));
  node.converge({ aqmask: [{ id: '0000', host: false }, { id: '0001', host: false }], queues: queuesA, mdevs: [a] }, fast);
  const switched: NodeStateSpec = {
    apmask: [{ id: '05', host: false }],
    aqmask: [{ id: '0000', host: true, original: true }, { id: '0001', host: true, original: true }],
    queues: [...queuesA, ...queuesB],
    mdevs: [a, b],
  };
  const order: string[] = [];
  // A host request on 05.0002 holds the adapter's move (default Wait) for a few passes.
  const results = node.converge(switched, { stepSeconds: 1, pass: { onStep: (_i, s) => order.push(s) } });
  t.deepEqual(order.slice(0, 4), ['cordon 05.0003 (online 0)', 'cordon 05.0002 (online 0)', 'apmask clear 05', 'aqmask set 0000,0001']);
  t.true(results.length > 1, 'the in-use check took more than one pass');
  t.is(node.model.stats.eagainReturned, 0, 'nothing was cut off');
  for (const r of results) {
    t.notRegex(JSON.stringify(r.status.reservations ?? []), /Failed|SpecConflict/, 'no pass reports a conflict');
    t.like(reservationOf(r.status, 'ns/a'), { phase: 'Applied' }, 'the kept reservation is never reported as anything else');
  }
  t.like(reservationOf(results[results.length - 1]!.status, 'ns/b'), { phase: 'Applied' });
  t.deepEqual(node.lines(`${MATRIX}/${UUID_A}/guest_matrix`), ['05.0000', '05.0001'], 'the guest kept its queues throughout');
  t.deepEqual(busDiffers(node, switched), []);
});
