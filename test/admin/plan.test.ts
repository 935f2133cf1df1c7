// kubectl apqn plan: the controller's own decision (decideCluster) with and without the
// reservation, and the agent's own steps on a copy of the node — against a settled cluster
// (cluster-fixture.ts). Goldens for the text; the facts checked one by one.
import test from 'ava';
import type { APQNReservation, ReservationSpec } from '../../src/api/types.js';
import { API_VERSION } from '../../src/api/types.js';
import { clusterView } from '../../src/kubectl-apqn/cluster.js';
import { reservationsIn } from '../../src/kubectl-apqn/main.js';
import { planJson, planReservation, plannedObject, renderPlan, type PlanReport } from '../../src/kubectl-apqn/plan.js';
import { ansi } from '../../src/kubectl-apqn/text.js';
import { settledCluster } from './cluster-fixture.js';
import { T0 } from './fixtures.js';
import { matchGolden } from './golden.js';
import { range } from '../controller/fixtures.js';
import { placed, res, state, view as clusterViewWith } from '../controller/view-fixtures.js';
import type { APNodeState } from '../../src/api/types.js';

function clusterViewOf(reservations: APQNReservation[], states: APNodeState[]) {
  return clusterViewWith({ reservations, states });
}

const cluster = settledCluster();
const view = clusterView(cluster, T0);

function file(namespace: string, name: string, spec: ReservationSpec): APQNReservation {
  return { apiVersion: API_VERSION, kind: 'APQNReservation', metadata: { namespace, name }, spec };
}

function plan(r: APQNReservation): PlanReport {
  const existing = cluster.reservations.find((x) => x.metadata.namespace === r.metadata.namespace && x.metadata.name === r.metadata.name);
  return planReservation(view, plannedObject(r, existing, T0), !existing);
}

const steps = (p: PlanReport) => (p.steps?.entries ?? []).filter((e) => e.kind === 'step').map((e) => e.text);

const CCA = file('payments', 'cca-vm', { nodeName: 'node-a', apqns: ['05.0006', '06.0006'] });

test('plan: explicit queues on a mask node — the column to clear, the host queue it displaces, the wait, the steps', (t) => {
  const p = plan(CCA);
  t.is(p.outcome, 'placed');
  t.is(p.node, 'node-a');
  t.deepEqual(p.apqns, ['05.0006', '06.0006']);
  t.deepEqual(p.maskChanges, [{ mask: 'aqmask', id: '0006', host: false }], 'one column is cheaper than two rows');
  t.deepEqual(p.displaced, ['07.0006']);
  t.deepEqual(p.inUse, [{ apqn: '07.0006', requestsInFlight: 2 }]);
  t.true(p.steps!.synced);
  t.deepEqual(steps(p), [
    'cordon 05.0006,06.0006 (online 0)',
    'cordon 07.0006 (online 0)',
    'aqmask clear 0006',
    `create mdev ${p.mdev!.uuid}`,
    `set matrix of mdev ${p.mdev!.uuid} to 05,06 x 0006`,
  ]);
  t.deepEqual(
    p.steps!.entries.slice(0, 3).map((e) => e.kind),
    ['step', 'wait', 'step'],
    'the idle queues are cordoned at once; 07.0006 is cordoned once its requests are done',
  );
  t.regex(p.steps!.entries[1]!.text, /07\.0006 has 2 host requests in flight/);
  t.deepEqual(p.affected, [], 'nobody else changes');
  t.is(p.pendingBefore, undefined, 'the node is settled');
  matchGolden(t, 'kubectl-apqn/plan-explicit-masks.txt', renderPlan(p));
});

test('plan: inUsePolicy Force moves its own busy queue at once and says requests are cut off', (t) => {
  const p = plan(file('payments', 'cca-vm', { nodeName: 'node-a', apqns: ['07.0006'], inUsePolicy: 'Force' }));
  t.false(p.steps!.entries.some((e) => e.kind === 'wait'));
  t.true(p.steps!.entries.some((e) => e.kind === 'note' && /cut off/.test(e.text)));
  t.regex(renderPlan(p), /inUsePolicy Force: the agent moves them anyway/);
});

test('plan: inUsePolicy Force does not spread: a busy host queue its mask plan displaces is waited for (issue 2.3)', (t) => {
  const p = plan(file('payments', 'cca-vm', { ...CCA.spec, inUsePolicy: 'Force' }));
  const wait = p.steps!.entries.find((e) => e.kind === 'wait');
  t.regex(wait?.text ?? '(no wait)', /07\.0006 has 2 host requests in flight/);
  t.false(p.steps!.entries.some((e) => e.kind === 'note' && /cut off/.test(e.text)), 'nothing is cut off');
});

test('plan: a request picks among nodes — the cheapest, then by name — and says why the others do not fit', (t) => {
  const p = plan(file('keys', 'ep11-pair', { request: { adapters: 2, domains: 1, mode: 'EP11' } }));
  t.is(p.outcome, 'placed');
  t.is(p.node, 'node-b');
  t.deepEqual(
    p.choices.map((c) => [c.node, c.picked, c.displaced ?? null]),
    [
      ['node-a', false, null],
      ['node-b', true, 0],
    ],
  );
  t.regex(p.choices[0]!.why!, /EP11/);
  t.deepEqual(p.maskChanges, [], 'driver_override node: masks stay all ones');
  t.true(p.overrideChanges.length > 0);
  t.true(p.overrideChanges.every((o) => o.driver === 'vfio_ap'));
  t.true(steps(p).some((s) => s.startsWith('driver_override')), 'per-queue driver_override steps');
  t.true(p.steps!.synced);
  matchGolden(t, 'kubectl-apqn/plan-request-override.txt', renderPlan(p));
});

test('plan: a request that fits a queue already on vfio_ap displaces nothing new', (t) => {
  const p = plan(file('keys', 'ep11-one', { request: { adapters: 1, domains: 1, mode: 'EP11' } }));
  t.is(p.node, 'node-a');
  t.deepEqual(p.apqns, ['07.0004']);
  t.deepEqual(p.displaced, [], 'column 0004 is already cleared for payments-vm');
  t.deepEqual(p.maskChanges, []);
});

test('plan: queues another reservation holds are a conflict — nothing changes', (t) => {
  const p = plan(file('keys', 'late', { nodeName: 'node-a', apqns: ['06.0004'] }));
  t.is(p.outcome, 'conflict');
  t.deepEqual(p.holders, ['payments/payments-vm']);
  t.is(p.steps, undefined);
  matchGolden(t, 'kubectl-apqn/plan-conflict.txt', renderPlan(p));
});

test('plan: a spec that is not a matrix is rejected with the pairs to add', (t) => {
  const p = plan(file('keys', 'bad', { apqns: ['05.0006', '06.0007'] }));
  t.is(p.outcome, 'rejected');
  t.is(p.reason, 'NotAMatrix');
  t.deepEqual(p.choices, [], 'no node is looked at');
  matchGolden(t, 'kubectl-apqn/plan-rejected.txt', renderPlan(p));
});

test('plan: a nodeSelector no node matches leaves it unplaced', (t) => {
  const p = plan(file('keys', 'nowhere', { apqns: ['05.0006'], nodeSelector: { zone: 'mars' } }));
  t.is(p.outcome, 'unplaced');
  t.is(p.reason, 'NoFittingNode');
  t.true(p.choices.every((c) => /nodeSelector/.test(c.why ?? '')));
});

test('plan: changing a claimed reservation keeps its placement until the claim goes', (t) => {
  const grow = plan(file('payments', 'payments-vm', { nodeName: 'node-a', apqns: ['06.0004', '06.0005', '07.0004', '07.0005'] }));
  t.false(grow.isNew);
  t.is(grow.outcome, 'placed');
  t.deepEqual(grow.apqns, ['06.0004', '06.0005'], 'the old placement stays');
  t.true(grow.notes.some((n) => /claim vm1-crypto holds this reservation/.test(n)));
  t.deepEqual(grow.maskChanges, []);
  matchGolden(t, 'kubectl-apqn/plan-claimed-change.txt', renderPlan(grow));
});

test('plan -o json: the report, the provisional mdev UUID named as such', (t) => {
  const p = plan(CCA);
  const json = planJson(p) as { mdev: { uuid: string }; steps: { entries: Array<{ text: string }> } };
  t.is(json.mdev.uuid, '<new mdev>');
  t.true(json.steps.entries.some((e) => e.text === 'create mdev <new mdev>'));
  t.false(JSON.stringify(json).includes(p.mdev!.uuid));
});

test('plan text on a terminal is coloured with the same words', (t) => {
  const p = plan(CCA);
  t.is(renderPlan(p, ansi).replace(/\x1b\[[0-9;]*m/g, ''), renderPlan(p));
});

test('plan: every reservation document of a manifest, other kinds named as skipped', (t) => {
  const text = [
    `apiVersion: ${API_VERSION}\nkind: APQNReservation\nmetadata: { name: a }\nspec: { apqns: ["05.0006"] }`,
    `apiVersion: ${API_VERSION}\nkind: APQNClaim\nmetadata: { name: c }\nspec: { reservationName: a }`,
    `apiVersion: ${API_VERSION}\nkind: APQNReservation\nmetadata: { name: b, namespace: keys }\nspec: { apqns: ["05.0007"] }`,
  ].join('\n---\n');
  const { reservations, skipped } = reservationsIn(text, 'f.yaml');
  t.deepEqual(reservations.map((r) => r.metadata.name), ['a', 'b']);
  t.deepEqual(skipped, ['APQNClaim c']);
  t.throws(() => reservationsIn('kind: Pod\n', 'p.yaml'), { message: /no APQNReservation/ });
  t.throws(() => reservationsIn('a: [', 'x.yaml'), { message: /not valid YAML/ });
});

test('plan never changes the objects it was given', (t) => {
  const before = JSON.stringify(cluster);
  plan(CCA);
  plan(file('keys', 'ep11-pair', { request: { adapters: 2, domains: 1, mode: 'EP11' } }));
  t.is(JSON.stringify(cluster), before);
});

test('plan: a request that fails only because the free queues are fragmented says so, and whose move would let it fit (a preview)', (t) => {
  // Two CEX8P cards, domains 0-3. ns/a holds 05.0000, ns/b holds 06.0001: six queues are free,
  // but only domains 0002-0003 are free on both adapters, so 2 adapters x 3 domains fits nowhere.
  const fixture = { cards: [{ id: '05', type: 'CEX8P', domains: range(0, 3) }, { id: '06', type: 'CEX8P', domains: range(0, 3) }] };
  const a = res('a', { nodeName: 'n', apqns: ['05.0000'] }, { age: 20, status: placed('n', ['05.0000']) });
  const b = res('b', { nodeName: 'n', apqns: ['06.0001'] }, { age: 15, status: placed('n', ['06.0001']) });
  const states = [state('n', fixture)];
  const fragmented = clusterViewOf([a, b], states);
  const want = file('ns', 'wide', { request: { adapters: 2, domains: 3 } });
  const p = planReservation(fragmented, plannedObject(want, undefined, T0), true);
  t.is(p.outcome, 'unplaced');
  t.deepEqual(p.fragmentation?.nodes, ['n']);
  t.deepEqual(
    p.fragmentation?.moves.map((m) => [m.reservation, m.node, m.apqns.length]),
    [
      ['ns/a', 'n', 6],
      ['ns/b', 'n', 6],
    ],
  );
  const text = renderPlan(p);
  t.regex(text, /Enough queues are free on n, but not as one adapters x domains product: they are fragmented\./);
  t.regex(text, /without ns\/a \(moved elsewhere or deleted\) it would be placed on n: /);

  // Too few free queues at all: not fragmentation.
  const big = file('ns', 'big', { request: { adapters: 2, domains: 4 } });
  t.is(planReservation(fragmented, plannedObject(big, undefined, T0), true).fragmentation, undefined);
});
