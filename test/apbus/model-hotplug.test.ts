// Host configuration changes: card hot-unplug/replug, new cards, deconfigure, checkstop,
// online/offline, domains leaving and joining, and reboot.
import test from 'ava';
import { ALL, UUID1, bitsOf, createMdev, driverOf, errnoOf, makeNode, mdev, q } from './model-fixture.js';

test('a removed card leaves sysfs, the guest view and the adapter mask; the mdev keeps it in matrix', (t) => {
  const { sys, model } = makeNode();
  sys.write('bus/ap/apmask', '-5-6');
  createMdev(sys, UUID1, { adapters: [5, 6], domains: [4] });
  const scans = Number(sys.read('bus/ap/scans'));
  model.removeCard(6);
  t.false(sys.exists('devices/ap/card06'));
  t.false(sys.exists('bus/ap/devices/card06'));
  t.false(sys.exists('bus/ap/devices/06.0004'));
  t.false(sys.list('bus/ap/drivers/vfio_ap').includes('06.0004'));
  t.deepEqual(bitsOf(sys.read('bus/ap/ap_adapter_mask')), [5, 7]);
  t.is(sys.read('bus/ap/bindings'), '18/18 (complete)\n');
  t.is(sys.read(`${mdev(UUID1)}/matrix`), '05.0004\n06.0004\n');
  t.is(sys.read(`${mdev(UUID1)}/guest_matrix`), '05.0004\n');
  t.is(Number(sys.read('bus/ap/scans')), scans + 1, 'a bus scan noticed');
});

test('a replugged card comes back; its queues go to their owners and back into the guest view', (t) => {
  const { sys, model } = makeNode();
  sys.write('bus/ap/apmask', '-5-6');
  createMdev(sys, UUID1, { adapters: [5, 6], domains: [4] });
  model.removeCard(6);
  model.replugCard(6);
  t.is(driverOf(sys, '06.0004'), 'vfio_ap');
  t.is(sys.read(`${q('06.0004')}/status`), 'assigned\n');
  t.is(sys.read(`${mdev(UUID1)}/guest_matrix`), '05.0004\n06.0004\n');
  t.is(sys.read('devices/ap/card06/type'), 'CEX8P\n');
});

test('host requests on a removed card go back with EAGAIN and may be retried elsewhere', (t) => {
  const { sys, model } = makeNode();
  model.addHostLoad({ adapter: 6, domain: 1 }, 4);
  model.removeCard(6);
  t.is(sys.read(`${q('05.0001')}/pendingq_count`), '4\n');
  t.deepEqual(model.stats, { eagainReturned: 4, retried: 4 });
});

test('a new card: devices appear and are probed by the masks', (t) => {
  const { sys, model } = makeNode();
  sys.write('bus/ap/apmask', '-0x10');
  model.addCard({ id: 0x10, hwtype: 14, mode: 'C', domains: [1, 2, 0x60] });
  t.deepEqual(sys.list('devices/ap/card10').filter((n) => n.includes('.')), ['10.0001', '10.0002'], 'domain 0x60 is above ap_max_domain_id');
  t.is(driverOf(sys, '10.0001'), 'vfio_ap');
  t.is(sys.read('devices/ap/card10/type'), 'CEX8C\n');
  t.is(errnoOf(() => model.addCard({ id: 0x10, hwtype: 14, mode: 'C', domains: [1] })), 'EEXIST');
});

test('replugging a card that was never removed is ENODEV', (t) => {
  const { model } = makeNode();
  t.is(errnoOf(() => model.replugCard(9)), 'ENODEV');
});

test("deconfigure via the card's config: devices and bindings stay, online reads 0, host requests go back", (t) => {
  const { sys, model } = makeNode();
  model.addHostLoad({ adapter: 5, domain: 4 }, 2);
  sys.write('devices/ap/card05/config', '0');
  t.is(sys.read('devices/ap/card05/config'), '0\n');
  t.is(sys.read('devices/ap/card05/online'), '0\n');
  t.is(sys.read(`${q('05.0004')}/config`), '0\n');
  t.is(sys.read(`${q('05.0004')}/online`), '0\n');
  t.is(driverOf(sys, '05.0004'), 'cex4queue');
  t.is(sys.read(`${q('05.0004')}/pendingq_count`), '0\n');
  t.is(sys.read(`${q('06.0004')}/pendingq_count`), '2\n', 'retried on the twin card');
  t.is(errnoOf(() => sys.write(`${q('05.0004')}/online`, '1')), 'ENODEV');
  t.is(errnoOf(() => sys.write('devices/ap/card05/online', '1')), 'ENODEV');
  sys.write('devices/ap/card05/config', '1\n');
  t.is(sys.read('devices/ap/card05/online'), '1\n');
  t.is(sys.read(`${q('05.0004')}/online`), '1\n');
});

const configWrites: Array<[string, string]> = [
  ['2', 'EINVAL'],
  ['-1', 'EINVAL'],
  ['x', 'EINVAL'],
  ['1', 'ok'],
  ['0', 'ok'],
  ['1garbage', 'ok'], // sscanf("%d") stops at the first non-digit
];
for (const [value, errno] of configWrites) {
  test(`card config write ${JSON.stringify(value)} -> ${errno}`, (t) => {
    const { sys } = makeNode();
    t.is(errnoOf(() => sys.write('devices/ap/card05/config', value)), errno);
  });
}

test('checkstop: chkstop reads 1, online 0, and online cannot be set', (t) => {
  const { sys, model } = makeNode();
  model.setCheckstop(7, true);
  t.is(sys.read('devices/ap/card07/chkstop'), '1\n');
  t.is(sys.read(`${q('07.0004')}/chkstop`), '1\n');
  t.is(sys.read('devices/ap/card07/online'), '0\n');
  t.is(sys.read(`${q('07.0004')}/online`), '0\n');
  t.is(sys.read(`${q('07.0004')}/interrupt`), 'Interrupts disabled.\n');
  t.is(errnoOf(() => sys.write(`${q('07.0004')}/online`, '1')), 'ENODEV');
  model.setCheckstop(7, false);
  t.is(sys.read(`${q('07.0004')}/online`), '1\n');
});

test('card offline takes its queues offline; a queue cannot go online on an offline card', (t) => {
  const { sys, model } = makeNode();
  model.addHostLoad({ adapter: 7, domain: 5 }, 1);
  sys.write('devices/ap/card07/online', '0');
  t.is(sys.read(`${q('07.0005')}/online`), '0\n');
  t.is(sys.read(`${q('07.0005')}/pendingq_count`), '0\n');
  t.is(errnoOf(() => sys.write(`${q('07.0005')}/online`, '1')), 'EINVAL');
  sys.write('devices/ap/card07/online', '1');
  t.is(sys.read(`${q('07.0005')}/online`), '1\n');
  t.is(errnoOf(() => sys.write(`${q('07.0005')}/online`, '3')), 'EINVAL');
  t.is(errnoOf(() => sys.write(`${q('07.0005')}/online`, '0')), 'ok');
  t.is(sys.read(`${q('07.0005')}/online`), '0\n');
});

test('a domain leaving the host configuration removes its queue on every card', (t) => {
  const { sys, model } = makeNode();
  sys.write('bus/ap/apmask', '-5');
  createMdev(sys, UUID1, { adapters: [5], domains: [4, 5] });
  model.removeDomain(4);
  t.false(sys.exists(q('05.0004')));
  t.false(sys.exists(q('07.0004')));
  t.false(bitsOf(sys.read('bus/ap/ap_usage_domain_mask')).includes(4));
  t.is(sys.read(`${mdev(UUID1)}/guest_matrix`), '05.0005\n');
  model.addDomain(4);
  t.true(sys.exists(q('07.0004')));
  t.is(sys.read(`${mdev(UUID1)}/guest_matrix`), '05.0004\n05.0005\n');
});

test('a domain can join cards that did not have it', (t) => {
  const { sys, model } = makeNode();
  model.addDomain(0x20, [5]);
  t.is(driverOf(sys, '05.0020'), 'cex4queue');
  t.false(sys.exists(q('06.0020')));
});

test('reboot: masks back to all ones, no mdevs, no overrides, every queue with the host driver', (t) => {
  const { sys, model } = makeNode({ kernel: '6.19' });
  sys.write(`${q('06.0001')}/driver_override`, 'vfio_ap');
  sys.write('bus/ap/drivers/cex4queue/unbind', '06.0001');
  sys.write('bus/ap/drivers/vfio_ap/bind', '06.0001');
  sys.write(`${q('06.0002')}/driver_override`, 'none');
  createMdev(sys, UUID1, { adapters: [6], domains: [1] });
  model.attachGuest(UUID1);
  t.is(sys.read(`${q('06.0001')}/status`), 'in use\n');
  model.addHostLoad({ adapter: 7, domain: 4 }, 3);
  sys.write('bus/ap/config_time', '60');
  model.reboot();
  t.is(sys.read('bus/ap/apmask'), `${ALL}\n`);
  t.is(sys.read('bus/ap/aqmask'), `${ALL}\n`);
  t.deepEqual(sys.list('devices/vfio_ap/matrix'), ['mdev_supported_types']);
  t.is(sys.read(`${q('06.0002')}/driver_override`), '\n');
  t.is(driverOf(sys, '06.0001'), 'cex4queue');
  t.is(driverOf(sys, '06.0002'), 'cex4queue');
  t.is(sys.read(`${q('07.0004')}/pendingq_count`), '0\n');
  t.is(sys.read(`${q('07.0004')}/request_count`), '0\n');
  t.is(sys.read('bus/ap/bindings'), '34/34 (complete)\n');
  t.is(sys.read('bus/ap/scans'), '1\n');
  t.is(sys.read('bus/ap/config_time'), '30\n');
});

test('reboot keeps the hardware as it is: an unplugged card stays away', (t) => {
  const { sys, model } = makeNode();
  model.removeCard(7);
  model.reboot();
  t.deepEqual(sys.list('devices/ap'), ['card05', 'card06']);
});

test('a removed queue takes its driver_override with it', (t) => {
  const { sys, model } = makeNode({ kernel: '6.19' });
  sys.write(`${q('07.0004')}/driver_override`, 'vfio_ap');
  model.removeCard(7);
  t.is(errnoOf(() => sys.write('bus/ap/apmask', '-5')), 'ok', 'no override left to block mask writes');
});
