// deploy/admission/claims-by-controller.yaml on the real API server: a user who may create
// ResourceClaims in a namespace cannot create one (or a template, or a firstAvailable
// alternative) for the operator's DeviceClass, nor an adminAccess claim on its driver; the
// controller's ServiceAccount can; claims for other classes are not this policy's business.
// The policy is applied as deploy/ has it, with the DeviceClass and the controller account it
// names changed to this test's own, so nothing else on the shared control plane is affected.
import test from 'ava';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { applyPolicyCopy, eventually, kubectl, testNamespace } from './support/cluster.js';

const POLICY_FILE = path.join(import.meta.dirname, '..', 'deploy', 'admission', 'claims-by-controller.yaml');
const DEPLOYED_CONTROLLER = 'system:serviceaccount:apqn-controller:apqn-controller';
const DEPLOYED_CLASS = "'vfio-ap.ap.s390x.io'";

function claim(name: string, request: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaim', metadata: { name }, spec: { devices: { requests: [{ name: 'vfio', ...request }] } } };
}

test('only the controller creates claims for the operator\'s DeviceClass; a tenant who may create ResourceClaims is refused, saying why', async (t) => {
  const ns = await testNamespace(t, 'cc');
  const sfx = randomBytes(3).toString('hex');
  const klass = `apqn-test-${sfx}.example.com`;
  const controller = `system:serviceaccount:${ns}:ctl`;
  applyPolicyCopy(t, POLICY_FILE, [[DEPLOYED_CONTROLLER, controller], [DEPLOYED_CLASS, `'${klass}'`]], sfx);
  const ok = (r: { status: number; stderr: string }) => t.is(r.status, 0, r.stderr);
  // The tenant (and the stand-in controller) may create claims and templates here.
  ok(kubectl(['create', 'role', 'claims', '-n', ns, '--verb=create,get', '--resource=resourceclaims.resource.k8s.io,resourceclaimtemplates.resource.k8s.io']));
  ok(kubectl(['create', 'rolebinding', 'claims', '-n', ns, '--role=claims', '--user=alice', `--serviceaccount=${ns}:ctl`]));
  ok(kubectl(['label', 'namespace', ns, 'resource.kubernetes.io/admin-access=true']));

  const create = (as: string, object: Record<string, unknown>) => kubectl(['create', '-n', ns, '-f', '-', `--as=${as}`], JSON.stringify(object));
  const ours = claim('mine', { exactly: { deviceClassName: klass } });
  // The policy takes a moment to be in force (a claim admitted before is deleted again).
  const first = await eventually(
    'the policy in force',
    () => {
      const r = create('alice', ours);
      if (r.status !== 0) return r;
      kubectl(['delete', 'resourceclaim', 'mine', '-n', ns, '--wait=false']);
      return undefined;
    },
    30_000,
    200,
  );
  t.not(first.status, 0, 'a claim for the DeviceClass by a tenant');
  t.regex(first.stderr, /made by the apqn-operator controller, for a\s+bound APQNClaim: create an APQNClaim naming your reservation instead/);

  const refusedAs = (object: Record<string, unknown>, why: RegExp, what: string) => {
    const r = create('alice', object);
    t.not(r.status, 0, what);
    t.regex(r.stderr, why, what);
  };
  refusedAs(claim('alt', { firstAvailable: [{ name: 'other', deviceClassName: `other-${sfx}` }, { name: 'ours', deviceClassName: klass }] }), /made by the apqn-operator controller/, 'a firstAvailable alternative');
  refusedAs(
    { apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaimTemplate', metadata: { name: 'tpl' }, spec: { spec: { devices: { requests: [{ name: 'vfio', exactly: { deviceClassName: klass } }] } } } },
    /made by the apqn-operator controller/,
    'a template',
  );
  refusedAs(
    claim('admin', { exactly: { deviceClassName: `other-${sfx}`, adminAccess: true, selectors: [{ cel: { expression: 'device.driver == "ap.s390x.io"' } }] } }),
    /adminAccess to devices of driver ap\.s390x\.io/,
    'adminAccess on the driver through another class',
  );

  ok(create('alice', claim('elsewhere', { exactly: { deviceClassName: `other-${sfx}` } })));
  ok(create(controller, claim('by-controller', { exactly: { deviceClassName: klass } })));
  const names = kubectl(['get', 'resourceclaims', '-n', ns, '-o', 'jsonpath={.items[*].metadata.name}']).stdout.split(' ').sort();
  t.deepEqual(names, ['by-controller', 'elsewhere']);
});
