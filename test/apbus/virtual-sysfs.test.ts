// The virtual sysfs as a black box: every path of ap-bus.md, the kernel's exact texts,
// symlinks, and the errnos a real sysfs gives root.
import test from 'ava';
import { topologyFromObject } from '../../src/apbus/topology.js';
import { ApBusModel } from '../../src/apbus/model/index.js';
import { VirtualSysfs } from '../../src/apbus/virtual-sysfs.js';
import { ALL, CREATE, UUID1, bitsOf, createMdev, driverOf, errnoOf, makeNode, mdev, q } from './model-fixture.js';

/** The standard node with adapter 05 given to vfio_ap and an mdev using 05.0004. */
function busyNode() {
  const node = makeNode({ controlDomains: ['0004', '0006'] });
  node.sys.write('bus/ap/apmask', '-5');
  createMdev(node.sys, UUID1, { adapters: [5], domains: [4], controlDomains: [4] });
  return node;
}

const apBusMdPaths = [
  'bus/ap/apmask',
  'bus/ap/aqmask',
  'bus/ap/ap_max_adapter_id',
  'bus/ap/ap_max_domain_id',
  'bus/ap/ap_adapter_mask',
  'bus/ap/ap_usage_domain_mask',
  'bus/ap/ap_control_domain_mask',
  'bus/ap/bindings',
  'bus/ap/scans',
  'bus/ap/config_time',
  'bus/ap/ap_domain',
  'bus/ap/devices/card05',
  'bus/ap/devices/05.0004',
  ...['cex4card', 'cex4queue', 'vfio_ap'].flatMap((d) => [`bus/ap/drivers/${d}/bind`, `bus/ap/drivers/${d}/unbind`]),
  ...['hwtype', 'raw_hwtype', 'type', 'ap_functions', 'online', 'config', 'chkstop', 'request_count', 'requestq_count', 'pendingq_count', 'depth'].map(
    (a) => `devices/ap/card05/${a}`,
  ),
  ...['online', 'config', 'chkstop', 'request_count', 'requestq_count', 'pendingq_count', 'reset', 'interrupt'].map((a) => `${q('06.0004')}/${a}`),
  ...['config', 'chkstop', 'request_count', 'requestq_count', 'pendingq_count', 'reset', 'interrupt', 'status'].map((a) => `${q('05.0004')}/${a}`),
  ...['name', 'device_api', 'available_instances', 'create', 'devices'].map((a) => `devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/${a}`),
  ...[
    'assign_adapter',
    'unassign_adapter',
    'assign_domain',
    'unassign_domain',
    'assign_control_domain',
    'unassign_control_domain',
    'control_domains',
    'matrix',
    'guest_matrix',
    'ap_config',
    'remove',
    'iommu_group',
    'mdev_type',
    'mdev_type/device_api',
  ].map((a) => `${mdev(UUID1)}/${a}`),
];
for (const path of apBusMdPaths) {
  test(`path exists: ${path}`, (t) => {
    const { sys } = busyNode();
    t.true(sys.exists(path));
  });
}

const texts: Array<[string, string]> = [
  ['bus/ap/apmask', `0xfb${'f'.repeat(62)}\n`],
  ['bus/ap/aqmask', `${ALL}\n`],
  ['bus/ap/ap_max_adapter_id', '255\n'],
  ['bus/ap/ap_max_domain_id', '84\n'],
  ['bus/ap/ap_adapter_mask', `0x07${'0'.repeat(62)}\n`],
  ['bus/ap/ap_usage_domain_mask', `0xffff${'0'.repeat(60)}\n`],
  ['bus/ap/ap_control_domain_mask', `0x0a${'0'.repeat(62)}\n`],
  ['bus/ap/bindings', '34/34 (complete)\n'],
  ['bus/ap/scans', '1\n'],
  ['bus/ap/config_time', '30\n'],
  ['bus/ap/poll_timeout', '250000\n'],
  ['bus/ap/poll_thread', '0\n'],
  ['bus/ap/ap_interrupts', '1\n'],
  ['bus/ap/ap_domain', '0\n'],
  ['bus/ap/features', 'APSC APXA QACT RC8A\n'],
  ['bus/ap/drivers_autoprobe', '1\n'],
  ['devices/ap/card05/hwtype', '14\n'],
  ['devices/ap/card05/raw_hwtype', '14\n'],
  ['devices/ap/card05/type', 'CEX8P\n'],
  ['devices/ap/card07/type', 'CEX7C\n'],
  ['devices/ap/card05/ap_functions', '0x86000000\n'],
  ['devices/ap/card07/ap_functions', '0x92000000\n'],
  ['devices/ap/card05/depth', '8\n'],
  ['devices/ap/card05/online', '1\n'],
  ['devices/ap/card05/config', '1\n'],
  ['devices/ap/card05/chkstop', '0\n'],
  ['devices/ap/card05/request_count', '0\n'],
  ['devices/ap/card05/modalias', 'ap:t0E\n'],
  ['devices/ap/card05/max_msg_size', '12288\n'],
  [`${q('06.0004')}/online`, '1\n'],
  [`${q('06.0004')}/reset`, 'No Reset Timer set.\n'],
  [`${q('06.0004')}/interrupt`, 'Interrupts enabled.\n'],
  [`${q('05.0004')}/interrupt`, 'Interrupts disabled.\n'],
  [`${q('05.0004')}/status`, 'assigned\n'],
  [`${q('05.0005')}/status`, 'unassigned\n'],
  [`${mdev(UUID1)}/matrix`, '05.0004\n'],
  [`${mdev(UUID1)}/guest_matrix`, '05.0004\n'],
  [`${mdev(UUID1)}/control_domains`, '0004\n'],
  [`${mdev(UUID1)}/mdev_type/name`, 'VFIO AP Passthrough Device\n'],
];
for (const [path, text] of texts) {
  test(`text of ${path}`, (t) => {
    const { sys } = busyNode();
    t.is(sys.read(path), text);
  });
}

const links: Array<[string, string]> = [
  ['bus/ap/devices/card05', '../../../devices/ap/card05'],
  ['bus/ap/devices/05.0004', '../../../devices/ap/card05/05.0004'],
  ['bus/ap/drivers/cex4card/card05', '../../../../devices/ap/card05'],
  ['bus/ap/drivers/cex4queue/06.0004', '../../../../devices/ap/card06/06.0004'],
  ['bus/ap/drivers/vfio_ap/05.0004', '../../../../devices/ap/card05/05.0004'],
  ['devices/ap/card05/driver', '../../../bus/ap/drivers/cex4card'],
  ['devices/ap/card05/subsystem', '../../../bus/ap'],
  [`${q('05.0004')}/driver`, '../../../../bus/ap/drivers/vfio_ap'],
  [`${q('06.0004')}/driver`, '../../../../bus/ap/drivers/cex4queue'],
  [`${mdev(UUID1)}/iommu_group`, '../../../../kernel/iommu_groups/0'],
  [`${mdev(UUID1)}/mdev_type`, '../mdev_supported_types/vfio_ap-passthrough'],
];
for (const [path, target] of links) {
  test(`symlink ${path} -> ${target}`, (t) => {
    const { sys } = busyNode();
    t.is(sys.readlink(path), target);
    t.true(sys.exists(path), 'the target exists');
  });
}

test('reads and writes follow symlinks', (t) => {
  const { sys } = busyNode();
  t.is(sys.read('bus/ap/devices/card06/type'), 'CEX8P\n');
  t.is(sys.read('bus/ap/devices/05.0004/status'), 'assigned\n');
  sys.write('bus/ap/devices/06.0004/online', '0');
  t.is(sys.read(`${q('06.0004')}/online`), '0\n');
  t.is(sys.realpath('bus/ap/drivers/vfio_ap/05.0004/driver'), 'bus/ap/drivers/vfio_ap');
  t.is(sys.realpath(`${mdev(UUID1)}/iommu_group/devices/${UUID1}`), mdev(UUID1));
});

test('a queue has online only with cex4queue, status only with vfio_ap, driver only while bound', (t) => {
  const { sys } = busyNode();
  const host = sys.list(q('06.0004'));
  const guest = sys.list(q('05.0004'));
  t.true(host.includes('online') && !host.includes('status') && host.includes('driver'));
  t.true(guest.includes('status') && !guest.includes('online') && guest.includes('driver'));
  sys.write('bus/ap/drivers/vfio_ap/unbind', '05.0004');
  const none = sys.list(q('05.0004'));
  t.false(none.includes('status') || none.includes('online') || none.includes('driver'));
});

test('listings are sorted and name every device', (t) => {
  const { sys } = busyNode();
  for (const dir of ['', 'bus', 'bus/ap', 'bus/ap/devices', 'bus/ap/drivers/vfio_ap', 'devices/ap', 'devices/ap/card05', q('05.0004'), mdev(UUID1)]) {
    const names = sys.list(dir);
    t.deepEqual(names, [...names].sort(), dir);
  }
  t.deepEqual(sys.list(''), ['bus', 'devices', 'kernel']);
  t.deepEqual(sys.list('devices/ap'), ['card05', 'card06', 'card07']);
  t.is(sys.list('bus/ap/devices').length, 3 + 34);
  t.deepEqual(sys.list('bus/ap/drivers'), ['cex4card', 'cex4queue', 'vfio_ap']);
  t.deepEqual(sys.list('devices/vfio_ap/matrix'), [UUID1, 'mdev_supported_types']);
});

const errnos: Array<{ why: string; op: (s: VirtualSysfs) => unknown; errno: string }> = [
  { why: 'reading a missing file', op: (s) => s.read('bus/ap/nonesuch'), errno: 'ENOENT' },
  { why: 'writing a missing file', op: (s) => s.write('bus/ap/nonesuch', '1'), errno: 'ENOENT' },
  { why: 'listing a missing directory', op: (s) => s.list('devices/ap/card09'), errno: 'ENOENT' },
  { why: 'a queue of another card under a card', op: (s) => s.list('devices/ap/card05/06.0004'), errno: 'ENOENT' },
  { why: 'readlink of a missing link', op: (s) => s.readlink('bus/ap/devices/card09'), errno: 'ENOENT' },
  { why: 'a path through a file', op: (s) => s.read('bus/ap/apmask/x'), errno: 'ENOTDIR' },
  { why: 'listing a file', op: (s) => s.list('bus/ap/apmask'), errno: 'ENOTDIR' },
  { why: 'reading a directory', op: (s) => s.read('bus/ap'), errno: 'EISDIR' },
  { why: 'writing a directory', op: (s) => s.write('devices/ap/card05', '1'), errno: 'EISDIR' },
  { why: 'readlink of a file', op: (s) => s.readlink('bus/ap/apmask'), errno: 'EINVAL' },
  { why: 'readlink of a directory', op: (s) => s.readlink('bus/ap'), errno: 'EINVAL' },
  { why: 'reading a write-only attribute (bind), even as root', op: (s) => s.read('bus/ap/drivers/vfio_ap/bind'), errno: 'EACCES' },
  { why: 'reading create', op: (s) => s.read(CREATE), errno: 'EACCES' },
  { why: 'reading assign_adapter', op: (s) => s.read(`${mdev(UUID1)}/assign_adapter`), errno: 'EACCES' },
  { why: 'reading remove', op: (s) => s.read(`${mdev(UUID1)}/remove`), errno: 'EACCES' },
  { why: 'writing a read-only attribute (bindings), even as root', op: (s) => s.write('bus/ap/bindings', '1'), errno: 'EACCES' },
  { why: 'writing hwtype', op: (s) => s.write('devices/ap/card05/hwtype', '11'), errno: 'EACCES' },
  { why: 'writing matrix', op: (s) => s.write(`${mdev(UUID1)}/matrix`, '05.0004'), errno: 'EACCES' },
  { why: 'writing status', op: (s) => s.write(`${q('05.0004')}/status`, 'in use'), errno: 'EACCES' },
  { why: 'writing ap_max_domain_id', op: (s) => s.write('bus/ap/ap_max_domain_id', '255'), errno: 'EACCES' },
  { why: 'even a zero-length write cannot open a read-only attribute', op: (s) => s.write('bus/ap/bindings', ''), errno: 'EACCES' },
  { why: 'a zero-length write to a writable attribute is a no-op', op: (s) => s.write('bus/ap/apmask', ''), errno: 'ok' },
  { why: "a '..' in the path", op: (s) => s.read('bus/ap/../ap/apmask'), errno: 'EINVAL' },
  { why: 'an absolute path outside /sys', op: (s) => s.read('/etc/passwd'), errno: 'ENOENT' },
  { why: 'an absolute path inside /sys', op: (s) => s.read('/sys/bus/ap/apmask'), errno: 'ok' },
];
for (const c of errnos) {
  test(`errno: ${c.why} -> ${c.errno}`, (t) => {
    const { sys } = busyNode();
    t.is(errnoOf(() => c.op(sys)), c.errno);
  });
}

test('exists: files, directories, links; false for what is not there', (t) => {
  const { sys } = busyNode();
  t.true(sys.exists(''));
  t.true(sys.exists('bus/ap/devices/05.0004'));
  t.true(sys.exists('bus/ap/devices/05.0004/status'));
  t.false(sys.exists('bus/ap/devices/05.0004/online'));
  t.false(sys.exists('devices/ap/card09'));
  t.false(sys.exists('bus/ap/apmask/x'));
});

// ---------------------------------------------------------------- bus attributes that take writes

const busWrites: Array<{ file: string; value: string; errno: string; reads?: string }> = [
  { file: 'ap_domain', value: '5', errno: 'ok', reads: '5\n' },
  { file: 'ap_domain', value: '0xa', errno: 'ok', reads: '10\n' },
  { file: 'ap_domain', value: '010', errno: 'ok', reads: '8\n' },
  { file: 'ap_domain', value: '85', errno: 'EINVAL' },
  { file: 'ap_domain', value: '-1', errno: 'EINVAL' },
  { file: 'ap_domain', value: 'x', errno: 'EINVAL' },
  { file: 'config_time', value: '60', errno: 'ok', reads: '60\n' },
  { file: 'config_time', value: '4', errno: 'EINVAL' },
  { file: 'config_time', value: '121', errno: 'EINVAL' },
  { file: 'poll_timeout', value: '1000000', errno: 'ok', reads: '1000000\n' },
  { file: 'poll_timeout', value: '120000000001', errno: 'EINVAL' },
  { file: 'poll_timeout', value: 'x', errno: 'EINVAL' },
  { file: 'poll_thread', value: 'y', errno: 'ok', reads: '1\n' },
  { file: 'poll_thread', value: 'off', errno: 'ok', reads: '0\n' },
  { file: 'poll_thread', value: 'maybe', errno: 'EINVAL' },
  { file: 'scans', value: '1', errno: 'ok', reads: '2\n' },
];
for (const c of busWrites) {
  test(`bus/ap/${c.file} write ${JSON.stringify(c.value)} -> ${c.errno}`, (t) => {
    const { sys } = makeNode();
    const before = sys.read(`bus/ap/${c.file}`);
    t.is(errnoOf(() => sys.write(`bus/ap/${c.file}`, c.value)), c.errno);
    t.is(sys.read(`bus/ap/${c.file}`), c.reads ?? before);
  });
}

test('the AP bus rescans every config_time seconds of the clock; a config_time write restarts the timer', (t) => {
  const { sys, clock } = makeNode();
  t.is(sys.read('bus/ap/scans'), '1\n');
  clock.advance(29);
  t.is(sys.read('bus/ap/scans'), '1\n');
  clock.advance(1);
  t.is(sys.read('bus/ap/scans'), '2\n');
  clock.advance(5);
  sys.write('bus/ap/config_time', '10');
  clock.advance(9);
  t.is(sys.read('bus/ap/scans'), '2\n');
  clock.advance(11);
  t.is(sys.read('bus/ap/scans'), '4\n');
  sys.write('bus/ap/scans', '1');
  t.is(sys.read('bus/ap/scans'), '5\n');
});

test('ap_domain must be a domain of aqmask', (t) => {
  const { sys } = makeNode();
  sys.write('bus/ap/aqmask', '-9');
  t.is(errnoOf(() => sys.write('bus/ap/ap_domain', '9')), 'EINVAL');
});

test('the default domain is the first usable domain of a host adapter', (t) => {
  const { sys } = makeNode({ aqmask: ['0004', '0005'] });
  t.is(sys.read('bus/ap/ap_domain'), '4\n');
});

test('request_count writes zero the counters', (t) => {
  const { sys, model } = makeNode();
  model.addHostLoad({ adapter: 5, domain: 4 }, 2, 0);
  t.is(sys.read(`${q('05.0004')}/request_count`), '2\n');
  t.is(sys.read('devices/ap/card05/request_count'), '2\n');
  sys.write(`${q('05.0004')}/request_count`, '0');
  t.is(sys.read(`${q('05.0004')}/request_count`), '0\n');
  sys.write('devices/ap/card05/request_count', '0');
  t.is(sys.read('devices/ap/card05/request_count'), '0\n');
});

test('queue reset: requests go back (EAGAIN) and the queue is reset', (t) => {
  const { sys, model } = makeNode();
  model.addHostLoad({ adapter: 7, domain: 4 }, 2);
  const resets = model.queue({ adapter: 7, domain: 4 })!.resets;
  sys.write(`${q('07.0004')}/reset`, '1');
  t.is(sys.read(`${q('07.0004')}/pendingq_count`), '0\n');
  t.is(model.queue({ adapter: 7, domain: 4 })!.resets, resets + 1);
  t.is(model.stats.eagainReturned, 2);
});

test('drivers_autoprobe 0: a new card is not bound until probed', (t) => {
  const { sys, model } = makeNode();
  sys.write('bus/ap/drivers_autoprobe', '0');
  model.addCard({ id: 0x20, hwtype: 13, mode: 'C', domains: [1] });
  t.is(driverOf(sys, '20.0001'), '');
  t.false(sys.list('devices/ap/card20').includes('driver'));
  sys.write('bus/ap/drivers_probe', 'card20');
  sys.write('bus/ap/drivers_probe', '20.0001');
  t.is(driverOf(sys, '20.0001'), 'cex4queue');
  t.is(sys.read('devices/ap/card20/type'), 'CEX7C\n');
});

test('the generation moves with every change and not on reads', (t) => {
  const { sys, model } = makeNode();
  const g0 = model.generation;
  sys.read('bus/ap/apmask');
  sys.list('bus/ap/devices');
  t.is(model.generation, g0);
  sys.write('bus/ap/apmask', '-5');
  const g1 = model.generation;
  t.true(g1 > g0);
  sys.write(CREATE, UUID1);
  t.true(model.generation > g1);
});

test('a 64-adapter x 85-domain node fits in a few MB and moves 2,040 queues in one mask write', (t) => {
  const usage = () => process.memoryUsage().heapUsed + process.memoryUsage().arrayBuffers;
  const before = usage();
  const cards = Array.from({ length: 64 }, (_, i) => ({ id: i.toString(16).padStart(2, '0'), type: 'CEX8C', domains: '0000-0054' }));
  const model = ApBusModel.fromTopology(topologyFromObject({ nodes: [{ name: 'big', maxDomainId: 84, cards }] }).nodes[0]!);
  const sys = new VirtualSysfs(model);
  t.is(sys.read('bus/ap/bindings'), '5440/5440 (complete)\n');
  sys.write('bus/ap/apmask', '-0-23');
  t.is(model.boundDevices('vfio_ap').length, 24 * 85);
  t.deepEqual(bitsOf(sys.read('bus/ap/apmask')).slice(0, 2), [24, 25]);
  t.true(usage() - before < 50e6, `grew by ${((usage() - before) / 1e6).toFixed(1)} MB`);
});
