// The in-use policy on a queue the host still uses (model host load on a ManualClock):
// Wait cordons the idle queues of a move and drains the busy ones (Draining → Applied; past
// the timeout Stuck, still waiting), Fail refuses (InUse, nothing touched), Force moves at
// once and says what it cut off.
import test from 'ava';
import type { InUsePolicy, NodeStateSpec } from '../../src/api/types.js';
import { SimNode, UUID_A, condition, intent, mdevIntent, reservationOf, type NodeOptions } from './fixture.js';

/** ns/a takes 05.0004 by clearing apmask bit 05: the whole row 05 leaves the host. */
function rowSpec(policy: InUsePolicy, drainTimeoutSeconds = 300): NodeStateSpec {
  const row = Array.from({ length: 16 }, (_, d) => `05.${d.toString(16).padStart(4, '0')}`);
  return {
    apmask: [{ id: '05', host: false }],
    queues: row.map((q) => intent(q, 'ns/a', policy, drainTimeoutSeconds)),
    mdevs: [mdevIntent(UUID_A, 'ns/a', ['05'], ['0004'])],
  };
}

test('Wait: Draining while host requests are in flight, Applied once they finished — none cut off', (t) => {
  const node = new SimNode({ hostLoad: [{ apqn: '05.0004', pendingRequests: 3, drainsAfterSeconds: 5 }] });
  const spec = rowSpec('Wait');
  const phases: string[] = [];
  for (let i = 0; i < 10; i++) {
    const r = node.pass(spec);
    const res = reservationOf(r.status, 'ns/a')!;
    phases.push(res.phase);
    if (res.phase === 'Draining') {
      t.is(node.driver('05.0004'), 'cex4queue', 'nothing moves while draining');
      t.is(r.requeueAfterMs, 1000);
      const q = res.queues?.find((x) => x.apqn === '05.0004');
      t.like(q, { requestsInFlight: 3, requestCount: 3, state: 'Draining' });
      t.regex(res.message, /05\.0004 has 3 host requests in flight \(request_count 3\); 05\.0000, .*05\.000f cordoned \(offline to the host\) meanwhile; waiting up to 300 s for the requests in flight to finish \(inUsePolicy Wait\)/);
      t.is(node.read('devices/ap/card05/05.0004/online'), '1', 'the busy queue stays online: going offline would hand its requests back');
      t.is(node.read('devices/ap/card05/05.0007/online'), '0', 'an idle queue of the row is cordoned at once');
      t.true(r.status.queues?.find((q) => q.apqn === '05.0007')?.cordoned);
      t.falsy(r.status.queues?.find((q) => q.apqn === '05.0004')?.cordoned);
      t.is(condition(r.status, 'Synced')?.reason, 'Draining');
    }
    if (r.synced) break;
    node.model.tick(1);
  }
  t.deepEqual(phases, ['Draining', 'Draining', 'Draining', 'Draining', 'Draining', 'Applied']);
  t.is(node.driver('05.0004'), 'vfio_ap');
  t.is(node.model.stats.eagainReturned, 0, 'no host request was cut off');
});

test('Wait: an idle row is cordoned and moved in one pass — no second look, nothing cut off', (t) => {
  const node = new SimNode();
  const first = node.pass(rowSpec('Wait'));
  const row = Array.from({ length: 16 }, (_, d) => `05.${d.toString(16).padStart(4, '0')}`);
  t.deepEqual(first.stepsExecuted.slice(0, 2), [`cordon ${row.join(',')} (online 0)`, 'apmask clear 05']);
  t.true(first.synced);
  t.is(reservationOf(first.status, 'ns/a')?.phase, 'Applied');
  t.is(first.settlesAtMs, undefined, 'nothing left to settle');
  t.is(node.model.stats.eagainReturned, 0);
  t.deepEqual(node.journal(), ['apmask:05=set', `mdev:${UUID_A}`], 'the cordons are forgotten once the queues left the host driver');
});

test('settle hint: an in-use check never leaves a short-lived status behind — applied at once, or a wait that is news', (t) => {
  const cases: Array<{ why: string; policy: InUsePolicy; hostLoad?: NodeOptions['hostLoad']; synced: boolean }> = [
    { why: 'Wait, nothing in flight: cordoned and moved', policy: 'Wait', synced: true },
    { why: 'Fail, nothing in flight: cordoned and moved', policy: 'Fail', synced: true },
    { why: 'Wait with host requests in flight: Draining is news', policy: 'Wait', hostLoad: [{ apqn: '05.0004', pendingRequests: 3 }], synced: false },
    { why: 'Fail with host requests in flight: InUse is news', policy: 'Fail', hostLoad: [{ apqn: '05.0004', pendingRequests: 3 }], synced: false },
    { why: 'Force: applied in one pass', policy: 'Force', synced: true },
  ];
  for (const c of cases) {
    const node = new SimNode(c.hostLoad ? { hostLoad: c.hostLoad } : {});
    const r = node.pass(rowSpec(c.policy));
    t.is(r.synced, c.synced, c.why);
    t.is(r.settlesAtMs, undefined, c.why);
  }
});

test('Wait: past drainTimeoutSeconds the reservation is Stuck, names the counters, keeps waiting', (t) => {
  const node = new SimNode({ hostLoad: [{ apqn: '05.0007', pendingRequests: 4 }] }); // never drains
  const spec = rowSpec('Wait', 10);
  const stuckEvents: string[] = [];
  let last = node.pass(spec);
  for (let i = 0; i < 15; i++) {
    node.model.tick(1);
    last = node.pass(spec);
    stuckEvents.push(...last.events.filter((e) => e.reason === 'DrainStuck').map((e) => e.message));
  }
  const res = reservationOf(last.status, 'ns/a')!;
  t.is(res.phase, 'Stuck');
  t.regex(res.message, /05\.0007 has 4 host requests in flight \(request_count 4\); still waiting after 1[56] s \(inUsePolicy Wait, drainTimeoutSeconds 10\)/);
  t.like(res.queues?.find((q) => q.apqn === '05.0007'), { requestsInFlight: 4, state: 'Stuck' });
  t.is(condition(last.status, 'Synced')?.reason, 'Stuck');
  t.is(stuckEvents.length, 1, 'one Warning per stuck drain, not one per pass');
  t.regex(stuckEvents[0]!, /05\.0007 has 4 host requests in flight/);
  t.is(node.driver('05.0007'), 'cex4queue', 'still not moved');
  t.is(last.requeueAfterMs, 1000, 'keeps polling');
});

test('Fail: InUse, nothing moved; checks again and applies once the host let go', (t) => {
  const node = new SimNode({ hostLoad: [{ apqn: '05.0004', pendingRequests: 2, drainsAfterSeconds: 8 }] });
  const spec = rowSpec('Fail');
  const apmask = node.read('bus/ap/apmask');
  const r = node.pass(spec);
  const res = reservationOf(r.status, 'ns/a')!;
  t.is(res.phase, 'InUse');
  t.regex(res.message, /05\.0004 has 2 host requests in flight \(request_count 2\); not moved \(inUsePolicy Fail\)/);
  t.is(condition(r.status, 'Synced')?.reason, 'InUse');
  t.deepEqual(r.stepsExecuted, []);
  t.is(node.io.writes.length, 0, 'no sysfs write at all');
  t.is(node.read('bus/ap/apmask'), apmask);
  t.deepEqual(node.mdevs(), []);
  t.is(node.driver('05.0004'), 'cex4queue');
  t.true(r.events.some((e) => e.type === 'Warning' && e.reason === 'InUse' && e.apqns?.includes('05.0004')));
  t.true(r.requeueAfterMs !== undefined && r.requeueAfterMs <= 5000, 'checks again soon');
  const results = node.converge(spec, { stepSeconds: 5 });
  t.true(results[results.length - 1]!.synced);
  t.is(node.driver('05.0004'), 'vfio_ap');
  t.is(node.model.stats.eagainReturned, 0);
});

test('Force: moved at once; a Warning names the queues and how many requests were cut off', (t) => {
  const node = new SimNode({ hostLoad: [{ apqn: '05.0004', pendingRequests: 3 }, { apqn: '05.0009', pendingRequests: 2 }] });
  const r = node.pass(rowSpec('Force'));
  t.true(r.synced);
  t.deepEqual(r.stepsExecuted.slice(0, 1), ['apmask clear 05']);
  t.is(node.driver('05.0004'), 'vfio_ap');
  const warnings = r.events.filter((e) => e.reason === 'ForcedMove');
  t.is(warnings.length, 1);
  t.is(warnings[0]!.type, 'Warning');
  t.is(warnings[0]!.reservation, 'ns/a');
  t.deepEqual(warnings[0]!.apqns, ['05.0004', '05.0009']);
  t.regex(warnings[0]!.message, /05\.0004 \(3 cut off\), 05\.0009 \(2 cut off\).*5 host requests were cut off/);
  t.is(node.model.stats.eagainReturned, 5);
});

test('every queue a mask change moves is asked: a busy displaced host queue (default Wait) holds a Force reservation', (t) => {
  const node = new SimNode({ hostLoad: [{ apqn: '05.000a', pendingRequests: 1, drainsAfterSeconds: 3 }] });
  // Only the reserved queue has an intent; 05.000a is displaced and gets the default (Wait, 300 s).
  const spec: NodeStateSpec = { ...rowSpec('Force'), queues: [intent('05.0004', 'ns/a', 'Force')] };
  const r = node.pass(spec);
  t.false(r.synced);
  t.is(node.driver('05.0004'), 'cex4queue');
  t.like(reservationOf(r.status, 'ns/a'), { phase: 'Draining' });
  t.true(reservationOf(r.status, 'ns/a')!.queues!.some((q) => q.apqn === '05.000a' && q.requestsInFlight === 1));
  node.converge(spec);
  t.is(node.driver('05.0004'), 'vfio_ap');
  t.is(node.model.stats.eagainReturned, 0);
});
