// Matrix mdevs: create/remove, assign_*/unassign_* and ap_config with the kernel's order of
// checks, matrix/guest_matrix/control_domains text, queue status, guests, resets.
import test from 'ava';
import type { KernelProfile } from '../../src/apbus/model/index.js';
import { CREATE, MATRIX, UUID1, UUID2, UUID3, createMdev, driverOf, errnoOf, makeNode, mdev, q } from './model-fixture.js';

const TYPE_DIR = `${MATRIX}/mdev_supported_types/vfio_ap-passthrough`;
const Z = '0'.repeat(64);
const maskHex = (...bits: number[]) => {
  const nibbles = new Array(64).fill(0);
  for (const b of bits) nibbles[b >> 2] |= 8 >> (b & 3);
  return '0x' + nibbles.map((n) => n.toString(16)).join('');
};

/** A node where adapters 05 and 06 belong to vfio_ap; 07 stays with the host. */
function vfioNode(kernel: KernelProfile = '6.10') {
  const node = makeNode({ kernel });
  node.sys.write('bus/ap/apmask', '-5-6');
  return node;
}

// ---------------------------------------------------------------- create

const createCases: Array<{ why: string; write: string; errno: string; dir?: string }> = [
  { why: 'a lower-case UUID', write: UUID1, errno: 'ok', dir: UUID1 },
  { why: 'one trailing newline', write: `${UUID1}\n`, errno: 'ok', dir: UUID1 },
  { why: 'upper case is the same UUID, named in lower case', write: UUID1.toUpperCase(), errno: 'ok', dir: UUID1 },
  { why: 'the 37th byte is not looked at (create_store)', write: `${UUID1}x`, errno: 'ok', dir: UUID1 },
  { why: 'too short', write: UUID1.slice(0, 35), errno: 'EINVAL' },
  { why: 'too long', write: `${UUID1}\n\n`, errno: 'EINVAL' },
  { why: 'not hex', write: UUID1.replace('6d2f', 'zz2f'), errno: 'EINVAL' },
  { why: 'dashes in the wrong place', write: UUID1.replace('-', '0').replace('1b3c', '1b3-'), errno: 'EINVAL' },
  { why: 'no dashes at all (32 chars)', write: UUID1.replaceAll('-', ''), errno: 'EINVAL' },
];
for (const c of createCases) {
  test(`create: ${c.why} -> ${c.errno}`, (t) => {
    const { sys } = makeNode();
    t.is(errnoOf(() => sys.write(CREATE, c.write)), c.errno);
    if (c.dir) t.true(sys.exists(mdev(c.dir)));
    else t.deepEqual(sys.list(MATRIX), ['mdev_supported_types']);
  });
}

test('create: an existing UUID, in any letter case, is EEXIST', (t) => {
  const { sys } = makeNode();
  sys.write(CREATE, UUID1);
  t.is(errnoOf(() => sys.write(CREATE, UUID1)), 'EEXIST');
  t.is(errnoOf(() => sys.write(CREATE, UUID1.toUpperCase())), 'EEXIST');
});

test('the mdev type directory and a new mdev as sysfs shows them', (t) => {
  const { sys } = makeNode();
  t.is(sys.read(`${TYPE_DIR}/name`), 'VFIO AP Passthrough Device\n');
  t.is(sys.read(`${TYPE_DIR}/device_api`), 'vfio-ap\n');
  t.is(sys.read(`${TYPE_DIR}/available_instances`), '65536\n');
  sys.write(CREATE, UUID1);
  t.is(sys.read(`${TYPE_DIR}/available_instances`), '65535\n');
  t.deepEqual(sys.list(`${TYPE_DIR}/devices`), [UUID1]);
  t.is(sys.readlink(`${TYPE_DIR}/devices/${UUID1}`), `../../../${UUID1}`);
  t.is(sys.read(`${TYPE_DIR}/devices/${UUID1}/matrix`), '');
  t.is(sys.readlink(`${mdev(UUID1)}/mdev_type`), '../mdev_supported_types/vfio_ap-passthrough');
  t.is(sys.read(`${mdev(UUID1)}/mdev_type/device_api`), 'vfio-ap\n');
  t.is(sys.readlink(`${mdev(UUID1)}/iommu_group`), '../../../../kernel/iommu_groups/0');
  t.deepEqual(sys.list('kernel/iommu_groups/0/devices'), [UUID1]);
  t.is(sys.readlink(`kernel/iommu_groups/0/devices/${UUID1}`), `../../../../devices/vfio_ap/matrix/${UUID1}`);
  t.is(sys.read(`kernel/iommu_groups/0/devices/${UUID1}/matrix`), '');
});

test('iommu groups: lowest free number, reused after remove', (t) => {
  const { sys } = makeNode();
  sys.write(CREATE, UUID1);
  sys.write(CREATE, UUID2);
  t.is(sys.readlink(`${mdev(UUID2)}/iommu_group`), '../../../../kernel/iommu_groups/1');
  sys.write(`${mdev(UUID1)}/remove`, '1');
  sys.write(CREATE, UUID3);
  t.is(sys.readlink(`${mdev(UUID3)}/iommu_group`), '../../../../kernel/iommu_groups/0');
  t.deepEqual(sys.list('kernel/iommu_groups'), ['0', '1']);
});

const attrsByKernel: Array<[KernelProfile, boolean]> = [
  ['5.15', false],
  ['6.10', true],
  ['6.19', true],
];
for (const [kernel, apConfig] of attrsByKernel) {
  test(`mdev attributes on ${kernel}${apConfig ? ' include' : ' lack'} ap_config`, (t) => {
    const { sys } = makeNode({ kernel });
    sys.write(CREATE, UUID1);
    const want = [
      'assign_adapter',
      'assign_control_domain',
      'assign_domain',
      'control_domains',
      'guest_matrix',
      'iommu_group',
      'matrix',
      'mdev_type',
      'remove',
      'unassign_adapter',
      'unassign_control_domain',
      'unassign_domain',
    ];
    if (apConfig) want.unshift('ap_config');
    t.deepEqual(sys.list(mdev(UUID1)), want);
  });
}

// ---------------------------------------------------------------- assign / unassign

interface AssignCase {
  why: string;
  file: string;
  value: string;
  errno: string;
}
const parseCases: AssignCase[] = [
  { why: 'decimal', file: 'assign_adapter', value: '5', errno: 'ok' },
  { why: 'hex with 0x', file: 'assign_adapter', value: '0x5', errno: 'ok' },
  { why: 'a trailing newline', file: 'assign_adapter', value: '5\n', errno: 'ok' },
  { why: 'leading 0 is octal: 010 is 8', file: 'assign_adapter', value: '010', errno: 'ok' },
  { why: "'0a' is invalid octal", file: 'assign_adapter', value: '0a', errno: 'EINVAL' },
  { why: "'08' is invalid octal", file: 'assign_domain', value: '08', errno: 'EINVAL' },
  { why: 'negative', file: 'assign_adapter', value: '-1', errno: 'EINVAL' },
  { why: 'letters', file: 'assign_domain', value: 'abc', errno: 'EINVAL' },
  { why: 'a trailing space', file: 'assign_adapter', value: '5 ', errno: 'EINVAL' },
  { why: 'a leading space', file: 'assign_control_domain', value: ' 5', errno: 'EINVAL' },
  { why: 'two newlines', file: 'unassign_adapter', value: '5\n\n', errno: 'EINVAL' },
  { why: 'too big for 64 bits (kstrtoul: ERANGE)', file: 'assign_adapter', value: '99999999999999999999', errno: 'ERANGE' },
  { why: 'adapter 255 is the maximum', file: 'assign_adapter', value: '255', errno: 'ok' },
  { why: 'adapter above the maximum', file: 'assign_adapter', value: '256', errno: 'ENODEV' },
  { why: 'domain above ap_max_domain_id (84)', file: 'assign_domain', value: '85', errno: 'ENODEV' },
  { why: 'control domain above ap_max_domain_id', file: 'assign_control_domain', value: '0x55', errno: 'ENODEV' },
  { why: 'unassign above the maximum', file: 'unassign_domain', value: '300', errno: 'ENODEV' },
  { why: 'unassign control domain above the maximum', file: 'unassign_control_domain', value: '85', errno: 'ENODEV' },
  { why: 'unassigning what is not assigned is a no-op', file: 'unassign_adapter', value: '7', errno: 'ok' },
  { why: 'unassigning a domain not assigned is a no-op', file: 'unassign_domain', value: '4', errno: 'ok' },
  { why: 'an empty write is a no-op (sysfs never calls the store)', file: 'assign_adapter', value: '', errno: 'ok' },
];
for (const c of parseCases) {
  test(`${c.file} ${JSON.stringify(c.value)}: ${c.why} -> ${c.errno}`, (t) => {
    const { sys } = vfioNode();
    sys.write(CREATE, UUID1);
    t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/${c.file}`, c.value)), c.errno);
    if (c.errno !== 'ok') t.is(sys.read(`${mdev(UUID1)}/matrix`), '');
  });
}

test('assign: the whole new product is checked; a host-owned APQN is EADDRNOTAVAIL and the bit is not kept', (t) => {
  const { sys } = makeNode(); // the host owns everything
  createMdev(sys, UUID1, { adapters: [5] });
  t.is(sys.read(`${mdev(UUID1)}/matrix`), '05.\n', 'an adapter without domains always passes');
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/assign_domain`, '4')), 'EADDRNOTAVAIL');
  t.is(sys.read(`${mdev(UUID1)}/matrix`), '05.\n');
});

test('assign: a host-owned APQN that does not exist is still EADDRNOTAVAIL', (t) => {
  const { sys } = makeNode();
  createMdev(sys, UUID1, { domains: [0x40] });
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/assign_adapter`, '0x20')), 'EADDRNOTAVAIL');
});

test('assign: an APQN in another mdev is EADDRINUSE', (t) => {
  const { sys } = vfioNode();
  createMdev(sys, UUID1, { adapters: [5], domains: [4] });
  createMdev(sys, UUID2, { adapters: [5] });
  t.is(errnoOf(() => sys.write(`${mdev(UUID2)}/assign_domain`, '4')), 'EADDRINUSE');
  t.is(errnoOf(() => sys.write(`${mdev(UUID2)}/assign_domain`, '5')), 'ok', 'another domain of the same adapter is free');
  t.is(sys.read(`${mdev(UUID2)}/matrix`), '05.0005\n');
});

test('assign: host-owned is checked before shared (EADDRNOTAVAIL wins)', (t) => {
  const { sys } = makeNode();
  sys.write('bus/ap/apmask', '-5');
  createMdev(sys, UUID1, { adapters: [5], domains: [4] });
  createMdev(sys, UUID2, { adapters: [5, 6] }); // 06.0004 host-owned, 05.0004 in UUID1
  t.is(errnoOf(() => sys.write(`${mdev(UUID2)}/assign_domain`, '4')), 'EADDRNOTAVAIL');
});

test('assign: the maximum is checked before ownership (ENODEV wins)', (t) => {
  const { sys } = makeNode({ maxAdapterId: 63 });
  createMdev(sys, UUID1, { domains: [4] });
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/assign_adapter`, '64')), 'ENODEV');
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/assign_adapter`, '63')), 'EADDRNOTAVAIL');
});

test('assign: assigning an assigned id is a successful no-op, even if it would now fail', (t) => {
  const { sys } = vfioNode();
  createMdev(sys, UUID1, { adapters: [5], domains: [4] });
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/assign_adapter`, '5')), 'ok');
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/assign_domain`, '0x4')), 'ok');
  t.is(sys.read(`${mdev(UUID1)}/matrix`), '05.0004\n');
});

test('control domains are only range-checked and may overlap between mdevs', (t) => {
  const { sys } = makeNode(); // the host owns every queue
  createMdev(sys, UUID1, { controlDomains: [4, 0x10] });
  createMdev(sys, UUID2, { controlDomains: [4] });
  t.is(sys.read(`${mdev(UUID1)}/control_domains`), '0004\n0010\n');
  t.is(sys.read(`${mdev(UUID2)}/control_domains`), '0004\n');
  sys.write(`${mdev(UUID1)}/unassign_control_domain`, '16');
  t.is(sys.read(`${mdev(UUID1)}/control_domains`), '0004\n');
});

test('over-provisioning: APQNs that do not exist or are not bound to vfio_ap can be assigned', (t) => {
  const { sys } = vfioNode();
  sys.write('bus/ap/apmask', '-0x30');
  createMdev(sys, UUID1, { adapters: [5, 0x30], domains: [4] });
  t.is(sys.read(`${mdev(UUID1)}/matrix`), '05.0004\n30.0004\n');
  t.is(sys.read(`${mdev(UUID1)}/guest_matrix`), '05.0004\n', 'adapter 30 is not in the host configuration');
});

const matrixText: Array<{ why: string; adapters: number[]; domains: number[]; text: string }> = [
  { why: 'nothing assigned: empty', adapters: [], domains: [], text: '' },
  { why: 'only adapters: aa. lines', adapters: [6, 5], domains: [], text: '05.\n06.\n' },
  { why: 'only domains: .dddd lines', adapters: [], domains: [0x10, 4], text: '.0004\n.0010\n' },
  { why: 'a product, adapter-major ascending', adapters: [6, 5], domains: [5, 4], text: '05.0004\n05.0005\n06.0004\n06.0005\n' },
];
for (const c of matrixText) {
  test(`matrix: ${c.why}`, (t) => {
    const { sys } = vfioNode();
    sys.write('bus/ap/aqmask', '-0x10');
    createMdev(sys, UUID1, { adapters: c.adapters, domains: c.domains });
    t.is(sys.read(`${mdev(UUID1)}/matrix`), c.text);
  });
}

// ---------------------------------------------------------------- guest_matrix

test('guest_matrix: an adapter is dropped whole when one of its APQNs is not bound to vfio_ap', (t) => {
  const { sys } = vfioNode();
  createMdev(sys, UUID1, { adapters: [5, 6], domains: [4, 5] });
  t.is(sys.read(`${mdev(UUID1)}/guest_matrix`), '05.0004\n05.0005\n06.0004\n06.0005\n');
  sys.write('bus/ap/drivers/vfio_ap/unbind', '06.0005');
  t.is(sys.read(`${mdev(UUID1)}/guest_matrix`), '05.0004\n05.0005\n');
  t.is(sys.read(`${mdev(UUID1)}/matrix`), '05.0004\n05.0005\n06.0004\n06.0005\n', 'matrix keeps what was assigned');
  sys.write('bus/ap/drivers/vfio_ap/bind', '06.0005');
  t.is(sys.read(`${mdev(UUID1)}/guest_matrix`), '05.0004\n05.0005\n06.0004\n06.0005\n');
});

test('guest_matrix: domains outside the host usage domains are filtered; a missing queue drops its adapter', (t) => {
  const { sys } = makeNode();
  sys.write('bus/ap/apmask', '-5-7');
  // 0x40 is no usage domain of this node; card 07 has no queue 07.0006.
  createMdev(sys, UUID1, { adapters: [5, 7], domains: [4, 6, 0x40] });
  t.is(sys.read(`${mdev(UUID1)}/guest_matrix`), '05.0004\n05.0006\n');
});

test('guest_matrix: adapters only, without domains, pass to the guest view', (t) => {
  const { sys } = vfioNode();
  createMdev(sys, UUID1, { adapters: [5] });
  t.is(sys.read(`${mdev(UUID1)}/guest_matrix`), '05.\n');
});

// ---------------------------------------------------------------- ap_config

test('ap_config reads 0x<apm>,0x<aqm>,0x<adm>', (t) => {
  const { sys } = vfioNode();
  createMdev(sys, UUID1, { adapters: [5], domains: [4], controlDomains: [4] });
  t.is(sys.read(`${mdev(UUID1)}/ap_config`), `${maskHex(5)},${maskHex(4)},${maskHex(4)}\n`);
});

interface ApConfigCase {
  why: string;
  write: string;
  errno: string;
  matrix?: string;
}
const apConfigCases: ApConfigCase[] = [
  { why: 'all three at once', write: `${maskHex(5)},${maskHex(4, 6)},${maskHex(4, 5)}`, errno: 'ok', matrix: '05.0004\n05.0006\n' },
  { why: 'with a trailing newline', write: `${maskHex(5)},${maskHex(4)},${maskHex()}\n`, errno: 'ok', matrix: '05.0004\n' },
  { why: 'short masks fill from bit 0', write: '0x04,0x08,0x', errno: 'ok', matrix: '05.0004\n' },
  { why: 'empty fields are empty masks', write: ',,', errno: 'ok', matrix: '' },
  { why: 'text after the third field is ignored', write: '0x04,0x08,0x0,extra', errno: 'ok', matrix: '05.0004\n' },
  { why: 'only two fields', write: '0x04,0x08', errno: 'EINVAL' },
  { why: 'not hex', write: '0xzz,0x08,0x0', errno: 'EINVAL' },
  { why: 'more than 64 digits', write: `0x${Z}0,0x08,0x0`, errno: 'EINVAL' },
  { why: 'the relative form is no ap_config', write: '+5,+4,+4', errno: 'EINVAL' },
  { why: 'a host-owned APQN', write: `${maskHex(7)},${maskHex(4)},${maskHex()}`, errno: 'EADDRNOTAVAIL' },
  { why: 'an APQN of another mdev', write: `${maskHex(6)},${maskHex(4)},${maskHex()}`, errno: 'EADDRINUSE' },
  { why: 'a domain above the maximum', write: `${maskHex(5)},${maskHex(100)},${maskHex()}`, errno: 'ENODEV' },
  { why: 'a control domain above the maximum', write: `${maskHex(5)},${maskHex(4)},${maskHex(200)}`, errno: 'ENODEV' },
  { why: 'host-owned before shared before maximum', write: `${maskHex(6, 7)},${maskHex(4, 100)},${maskHex()}`, errno: 'EADDRNOTAVAIL' },
  { why: 'shared before maximum', write: `${maskHex(6)},${maskHex(4, 100)},${maskHex()}`, errno: 'EADDRINUSE' },
];
for (const c of apConfigCases) {
  test(`ap_config write: ${c.why} -> ${c.errno}`, (t) => {
    const { sys } = vfioNode();
    createMdev(sys, UUID2, { adapters: [6], domains: [4] });
    createMdev(sys, UUID1, { adapters: [5], domains: [5], controlDomains: [5] });
    const before = sys.read(`${mdev(UUID1)}/ap_config`);
    t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/ap_config`, c.write)), c.errno);
    if (c.errno === 'ok') t.is(sys.read(`${mdev(UUID1)}/matrix`), c.matrix ?? '');
    else t.is(sys.read(`${mdev(UUID1)}/ap_config`), before, 'all or nothing');
  });
}

test('ap_config does not exist on 5.15', (t) => {
  const { sys } = makeNode({ kernel: '5.15' });
  sys.write(CREATE, UUID1);
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/ap_config`, ',,')), 'ENOENT');
});

// ---------------------------------------------------------------- status, guests, resets

test("queue status: 'unassigned', 'assigned', 'in use' with a guest, back to 'assigned' when it closes", (t) => {
  const { sys, model } = vfioNode();
  const status = () => sys.read(`${q('05.0004')}/status`);
  t.is(status(), 'unassigned\n');
  createMdev(sys, UUID1, { adapters: [5], domains: [4] });
  t.is(status(), 'assigned\n');
  model.attachGuest(UUID1);
  t.is(status(), 'in use\n');
  t.is(sys.read(`${q('05.0005')}/status`), 'unassigned\n');
  model.detachGuest(UUID1);
  t.is(status(), 'assigned\n');
});

test('status exists only while the queue is bound to vfio_ap', (t) => {
  const { sys } = makeNode();
  t.false(sys.list(q('05.0004')).includes('status'));
  t.is(errnoOf(() => sys.read(`${q('05.0004')}/status`)), 'ENOENT');
});

test('remove: "1" removes, "0" does nothing, anything else is EINVAL', (t) => {
  const { sys } = makeNode();
  sys.write(CREATE, UUID1);
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/remove`, 'yes')), 'EINVAL');
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/remove`, '0')), 'ok');
  t.true(sys.exists(mdev(UUID1)));
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/remove`, '1\n')), 'ok');
  t.false(sys.exists(mdev(UUID1)));
  t.deepEqual(sys.list(`${TYPE_DIR}/devices`), []);
  t.deepEqual(sys.list('kernel/iommu_groups'), []);
});

test('remove while a guest uses the mdev is EBUSY; after the guest closes it works', (t) => {
  const { sys, model } = vfioNode();
  createMdev(sys, UUID1, { adapters: [5], domains: [4] });
  model.attachGuest(UUID1);
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/remove`, '1')), 'EBUSY');
  t.true(sys.exists(mdev(UUID1)));
  model.detachGuest(UUID1);
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/remove`, '1')), 'ok');
});

const resetCases: Array<{ why: string; act: (n: ReturnType<typeof vfioNode>) => void; status: string }> = [
  { why: 'unassigning the adapter', act: ({ sys }) => sys.write(`${mdev(UUID1)}/unassign_adapter`, '5'), status: 'unassigned' },
  { why: 'unassigning the domain', act: ({ sys }) => sys.write(`${mdev(UUID1)}/unassign_domain`, '4'), status: 'unassigned' },
  { why: 'removing the mdev', act: ({ sys }) => sys.write(`${mdev(UUID1)}/remove`, '1'), status: 'unassigned' },
  {
    why: 'the guest closing it',
    act: ({ model }) => {
      model.attachGuest(UUID1);
      model.detachGuest(UUID1);
    },
    status: 'assigned',
  },
  { why: 'ap_config dropping it (6.10+)', act: ({ sys }) => sys.write(`${mdev(UUID1)}/ap_config`, ',,'), status: 'unassigned' },
];
for (const c of resetCases) {
  test(`${c.why} resets and zeroizes the queue; it stays with vfio_ap, ${c.status}`, (t) => {
    const node = vfioNode();
    createMdev(node.sys, UUID1, { adapters: [5], domains: [4] });
    const before = node.model.queue({ adapter: 5, domain: 4 })!.zeroizes;
    const other = node.model.queue({ adapter: 5, domain: 5 })!.zeroizes;
    c.act(node);
    t.is(node.model.queue({ adapter: 5, domain: 4 })!.zeroizes, before + 1);
    t.is(node.model.queue({ adapter: 5, domain: 5 })!.zeroizes, other, 'queues outside the matrix are untouched');
    t.is(driverOf(node.sys, '05.0004'), 'vfio_ap');
    t.is(node.sys.read(`${q('05.0004')}/status`), `${c.status}\n`);
  });
}

test('guests: attach twice is EBUSY, unknown mdev ENOENT, detach without guest is a no-op', (t) => {
  const { sys, model } = vfioNode();
  sys.write(CREATE, UUID1);
  model.attachGuest(UUID1);
  t.is(errnoOf(() => model.attachGuest(UUID1)), 'EBUSY');
  t.is(errnoOf(() => model.attachGuest(UUID2)), 'ENOENT');
  model.detachGuest(UUID1);
  t.is(errnoOf(() => model.detachGuest(UUID1)), 'ok');
});

test('a guest may keep changing its matrix while attached (6.x hot plug)', (t) => {
  const { sys, model } = vfioNode();
  createMdev(sys, UUID1, { adapters: [5], domains: [4] });
  model.attachGuest(UUID1);
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/assign_adapter`, '6')), 'ok');
  t.is(sys.read(`${mdev(UUID1)}/guest_matrix`), '05.0004\n06.0004\n');
  t.is(sys.read(`${q('06.0004')}/status`), 'in use\n');
});

test('writes to a removed mdev through an old path are ENOENT', (t) => {
  const { sys } = vfioNode();
  sys.write(CREATE, UUID1);
  sys.write(`${mdev(UUID1)}/remove`, '1');
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/assign_adapter`, '5')), 'ENOENT');
});
