// The agent's Normal events: one about the node when a batch is done (the reservations that
// reached Applied, those released), never one per reservation — a node applies hundreds at
// once, and each reservation's own status already says Ready. Warnings stay per reservation.
import test from 'ava';
import type { NodeStateSpec } from '../../src/api/types.js';
import { SimNode, UUID_A, UUID_B, intent, mdevIntent } from './fixture.js';

const fast = { drainLookIntervalMs: 0 };

/** `count` reservations ns/r00 … on row 05, one domain each (the apmask bit clears the row). */
function rowOf(count: number): NodeStateSpec {
  const names = Array.from({ length: count }, (_, i) => `ns/r${i.toString().padStart(2, '0')}`);
  const uuid = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
  const domain = (i: number) => i.toString(16).padStart(4, '0');
  return {
    apmask: [{ id: '05', host: false }],
    queues: names.map((r, i) => intent(`05.${domain(i)}`, r)),
    mdevs: names.map((r, i) => mdevIntent(uuid(i), r, ['05'], [domain(i)])),
  };
}

test('a batch through a drain: no Normal event while a host request is in flight, then one about the node naming all', (t) => {
  const node = new SimNode({ hostLoad: [{ apqn: '05.0006', pendingRequests: 1, drainsAfterSeconds: 1 }] });
  const spec: NodeStateSpec = {
    apmask: [{ id: '05', host: false }],
    queues: [intent('05.0004', 'ns/a'), intent('05.0005', 'ns/b')],
    mdevs: [mdevIntent(UUID_A, 'ns/a', ['05'], ['0004']), mdevIntent(UUID_B, 'ns/b', ['05'], ['0005'])],
  };
  const first = node.pass(spec, { generation: 7 });
  t.false(first.synced);
  t.deepEqual(first.events.filter((e) => e.type === 'Normal'), [], 'nothing is ready while the row drains');
  node.model.tick(1);
  const second = node.pass(spec, { generation: 7 });
  t.true(second.synced);
  t.deepEqual(second.events, [
    { type: 'Normal', reason: 'Applied', message: 'Spec generation 7 applied: 2 reservations ready (ns/a, ns/b).' },
  ]);

  node.model.tick(1);
  t.deepEqual(node.pass(spec, { generation: 7 }).events, [], 'an idle pass says nothing');
  node.restart();
  t.deepEqual(node.pass(spec, { generation: 7 }).events, [], 'a restarted agent does not announce what was Applied before');
});

test('a large batch names ten reservations and counts the rest', (t) => {
  const node = new SimNode();
  const r = node.pass(rowOf(12), { ...fast, generation: 3 });
  t.true(r.synced);
  const normal = r.events.filter((e) => e.type === 'Normal');
  t.is(normal.length, 1);
  t.is(normal[0]!.reservation, undefined, 'about the node');
  t.is(
    normal[0]!.message,
    'Spec generation 3 applied: 12 reservations ready (ns/r00, ns/r01, ns/r02, ns/r03, ns/r04, ns/r05, ns/r06, ns/r07, ns/r08, ns/r09 (+2 more)).',
  );
});

test('ready and released in one batch: one event that says both', (t) => {
  const node = new SimNode();
  node.converge(rowOf(2), { pass: fast });
  // ns/r01 leaves, ns/r02 joins (its queue is already off the host: no in-use check).
  const next = rowOf(3);
  const spec: NodeStateSpec = {
    ...next,
    queues: next.queues!.filter((q) => q.reservation !== 'ns/r01'),
    mdevs: next.mdevs!.filter((m) => m.reservation !== 'ns/r01'),
  };
  const r = node.pass(spec, { ...fast, generation: 4 });
  t.true(r.synced);
  t.deepEqual(r.events, [
    {
      type: 'Normal',
      reason: 'Applied',
      message: 'Spec generation 4 applied: 1 reservation ready (ns/r02); 1 released (ns/r01; mdevs removed, their queues reset and zeroized by the kernel).',
    },
  ]);
});
