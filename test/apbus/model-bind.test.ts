// Manual bind/unbind through bus/ap/drivers/*, drivers_probe, and 6.19's driver_override.
import test from 'ava';
import type { KernelProfile } from '../../src/apbus/model/index.js';
import { UUID1, createMdev, driverOf, errnoOf, makeNode, mdev, q } from './model-fixture.js';

const DRV = (d: string, f: 'bind' | 'unbind') => `bus/ap/drivers/${d}/${f}`;
const OLD_AND_NEW = [
  { id: '02', type: 'CEX3C', domains: ['0004'] },
  { id: '05', type: 'CEX8P', domains: ['0004', '0005'] },
  { id: '06', type: 'CEX8P', domains: ['0004', '0005'] },
];

interface BindCase {
  why: string;
  prepare?: Array<[string, string]>;
  write: [string, string];
  errno: string;
}
const bindCases: BindCase[] = [
  { why: 'unknown queue', write: [DRV('vfio_ap', 'bind'), '09.0004'], errno: 'ENODEV' },
  { why: 'unknown card', write: [DRV('cex4card', 'bind'), 'card99'], errno: 'ENODEV' },
  { why: 'a spelling the kernel does not use', write: [DRV('cex4queue', 'bind'), '5.4'], errno: 'ENODEV' },
  { why: 'upper-case hex is another name', write: [DRV('cex4card', 'bind'), 'card0A'], errno: 'ENODEV' },
  { why: 'a queue given to the card driver', write: [DRV('cex4card', 'bind'), '05.0004'], errno: 'ENODEV' },
  { why: 'a card given to a queue driver', write: [DRV('vfio_ap', 'bind'), 'card05'], errno: 'ENODEV' },
  { why: 'a CEX3 queue: vfio_ap binds only CEX4..CEX8', write: [DRV('vfio_ap', 'bind'), '02.0004'], errno: 'ENODEV' },
  { why: 'a CEX3 card: no cex4card either', write: [DRV('cex4card', 'bind'), 'card02'], errno: 'ENODEV' },
  { why: 'already bound to that driver', write: [DRV('cex4queue', 'bind'), '05.0004'], errno: 'EBUSY' },
  { why: 'already bound to the other driver', write: [DRV('vfio_ap', 'bind'), '05.0004'], errno: 'EBUSY' },
  { why: 'already bound card', write: [DRV('cex4card', 'bind'), 'card05'], errno: 'EBUSY' },
  {
    why: 'wrong side of the masks: the host owns it',
    prepare: [[DRV('cex4queue', 'unbind'), '05.0004']],
    write: [DRV('vfio_ap', 'bind'), '05.0004'],
    errno: 'ENODEV',
  },
  {
    why: 'wrong side of the masks: vfio_ap owns it',
    prepare: [
      ['bus/ap/apmask', '-5'],
      [DRV('vfio_ap', 'unbind'), '05.0004'],
    ],
    write: [DRV('cex4queue', 'bind'), '05.0004'],
    errno: 'ENODEV',
  },
  {
    why: 'the right side: back to its owner',
    prepare: [[DRV('cex4queue', 'unbind'), '05.0004']],
    write: [DRV('cex4queue', 'bind'), '05.0004'],
    errno: 'ok',
  },
  {
    why: 'one trailing newline is fine (sysfs_streq)',
    prepare: [[DRV('cex4queue', 'unbind'), '05.0004\n']],
    write: [DRV('cex4queue', 'bind'), '05.0004\n'],
    errno: 'ok',
  },
  {
    why: 'a card back to cex4card',
    prepare: [[DRV('cex4card', 'unbind'), 'card05']],
    write: [DRV('cex4card', 'bind'), 'card05'],
    errno: 'ok',
  },
];
for (const c of bindCases) {
  test(`bind: ${c.why} -> ${c.errno}`, (t) => {
    const { sys } = makeNode({ cards: OLD_AND_NEW });
    for (const [path, value] of c.prepare ?? []) sys.write(path, value);
    t.is(errnoOf(() => sys.write(c.write[0], c.write[1])), c.errno);
  });
}

const unbindCases: Array<{ why: string; write: [string, string]; errno: string }> = [
  { why: 'bound to that driver', write: [DRV('cex4queue', 'unbind'), '05.0004'], errno: 'ok' },
  { why: 'bound to another driver', write: [DRV('vfio_ap', 'unbind'), '05.0004'], errno: 'ENODEV' },
  { why: 'no such device', write: [DRV('cex4queue', 'unbind'), '09.0004'], errno: 'ENODEV' },
  { why: 'a device without driver', write: [DRV('vfio_ap', 'unbind'), '02.0004'], errno: 'ENODEV' },
  { why: 'a card from its driver', write: [DRV('cex4card', 'unbind'), 'card06'], errno: 'ok' },
  { why: 'a card from a queue driver', write: [DRV('cex4queue', 'unbind'), 'card06'], errno: 'ENODEV' },
];
for (const c of unbindCases) {
  test(`unbind: ${c.why} -> ${c.errno}`, (t) => {
    const { sys } = makeNode({ cards: OLD_AND_NEW });
    t.is(errnoOf(() => sys.write(c.write[0], c.write[1])), c.errno);
  });
}

test('an unbound queue stays without driver until something probes it (drivers_probe)', (t) => {
  const { sys } = makeNode();
  sys.write(DRV('cex4queue', 'unbind'), '05.0004');
  t.is(driverOf(sys, '05.0004'), '');
  t.false(sys.list(q('05.0004')).includes('online'), 'online only while bound to cex4queue');
  t.false(sys.exists(`bus/ap/drivers/cex4queue/05.0004`));
  t.is(sys.read('bus/ap/bindings'), '33/34\n');
  sys.write('bus/ap/scans', '1');
  t.is(driverOf(sys, '05.0004'), '', 'a rescan does not re-probe');
  sys.write('bus/ap/drivers_probe', '05.0004');
  t.is(driverOf(sys, '05.0004'), 'cex4queue');
  t.is(sys.read('bus/ap/bindings'), '34/34 (complete)\n');
});

test('drivers_probe: unknown device ENODEV; a bound device is left alone', (t) => {
  const { sys } = makeNode();
  t.is(errnoOf(() => sys.write('bus/ap/drivers_probe', '09.0001')), 'ENODEV');
  t.is(errnoOf(() => sys.write('bus/ap/drivers_probe', '05.0001')), 'ok');
  t.is(driverOf(sys, '05.0001'), 'cex4queue');
});

test('a mask change probes an unbound queue whose owner it changes', (t) => {
  const { sys } = makeNode();
  sys.write(DRV('cex4queue', 'unbind'), '05.0004');
  sys.write('bus/ap/apmask', '-5');
  t.is(driverOf(sys, '05.0004'), 'vfio_ap');
});

test('unbind from cex4queue hands host requests back and resets the queue', (t) => {
  const { sys, model } = makeNode();
  model.addHostLoad({ adapter: 5, domain: 4 }, 2);
  const before = model.queue({ adapter: 5, domain: 4 })!.zeroizes;
  sys.write(DRV('cex4queue', 'unbind'), '05.0004');
  t.is(sys.read(`${q('05.0004')}/pendingq_count`), '0\n');
  t.is(model.queue({ adapter: 5, domain: 4 })!.zeroizes, before + 1);
  t.is(model.stats.eagainReturned, 2);
});

test('unbinding a card from cex4card drops the zcrypt attributes; binding brings them back', (t) => {
  const { sys } = makeNode();
  sys.write(DRV('cex4card', 'unbind'), 'card05');
  const attrs = sys.list('devices/ap/card05');
  t.false(attrs.includes('type'));
  t.false(attrs.includes('online'));
  t.false(attrs.includes('driver'));
  t.true(attrs.includes('hwtype'));
  t.is(driverOf(sys, '05.0004'), 'cex4queue', 'queues keep their driver');
  sys.write(DRV('cex4card', 'bind'), 'card05');
  t.is(sys.read('devices/ap/card05/type'), 'CEX8P\n');
});

test('driver directories link the devices bound to them', (t) => {
  const { sys } = makeNode();
  sys.write('bus/ap/aqmask', '-4');
  t.deepEqual(sys.list('bus/ap/drivers/vfio_ap'), ['05.0004', '06.0004', '07.0004', 'bind', 'unbind']);
  t.is(sys.readlink('bus/ap/drivers/vfio_ap/05.0004'), '../../../../devices/ap/card05/05.0004');
  t.is(sys.read('bus/ap/drivers/vfio_ap/05.0004/status'), 'unassigned\n');
  t.deepEqual(sys.list('bus/ap/drivers/cex4card'), ['bind', 'card05', 'card06', 'card07', 'unbind']);
  t.is(sys.readlink('bus/ap/drivers/cex4card/card07'), '../../../../devices/ap/card07');
});

// ---------------------------------------------------------------- driver_override (6.19)

for (const kernel of ['5.15', '6.10'] as KernelProfile[]) {
  test(`driver_override does not exist on ${kernel}`, (t) => {
    const { sys } = makeNode({ kernel });
    t.false(sys.list(q('05.0004')).includes('driver_override'));
    t.is(errnoOf(() => sys.read(`${q('05.0004')}/driver_override`)), 'ENOENT');
  });
}

test('6.19: driver_override reads an empty line when unset', (t) => {
  const { sys } = makeNode({ kernel: '6.19' });
  t.is(sys.read(`${q('05.0004')}/driver_override`), '\n');
});

test('6.19: an override decides the next probe regardless of the masks; writing it does not rebind', (t) => {
  const { sys } = makeNode({ kernel: '6.19' });
  const file = `${q('05.0004')}/driver_override`;
  sys.write(file, 'vfio_ap');
  t.is(sys.read(file), 'vfio_ap\n');
  t.is(driverOf(sys, '05.0004'), 'cex4queue', 'still bound until reprobed');
  sys.write(DRV('cex4queue', 'unbind'), '05.0004');
  t.is(errnoOf(() => sys.write(DRV('cex4queue', 'bind'), '05.0004')), 'ENODEV', 'the override says vfio_ap');
  sys.write(DRV('vfio_ap', 'bind'), '05.0004');
  t.is(driverOf(sys, '05.0004'), 'vfio_ap');
  t.is(sys.read(`${q('05.0004')}/status`), 'unassigned\n');
});

test('6.19: drivers_probe follows the override', (t) => {
  const { sys } = makeNode({ kernel: '6.19' });
  sys.write(`${q('05.0004')}/driver_override`, 'vfio_ap\n');
  sys.write(DRV('cex4queue', 'unbind'), '05.0004');
  sys.write('bus/ap/drivers_probe', '05.0004');
  t.is(driverOf(sys, '05.0004'), 'vfio_ap');
});

test("6.19: an override naming no AP driver ('none') keeps the queue driverless", (t) => {
  const { sys } = makeNode({ kernel: '6.19' });
  sys.write(`${q('05.0004')}/driver_override`, 'none');
  sys.write(DRV('cex4queue', 'unbind'), '05.0004');
  sys.write('bus/ap/drivers_probe', '05.0004');
  t.is(driverOf(sys, '05.0004'), '');
});

const overrideWrites: Array<{ why: string; write: string; reads: string }> = [
  { why: 'a name', write: 'cex4queue', reads: 'cex4queue\n' },
  { why: 'a name and a newline', write: 'vfio_ap\n', reads: 'vfio_ap\n' },
  { why: 'only up to the first newline', write: 'vfio_ap\nmore', reads: 'vfio_ap\n' },
  { why: 'a lone newline clears it', write: '\n', reads: '\n' },
];
for (const c of overrideWrites) {
  test(`6.19: driver_override write ${JSON.stringify(c.write)}: ${c.why}`, (t) => {
    const { sys } = makeNode({ kernel: '6.19' });
    const file = `${q('05.0004')}/driver_override`;
    sys.write(file, 'something');
    sys.write(file, c.write);
    t.is(sys.read(file), c.reads);
  });
}

test('6.19: driver_override needs both masks all ones (EINVAL otherwise)', (t) => {
  const { sys } = makeNode({ kernel: '6.19' });
  sys.write('bus/ap/aqmask', '-9');
  t.is(errnoOf(() => sys.write(`${q('05.0004')}/driver_override`, 'vfio_ap')), 'EINVAL');
  t.is(sys.read(`${q('05.0004')}/driver_override`), '\n');
  sys.write('bus/ap/aqmask', '+9');
  t.is(errnoOf(() => sys.write(`${q('05.0004')}/driver_override`, 'vfio_ap')), 'ok');
});

test('6.19: while any override is set, every mask write fails with EINVAL; clearing it allows them again', (t) => {
  const { sys } = makeNode({ kernel: '6.19' });
  const file = `${q('06.0001')}/driver_override`;
  sys.write(file, 'vfio_ap');
  t.is(errnoOf(() => sys.write('bus/ap/apmask', '-5')), 'EINVAL');
  t.is(errnoOf(() => sys.write('bus/ap/aqmask', '-4')), 'EINVAL');
  t.is(sys.read('bus/ap/apmask'), `0x${'f'.repeat(64)}\n`);
  sys.write(file, '\n');
  t.is(errnoOf(() => sys.write('bus/ap/apmask', '-5')), 'ok');
});

test('6.19: a queue bound to vfio_ap by override can be assigned although the masks are all ones', (t) => {
  const { sys } = makeNode({ kernel: '6.19' });
  sys.write(`${q('05.0004')}/driver_override`, 'vfio_ap');
  sys.write(DRV('cex4queue', 'unbind'), '05.0004');
  sys.write(DRV('vfio_ap', 'bind'), '05.0004');
  createMdev(sys, UUID1, { adapters: [5] });
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/assign_domain`, '4')), 'ok');
  t.is(sys.read(`${mdev(UUID1)}/guest_matrix`), '05.0004\n');
  t.is(errnoOf(() => sys.write(`${mdev(UUID1)}/assign_domain`, '5')), 'EADDRNOTAVAIL', '05.0005 has no override: the masks give it to the host');
});
