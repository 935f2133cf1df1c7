// The benchmark's write counting over audit events: what is the run's, what is a heartbeat.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import test from 'ava';
import { AGENT_USER, CONTROLLER_USER, auditEnd, auditPolicy, countWrites, countWritesByActor, readAudit, totalWrites, type AuditEvent } from '../../bench/operator-audit.js';

const ev = (user: string, verb: string, resource: string, extra: Partial<NonNullable<AuditEvent['objectRef']>> = {}, more: Partial<AuditEvent> = {}): AuditEvent => ({
  verb,
  user: { username: user },
  objectRef: { resource, ...extra },
  responseStatus: { code: 200 },
  stageTimestamp: '2026-01-01T00:00:00.000000Z',
  ...more,
});

const nodes = new Set(['n-0', 'n-1']);
const cases: Array<[string, AuditEvent, Partial<ReturnType<typeof countWrites>>]> = [
  ['a finalizer patch of a reservation', ev(CONTROLLER_USER, 'patch', 'apqnreservations', { namespace: 'ns', name: 'r0' }), { reservation: 1, requests: 1 }],
  ['a status patch of a reservation', ev(CONTROLLER_USER, 'patch', 'apqnreservations', { namespace: 'ns', subresource: 'status' }), { reservationStatus: 1, requests: 1 }],
  ['a node spec patch', ev(CONTROLLER_USER, 'patch', 'apnodestates', { name: 'n-1' }), { nodeSpec: 1, requests: 1 }],
  [
    'a status patch carrying only heartbeatTime',
    ev(AGENT_USER, 'patch', 'apnodestates', { name: 'n-0', subresource: 'status' }, { requestObject: { metadata: { resourceVersion: '5' }, status: { heartbeatTime: 'x' } } }),
    { heartbeats: 1, requests: 1 },
  ],
  [
    'a status patch with more than the heartbeat',
    ev(AGENT_USER, 'patch', 'apnodestates', { name: 'n-0', subresource: 'status' }, { requestObject: { status: { heartbeatTime: 'x', mdevs: [] } } }),
    { nodeStatus: 1, requests: 1 },
  ],
  ['an event in the run’s namespace', ev(AGENT_USER, 'create', 'events', { namespace: 'ns', apiGroup: 'events.k8s.io' }), { events: 1, requests: 1 }],
  ['a DRA slice of a run node', ev(CONTROLLER_USER, 'update', 'resourceslices', { name: 'n-1-ap.s390x.io-0' }), { slices: 1, requests: 1 }],
  ['a refused (409) write still counts, and as refused', ev(CONTROLLER_USER, 'patch', 'apqnreservations', { namespace: 'ns', subresource: 'status' }, { responseStatus: { code: 409 } }), { reservationStatus: 1, refused: 1, requests: 1 }],
  ['a read is a request, not a write', ev(AGENT_USER, 'get', 'apqnreservations', { namespace: 'ns' }), { requests: 1 }],
  ['a watch is neither', ev(CONTROLLER_USER, 'watch', 'apqnreservations', { namespace: 'ns' }), {}],
  ['a write to another kind in the run’s namespace is another write', ev(CONTROLLER_USER, 'create', 'configmaps', { namespace: 'ns' }), { other: 1, requests: 1 }],
  ['another namespace is not the run’s, but shown', ev(CONTROLLER_USER, 'patch', 'apqnreservations', { namespace: 'other' }), { elsewhere: 1 }],
  ['another node is not the run’s, but shown', ev(CONTROLLER_USER, 'patch', 'apnodestates', { name: 'n-10' }), { elsewhere: 1 }],
  ['a read elsewhere is nothing', ev(AGENT_USER, 'get', 'apnodestates', { name: 'n-10' }), {}],
];
const zero = { reservation: 0, reservationStatus: 0, nodeSpec: 0, nodeStatus: 0, heartbeats: 0, events: 0, slices: 0, other: 0, elsewhere: 0, refused: 0, requests: 0 };
for (const [why, event, expected] of cases) {
  test(`audit counting: ${why}`, (t) => t.deepEqual(countWrites([event], 'ns', nodes), { ...zero, ...expected }));
}

test('writes split by actor: the controller’s and the agents’ add up to all, heartbeats apart', (t) => {
  const events = [
    ev(CONTROLLER_USER, 'patch', 'apqnreservations', { namespace: 'ns', name: 'r0' }),
    ev(CONTROLLER_USER, 'patch', 'apqnreservations', { namespace: 'ns', subresource: 'status' }),
    ev(CONTROLLER_USER, 'patch', 'apnodestates', { name: 'n-0' }),
    ev(AGENT_USER, 'patch', 'apnodestates', { name: 'n-0', subresource: 'status' }, { requestObject: { status: { heartbeatTime: 'x', mdevs: [] } } }),
    ev(AGENT_USER, 'patch', 'apnodestates', { name: 'n-0', subresource: 'status' }, { requestObject: { status: { heartbeatTime: 'x' } } }),
    ev(AGENT_USER, 'create', 'events', { namespace: 'ns' }),
    ev('system:admin', 'create', 'apqnreservations', { namespace: 'ns', name: 'r1' }),
  ];
  const by = countWritesByActor(events, 'ns', nodes);
  t.is(totalWrites(by.controller), 3);
  t.is(totalWrites(by.agents), 2);
  t.is(by.agents.heartbeats, 1);
  t.is(totalWrites(by.all), 5, 'the user\'s create is logged (for timelines) but is not the operator\'s write');
  t.deepEqual({ ...by.controller, requests: 0 }, { ...zero, reservation: 1, reservationStatus: 1, nodeSpec: 1 });
});

test('the audit policy logs status patch bodies and metadata of the operator’s accounts, and reservation creates by anyone', (t) => {
  const policy = auditPolicy();
  t.regex(policy, /level: Request[\s\S]*apnodestates\/status/);
  t.true(policy.includes(CONTROLLER_USER) && policy.includes(AGENT_USER));
  t.regex(policy, /verbs: \["create"\]\n\s+resources: \[\{ group: "ap\.s390x\.io", resources: \["apqnreservations"\] \}\]/);
  t.regex(policy.trim(), /- level: None$/);
});

test('auditEnd: the offset after the last complete line, where readAudit reads on from', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'audit-test-'));
  try {
    const file = path.join(dir, 'audit.log');
    t.is(auditEnd(file), 0); // no log yet
    const line = JSON.stringify(ev(AGENT_USER, 'get', 'apqnreservations', { namespace: 'ns' })) + '\n';
    fs.writeFileSync(file, line + line + '{"verb":"pat'); // the last line still being written
    t.is(auditEnd(file), 2 * Buffer.byteLength(line));
    fs.appendFileSync(file, 'ch"}\n' + line);
    const { events } = readAudit(file, auditEnd(file) - Buffer.byteLength(line));
    t.is(events.length, 1);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
