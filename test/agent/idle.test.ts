// The idle path: with neither the spec nor the bus changing, a pass is one fingerprint and
// hands back the same answer; any change of either, a due resync or a running Drift hold
// brings a full pass back.
import test from 'ava';
import { needsFullPass } from '../../src/agent/core.js';
import type { NodeStateSpec } from '../../src/api/types.js';
import { CREATE, SimNode, UUID_A, UUID_FOREIGN, condition, mdevIntent } from './fixture.js';

const spec: NodeStateSpec = { aqmask: [{ id: '0004', host: false }], mdevs: [mdevIntent(UUID_A, 'ns/a', ['05', '06'], ['0004'])] };

function settled(): SimNode {
  const node = new SimNode();
  node.converge(spec);
  return node;
}

test('an idle pass returns the same status object, no steps, no events, no writes', (t) => {
  const node = settled();
  const before = node.pass(spec);
  const writes = node.io.writes.length;
  node.model.tick(2);
  t.false(needsFullPass(node.backend, node.memory, node.nowMs(), spec));
  const idle = node.pass(spec);
  t.is(idle.status, before.status);
  t.true(idle.synced);
  t.deepEqual(idle.stepsExecuted, []);
  t.deepEqual(idle.events, []);
  t.is(idle.requeueAfterMs, undefined);
  t.is(node.io.writes.length, writes);
});

const changes: Array<{ why: string; change: (n: SimNode) => void; spec?: NodeStateSpec }> = [
  { why: 'a hand-made mdev changes the fingerprint', change: (n) => n.sys.write(CREATE, UUID_FOREIGN) },
  { why: 'a mask write changes the fingerprint', change: (n) => n.sys.write('bus/ap/aqmask', '-9') },
  { why: 'a card going away changes the fingerprint', change: (n) => n.model.removeCard(7) },
  { why: 'a new spec', change: () => {}, spec: { ...spec, apmask: [{ id: '07', host: true }] } },
  { why: 'the periodic resync comes due', change: (n) => n.model.tick(61) },
];

for (const c of changes) {
  test(`a full pass runs again when ${c.why}`, (t) => {
    const node = settled();
    const before = node.pass(spec);
    c.change(node);
    const next = c.spec ?? spec;
    t.true(needsFullPass(node.backend, node.memory, node.nowMs(), next));
    const r = node.pass(next);
    t.not(r.status, before.status);
  });
}

test('a running Drift hold ends with a full pass that clears the condition', (t) => {
  const node = settled();
  node.sys.write('bus/ap/aqmask', '-9');
  t.is(condition(node.pass(spec).status, 'Drift')?.status, 'True');
  node.model.tick(20);
  t.false(needsFullPass(node.backend, node.memory, node.nowMs(), spec));
  node.model.tick(11);
  t.true(needsFullPass(node.backend, node.memory, node.nowMs(), spec));
  t.is(condition(node.pass(spec).status, 'Drift')?.status, 'False');
});

test('a pass that asked to be called again (draining) is never answered from the cache', (t) => {
  const node = new SimNode({ hostLoad: [{ apqn: '05.0004', pendingRequests: 1 }] });
  const r = node.pass(spec);
  t.is(r.requeueAfterMs, 1000);
  t.true(needsFullPass(node.backend, node.memory, node.nowMs(), spec));
});
