// Cordon before move: the agent sets a host queue's zcrypt `online` to 0 before it takes the
// queue from cex4queue, so the host sends it nothing new. The kernel decides the order:
// zcrypt_queue.c online_store() flushes a queue going offline (ap_flush_queue: every request
// queued or in flight back to zcrypt with EAGAIN), so only an idle queue is cordoned, a busy one
// first drains while still online. What it cordoned the agent keeps in its journal, and puts
// back online when the move is no longer wanted — also after a crash.
import test from 'ava';
import type { NodeStateSpec } from '../../src/api/types.js';
import { parseApqn } from '../../src/apbus/ids.js';
import { SimNode, UUID_A, busSnapshot, condition, intent, mdevIntent, reservationOf } from './fixture.js';

const row = Array.from({ length: 16 }, (_, d) => `05.${d.toString(16).padStart(4, '0')}`);

/** ns/a takes 05.0004 by clearing apmask bit 05: the whole row 05 leaves the host. */
function rowSpec(policy: 'Wait' | 'Fail' | 'Force' = 'Wait'): NodeStateSpec {
  return {
    apmask: [{ id: '05', host: false, original: true }],
    queues: row.map((q) => intent(q, 'ns/a', policy)),
    mdevs: [mdevIntent(UUID_A, 'ns/a', ['05'], ['0004'])],
  };
}

const online = (node: SimNode, apqn: string) => node.read(`devices/ap/card${apqn.slice(0, 2)}/${apqn}/online`);

test('a busy queue holds the move; the idle queues of the row are cordoned at once, receive nothing new, and are reported cordoned', (t) => {
  const node = new SimNode({ hostLoad: [{ apqn: '05.0009', pendingRequests: 2, drainsAfterSeconds: 3 }] });
  const first = node.pass(rowSpec());
  t.deepEqual(first.stepsExecuted, [`cordon ${row.filter((q) => q !== '05.0009').join(',')} (online 0)`]);
  t.is(online(node, '05.0009'), '1');
  t.is(online(node, '05.0003'), '0');
  t.is(node.driver('05.0003'), 'cex4queue', 'cordoned, not yet moved');
  t.deepEqual(node.journal(), [...row.filter((q) => q !== '05.0009').map((q) => `cordon:${q}`), `mdev:${UUID_A}`], 'recorded before the write');
  const queues = first.status.queues ?? [];
  t.deepEqual(queues.filter((q) => q.cordoned).map((q) => q.apqn), row.filter((q) => q !== '05.0009'));
  t.like(reservationOf(first.status, 'ns/a'), { phase: 'Draining' });
  t.is(condition(first.status, 'Synced')?.reason, 'Draining');
  // zcrypt picks only online queues: a cordoned one is not sent anything.
  t.throws(() => node.model.addHostLoad(parseApqn('05.0003'), 1), { message: /not an online queue of the host driver/ });

  const results = node.converge(rowSpec());
  t.true(results.at(-1)!.synced);
  t.is(node.driver('05.0009'), 'vfio_ap');
  t.is(node.model.stats.eagainReturned, 0, 'no host request was cut off');
  t.deepEqual(node.journal(), ['apmask:05=set', `mdev:${UUID_A}`], 'the cordons are forgotten once the queues left the host driver');
  t.deepEqual((results.at(-1)!.status.queues ?? []).filter((q) => q.cordoned), []);
});

test('the reservation dropped while its row drains: every cordoned queue goes back online, nothing moved, nothing owed', (t) => {
  const node = new SimNode({ hostLoad: [{ apqn: '05.0009', pendingRequests: 2 }] }); // never drains
  const before = busSnapshot(node);
  node.pass(rowSpec());
  t.is(online(node, '05.0003'), '0');
  const released = node.pass({});
  t.deepEqual(released.stepsExecuted, row.filter((q) => q !== '05.0009').map((q) => `uncordon ${q} (online 1)`));
  t.true(released.synced);
  t.deepEqual(busSnapshot(node), before, 'the bus as it was: every queue of the row online with the host');
  t.deepEqual(node.journal(), []);
  node.model.addHostLoad(parseApqn('05.0003'), 1);
  t.pass('the host uses 05.0003 again');
});

for (const dropped of [false, true]) {
  test(`the agent killed between the cordon and the move, restarted on its journal: ${dropped ? 'the spec dropped meanwhile — the queues go back online' : 'the move goes on'}`, (t) => {
    const node = new SimNode();
    const before = busSnapshot(node);
    t.throws(
      () =>
        node.pass(rowSpec(), {
          onStep: (i) => {
            if (i === 1) throw new Error('killed'); // after the cordon, before the mask write
          },
        }),
      { message: 'killed' },
    );
    t.is(online(node, '05.0004'), '0');
    node.restart(null);
    const spec = dropped ? {} : rowSpec();
    const results = node.converge(spec);
    t.true(results.at(-1)!.synced);
    if (dropped) {
      t.deepEqual(busSnapshot(node), before);
    } else {
      t.is(node.driver('05.0004'), 'vfio_ap');
      t.deepEqual(results.flatMap((r) => r.stepsExecuted).filter((s) => s.startsWith('cordon') || s.startsWith('uncordon')), [], 'nothing cordoned twice, nothing put back');
    }
    t.deepEqual(node.journal().filter((e) => e.startsWith('cordon:')), []);
  });
}

test('a restore that takes queues from the host (a bit set by the operator, clear before it) cordons them and moves them: the cordon is not undone under it (soak seed 3)', (t) => {
  const node = new SimNode();
  node.sys.write('bus/ap/apmask', '-5'); // row 05 on vfio_ap since boot
  const before = busSnapshot(node);
  // A host reservation brought 05.0004 to the host by setting the bit (it was clear: original false).
  node.converge({ apmask: [{ id: '05', host: true, original: false }] });
  t.is(node.driver('05.0004'), 'cex4queue');
  t.deepEqual(node.journal(), ['apmask:05=cleared']);
  // It is deleted: the journal clears the bit again, which takes the row from the host.
  const results = node.converge({});
  const steps = results.flatMap((r) => r.stepsExecuted);
  t.deepEqual(steps.slice(0, 2), [`cordon ${row.join(',')} (online 0)`, 'apmask clear 05']);
  t.false(steps.some((s) => s.startsWith('uncordon')), 'never put back online while the restore moves it');
  t.deepEqual(busSnapshot(node), before);
  t.deepEqual(node.journal(), []);
});

test('a cordoned queue whose card is deconfigured waits to go back online (Releasing says why), and goes once the card serves', (t) => {
  const node = new SimNode({ hostLoad: [{ apqn: '05.0009', pendingRequests: 2 }] });
  const before = busSnapshot(node);
  node.pass(rowSpec());
  node.model.setCardConfig(5, false);
  const waiting = node.pass({});
  t.false(waiting.synced);
  const res = reservationOf(waiting.status, 'ns/a');
  t.like(res, { phase: 'Releasing' });
  t.regex(res!.message, /05\.0000 is offline: the operator cordoned it to move it for ns\/a, .*goes back online once its card serves again \(CardDeconfigured\)/);
  node.model.setCardConfig(5, true);
  t.true(node.converge({}).at(-1)!.synced);
  t.deepEqual(busSnapshot(node), before);
  t.deepEqual(node.journal(), []);
});

test('a request the host sends between the look and the cordon goes back to zcrypt (EAGAIN), is retried on another queue, and the agent says so', (t) => {
  const node = new SimNode();
  const result = node.pass(rowSpec(), {
    onStep: (_i, step) => {
      // The host's zcrypt picks 05.0004 after the agent read it idle.
      if (step.startsWith('cordon')) node.model.addHostLoad(parseApqn('05.0004'), 1);
    },
  });
  t.true(result.synced, 'the move went on: nothing was in flight once cordoned');
  t.deepEqual(node.model.stats, { eagainReturned: 1, retried: 1 }, 'online_store → ap_flush_queue handed it back; zcrypt retried it on 06.0004');
  const warning = result.events.find((e) => e.reason === 'CordonRace');
  t.is(warning?.type, 'Warning');
  t.deepEqual(warning?.apqns, ['05.0004']);
  t.regex(warning!.message, /EAGAIN and retries it on another online queue/);
});

test('Fail: a busy queue refuses the move and nothing is cordoned, not even the idle queues', (t) => {
  const node = new SimNode({ hostLoad: [{ apqn: '05.0009', pendingRequests: 1 }] });
  const r = node.pass(rowSpec('Fail'));
  t.like(reservationOf(r.status, 'ns/a'), { phase: 'InUse' });
  t.deepEqual(r.stepsExecuted, []);
  for (const q of row) t.is(online(node, q), '1', q);
  t.deepEqual(node.journal().filter((e) => e.startsWith('cordon:')), []);
});

test('Force: nothing is cordoned; the requests in flight are cut off by the move itself', (t) => {
  const node = new SimNode({ hostLoad: [{ apqn: '05.0009', pendingRequests: 1 }] });
  const r = node.pass(rowSpec('Force'));
  t.true(r.synced);
  t.deepEqual(r.stepsExecuted.filter((s) => s.startsWith('cordon')), []);
  t.is(node.model.stats.eagainReturned, 1);
});

test('kernel 6.19 DriverOverride: each queue is cordoned before its override and rebind; given back, it is probed online', (t) => {
  const node = new SimNode({ kernel: '6.19' });
  const before = busSnapshot(node);
  const take: NodeStateSpec = {
    bindingMode: 'DriverOverride',
    overrides: [{ apqn: '05.0004', driver: 'vfio_ap' }],
    queues: [intent('05.0004', 'ns/a')],
    mdevs: [mdevIntent(UUID_A, 'ns/a', ['05'], ['0004'])],
  };
  const steps = node.converge(take).flatMap((r) => r.stepsExecuted);
  t.is(steps[0], 'cordon 05.0004 (online 0)');
  t.true(steps.indexOf('cordon 05.0004 (online 0)') < steps.findIndex((s) => s.startsWith('unbind 05.0004')));
  t.is(node.driver('05.0004'), 'vfio_ap');
  node.converge({ bindingMode: 'DriverOverride', overrides: [{ apqn: '05.0004', driver: 'cex4queue' }] });
  t.is(online(node, '05.0004'), '1', 'zcrypt probes a queue it gets back online');
  t.deepEqual(busSnapshot(node), before);
});
