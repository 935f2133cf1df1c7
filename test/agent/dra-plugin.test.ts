// The agent's kubelet DRA plugin over its real unix sockets, driven by a test acting as the
// kubelet, with ResourceClaims and the APNodeState on the real API server and the node's AP
// bus simulated: registration, prepare (CDI spec and metadata: contents and paths), prepare
// again (idempotent), a cross-namespace claim refused, unprepare (files gone, mdev kept), and
// the prepared metadata read the way KubeVirt's virt-launcher reads it.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { DRA_FLAGS, draSettingsFromFlags } from '../../src/agent/dra/flags.js';
import { startDraPlugin, type DraPlugin } from '../../src/agent/dra/plugin.js';
import { startAgent } from '../../src/commands/agent.js';
import { parseFlags } from '../../src/util/args.js';
import { CLAIM_REQUEST, DEVICE_CLASS, DRA_DRIVER, ResourceClaimType, draDeviceName, type ResourceClaim } from '../../src/api/dra.js';
import { API_VERSION } from '../../src/api/types.js';
import { CustomResourceClient, operatorClients } from '../../src/k8s/client.js';
import { logger } from '../../src/log.js';
import { kubeConfig, testNamespace } from '../support/cluster.js';
import { FakeKubelet, makeMdev, materializeMounts, mdevUuidAsVirtLauncherReadsIt, vfioNode } from './dra-support.js';

const UUID = '6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab';
const rcClient = () => new CustomResourceClient<ResourceClaim>(kubeConfig(), ResourceClaimType);

/** A ResourceClaim as the scheduler leaves it: allocated `device` of `node`'s pool. */
async function allocatedClaim(ns: string, name: string, node: string, device: string): Promise<ResourceClaim> {
  await rcClient().create({
    metadata: { name, namespace: ns },
    spec: { devices: { requests: [{ name: CLAIM_REQUEST, exactly: { deviceClassName: DEVICE_CLASS } }] } },
  });
  return rcClient().patchStatus(
    { namespace: ns, name },
    { status: { allocation: { devices: { results: [{ request: CLAIM_REQUEST, driver: DRA_DRIVER, pool: node, device }] } } } },
  );
}

interface Setup {
  ns: string;
  node: string;
  device: string;
  dirs: { root: string; registration: string; plugin: string; cdi: string; metadata: string };
  plugin: DraPlugin;
  kubelet: FakeKubelet;
  io: ReturnType<typeof vfioNode>['io'];
  model: ReturnType<typeof vfioNode>['model'];
}

async function setup(t: ExecutionContext): Promise<Setup> {
  const ns = await testNamespace(t, 'drap');
  const node = `${ns}-node`;
  const { io, model } = vfioNode(node);
  makeMdev(io, '11111111-2222-4333-8444-555555555555', [5], [1]); // someone else's: IOMMU group 0
  makeMdev(io, UUID, [5], [4], [4]); // ours: group 1
  // The controller's word on this node: the reservation's mdev and matrix.
  const states = operatorClients(kubeConfig()).nodeStates;
  await states.create({
    apiVersion: API_VERSION,
    kind: 'APNodeState',
    metadata: { name: node },
    spec: { mdevs: [{ uuid: UUID, reservation: `${ns}/vm1`, adapters: ['05'], domains: ['0004'], controlDomains: ['0004'] }] },
  });
  t.teardown(() => states.delete(node).then(() => undefined));
  // Short paths: a unix socket path has at most 107 bytes.
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dra-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const dirs = {
    root,
    registration: path.join(root, 'plugins_registry'),
    plugin: path.join(root, 'plugins', DRA_DRIVER),
    cdi: path.join(root, 'cdi'),
    metadata: path.join(root, 'md'),
  };
  const plugin = await startDraPlugin({
    kubeConfig: kubeConfig(),
    nodeName: node,
    io,
    registrationDir: dirs.registration,
    pluginDir: dirs.plugin,
    cdiDir: dirs.cdi,
    metadataRoot: dirs.metadata,
    log: logger('dra-plugin', { test: ns }),
  });
  t.teardown(() => plugin.stop());
  const kubelet = new FakeKubelet();
  t.teardown(() => kubelet.close());
  return { ns, node, device: draDeviceName(`${ns}/vm1`, UUID), dirs, plugin, kubelet, io, model };
}

test('registration: the kubelet learns the driver, the DRA socket and the services; its answer is kept', async (t) => {
  const s = await setup(t);
  t.deepEqual(fs.readdirSync(s.dirs.registration), ['ap.s390x.io-reg.sock']);
  t.true(fs.statSync(s.plugin.registrationSocket).isSocket());
  const info = await s.kubelet.getInfo(s.plugin.registrationSocket);
  t.deepEqual(info, {
    type: 'DRAPlugin',
    name: 'ap.s390x.io',
    endpoint: path.join(s.dirs.plugin, 'dra.sock'),
    supported_versions: ['v1.DRAPlugin', 'v1beta1.DRAPlugin'],
  });
  t.true(fs.statSync(info.endpoint).isSocket());
  await s.kubelet.notify(s.plugin.registrationSocket, false, 'version mismatch');
  t.deepEqual({ ...s.plugin.registration }, { registered: false, error: 'version mismatch' });
  await s.kubelet.notify(s.plugin.registrationSocket, true);
  t.deepEqual({ ...s.plugin.registration }, { registered: true, error: undefined });
});

test('prepare, prepare again, a cross-namespace claim, unprepare — and virt-launcher reads the mdev UUID', async (t) => {
  const s = await setup(t);
  const info = await s.kubelet.getInfo(s.plugin.registrationSocket);
  const rc = await allocatedClaim(s.ns, 'vm1-crypto', s.node, s.device);
  const claim = { namespace: s.ns, name: 'vm1-crypto', uid: rc.metadata!.uid! };
  const cdiName = `${claim.uid}-${CLAIM_REQUEST}`;

  const first = await s.kubelet.prepare(info.endpoint, [claim]);
  t.deepEqual(first.claims[claim.uid], {
    error: '',
    devices: [{ request_names: [CLAIM_REQUEST], pool_name: s.node, device_name: s.device, cdi_device_ids: [`ap.s390x.io/vfio-ap=${cdiName}`] }],
  });

  // The CDI spec: the two VFIO nodes (our mdev is IOMMU group 1) and the metadata mount.
  const specFile = path.join(s.dirs.cdi, `ap.s390x.io-${claim.uid}.json`);
  t.deepEqual(fs.readdirSync(s.dirs.cdi), [path.basename(specFile)]);
  const hostFile = path.join(s.dirs.metadata, claim.uid, CLAIM_REQUEST, 'ap.s390x.io-metadata.json');
  const containerFile = `/var/run/kubernetes.io/dra-device-attributes/resourceclaims/vm1-crypto/${CLAIM_REQUEST}/ap.s390x.io-metadata.json`;
  t.deepEqual(JSON.parse(fs.readFileSync(specFile, 'utf8')), {
    cdiVersion: '0.5.0',
    kind: 'ap.s390x.io/vfio-ap',
    devices: [
      {
        name: cdiName,
        containerEdits: {
          deviceNodes: [{ path: '/dev/vfio/vfio' }, { path: '/dev/vfio/1' }],
          mounts: [{ hostPath: hostFile, containerPath: containerFile, options: ['ro', 'nosuid', 'nodev', 'bind'] }],
        },
      },
    ],
  });
  const metadata = JSON.parse(fs.readFileSync(hostFile, 'utf8'));
  t.like(metadata, {
    apiVersion: 'metadata.resource.k8s.io/v1alpha1',
    kind: 'DeviceMetadata',
    metadata: { name: 'vm1-crypto', namespace: s.ns, uid: claim.uid },
  });
  t.deepEqual(metadata.requests, [
    {
      name: CLAIM_REQUEST,
      devices: [
        {
          driver: DRA_DRIVER,
          pool: s.node,
          name: s.device,
          attributes: { mdevUUID: { string: UUID }, 'ap.s390x.io/reservation': { string: `${s.ns}/vm1` }, 'ap.s390x.io/iommuGroup': { int: 1 } },
        },
      ],
    },
  ]);

  // Prepare again (a kubelet retry, v1beta1 this time): same answer, files not rewritten.
  const inodes = [fs.statSync(specFile).ino, fs.statSync(hostFile).ino];
  const again = await s.kubelet.prepare(info.endpoint, [claim], 'v1beta1');
  t.deepEqual(again.claims[claim.uid], first.claims[claim.uid]);
  t.deepEqual([fs.statSync(specFile).ino, fs.statSync(hostFile).ino], inodes);

  // virt-launcher's view: the mount in the compute container, read through the VMI's claim entry.
  const container = path.join(s.dirs.root, 'container');
  materializeMounts(specFile, cdiName, container);
  const base = path.join(container, '/var/run/kubernetes.io/dra-device-attributes');
  t.is(mdevUuidAsVirtLauncherReadsIt(base, [{ name: 'crypto', resourceClaimName: 'vm1-crypto' }], 'crypto', CLAIM_REQUEST), UUID);
  t.throws(() => mdevUuidAsVirtLauncherReadsIt(base, [{ name: 'crypto', resourceClaimName: 'vm1-crypto' }], 'crypto', 'other'), {
    message: /exactly one/,
  });

  // Another namespace's claim that got the same device allocated (a DeviceClass is cluster-wide).
  const otherNs = await testNamespace(t, 'drap-x');
  const stolen = await allocatedClaim(otherNs, `steal-${randomBytes(2).toString('hex')}`, s.node, s.device);
  const thief = { namespace: otherNs, name: stolen.metadata!.name!, uid: stolen.metadata!.uid! };
  const refused = await s.kubelet.prepare(info.endpoint, [thief, claim]);
  t.regex(refused.claims[thief.uid]!.error, new RegExp(`refused: device .* belongs to reservation ${s.ns}/vm1; a claim in namespace ${otherNs} cannot use it`));
  t.deepEqual(refused.claims[thief.uid]!.devices, []);
  t.is(refused.claims[claim.uid]!.error, '', 'the legitimate claim in the same call is still prepared');
  t.deepEqual(fs.readdirSync(s.dirs.cdi), [path.basename(specFile)]);
  t.false(fs.existsSync(path.join(s.dirs.metadata, thief.uid)));

  // Unprepare: our files go, the mdev stays (it is the reservation's); a repeat is fine.
  const done = await s.kubelet.unprepare(info.endpoint, [claim]);
  t.deepEqual(done.claims, { [claim.uid]: { error: '' } });
  t.deepEqual(fs.readdirSync(s.dirs.cdi), []);
  t.deepEqual(fs.readdirSync(s.dirs.metadata), []);
  t.truthy(s.model.mdevs.get(UUID));
  t.deepEqual(s.io.list('devices/vfio_ap/matrix').filter((e) => e === UUID), [UUID]);
  t.deepEqual((await s.kubelet.unprepare(info.endpoint, [claim])).claims, { [claim.uid]: { error: '' } });
});

test('a claim not yet allocated, or gone from the API server, is reported per claim', async (t) => {
  const s = await setup(t);
  await rcClient().create({ metadata: { name: 'unallocated', namespace: s.ns }, spec: { devices: { requests: [{ name: CLAIM_REQUEST, exactly: { deviceClassName: DEVICE_CLASS } }] } } });
  const unallocated = await rcClient().get({ namespace: s.ns, name: 'unallocated' });
  const gone = { namespace: s.ns, name: 'never-created', uid: '3f1d2c4b-0000-4000-8000-000000000000' };
  const res = await s.kubelet.prepare(s.plugin.pluginSocket, [{ namespace: s.ns, name: 'unallocated', uid: unallocated.metadata!.uid! }, gone]);
  t.regex(res.claims[unallocated.metadata!.uid!]!.error, /no device of driver ap\.s390x\.io allocated/);
  t.regex(res.claims[gone.uid]!.error, /not found/);
  t.is(s.plugin.stats.refused, 2);
});

test('both sockets are for their owner only (0600), whatever the umask', async (t) => {
  const umask = process.umask(0o000);
  try {
    const s = await setup(t);
    for (const socket of [s.plugin.registrationSocket, s.plugin.pluginSocket]) {
      const st = fs.statSync(socket);
      t.true(st.isSocket());
      t.is(st.mode & 0o777, 0o600, socket);
    }
  } finally {
    process.umask(umask);
  }
});

test('every claim uid the kubelet sends gets its answer, even __proto__ and constructor', async (t) => {
  const s = await setup(t);
  const odd = ['__proto__', 'constructor'].map((uid) => ({ namespace: s.ns, name: 'whatever', uid }));
  const prepared = await s.kubelet.prepare(s.plugin.pluginSocket, odd);
  const unprepared = await s.kubelet.unprepare(s.plugin.pluginSocket, odd);
  for (const { uid } of odd) {
    // The test's client decodes the map into a plain object too: a `__proto__` entry lands as its prototype.
    const got = (res: { claims: object }) => (Object.prototype.hasOwnProperty.call(res.claims, uid) || uid === '__proto__' ? (res.claims as Record<string, { error?: string }>)[uid] : undefined);
    t.regex(got(prepared)?.error ?? '(no answer)', /not found|not a Kubernetes uid/, `${uid}: prepare refused with a reason`);
    t.is(typeof got(unprepared)?.error, 'string', `${uid}: unprepare answered`);
  }
});

test('stop removes both sockets', async (t) => {
  const s = await setup(t);
  await s.plugin.stop();
  t.false(fs.existsSync(s.plugin.registrationSocket));
  t.false(fs.existsSync(s.plugin.pluginSocket));
});

test('startAgent with `dra` serves the plugin next to the agent loop; stop ends both', async (t) => {
  const ns = await testNamespace(t, 'drap');
  const node = `${ns}-node`;
  const { model } = vfioNode(node);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'dra-'));
  t.teardown(() => fs.rmSync(root, { recursive: true, force: true }));
  const agent = await startAgent({
    kubeConfig: kubeConfig(),
    nodeName: node,
    model,
    recordEvents: false,
    log: logger('agent', { test: ns }),
    dra: { registrationDir: path.join(root, 'reg'), pluginDir: path.join(root, 'plugin'), cdiDir: path.join(root, 'cdi'), metadataRoot: path.join(root, 'md') },
  });
  t.teardown(() => operatorClients(kubeConfig()).nodeStates.delete(node).then(() => undefined));
  t.teardown(() => agent.stop());
  await agent.ready();
  const kubelet = new FakeKubelet();
  t.teardown(() => kubelet.close());
  const info = await kubelet.getInfo(path.join(root, 'reg', 'ap.s390x.io-reg.sock'));
  t.is(info.endpoint, path.join(root, 'plugin', 'dra.sock'));
  t.is(agent.dra?.pluginSocket, info.endpoint);
  await agent.stop();
  t.false(fs.existsSync(info.endpoint));
});

test('agent flags: --dra-plugin turns the plugin on; directory flags override the defaults', (t) => {
  const parse = (args: string[]) => draSettingsFromFlags(parseFlags(args, { ...DRA_FLAGS }));
  t.is(parse([]), undefined);
  t.is(parse(['--cdi-dir', '/x']), undefined, 'directories alone do not start it');
  t.deepEqual(parse(['--dra-plugin']), {});
  t.deepEqual(parse(['--dra-plugin', '--dra-registration-dir=/r', '--dra-plugin-dir', '/p', '--cdi-dir', '/c', '--dra-metadata-dir', '/m']), {
    registrationDir: '/r',
    pluginDir: '/p',
    cdiDir: '/c',
    metadataRoot: '/m',
  });
});
