// kubectl apqn status: one line per reservation and claim, the condition that explains it.
import test from 'ava';
import { compactApqns, conditionCell, reservationDetail, statusTable } from '../../src/kubectl-apqn/status.js';
import { ansi } from '../../src/kubectl-apqn/text.js';
import { claim, cond, readyStatus, reservation } from './fixtures.js';
import { matchGolden } from './golden.js';

const MDEV = '6d2f0a1e-8c1b-5b7e-9a55-0c0ffee00001';

const ready = reservation({
  namespace: 'payments',
  name: 'payments-vm',
  spec: { nodeName: 'node-a', apqns: ['06.0004', '06.0005'], controlDomains: ['0004'] },
  status: readyStatus('node-a', ['06.0004', '06.0005'], MDEV, { claimedBy: { name: 'vm1-crypto' } }),
});

const draining = reservation({
  namespace: 'payments',
  name: 'batch',
  spec: { apqns: ['05.0001', '05.0002', '07.0001', '07.0002'] },
  status: {
    ...readyStatus('node-a', ['05.0001', '05.0002', '07.0001', '07.0002'], '6d2f0a1e-8c1b-5b7e-9a55-0c0ffee00003'),
    conditions: [
      cond('Accepted', 'True', 'Valid', 'the spec is valid'),
      cond('Scheduled', 'True', 'Scheduled', 'placed on node node-a'),
      cond('Conflict', 'False', 'NoConflict', 'no other reservation holds these queues'),
      cond('Bound', 'False', 'Draining', '05.0001 has 3 host requests in flight (request_count 12); waiting up to 300 s'),
      cond('Ready', 'False', 'Draining', '05.0001 has 3 host requests in flight (request_count 12); waiting up to 300 s'),
    ],
  },
});

const conflicting = reservation({
  namespace: 'keys',
  name: 'late',
  createdSecondsAgo: 30,
  spec: { nodeName: 'node-a', apqns: ['06.0004'] },
  status: {
    observedGeneration: 1,
    nodeName: 'node-a',
    apqns: ['06.0004'],
    conditions: [
      cond('Accepted', 'True', 'Valid', 'the spec is valid'),
      cond('Scheduled', 'False', 'Conflict', 'waiting for queues held by payments/payments-vm (see Conflict)'),
      cond('Conflict', 'True', 'QueueHeld', '06.0004 on node node-a is held by payments/payments-vm (older); this reservation gets it when that one releases it'),
      cond('Bound', 'False', 'Conflict', 'nothing is bound while another reservation holds these queues (see Conflict)'),
      cond('Ready', 'False', 'Conflict', '06.0004 on node node-a is held by payments/payments-vm'),
    ],
  },
});

const rejected = reservation({
  namespace: 'keys',
  name: 'not-a-matrix',
  spec: { apqns: ['05.0004', '06.0005'] },
  status: {
    observedGeneration: 1,
    conditions: [
      cond('Accepted', 'False', 'NotAMatrix', 'a vfio_ap guest sees every adapter x domain pair: add 05.0005 and 06.0004, or remove 06.0005'),
      cond('Ready', 'False', 'NotAccepted', 'the spec is not accepted'),
    ],
  },
});

const unknown = reservation({
  namespace: 'keys',
  name: 'host-keep',
  spec: { nodeName: 'node-b', apqns: ['0a.0001'], driver: 'host' },
  status: {
    ...readyStatus('node-b', ['0a.0001'], undefined),
    conditions: [
      cond('Accepted', 'True', 'Valid', 'the spec is valid'),
      cond('Scheduled', 'True', 'Scheduled', 'placed on node node-b'),
      cond('Conflict', 'False', 'NoConflict', 'no other reservation holds these queues'),
      cond('Bound', 'Unknown', 'AgentUnavailable', "the agent on node node-b last reported 95 s ago (limit 40 s); its queues' state is unknown"),
      cond('Ready', 'Unknown', 'AgentUnavailable', "the agent on node node-b last reported 95 s ago (limit 40 s); its queues' state is unknown"),
    ],
  },
});

const fresh = reservation({ namespace: 'keys', name: 'just-applied', spec: { request: { adapters: 1, domains: 1, mode: 'EP11' } } });

const claims = [
  claim('payments', 'vm1-crypto', 'payments-vm', 'Bound', cond('Bound', 'True', 'Bound', `bound to reservation payments-vm: mdev ${MDEV} on node node-a`), {
    nodeName: 'node-a',
    mdevUUID: MDEV,
    apqns: ['06.0004', '06.0005'],
  }),
  claim('payments', 'vm2-crypto', 'payments-vm', 'Pending', cond('Bound', 'False', 'AlreadyClaimed', 'reservation payments-vm is held by claim vm1-crypto')),
  claim('keys', 'orphan', 'deleted-one', 'Lost', cond('Bound', 'False', 'ReservationDeleted', 'reservation deleted-one is gone: this claim is lost; delete it (and create a new one for another reservation)')),
];

const all = [ready, draining, conflicting, rejected, unknown, fresh];

test('status -A: every reservation and claim on one line, goldens', (t) => {
  matchGolden(t, 'kubectl-apqn/status-all-namespaces.txt', statusTable(all, claims, { allNamespaces: true }));
});

test('status -n payments: no NAMESPACE column', (t) => {
  const text = statusTable(
    all.filter((r) => r.metadata.namespace === 'payments'),
    claims.filter((c) => c.metadata.namespace === 'payments'),
    { allNamespaces: false },
  );
  matchGolden(t, 'kubectl-apqn/status-payments.txt', text);
  t.is(text.split('\n').filter(Boolean).length, 5, 'header + 2 reservations + 2 claims');
});

const DETAILS: Array<{ why: string; r: typeof ready; detail: RegExp }> = [
  { why: 'Ready and claimed: who holds it', r: ready, detail: /^claimed by vm1-crypto; mdev .* has the reserved matrix$/ },
  { why: 'draining: the Bound message', r: draining, detail: /^05\.0001 has 3 host requests in flight/ },
  { why: 'conflict: the Conflict message first', r: conflicting, detail: /held by payments\/payments-vm \(older\)/ },
  { why: 'rejected: the Accepted message', r: rejected, detail: /^a vfio_ap guest sees every adapter x domain pair/ },
  { why: 'agent gone: the Bound message', r: unknown, detail: /last reported 95 s ago/ },
  { why: 'no status yet: says the controller may not run', r: fresh, detail: /no status yet/ },
];
for (const d of DETAILS) {
  test(`status detail — ${d.why}`, (t) => {
    t.regex(reservationDetail(d.r), d.detail);
  });
}

test('queues: a full product of more than two queues is written as adapters x domains', (t) => {
  t.is(compactApqns(['05.0001', '05.0002', '07.0001', '07.0002']), '05,07 x 0001,0002');
  t.is(compactApqns(['06.0004', '06.0005']), '06.0004,06.0005');
  t.is(compactApqns(['05.0004', '06.0005', '06.0004']), '05.0004,06.0005,06.0004');
  t.is(compactApqns(undefined), '-');
});

test('condition cells: True, False/Reason, Unknown/Reason; Conflict True stands out in colour', (t) => {
  t.is(conditionCell(cond('Ready', 'True', 'Ready', '')), 'True');
  t.is(conditionCell(cond('Bound', 'False', 'Draining', '')), 'False/Draining');
  t.is(conditionCell(cond('Bound', 'Unknown', 'AgentUnavailable', '')), 'Unknown/AgentUnavailable');
  t.is(conditionCell(cond('Conflict', 'False', 'NoConflict', '')), 'False');
  t.is(conditionCell(undefined), '-');
  t.is(conditionCell(cond('Conflict', 'True', 'QueueHeld', ''), ansi), '\x1b[31mTrue\x1b[39m');
});

test('coloured status has the same columns once the colour is taken out', (t) => {
  const plainText = statusTable(all, claims, { allNamespaces: true });
  const coloured = statusTable(all, claims, { allNamespaces: true, paint: ansi });
  t.not(coloured, plainText);
  t.is(coloured.replace(/\x1b\[[0-9;]*m/g, ''), plainText);
});

test('a claim without status says which reservation it claims', (t) => {
  const text = statusTable([], [claim('keys', 'new', 'r1', undefined)], { allNamespaces: false });
  t.regex(text, /apqnc\/new .* claims reservation r1; no status yet/);
});

test('nothing to show', (t) => {
  t.is(statusTable([], [], { allNamespaces: true }), 'No APQN reservations or claims found.\n');
});
