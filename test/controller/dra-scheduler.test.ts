// The whole cluster-side path with the real kube-scheduler: reservation Ready (controller + fake
// agent) → device published → claim Bound → ResourceClaim created and owned → a
// virt-launcher-shaped Pod naming it is allocated exactly the reservation's device and bound to
// its node; the APQNClaim mirrors the allocation and the pod. A claim for a device on a
// cordoned node never lands elsewhere; a second claim for an allocated device stays
// unschedulable. Fake Nodes stand in for kubelets (none runs here).
import * as k8s from '@kubernetes/client-node';
import test, { type ExecutionContext } from 'ava';
import { CLAIM_REQUEST, DEVICE_CLASS, DRA_DRIVER, MANAGED_BY, MANAGED_BY_LABEL, draDeviceName, reservationSelector, type ResourceClaim } from '../../src/api/dra.js';
import { API_VERSION } from '../../src/api/types.js';
import { eventually, kubeConfig } from '../support/cluster.js';
import { condition, harness, twoCardNode } from './runtime-support.js';
import { applyDeviceClassFromDeploy, cordon, publishedDevices, resourceClaimClient, schedulableNode } from './dra-support.js';

interface PodView {
  nodeName?: string;
  scheduled?: { status: string; reason?: string; message?: string };
}

/** A pod shaped like KubeVirt's virt-launcher for a VMI whose hostDevices name `claimName`. */
async function launcherPod(ns: string, vmi: string, claimName: string): Promise<string> {
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  const name = `virt-launcher-${vmi}-x7k2p`;
  await core.createNamespacedPod({
    namespace: ns,
    body: {
      metadata: { name, labels: { 'kubevirt.io': 'virt-launcher', 'vm.kubevirt.io/name': vmi, 'kubevirt.io/created-by': 'test' } },
      spec: {
        nodeSelector: { 'kubernetes.io/arch': 's390x', 'kubevirt.io/schedulable': 'true' },
        resourceClaims: [{ name: claimName, resourceClaimName: claimName }],
        containers: [
          {
            name: 'compute',
            image: 'quay.io/kubevirt/virt-launcher:v1.8.0',
            command: ['/usr/bin/virt-launcher-monitor'],
            resources: { requests: { cpu: '100m', memory: '256Mi' }, claims: [{ name: claimName }] },
          },
        ],
      },
    },
  });
  return name;
}

async function pod(ns: string, name: string): Promise<PodView> {
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  const p = await core.readNamespacedPod({ namespace: ns, name });
  const c = p.status?.conditions?.find((x) => x.type === 'PodScheduled');
  return { nodeName: p.spec?.nodeName, ...(c ? { scheduled: { status: c.status, reason: c.reason, message: c.message } } : {}) };
}

const schedulable = { 'kubevirt.io/schedulable': 'true' };

/** Waits until the pod is bound to a node; on timeout the error carries the scheduler's last word. */
async function boundPod(ns: string, name: string): Promise<PodView> {
  let last: PodView | undefined;
  try {
    return await eventually(`pod ${name} bound to a node`, async () => {
      last = await pod(ns, name);
      return last.nodeName ? last : undefined;
    }, 60_000);
  } catch (err) {
    throw new Error(`${(err as Error).message}; PodScheduled: ${JSON.stringify(last?.scheduled)}`);
  }
}

/** Two simulated nodes the scheduler may use, their agents, and the controller (with its DRA side). */
async function twoSchedulableNodes(t: ExecutionContext) {
  applyDeviceClassFromDeploy();
  const h = await harness(t);
  await h.agent('a', twoCardNode);
  await h.agent('b', twoCardNode);
  await schedulableNode(t, h.node('a'), schedulable);
  await schedulableNode(t, h.node('b'), schedulable);
  await h.controller(); // startController runs the DRA side too
  return h;
}

test('a launcher pod gets exactly the reservation device and its node; the claim mirrors it; a second claim for that device waits', async (t) => {
  const h = await twoSchedulableNodes(t);

  await h.reserve('vm1', { nodeName: h.node('a'), apqns: ['05.0004', '06.0004'], controlDomains: ['0004'] });
  const r = await h.waitFor('vm1', 'Ready', 'True');
  const device = draDeviceName(`${h.ns}/vm1`, r.status!.mdevUUID!);
  await eventually('the device is published', async () => ((await publishedDevices(h.node('a'))).some((d) => d.name === device) ? true : undefined));

  await h.claim('vm1-crypto', { reservationName: 'vm1', guest: { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: 'vm1' } });
  const bound = await h.waitForClaim('vm1-crypto', (c) => c.status?.resourceClaimName === 'vm1-crypto', 'resourceClaimName published');
  t.is(bound.status?.phase, 'Bound');
  t.is(condition(bound, 'Allocated')?.reason, 'NotAllocated');
  t.is(condition(bound, 'InUse')?.status, 'False');

  const rc = await resourceClaimClient().get({ namespace: h.ns, name: 'vm1-crypto' });
  t.is(rc.metadata?.labels?.[MANAGED_BY_LABEL], MANAGED_BY);
  t.deepEqual(rc.metadata?.ownerReferences, [
    { apiVersion: API_VERSION, kind: 'APQNClaim', name: 'vm1-crypto', uid: bound.metadata.uid!, controller: true, blockOwnerDeletion: true },
  ]);
  t.deepEqual(rc.spec.devices.requests, [
    {
      name: CLAIM_REQUEST,
      exactly: {
        deviceClassName: DEVICE_CLASS,
        allocationMode: 'ExactCount',
        count: 1,
        selectors: [{ cel: { expression: reservationSelector(`${h.ns}/vm1`) } }],
      },
    },
  ]);

  const launcher = await launcherPod(h.ns, 'vm1', 'vm1-crypto');
  const placed = await boundPod(h.ns, launcher);
  t.is(placed.nodeName, h.node('a'));
  const allocated = await resourceClaimClient().get({ namespace: h.ns, name: 'vm1-crypto' });
  t.deepEqual(
    allocated.status?.allocation?.devices?.results?.map((x) => ({ request: x.request, driver: x.driver, pool: x.pool, device: x.device })),
    [{ request: CLAIM_REQUEST, driver: DRA_DRIVER, pool: h.node('a'), device }],
  );
  t.deepEqual(allocated.status?.reservedFor?.map((c) => [c.resource, c.name]), [['pods', launcher]]);

  const mirrored = await h.waitForClaim('vm1-crypto', (c) => condition(c, 'InUse')?.status === 'True', 'InUse=True');
  t.is(condition(mirrored, 'Allocated')?.status, 'True');
  t.regex(condition(mirrored, 'Allocated')!.message, new RegExp(`${h.node('a')}/${device}`));
  t.is(condition(mirrored, 'InUse')?.message, `in use by pod ${launcher}`);
  t.is(mirrored.status?.phase, 'Bound'); // the binder's fields are untouched

  // Someone else's claim for the same (allocated) device: its pod can never be scheduled.
  const intruder: ResourceClaim = {
    metadata: { name: 'intruder', namespace: h.ns },
    spec: {
      devices: {
        requests: [{ name: 'apqn', exactly: { deviceClassName: DEVICE_CLASS, selectors: [{ cel: { expression: reservationSelector(`${h.ns}/vm1`) } }] } }],
      },
    },
  };
  await resourceClaimClient().create(intruder);
  const second = await launcherPod(h.ns, 'vm9', 'intruder');
  const waiting = await eventually(
    'the second pod is reported unschedulable',
    async () => {
      const p = await pod(h.ns, second);
      return p.scheduled?.status === 'False' ? p : undefined;
    },
    60_000,
  );
  t.is(waiting.scheduled?.reason, 'Unschedulable');
  t.is(waiting.nodeName, undefined);
  t.is((await resourceClaimClient().get({ namespace: h.ns, name: 'intruder' })).status?.allocation, undefined);
});

test('a claim for a device on a cordoned node waits instead of landing on another node', async (t) => {
  const h = await twoSchedulableNodes(t);

  await h.reserve('vm2', { nodeName: h.node('b'), apqns: ['07.0005'] });
  const r = await h.waitFor('vm2', 'Ready', 'True');
  const device = draDeviceName(`${h.ns}/vm2`, r.status!.mdevUUID!);
  await eventually('the device is published', async () => ((await publishedDevices(h.node('b'))).some((d) => d.name === device) ? true : undefined));
  await h.claim('vm2-crypto', { reservationName: 'vm2' });
  await h.waitForClaim('vm2-crypto', (c) => c.status?.resourceClaimName === 'vm2-crypto', 'resourceClaimName published');
  await eventually('the ResourceClaim exists', () => resourceClaimClient().find({ namespace: h.ns, name: 'vm2-crypto' }));

  await cordon(h.node('b'), true);
  const launcher = await launcherPod(h.ns, 'vm2', 'vm2-crypto');
  const waiting = await eventually(
    'the pod is reported unschedulable',
    async () => {
      const p = await pod(h.ns, launcher);
      return p.scheduled?.status === 'False' ? p : undefined;
    },
    60_000,
  );
  t.is(waiting.nodeName, undefined, 'node a has room, but not the device');
  t.is(waiting.scheduled?.reason, 'Unschedulable');

  await cordon(h.node('b'), false);
  const placed = await boundPod(h.ns, launcher);
  t.is(placed.nodeName, h.node('b'));
});
