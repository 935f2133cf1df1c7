// validateSpec: a bad spec is a list of sentences for a condition, never an exception; a
// reconcile pass over it changes nothing and says why in Synced.
import test from 'ava';
import { validateSpec } from '../../src/agent/core.js';
import type { NodeStateSpec } from '../../src/api/types.js';
import { SimNode, UUID_A, UUID_B, condition, intent, mdevIntent, reservationOf } from './fixture.js';

const good: NodeStateSpec = {
  aqmask: [{ id: '0004', host: false }],
  queues: [intent('05.0004', 'ns/a')],
  mdevs: [mdevIntent(UUID_A, 'ns/a', ['05'], ['0004'], ['0004'])],
};

const cases: Array<{ why: string; spec: unknown; expected: RegExp[] }> = [
  { why: 'a well-formed spec has no problems', spec: good, expected: [] },
  { why: 'an empty spec has no problems', spec: {}, expected: [] },
  { why: 'a non-hex adapter id is named', spec: { apmask: [{ id: 'zz', host: false }] }, expected: [/spec\.apmask\[0\].*invalid adapter id "zz"/] },
  { why: 'a domain above 255 is refused', spec: { aqmask: [{ id: '0100', host: false }] }, expected: [/domain id "0100" is out of range/] },
  { why: 'a mask bit must say host true or false', spec: { apmask: [{ id: '05' }] }, expected: [/spec\.apmask\[0\] must be \{id, host/] },
  {
    why: 'one bit wanted both ways is a contradiction',
    spec: { apmask: [{ id: '05', host: false }, { id: '0x5', host: true }] },
    expected: [/lists bit 05 as both host and not host/],
  },
  { why: 'an unknown in-use policy is named', spec: { queues: [{ apqn: '05.0004', reservation: 'ns/a', inUsePolicy: 'Maybe', drainTimeoutSeconds: 1 }] }, expected: [/inUsePolicy "Maybe" is not one of Wait, Fail, Force/] },
  { why: 'a negative drain timeout is refused', spec: { queues: [{ apqn: '05.0004', reservation: 'ns/a', inUsePolicy: 'Wait', drainTimeoutSeconds: -1 }] }, expected: [/drainTimeoutSeconds must be a number >= 0/] },
  { why: 'a malformed APQN is named', spec: { queues: [{ apqn: '05', reservation: 'ns/a', inUsePolicy: 'Wait', drainTimeoutSeconds: 1 }] }, expected: [/invalid APQN "05"/] },
  { why: 'a bad mdev UUID is named', spec: { mdevs: [{ uuid: 'not-a-uuid', reservation: 'ns/a', adapters: [], domains: [], controlDomains: [] }] }, expected: [/invalid mdev UUID "not-a-uuid"/] },
  {
    why: 'two mdevs sharing an APQN overlap',
    spec: { mdevs: [mdevIntent(UUID_A, 'ns/a', ['05', '06'], ['0004']), mdevIntent(UUID_B, 'ns/b', ['06'], ['0004', '0005'])] },
    expected: [/overlap: 06\.0004 is in mdevs/],
  },
  { why: 'the same mdev UUID twice', spec: { mdevs: [mdevIntent(UUID_A, 'ns/a', ['05'], ['0004']), mdevIntent(UUID_A.toUpperCase(), 'ns/b', ['06'], ['0004'])] }, expected: [/lists .* twice/] },
  {
    why: 'an mdev APQN the spec also gives to the host',
    spec: { apmask: [{ id: '05', host: true }], aqmask: [{ id: '0004', host: true }], mdevs: [mdevIntent(UUID_A, 'ns/a', ['05'], ['0004'])] },
    expected: [/holds 05\.0004, but spec\.apmask and spec\.aqmask give it to the host/],
  },
  { why: 'an unknown binding mode', spec: { bindingMode: 'Telepathy' }, expected: [/bindingMode "Telepathy"/] },
  { why: 'DriverOverride mode cannot clear mask bits', spec: { bindingMode: 'DriverOverride', aqmask: [{ id: '0004', host: false }] }, expected: [/needs both masks all ones/] },
  { why: 'a vfio_ap override needs DriverOverride mode', spec: { overrides: [{ apqn: '05.0004', driver: 'vfio_ap' }] }, expected: [/needs bindingMode DriverOverride/] },
  { why: 'a list field that is not a list', spec: { mdevs: 'all of them' }, expected: [/spec\.mdevs must be a list/] },
  { why: 'garbage entries do not throw', spec: { apmask: [null, 5], queues: [7] }, expected: [/apmask\[0\]/, /apmask\[1\]/, /queues\[0\]/] },
];

for (const c of cases) {
  test(`validateSpec: ${c.why}`, (t) => {
    const problems = validateSpec(c.spec as NodeStateSpec);
    t.is(problems.length, c.expected.length, problems.join('\n'));
    for (const re of c.expected) t.true(problems.some((p) => re.test(p)), `${re} in\n${problems.join('\n')}`);
  });
}

test('a pass over a bad spec changes nothing and reports InvalidSpec in Synced and the reservations', (t) => {
  const node = new SimNode();
  const before = node.backend.fingerprint();
  const bad: NodeStateSpec = { ...good, queues: [{ apqn: '05.0004', reservation: 'ns/a', inUsePolicy: 'Maybe' as never, drainTimeoutSeconds: 1 }] };
  const r = node.pass(bad);
  t.false(r.synced);
  t.deepEqual(r.stepsExecuted, []);
  t.is(node.io.writes.length, 0);
  t.is(node.backend.fingerprint(), before);
  const synced = condition(r.status, 'Synced')!;
  t.is(synced.status, 'False');
  t.is(synced.reason, 'InvalidSpec');
  t.regex(synced.message, /inUsePolicy "Maybe"/);
  t.is(reservationOf(r.status, 'ns/a')?.phase, 'Failed');
  t.is(reservationOf(r.status, 'ns/a')?.reason, 'InvalidSpec');
  t.true((r.status.queues?.length ?? 0) > 0, 'the inventory is still reported');
});

test('a spec that is not even an object is reported, not thrown', (t) => {
  const node = new SimNode();
  const r = node.pass('nonsense' as unknown as NodeStateSpec);
  t.is(condition(r.status, 'Synced')?.reason, 'InvalidSpec');
});
