// Drift, hot-unplug and reboot: the bus changed behind the operator's back (by writing the
// virtual sysfs directly, as a person with a shell would), cards going away and coming back,
// and a node reboot that drops every mdev and resets the masks.
import test from 'ava';
import type { NodeStateSpec } from '../../src/api/types.js';
import { CREATE, MATRIX, SimNode, UUID_A, UUID_FOREIGN, busDiffers, condition, foreignSnapshot, intent, mdevIntent, reservationOf } from './fixture.js';

const fast = { pass: { drainLookIntervalMs: 0 } };

/** ns/a: column 0004 for an mdev 05,06 × 0004; apmask bit 07 is the operator's and stays set. */
const spec: NodeStateSpec = {
  apmask: [{ id: '07', host: true }],
  aqmask: [{ id: '0004', host: false }],
  queues: [intent('05.0004', 'ns/a'), intent('06.0004', 'ns/a'), intent('07.0004', 'ns/a')],
  mdevs: [mdevIntent(UUID_A, 'ns/a', ['05', '06'], ['0004'], ['0004'])],
};

function appliedNode(): SimNode {
  const node = new SimNode();
  node.converge(spec, fast);
  return node;
}

test('drift: a cleared owned mask bit, an unassigned adapter and a foreign mdev → Drift=True, owned repaired, foreign left alone', (t) => {
  const node = appliedNode();
  node.sys.write('bus/ap/apmask', '-7'); // owned bit, spec wants it set
  node.sys.write(`${MATRIX}/${UUID_A}/unassign_adapter`, '6'); // our mdev
  node.sys.write(CREATE, UUID_FOREIGN); // someone else's mdev
  node.sys.write(`${MATRIX}/${UUID_FOREIGN}/assign_adapter`, '7');
  node.sys.write(`${MATRIX}/${UUID_FOREIGN}/assign_domain`, '4'); // 07.0004: off the host, not ours
  const foreignBefore = foreignSnapshot(node, [spec]);

  const r = node.pass(spec, fast.pass);
  const drift = condition(r.status, 'Drift')!;
  t.is(drift.status, 'True');
  t.is(drift.reason, 'DriftRepaired');
  t.regex(drift.message, /apmask bit 07 is cleared; the spec wants it set/);
  t.regex(drift.message, new RegExp(`mdev ${UUID_A} has matrix 05 x 0004 control 0004; the spec wants 05,06 x 0004 control 0004`));
  t.regex(drift.message, new RegExp(`mdev ${UUID_FOREIGN} was created outside the operator; left alone`));
  t.regex(drift.message, /repaired what its spec owns/);
  t.true(r.synced, 'everything the spec owns is back');
  t.deepEqual(busDiffers(node, spec), []);
  t.deepEqual(node.mdevs(), [UUID_A, UUID_FOREIGN].sort());
  t.is(foreignSnapshot(node, [spec]), foreignBefore, 'the foreign mdev and unowned bits are untouched');
  t.true(r.events.some((e) => e.reason === 'DriftRepaired' && e.type === 'Warning'));
  t.true(r.events.some((e) => e.reason === 'ForeignChange'));
  t.like(r.status.mdevs?.find((m) => m.uuid === UUID_FOREIGN), { owned: false });

  // Drift stays visible for driftHoldSeconds after the last difference, then clears.
  node.model.tick(10);
  t.is(condition(node.pass(spec, fast.pass).status, 'Drift')?.status, 'True');
  node.model.tick(25);
  const later = node.pass(spec, fast.pass);
  t.like(condition(later.status, 'Drift'), { status: 'False', reason: 'NoDrift' });
});

test('a drift repair records no original: once the spec lets go of the bit, it stays as the operator found it', (t) => {
  const node = appliedNode(); // apmask bit 07 was set before the operator came and the spec keeps it set
  node.sys.write('bus/ap/apmask', '-7');
  const repaired = node.pass(spec, fast.pass);
  t.true(repaired.synced);
  t.true(node.model.apmask.has(7), 'repaired');
  t.deepEqual(node.journal(), ['aqmask:0004=set', `mdev:${UUID_A}`], 'the cleared value someone wrote is not an original to restore');
  node.converge({ apmask: [], aqmask: [], queues: [], mdevs: [] }, fast);
  t.true(node.model.apmask.has(7), 'not cleared again');
  t.true(node.model.aqmask.has(4), 'what the operator changed is handed back');
  t.deepEqual(node.journal(), []);
});

test('drift on a mask bit the spec does not own is reported and left alone', (t) => {
  const node = appliedNode();
  node.sys.write('bus/ap/aqmask', '-9');
  const r = node.pass(spec, fast.pass);
  t.like(condition(r.status, 'Drift'), { status: 'True', reason: 'ForeignChange' });
  t.regex(condition(r.status, 'Drift')!.message, /aqmask bit 0009 \(not the operator's\) was cleared; left alone/);
  t.deepEqual(r.stepsExecuted, []);
  t.true(r.synced);
  t.is(node.driver('05.0009'), 'vfio_ap', 'not reverted');
});

test("a foreign mdev holding a queue the spec wants blocks it: ForeignChange, left alone, applied once it is gone", (t) => {
  const node = new SimNode();
  // Before the agent: someone freed column 0004 and made their own mdev on 05.0004.
  node.sys.write('bus/ap/aqmask', '-4');
  node.sys.write(CREATE, UUID_FOREIGN);
  node.sys.write(`${MATRIX}/${UUID_FOREIGN}/assign_adapter`, '5');
  node.sys.write(`${MATRIX}/${UUID_FOREIGN}/assign_domain`, '4');
  const r = node.pass(spec, fast.pass);
  t.false(r.synced);
  t.like(condition(r.status, 'Synced'), { status: 'False', reason: 'ForeignChange' });
  t.like(condition(r.status, 'Drift'), { status: 'True', reason: 'ForeignChange' });
  t.like(reservationOf(r.status, 'ns/a'), { phase: 'Failed', reason: 'ForeignChange' });
  t.regex(reservationOf(r.status, 'ns/a')!.message, new RegExp(`mdev ${UUID_FOREIGN} \\(not the operator's\\) holds 05\\.0004; left alone`));
  t.deepEqual(node.lines(`${MATRIX}/${UUID_FOREIGN}/matrix`), ['05.0004']);
  t.is(r.events.filter((e) => e.reason === 'ForeignChange').length, 1);
  t.is(node.pass(spec, fast.pass).events.filter((e) => e.reason === 'ForeignChange').length, 0, 'said once, not every pass');

  node.sys.write(`${MATRIX}/${UUID_FOREIGN}/remove`, '1');
  node.converge(spec, fast);
  t.deepEqual(busDiffers(node, spec), []);
});

const unplugs: Array<{ why: string; reason: string; text: RegExp; break: (n: SimNode) => void; heal: (n: SimNode) => void }> = [
  { why: 'removed (hot-unplug)', reason: 'CardRemoved', text: /card 06 is removed \(used by ns\/a\)/, break: (n) => n.model.removeCard(6), heal: (n) => n.model.replugCard(6) },
  { why: 'deconfigured', reason: 'CardDeconfigured', text: /card 06 is deconfigured/, break: (n) => n.model.setCardConfig(6, false), heal: (n) => n.model.setCardConfig(6, true) },
  { why: 'checkstopped', reason: 'CardCheckstopped', text: /card 06 is checkstopped/, break: (n) => n.model.setCheckstop(6, true), heal: (n) => n.model.setCheckstop(6, false) },
];

for (const u of unplugs) {
  test(`a card of the spec ${u.why} → Degraded (${u.reason}); back when the card is`, (t) => {
    const node = appliedNode();
    u.break(node);
    const r = node.pass(spec, fast.pass);
    t.like(condition(r.status, 'Degraded'), { status: 'True', reason: u.reason });
    t.regex(condition(r.status, 'Degraded')!.message, u.text);
    t.like(reservationOf(r.status, 'ns/a'), { phase: 'Applied', reason: 'Degraded' });
    t.true(r.synced, 'the matrix is as the spec says; the missing card is reported as Degraded, not as a difference');
    t.deepEqual(node.lines(`${MATRIX}/${UUID_A}/matrix`), ['05.0004', '06.0004'], 'the mdev keeps the card in its matrix');
    t.false(condition(r.status, 'Drift')?.status === 'True' && condition(r.status, 'Drift')?.reason === 'DriftRepaired');

    u.heal(node);
    const back = node.converge(spec, fast);
    const last = back[back.length - 1]!;
    t.like(condition(last.status, 'Degraded'), { status: 'False' });
    t.like(reservationOf(last.status, 'ns/a'), { phase: 'Applied', reason: 'Applied' });
    t.deepEqual(node.lines(`${MATRIX}/${UUID_A}/guest_matrix`), ['05.0004', '06.0004']);
  });
}

for (const restart of [false, true]) {
  test(`reboot (${restart ? 'agent restarted from its last status' : 'same agent'}): everything re-applied, the guest's mdev keeps its UUID`, (t) => {
    const node = appliedNode();
    node.model.reboot();
    t.deepEqual(node.mdevs(), []);
    t.is(node.read('bus/ap/aqmask'), '0x' + 'f'.repeat(64));
    if (restart) node.restart();
    const first = node.pass(spec); // the idle queues are cordoned and moved in this one pass
    t.true(first.synced);
    t.deepEqual(busDiffers(node, spec), [], 'Synced only once the bus matches again');
    node.converge(spec);
    t.deepEqual(node.mdevs(), [UUID_A]);
    t.deepEqual(busDiffers(node, spec), []);
    t.deepEqual(node.lines(`${MATRIX}/${UUID_A}/guest_matrix`), ['05.0004', '06.0004']);
  });
}
