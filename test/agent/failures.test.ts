// When the kernel says no: a failed step stops the pass, is reported (Synced=False
// ApplyFailed, the reservation Failed, one Warning) and retried with growing backoff; an
// unreadable bus is reported, never thrown.
import test from 'ava';
import type { NodeStateSpec } from '../../src/api/types.js';
import { SimNode, UUID_A, condition, mdevIntent, reservationOf } from './fixture.js';

const spec: NodeStateSpec = { aqmask: [{ id: '0004', host: false }], mdevs: [mdevIntent(UUID_A, 'ns/a', ['05'], ['0004'])] };
const fast = { drainLookIntervalMs: 0 };

test('a failing step: ApplyFailed, one Warning, backoff 1 s, 2 s …, then it recovers', (t) => {
  const node = new SimNode();
  node.io.faults.push({ op: 'write', path: /vfio_ap-passthrough\/create$/, errno: 'EIO', times: 2 });
  const first = node.pass(spec, fast);
  t.false(first.synced);
  t.deepEqual(first.stepsExecuted, ['cordon 05.0004,06.0004,07.0004 (online 0)', 'aqmask clear 0004'], 'the pass stopped at the failed step');
  t.like(condition(first.status, 'Synced'), { status: 'False', reason: 'ApplyFailed' });
  t.regex(condition(first.status, 'Synced')!.message, new RegExp(`create mdev ${UUID_A} failed: EIO`));
  t.like(reservationOf(first.status, 'ns/a'), { phase: 'Failed', reason: 'ApplyFailed' });
  t.is(first.requeueAfterMs, 1000);
  t.is(first.events.filter((e) => e.reason === 'StepFailed').length, 1);

  const second = node.pass(spec, fast);
  t.is(second.requeueAfterMs, 2000, 'backoff grows');
  t.is(second.events.filter((e) => e.reason === 'StepFailed').length, 0, 'the same failure is not announced again');

  const third = node.pass(spec, fast);
  t.true(third.synced);
  t.is(third.requeueAfterMs, undefined);
  t.like(reservationOf(third.status, 'ns/a'), { phase: 'Applied' });
});

test('an unreadable bus: Synced=False InventoryFailed with backoff, no exception, nothing written', (t) => {
  const node = new SimNode();
  node.io.faults.push({ op: 'read', path: /bus\/ap\/apmask$/, errno: 'EIO', times: 100 });
  const r = node.pass(spec, fast);
  t.false(r.synced);
  t.like(condition(r.status, 'Synced'), { status: 'False', reason: 'InventoryFailed' });
  t.true((r.requeueAfterMs ?? 0) >= 1000);
  t.is(node.io.writes.length, 0);
  node.io.faults.length = 0;
  t.true(node.converge(spec).at(-1)!.synced);
});

test('the kernel refusing a removal with EBUSY (a guest the queues do not show) is GuestAttached, not a failure', (t) => {
  const node = new SimNode();
  node.converge(spec);
  node.io.faults.push({ op: 'write', path: new RegExp(`${UUID_A}/remove$`), errno: 'EBUSY', times: 1 });
  const r = node.pass({ aqmask: [{ id: '0004', host: true }] }, fast);
  t.like(reservationOf(r.status, 'ns/a'), { phase: 'Releasing', reason: 'GuestAttached' });
  t.is(condition(r.status, 'Synced')?.reason, 'GuestAttached');
  t.is(r.events.filter((e) => e.reason === 'StepFailed').length, 0);
  t.deepEqual(node.mdevs(), [UUID_A]);
  t.is(r.requeueAfterMs, 5000);
});
