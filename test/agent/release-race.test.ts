// Create → delete races (issue 2.2): every path by which a reservation's spec entries go away
// while (or after) the agent changes the bus for them, and what the agent must hand back from
// its own journal then — not from a spec entry that may already be gone, nor from an
// `original` the controller computed from a stale status. After each: the bus as it was, the
// journal empty, and Synced never True while something the agent changed is not restored.
import test, { type ExecutionContext } from 'ava';
import type { NodeStateSpec, NodeStateStatus } from '../../src/api/types.js';
import { AgentJournal, type JournalStore } from '../../src/agent/journal.js';
import { newAgentMemory } from '../../src/agent/memory.js';
import { CREATE, MATRIX, SimNode, busSnapshot, type BusSnapshot, UUID_A, UUID_B, UUID_FOREIGN, condition, intent, mdevIntent, reservationOf, standardQueues } from './fixture.js';

const fast = { pass: { drainLookIntervalMs: 0 } };

/** ns/a: 05.0004, Force, the controller's plan clears domain 0004 (it was set: original true). */
const withA: NodeStateSpec = {
  bindingMode: 'Masks',
  aqmask: [{ id: '0004', host: false, original: true }],
  queues: [intent('05.0004', 'ns/a', 'Force')],
  mdevs: [mdevIntent(UUID_A, 'ns/a', ['05'], ['0004'])],
};
/** ns/a deleted and the spec composed against a status that still showed the bit set: the
 *  controller drops the bit instead of asking for it back. */
const dropped: NodeStateSpec = { bindingMode: 'Masks', aqmask: [], queues: [], mdevs: [] };

/** Passes until Synced and nothing more to do; every Synced pass must have the bus equal to
 *  `expected` (the independent check behind "Synced means nothing is left to hand back"). */
function settle(t: ExecutionContext, node: SimNode, spec: NodeStateSpec, expected?: BusSnapshot, opts = fast.pass): void {
  for (let i = 0; i < 40; i++) {
    const r = node.pass(spec, opts);
    if (r.synced && expected) t.deepEqual(busSnapshot(node), expected, `pass ${i}: Synced=True while the bus differs from what the agent must hand back`);
    if (r.synced && r.requeueAfterMs === undefined) return;
    node.model.tick(Math.max(1, (r.requeueAfterMs ?? 0) / 1000));
  }
  t.fail(`no convergence: ${JSON.stringify(condition(node.lastStatus!, 'Synced'))}`);
}

test('the spec drops a cleared bit after the agent applied it: the bit is set again from the journal, the queues are back on the host', (t) => {
  const node = new SimNode();
  const before = busSnapshot(node);
  node.converge(withA, fast);
  t.false(node.model.aqmask.has(4));
  const recorded = node.journal();

  const r = node.pass(dropped, fast.pass);
  t.deepEqual(busSnapshot(node), before);
  t.deepEqual(r.stepsExecuted, [`remove mdev ${UUID_A}`, 'aqmask set 0004']);
  t.true(r.synced);
  t.is(reservationOf(r.status, 'ns/a'), undefined);
  t.deepEqual(recorded, ['aqmask:0004=set', `mdev:${UUID_A}`], 'recorded before the changes');
  t.deepEqual(node.journal(), [], 'restored entries are forgotten');
});

test('Synced is never True while a bit the agent cleared is not yet back: a foreign mdev in the way is ForeignChange, the reservation Releasing', (t) => {
  const node = new SimNode();
  node.converge(withA, fast);
  // Someone else's mdev takes 07.0004, off the host only because our bit is cleared.
  node.sys.write(CREATE, UUID_FOREIGN);
  node.sys.write(`${MATRIX}/${UUID_FOREIGN}/assign_adapter`, '7');
  node.sys.write(`${MATRIX}/${UUID_FOREIGN}/assign_domain`, '4');
  const r = node.pass(dropped, fast.pass);
  t.false(r.synced);
  t.like(condition(r.status, 'Synced'), { status: 'False', reason: 'ForeignChange' });
  t.regex(condition(r.status, 'Synced')!.message, /aqmask bit 0004 is cleared: the operator cleared it for ns\/a and the spec no longer names it/);
  t.like(reservationOf(r.status, 'ns/a'), { phase: 'Releasing' });
  t.false(node.model.aqmask.has(4));
  t.deepEqual(node.journal(), ['aqmask:0004=set'], 'still owed');

  node.sys.write(`${MATRIX}/${UUID_FOREIGN}/remove`, '1');
  settle(t, node, dropped);
  t.true(node.model.aqmask.has(4));
  t.deepEqual(node.journal(), []);
});

test('dropped mid-apply (the pass stopped after the mask write: a failed mdev create): the next pass restores, nothing is created', (t) => {
  const node = new SimNode();
  const before = busSnapshot(node);
  node.io.faults.push({ op: 'write', path: /vfio_ap-passthrough\/create$/, errno: 'EIO', times: 1 });
  const first = node.pass(withA, fast.pass);
  t.deepEqual(first.stepsExecuted, ['cordon 06.0004,07.0004 (online 0)', 'aqmask clear 0004'], 'Force: 05.0004 is not cordoned');
  t.false(first.synced);
  settle(t, node, dropped, before);
  t.deepEqual(busSnapshot(node), before);
  t.deepEqual(node.journal(), []);
});

test('dropped mid-apply (the agent killed after the mask write), restarted with no status: restored from the journal', (t) => {
  const node = new SimNode();
  const before = busSnapshot(node);
  t.throws(() =>
    node.pass(withA, {
      ...fast.pass,
      onStep: (i) => {
        if (i === 2) throw new Error('killed'); // after the cordon (0) and the mask write (1)
      },
    }),
  );
  t.false(node.model.aqmask.has(4), 'the mask write happened');
  node.restart(null);
  settle(t, node, dropped, before);
  t.deepEqual(busSnapshot(node), before);
});

test('an mdev created by a step planned before the spec changed, the agent killed before any status said so: still ours, removed, the bit restored', (t) => {
  const node = new SimNode();
  const before = busSnapshot(node);
  const statusBefore: NodeStateStatus | undefined = node.pass({}, fast.pass).status;
  node.converge(withA, fast); // its statuses never reach the API server: the agent dies
  t.deepEqual(node.mdevs(), [UUID_A]);
  node.restart(statusBefore ?? null);
  // The controller's ordinary release (it saw the spec applied by generation).
  const release: NodeStateSpec = { bindingMode: 'Masks', aqmask: [{ id: '0004', host: true, original: true }], queues: [], mdevs: [] };
  settle(t, node, release);
  t.deepEqual(busSnapshot(node), before);
  t.deepEqual(node.journal(), []);
});

test("the controller's `original` from a stale status (false): the journal's first original wins, the bit comes back", (t) => {
  const node = new SimNode();
  const before = busSnapshot(node);
  node.converge(withA, fast);
  // ns/a deleted, ns/b created before the node reported the bit restored: the controller sees
  // it cleared and records original false for ns/b's plan.
  const withB: NodeStateSpec = {
    bindingMode: 'Masks',
    aqmask: [{ id: '0004', host: false, original: false }],
    queues: [intent('06.0004', 'ns/b', 'Force')],
    mdevs: [mdevIntent(UUID_B, 'ns/b', ['06'], ['0004'])],
  };
  node.converge(withB, fast);
  t.deepEqual(node.mdevs(), [UUID_B]);
  const recorded = node.journal();
  // ns/b deleted: an entry with original false is dropped by the controller, not set back.
  settle(t, node, dropped, before);
  t.deepEqual(busSnapshot(node), before);
  t.deepEqual(recorded, ['aqmask:0004=set', `mdev:${UUID_B}`], 'the first original kept');
  t.deepEqual(node.journal(), []);
});

for (const kernel of ['6.10', '6.19'] as const) {
test(`a later reservation relies on the bit the spec no longer names: the restore waits (Synced), and happens when that one goes (${kernel})`, (t) => {
  const node = new SimNode({ kernel });
  const before = busSnapshot(node);
  node.converge(withA, fast);
  // The controller planned ns/b against a status that showed domain 0004 already off the host:
  // no mask bit for it in the spec.
  const onlyB: NodeStateSpec = {
    bindingMode: 'Masks',
    aqmask: [],
    queues: [intent('06.0004', 'ns/b', 'Force')],
    mdevs: [mdevIntent(UUID_B, 'ns/b', ['06'], ['0004'])],
  };
  const results = node.converge(onlyB, fast);
  const last = results[results.length - 1]!;
  t.true(last.synced, 'nothing to hand back while ns/b needs the column');
  t.like(reservationOf(last.status, 'ns/b'), { phase: 'Applied' });
  t.deepEqual(node.mdevs(), [UUID_B], "ns/a's mdev is removed");
  t.false(node.model.aqmask.has(4), 'setting the bit would take 06.0004 from ns/b');
  const recorded = node.journal();

  const releasing = node.pass(dropped, fast.pass);
  t.deepEqual(busSnapshot(node), before);
  t.deepEqual(releasing.stepsExecuted, [`remove mdev ${UUID_B}`, 'aqmask set 0004']);
  settle(t, node, dropped, before);
  t.deepEqual(recorded, ['aqmask:0004=set', `mdev:${UUID_B}`], 'still owed, now for ns/b');
  t.deepEqual(node.journal(), []);
});
}

for (const kernel of ['6.10', '6.19'] as const) {
  test(`an mdev of the spec on the column, off the host by its adapter bit: ${kernel === '6.19' ? 'the kernel refuses setting the column bit (it checks every adapter), so the restore waits' : 'the column bit is set back at once'} (${kernel})`, (t) => {
    const node = new SimNode({ kernel });
    const before = busSnapshot(node);
    node.converge(withA, fast);
    // ns/b on 06.0004, freed by its adapter bit, while ns/a still holds the column.
    const b = { queues: ['06.0000', '06.0004'].map((q) => intent(q, 'ns/b', 'Force')), mdev: mdevIntent(UUID_B, 'ns/b', ['06'], ['0004']) };
    const both: NodeStateSpec = {
      bindingMode: 'Masks',
      apmask: [{ id: '06', host: false, original: true }],
      aqmask: withA.aqmask!,
      queues: [...withA.queues!, ...b.queues],
      mdevs: [...withA.mdevs!, b.mdev],
    };
    node.converge(both, fast);
    // ns/a deleted; the column's bit is no longer named.
    const onlyB: NodeStateSpec = { bindingMode: 'Masks', apmask: both.apmask!, queues: b.queues, mdevs: [b.mdev] };
    const results = node.converge(onlyB, fast);
    t.true(results[results.length - 1]!.synced);
    t.deepEqual(node.mdevs(), [UUID_B]);
    t.is(node.model.aqmask.has(4), kernel === '6.10', kernel === '6.19' ? 'waits while 06.0004 is in an mdev' : 'restored');
    settle(t, node, dropped, before);
    t.deepEqual(busSnapshot(node), before);
    t.deepEqual(node.journal(), []);
  });
}

test('a bit the agent set for a host reservation (original cleared), dropped at once: cleared again', (t) => {
  const node = new SimNode();
  node.sys.write('bus/ap/aqmask', '-4'); // domain 0004 off the host before the operator came
  const before = busSnapshot(node);
  const host: NodeStateSpec = { bindingMode: 'Masks', aqmask: [{ id: '0004', host: true, original: false }], queues: [], mdevs: [] };
  node.converge(host, fast);
  t.true(node.model.aqmask.has(4));
  const recorded = node.journal();
  settle(t, node, dropped, before);
  t.deepEqual(busSnapshot(node), before);
  t.deepEqual(recorded, ['aqmask:0004=cleared']);
});

test('kernel 6.19: a driver_override the spec drops at once is cleared and the queue probed back to the host', (t) => {
  const node = new SimNode({ kernel: '6.19' });
  const before = busSnapshot(node);
  const take: NodeStateSpec = {
    bindingMode: 'DriverOverride',
    overrides: [{ apqn: '05.0004', driver: 'vfio_ap' }],
    queues: [intent('05.0004', 'ns/a', 'Force')],
    mdevs: [mdevIntent(UUID_A, 'ns/a', ['05'], ['0004'])],
  };
  node.converge(take, fast);
  t.is(node.driver('05.0004'), 'vfio_ap');
  const recorded = node.journal();
  settle(t, node, { bindingMode: 'DriverOverride', overrides: [], queues: [], mdevs: [] }, before);
  t.deepEqual(busSnapshot(node), before);
  t.is(node.driver('05.0004'), 'cex4queue');
  // And masks can be written again (the kernel refuses them while any override is set).
  node.converge({ aqmask: [{ id: '0005', host: false }] }, fast);
  t.false(node.model.aqmask.has(5));
  t.deepEqual(recorded, [`mdev:${UUID_A}`, 'override:05.0004=""']);
  t.deepEqual(node.journal(), ['aqmask:0005=set']);
});

test('the journal cannot be written (disk full): the mask bit is not changed, Synced=False says why, and it goes on once it can', (t) => {
  const node = new SimNode();
  let full = true;
  const store: JournalStore = {
    location: '/var/lib/apqn-operator/journal.json',
    load: () => node.journalStore.load(),
    save: (text) => {
      if (full) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      node.journalStore.save(text);
    },
  };
  node.memory = newAgentMemory(undefined, new AgentJournal(store));
  const r = node.pass(withA, fast.pass);
  t.deepEqual(r.stepsExecuted, []);
  t.true(node.model.aqmask.has(4), 'no change without its record');
  t.deepEqual(node.mdevs(), []);
  t.like(condition(r.status, 'Synced'), { status: 'False', reason: 'ApplyFailed' });
  t.regex(condition(r.status, 'Synced')!.message, /cannot write the agent's journal \/var\/lib\/apqn-operator\/journal\.json: ENOSPC/);
  t.true((r.requeueAfterMs ?? 0) >= 1000, 'with backoff');
  full = false;
  node.model.tick(2);
  settle(t, node, withA);
  t.false(node.model.aqmask.has(4));
  t.deepEqual(node.journal(), ['aqmask:0004=set', `mdev:${UUID_A}`]);
});

test('an unreadable journal: nothing is changed on the bus, Synced=False names the file; once removed, the agent goes on', (t) => {
  const node = new SimNode();
  node.journalStore.text = '{"version":1,"maskBits":[{"mask":"aqmask","id":"0x4"'; // torn by hand
  node.restart(null);
  const r = node.pass(withA, fast.pass);
  t.deepEqual(r.stepsExecuted, []);
  t.deepEqual(node.io.writes, []);
  t.like(condition(r.status, 'Synced'), { status: 'False', reason: 'ApplyFailed' });
  t.regex(condition(r.status, 'Synced')!.message, /journal\.json is not valid .*fix or remove it/);
  t.true(r.status.queues!.length > 0, 'the bus is still reported');
  node.journalStore.text = null;
  node.model.tick(2);
  settle(t, node, withA);
  t.deepEqual(node.mdevs(), [UUID_A]);
});

test('every queue the agent took is on its original driver again after a burst of create → delete (five times, Force, alternating timings)', (t) => {
  const node = new SimNode();
  const before = busSnapshot(node);
  for (let i = 0; i < 5; i++) {
    // i even: applied to the end; i odd: only the mask write before the spec is dropped.
    if (i % 2 === 0) node.converge(withA, fast);
    else t.throws(() => node.pass(withA, { ...fast.pass, onStep: (n) => { if (n === 1) throw new Error('next spec arrives'); } }));
    node.pass(dropped, fast.pass);
  }
  settle(t, node, dropped, before);
  t.deepEqual(busSnapshot(node), before);
  for (const q of standardQueues()) t.is(node.driver(q), 'cex4queue', q);
  t.deepEqual(node.journal(), []);
});
