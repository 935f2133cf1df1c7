// APQNClaim → ResourceClaim: the pure view (conditions Allocated/InUse, conflict with a
// namesake) and, against the real API server, what the reconciler creates and when. The
// claim's binder is stood in for by the test writing `status.phase`.
import test from 'ava';
import { CLAIM_REQUEST, DRA_DRIVER, type ResourceClaim } from '../../src/api/dra.js';
import type { APQNClaim, ClaimStatus } from '../../src/api/types.js';
import { API_VERSION } from '../../src/api/types.js';
import { claimDraView, desiredResourceClaim, ownedBy, sameRequest, statusWithDraView } from '../../src/controller/dra-resourceclaim.js';
import { operatorClients } from '../../src/k8s/client.js';
import { eventually, kubeConfig, testNamespace } from '../support/cluster.js';
import { resourceClaimClient, startDra } from './dra-support.js';

const claim = (over: Partial<APQNClaim['metadata']> = {}, reservationName = 'vm1'): APQNClaim => ({
  apiVersion: API_VERSION,
  kind: 'APQNClaim',
  metadata: { name: 'vm1-crypto', namespace: 'ns', uid: 'claim-uid', generation: 1, ...over },
  spec: { reservationName },
});

const T0 = Date.parse('2026-11-25T10:00:00Z');

test('the ResourceClaim: same name, owned by the claim, one request for one device of the reservation', (t) => {
  const rc = desiredResourceClaim(claim());
  t.is(rc.metadata?.name, 'vm1-crypto');
  t.is(rc.metadata?.namespace, 'ns');
  t.true(ownedBy(rc, claim()));
  t.false(ownedBy(rc, claim({ uid: 'another-uid' })), 'a recreated claim of the same name does not own the old one');
  t.true(sameRequest(rc, desiredResourceClaim(claim())));
  t.false(sameRequest(rc, desiredResourceClaim(claim({}, 'vm2'))));
});

const allocatedRc = (consumers: string[]): ResourceClaim => ({
  ...desiredResourceClaim(claim()),
  status: {
    allocation: { devices: { results: [{ request: CLAIM_REQUEST, driver: DRA_DRIVER, pool: 'node-a', device: 'ns-vm1-6d2f' }] } },
    reservedFor: consumers.map((name, i) => ({ resource: 'pods', name, uid: `pod-${i}` })),
  },
});

const viewCases: Array<{ why: string; rc: ResourceClaim | undefined; allocated: string; inUse: string; message?: RegExp; named: boolean }> = [
  { why: 'not created yet', rc: undefined, allocated: 'False/NotAllocated', inUse: 'False/NotInUse', named: true },
  { why: 'created, not allocated', rc: desiredResourceClaim(claim()), allocated: 'False/NotAllocated', inUse: 'False/NotInUse', message: /scheduler allocates/, named: true },
  { why: 'allocated, no pod yet', rc: allocatedRc([]), allocated: 'True/Allocated', inUse: 'False/NotInUse', message: /node-a\/ns-vm1-6d2f/, named: true },
  { why: 'allocated and reserved for the launcher pod', rc: allocatedRc(['virt-launcher-vm1-abc']), allocated: 'True/Allocated', inUse: 'True/ReservedForPod', named: true },
  {
    why: 'a namesake the claim does not own',
    rc: { ...desiredResourceClaim(claim()), metadata: { name: 'vm1-crypto', namespace: 'ns' } },
    allocated: 'False/ResourceClaimConflict',
    inUse: 'Unknown/ResourceClaimConflict',
    named: false,
  },
];
for (const c of viewCases) {
  test(`claim view: ${c.why}`, (t) => {
    const view = claimDraView(claim(), c.rc);
    t.is(`${view.allocated.status}/${view.allocated.reason}`, c.allocated);
    t.is(`${view.inUse.status}/${view.inUse.reason}`, c.inUse);
    if (c.message) t.regex(view.allocated.message, c.message);
    t.is(view.resourceClaimName !== undefined, c.named);
  });
}

test('statusWithDraView keeps the binder fields and conditions, and transition times of unchanged statuses', (t) => {
  const current: ClaimStatus = {
    phase: 'Bound',
    nodeName: 'node-a',
    mdevUUID: 'u',
    apqns: ['05.0004'],
    conditions: [{ type: 'Bound', status: 'True', reason: 'Bound', message: 'm', lastTransitionTime: '2026-01-01T00:00:00Z' }],
  };
  const first = statusWithDraView(current, claimDraView(claim(), allocatedRc([])), 1, T0);
  t.is(first.phase, 'Bound');
  t.deepEqual(first.apqns, ['05.0004']);
  t.is(first.resourceClaimName, 'vm1-crypto');
  t.deepEqual(
    first.conditions?.map((c) => [c.type, c.status]),
    [
      ['Bound', 'True'],
      ['Allocated', 'True'],
      ['InUse', 'False'],
    ],
  );
  const later = statusWithDraView(first, claimDraView(claim(), allocatedRc(['p'])), 1, T0 + 60_000);
  t.is(later.conditions?.find((c) => c.type === 'Allocated')?.lastTransitionTime, '2026-11-25T10:00:00Z');
  t.is(later.conditions?.find((c) => c.type === 'InUse')?.lastTransitionTime, '2026-11-25T10:01:00Z');
  const conflict = statusWithDraView(later, claimDraView(claim(), { ...desiredResourceClaim(claim()), metadata: {} }), 1, T0);
  t.is(conflict.resourceClaimName, undefined);
});

async function boundClaim(ns: string, name: string, reservationName: string): Promise<APQNClaim> {
  const c = operatorClients(kubeConfig());
  await c.claims.create({ apiVersion: API_VERSION, kind: 'APQNClaim', metadata: { name, namespace: ns }, spec: { reservationName } });
  return c.claims.patchStatus({ namespace: ns, name }, { status: { phase: 'Bound', nodeName: `${ns}-a` } });
}

test('real API: Pending claims get no ResourceClaim; Bound ones get one; a namesake is never touched', async (t) => {
  const ns = await testNamespace(t, 'drc');
  const clients = operatorClients(kubeConfig());
  // A user's own ResourceClaim that happens to carry the claim's name.
  const foreign: ResourceClaim = {
    metadata: { name: 'taken', namespace: ns },
    spec: { devices: { requests: [{ name: 'gpu', exactly: { deviceClassName: 'some.other.class' } }] } },
  };
  const created = await resourceClaimClient().create(foreign);
  await clients.claims.create({ apiVersion: API_VERSION, kind: 'APQNClaim', metadata: { name: 'pending', namespace: ns }, spec: { reservationName: 'vm0' } });
  const dra = await startDra(t, ns);
  await boundClaim(ns, 'bound', 'vm1');
  await boundClaim(ns, 'taken', 'vm2');

  const rc = await eventually('the bound claim has its ResourceClaim', () => resourceClaimClient().find({ namespace: ns, name: 'bound' }));
  t.is(rc.spec.devices.requests[0]?.exactly?.selectors?.[0]?.cel?.expression, `device.attributes["ap.s390x.io"].reservation == "${ns}/vm1"`);
  const conflict = await eventually('the namesake conflict is reported', async () => {
    const c = await clients.claims.get({ namespace: ns, name: 'taken' });
    return c.status?.conditions?.find((x) => x.type === 'Allocated')?.reason === 'ResourceClaimConflict' ? c : undefined;
  });
  t.is(conflict.status?.resourceClaimName, undefined);
  const untouched = await resourceClaimClient().get({ namespace: ns, name: 'taken' });
  t.is(untouched.metadata?.resourceVersion, created.metadata?.resourceVersion, 'never written');

  // Everything has been looked at once: the pending claim still has nothing.
  await eventually('each claim synced', () => (dra.stats.syncs.claims >= 3 ? true : undefined));
  t.is(await resourceClaimClient().find({ namespace: ns, name: 'pending' }), undefined);
  t.is((await clients.claims.get({ namespace: ns, name: 'pending' })).status?.conditions, undefined);
});

test('real API: a changed reservationName replaces an unallocated ResourceClaim', async (t) => {
  const ns = await testNamespace(t, 'drc');
  const clients = operatorClients(kubeConfig());
  await startDra(t, ns);
  await boundClaim(ns, 'c1', 'vm1');
  const first = await eventually('ResourceClaim for vm1', () => resourceClaimClient().find({ namespace: ns, name: 'c1' }));
  await clients.claims.patch({ namespace: ns, name: 'c1' }, { spec: { reservationName: 'vm2' } });
  const second = await eventually('ResourceClaim for vm2', async () => {
    const rc = await resourceClaimClient().find({ namespace: ns, name: 'c1' });
    return rc && rc.metadata?.uid !== first.metadata?.uid ? rc : undefined;
  });
  t.regex(second.spec.devices.requests[0]!.exactly!.selectors![0]!.cel!.expression, new RegExp(`"${ns}/vm2"`));
});
