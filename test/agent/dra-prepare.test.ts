// The DRA plugin's decisions without sockets or API server: which allocated devices a node
// prepares (ours, on this node, named by its spec, of the claim's namespace, mdev present with
// the reserved matrix), the VFIO facts read from sysfs, and the files' paths and contents.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import test from 'ava';
import {
  cdiDeviceId,
  cdiSpec,
  metadataContainerPath,
  metadataDocument,
  metadataHostPath,
  removeClaimFiles,
  writeClaimFiles,
  type FileLocations,
} from '../../src/agent/dra/files.js';
import { PrepareRefusal, planPrepare, type ClaimRef } from '../../src/agent/dra/prepare.js';
import { CLAIM_REQUEST, DRA_DRIVER, draDeviceName, type ResourceClaim } from '../../src/api/dra.js';
import type { MdevIntent } from '../../src/api/types.js';
import { readMdevVfio } from '../../src/apbus/backend/vfio-device.js';
import { SysfsError } from '../../src/apbus/errno.js';
import { RealSysfs } from '../../src/apbus/real-sysfs.js';
import { renderSysfs } from '../../src/apbus/render.js';
import { makeMdev, vfioNode } from './dra-support.js';

const NODE = 'node-a';
const UUID = '6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab';
const OTHER_UUID = '11111111-2222-4333-8444-555555555555';
const intent: MdevIntent = { uuid: UUID, reservation: 'payments/vm1', adapters: ['05'], domains: ['0004'], controlDomains: ['0004'] };
const DEVICE = draDeviceName(intent.reservation, UUID);
const ref: ClaimRef = { namespace: 'payments', name: 'vm1-crypto', uid: '0b0c9a6e-1111-4222-8333-944455556666' };

function rc(results: Array<Partial<{ request: string; driver: string; pool: string; device: string; adminAccess: boolean }>>, uid = ref.uid): ResourceClaim {
  return {
    metadata: { name: ref.name, namespace: ref.namespace, uid },
    spec: { devices: { requests: [] } },
    status: {
      allocation: {
        devices: { results: results.map((r) => ({ request: CLAIM_REQUEST, driver: DRA_DRIVER, pool: NODE, device: DEVICE, ...r })) },
      },
    },
  };
}

function node() {
  const { io, model } = vfioNode(NODE);
  makeMdev(io, UUID, [5], [4], [4]);
  return { io, model };
}

test('the mdev VFIO facts: IOMMU group from the link, device API from the type', (t) => {
  const { io } = node();
  makeMdev(io, OTHER_UUID, [5], [5]);
  t.deepEqual(readMdevVfio(io, UUID), { uuid: UUID, iommuGroup: 0, deviceApi: 'vfio-ap', mdevType: 'vfio_ap-passthrough' });
  t.is(readMdevVfio(io, OTHER_UUID.toUpperCase()).iommuGroup, 1);
  const missing = t.throws(() => readMdevVfio(io, '22222222-2222-4333-8444-555555555555'));
  t.true(missing instanceof SysfsError && missing.errno === 'ENOENT');
});

test('the same VFIO facts from a real on-disk sysfs tree (links followed by the file system)', (t) => {
  const { io } = node();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apqn-dra-sysfs-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  renderSysfs(io, dir);
  const real = new RealSysfs(dir);
  t.deepEqual(readMdevVfio(real, UUID), readMdevVfio(io, UUID));
  t.deepEqual(planPrepare(ref, rc([{}]), NODE, [intent], real), planPrepare(ref, rc([{}]), NODE, [intent], io));
});

test('prepare: the allocated device of this node, its mdev and /dev/vfio group', (t) => {
  const { io } = node();
  t.deepEqual(planPrepare(ref, rc([{}]), NODE, [intent], io), [
    { request: CLAIM_REQUEST, pool: NODE, device: DEVICE, mdevUUID: UUID, iommuGroup: 0, reservation: 'payments/vm1' },
  ]);
});

const refusals: Array<{ why: string; claim?: ResourceClaim; ref?: ClaimRef; mdevs?: MdevIntent[]; bus?: 'no-mdev' | 'other-matrix'; message: RegExp }> = [
  { why: 'a claim from another namespace than the reservation', ref: { ...ref, namespace: 'intruders' }, message: /refused: .*payments\/vm1.*namespace intruders/ },
  { why: 'the ResourceClaim was recreated (uid differs)', claim: rc([{}], 'another-uid'), message: /deleted and recreated/ },
  { why: 'nothing of this driver allocated', claim: rc([{ driver: 'gpu.example.com' }]), message: /no device of driver ap\.s390x\.io/ },
  { why: 'not allocated at all', claim: { ...rc([]), status: {} }, message: /no device of driver/ },
  { why: 'two vfio_ap devices in one claim', claim: rc([{}, { request: 'second' }]), message: /2 vfio_ap devices; a guest can use one/ },
  { why: 'admin access', claim: rc([{ adminAccess: true }]), message: /admin access/ },
  { why: 'a device of another node', claim: rc([{ pool: 'node-b' }]), message: /not on node node-a/ },
  { why: 'a device no mdev of this node spec names', mdevs: [], message: /not a reservation of node node-a/ },
  { why: 'the mdev is not on the bus yet', bus: 'no-mdev', message: /does not exist on this node/ },
  { why: 'the mdev has another matrix', bus: 'other-matrix', message: /does not have the matrix reservation payments\/vm1 reserved/ },
];
for (const c of refusals) {
  test(`prepare refuses: ${c.why}`, (t) => {
    const { io } = vfioNode(NODE);
    if (c.bus !== 'no-mdev') makeMdev(io, UUID, [5], c.bus === 'other-matrix' ? [4, 5] : [4], [4]);
    const err = t.throws(() => planPrepare(c.ref ?? ref, c.claim ?? rc([{}]), NODE, c.mdevs ?? [intent], io));
    t.true(err instanceof PrepareRefusal, String(err));
    t.regex(err!.message, c.message);
  });
}

test('paths: metadata where virt-launcher looks (direct and template claims); hostile names refused', (t) => {
  const loc: FileLocations = { cdiDir: '/var/run/cdi', metadataRoot: '/var/run/apqn-operator/dra-metadata' };
  t.is(
    metadataContainerPath({ ...ref }, 'apqn'),
    '/var/run/kubernetes.io/dra-device-attributes/resourceclaims/vm1-crypto/apqn/ap.s390x.io-metadata.json',
  );
  t.is(
    metadataContainerPath({ ...ref, name: 'vm1-apqn-x7k2p', podClaimName: 'apqn' }, 'apqn'),
    '/var/run/kubernetes.io/dra-device-attributes/resourceclaimtemplates/apqn/apqn/ap.s390x.io-metadata.json',
  );
  t.is(metadataHostPath(loc, ref.uid, 'apqn'), `/var/run/apqn-operator/dra-metadata/${ref.uid}/apqn/ap.s390x.io-metadata.json`);
  t.is(cdiDeviceId(ref.uid, 'apqn'), `ap.s390x.io/vfio-ap=${ref.uid}-apqn`);
  t.throws(() => metadataHostPath(loc, '../../etc', 'apqn'));
  t.throws(() => metadataHostPath(loc, ref.uid, '../x'));
  t.throws(() => metadataContainerPath({ ...ref, name: 'a/../../b' }, 'apqn'));
});

test('files: metadata document, CDI spec, idempotent writes, removal of exactly those files', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apqn-dra-files-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const loc: FileLocations = { cdiDir: path.join(dir, 'cdi'), metadataRoot: path.join(dir, 'md') };
  const device = { request: 'apqn', pool: NODE, device: DEVICE, mdevUUID: UUID, iommuGroup: 3, reservation: 'payments/vm1' };
  t.deepEqual(metadataDocument({ ...ref, generation: 2 }, device), {
    apiVersion: 'metadata.resource.k8s.io/v1alpha1',
    kind: 'DeviceMetadata',
    metadata: { name: ref.name, namespace: ref.namespace, uid: ref.uid, generation: 2 },
    requests: [
      {
        name: 'apqn',
        devices: [
          {
            driver: DRA_DRIVER,
            pool: NODE,
            name: DEVICE,
            attributes: { mdevUUID: { string: UUID }, 'ap.s390x.io/reservation': { string: 'payments/vm1' }, 'ap.s390x.io/iommuGroup': { int: 3 } },
          },
        ],
      },
    ],
  });
  const spec = cdiSpec(loc, ref, [device]) as { cdiVersion: string; kind: string; devices: Array<{ name: string; containerEdits: Record<string, unknown> }> };
  t.is(spec.kind, 'ap.s390x.io/vfio-ap');
  t.deepEqual(spec.devices[0]!.containerEdits['deviceNodes'], [{ path: '/dev/vfio/vfio' }, { path: '/dev/vfio/3' }]);

  // Somebody else's files in the same directories stay.
  fs.mkdirSync(loc.cdiDir, { recursive: true });
  fs.writeFileSync(path.join(loc.cdiDir, 'nvidia.com-gpu.json'), '{}');
  t.is(writeClaimFiles(loc, ref, [device]), 2);
  t.is(writeClaimFiles(loc, ref, [device]), 0, 'unchanged content is not rewritten');
  removeClaimFiles(loc, ref.uid);
  removeClaimFiles(loc, ref.uid);
  t.deepEqual(fs.readdirSync(loc.cdiDir), ['nvidia.com-gpu.json']);
  t.deepEqual(fs.readdirSync(loc.metadataRoot), []);
});
