// Who owns a queue (apmask x aqmask), mask writes (grammar, EBUSY per profile, clearing never
// refused), and what moving a queue does to host requests in flight.
import test from 'ava';
import type { KernelProfile } from '../../src/apbus/model/index.js';
import { ALL, UUID1, bitsOf, createMdev, driverOf, errnoOf, makeNode, q } from './model-fixture.js';

test('boot: every queue of a CEX4..CEX8 card belongs to the host driver, cards to cex4card', (t) => {
  const { sys } = makeNode();
  t.is(sys.read('bus/ap/apmask'), `${ALL}\n`);
  t.is(sys.read('bus/ap/aqmask'), `${ALL}\n`);
  t.is(sys.read('bus/ap/bindings'), '34/34 (complete)\n');
  t.is(driverOf(sys, '05.0000'), 'cex4queue');
  t.is(driverOf(sys, '07.0005'), 'cex4queue');
  t.is(sys.readlink('devices/ap/card05/driver'), '../../../bus/ap/drivers/cex4card');
});

const ownership: Array<{ why: string; apmask: unknown; aqmask: unknown; apqn: string; driver: string }> = [
  { why: 'adapter and domain bits set: host', apmask: 'all', aqmask: 'all', apqn: '05.0004', driver: 'cex4queue' },
  { why: 'adapter bit clear: vfio_ap', apmask: ['06'], aqmask: 'all', apqn: '05.0004', driver: 'vfio_ap' },
  { why: 'domain bit clear: vfio_ap', apmask: 'all', aqmask: ['0005'], apqn: '05.0004', driver: 'vfio_ap' },
  { why: 'both bits clear: vfio_ap', apmask: 'none', aqmask: 'none', apqn: '06.0001', driver: 'vfio_ap' },
  { why: 'other adapter of a partial apmask: host', apmask: ['06'], aqmask: 'all', apqn: '06.0004', driver: 'cex4queue' },
  { why: 'other domain of a partial aqmask: host', apmask: 'all', aqmask: ['0005'], apqn: '07.0005', driver: 'cex4queue' },
  { why: 'hex mask 0x04: bit 5 only', apmask: '0x04', aqmask: 'all', apqn: '05.000f', driver: 'cex4queue' },
  { why: 'hex mask 0x04: adapter 6 is not in it', apmask: '0x04', aqmask: 'all', apqn: '06.000f', driver: 'vfio_ap' },
];
for (const c of ownership) {
  test(`owner: ${c.why}`, (t) => {
    const { sys } = makeNode({ apmask: c.apmask, aqmask: c.aqmask });
    t.is(driverOf(sys, c.apqn), c.driver);
  });
}

test('clearing one adapter bit frees that adapter in every domain, and nothing else', (t) => {
  const { sys, model } = makeNode();
  sys.write('bus/ap/apmask', '-5');
  t.deepEqual(model.boundDevices('vfio_ap'), Array.from({ length: 16 }, (_, d) => `05.${d.toString(16).padStart(4, '0')}`));
  t.is(model.boundDevices('cex4queue').length, 18);
  t.is(driverOf(sys, '06.0004'), 'cex4queue');
});

test('clearing one domain bit frees that domain on every adapter, and nothing else', (t) => {
  const { sys, model } = makeNode();
  sys.write('bus/ap/aqmask', '-4');
  t.deepEqual(model.boundDevices('vfio_ap'), ['05.0004', '06.0004', '07.0004']);
  t.is(driverOf(sys, '07.0005'), 'cex4queue');
});

test('masks never apply to card devices', (t) => {
  const { sys } = makeNode();
  sys.write('bus/ap/apmask', '0x');
  sys.write('bus/ap/aqmask', '0x');
  t.is(sys.readlink('devices/ap/card05/driver'), '../../../bus/ap/drivers/cex4card');
  t.is(driverOf(sys, '05.0000'), 'vfio_ap');
});

test('setting the bit back returns the queues to the host driver', (t) => {
  const { sys, model } = makeNode();
  sys.write('bus/ap/apmask', '-5,-6');
  sys.write('bus/ap/apmask', '+5-6');
  t.is(model.boundDevices('vfio_ap').length, 0);
  t.is(sys.read('bus/ap/bindings'), '34/34 (complete)\n');
});

test('cards older than CEX4 get devices but no driver; masks do not change that', (t) => {
  const { sys } = makeNode({ cards: [{ id: '02', type: 'CEX3C', domains: ['0001'] }, { id: '05', type: 'CEX8C', domains: ['0001'] }] });
  t.is(driverOf(sys, '02.0001'), '');
  t.false(sys.list('devices/ap/card02').includes('driver'));
  t.false(sys.list('devices/ap/card02').includes('type'), 'no zcrypt card, no type attribute');
  t.is(sys.read('devices/ap/card02/hwtype'), '9\n');
  sys.write('bus/ap/apmask', '-2');
  t.is(driverOf(sys, '02.0001'), '');
  t.is(sys.read('bus/ap/bindings'), '1/2\n');
});

// ---------------------------------------------------------------- the write grammar

const grammar: Array<{ why: string; write: string; bits?: number[] | 'unchanged'; errno?: string }> = [
  { why: "'0x41' sets bits 1 and 7 (zero-padded on the right)", write: '0x41', bits: [1, 7] },
  { why: "'0x' alone is all zeros", write: '0x', bits: [] },
  { why: 'absolute without 0x is hex too', write: '8', bits: [0] },
  { why: "'\\n' (echo > apmask) is all zeros", write: '\n', bits: [] },
  { why: 'absolute with one trailing newline', write: '0x80\n', bits: [0] },
  { why: '64 hex digits are the whole mask', write: '0x' + '0'.repeat(63) + '1', bits: [255] },
  { why: "relative '-5' clears one bit of the current mask", write: '-5', bits: allBut(5, 200) },
  { why: "relative ranges: '-0-254'", write: '-0-254', bits: [255] },
  { why: 'later terms win', write: '-0-255,+3', bits: [3] },
  { why: 'relative numbers: 0x hex', write: '-0-255,+0x10', bits: [16] },
  { why: 'relative numbers: leading 0 is octal', write: '-0-255,+010', bits: [8] },
  { why: 'relative terms separated by newlines', write: '-0-255\n+1\n', bits: [1] },
  { why: 'empty write changes nothing', write: '', bits: 'unchanged' },
  { why: 'more than 64 hex digits', write: '0x' + '0'.repeat(65), errno: 'EINVAL' },
  { why: 'not hex', write: '0xzz', errno: 'EINVAL' },
  { why: 'a number above 255', write: '-256', errno: 'EINVAL' },
  { why: 'a reversed range', write: '+5-3', errno: 'EINVAL' },
  { why: 'a term without its sign', write: '+5,6', errno: 'EINVAL' },
  { why: 'a sign without a number', write: '-', errno: 'EINVAL' },
  { why: 'a list without signs is not a mask', write: '5,6', errno: 'EINVAL' },
  { why: 'a space', write: '0x80 ', errno: 'EINVAL' },
];
function allBut(...out: number[]): number[] {
  return Array.from({ length: 256 }, (_, i) => i).filter((b) => !out.includes(b));
}
for (const c of grammar) {
  test(`apmask write ${JSON.stringify(c.write)}: ${c.why}`, (t) => {
    const { sys, model } = makeNode();
    sys.write('bus/ap/apmask', '-200'); // a known, not-all starting point
    const before = sys.read('bus/ap/apmask');
    const generation = model.generation;
    t.is(errnoOf(() => sys.write('bus/ap/apmask', c.write)), c.errno ?? 'ok');
    const after = sys.read('bus/ap/apmask');
    if (c.errno || c.bits === 'unchanged') {
      t.is(after, before, 'nothing changes');
      t.is(model.generation, generation);
    } else {
      t.deepEqual(bitsOf(after), c.bits);
    }
  });
}

test('aqmask takes the same grammar', (t) => {
  const { sys } = makeNode();
  sys.write('bus/ap/aqmask', '-0-255,+4-5');
  t.deepEqual(bitsOf(sys.read('bus/ap/aqmask')), [4, 5]);
  t.is(errnoOf(() => sys.write('bus/ap/aqmask', '+4-')), 'EINVAL');
  t.deepEqual(bitsOf(sys.read('bus/ap/aqmask')), [4, 5]);
});

test('writing the current value changes nothing: no queue is reset', (t) => {
  const { sys, model } = makeNode();
  const zeroizes = model.queue({ adapter: 5, domain: 4 })!.zeroizes;
  const resets = model.queue({ adapter: 5, domain: 4 })!.resets;
  sys.write('bus/ap/apmask', ALL);
  sys.write('bus/ap/apmask', '+5');
  t.is(model.queue({ adapter: 5, domain: 4 })!.zeroizes, zeroizes);
  t.is(model.queue({ adapter: 5, domain: 4 })!.resets, resets);
});

// ---------------------------------------------------------------- EBUSY for assigned APQNs

interface BusyCase {
  why: string;
  kernels: KernelProfile[];
  setup: string[]; // mask writes before the mdev exists: [path, value, path, value …]
  write: [string, string];
  errno: string;
}
const busy: BusyCase[] = [
  {
    why: 'giving an assigned APQN back to the host (adapter bit)',
    kernels: ['5.15', '6.10', '6.19'],
    setup: ['bus/ap/apmask', '-5'],
    write: ['bus/ap/apmask', '+5'],
    errno: 'EBUSY',
  },
  {
    why: 'giving an assigned APQN back to the host (domain bit)',
    kernels: ['5.15', '6.10', '6.19'],
    setup: ['bus/ap/aqmask', '-4'],
    write: ['bus/ap/aqmask', '+4'],
    errno: 'EBUSY',
  },
  {
    why: 'new adapter x current aqmask misses the mdev domain: allowed before 6.19',
    kernels: ['5.15', '6.10'],
    setup: ['bus/ap/apmask', '-5', 'bus/ap/aqmask', '-4'],
    write: ['bus/ap/apmask', '+5'],
    errno: 'ok',
  },
  {
    why: '6.19 checks new adapters against all 256 domains',
    kernels: ['6.19'],
    setup: ['bus/ap/apmask', '-5', 'bus/ap/aqmask', '-4'],
    write: ['bus/ap/apmask', '+5'],
    errno: 'EBUSY',
  },
  {
    why: 'current apmask x new domain misses the mdev adapter: allowed before 6.19',
    kernels: ['5.15', '6.10'],
    setup: ['bus/ap/apmask', '-5', 'bus/ap/aqmask', '-4'],
    write: ['bus/ap/aqmask', '+4'],
    errno: 'ok',
  },
  {
    why: '6.19 checks new domains against all 256 adapters',
    kernels: ['6.19'],
    setup: ['bus/ap/apmask', '-5', 'bus/ap/aqmask', '-4'],
    write: ['bus/ap/aqmask', '+4'],
    errno: 'EBUSY',
  },
  {
    why: 'setting bits of APQNs nobody assigned is fine',
    kernels: ['5.15', '6.10', '6.19'],
    setup: ['bus/ap/apmask', '-5-6'],
    write: ['bus/ap/apmask', '+6'],
    errno: 'ok',
  },
  {
    why: 'clearing bits is never refused',
    kernels: ['5.15', '6.10', '6.19'],
    setup: ['bus/ap/apmask', '-5'],
    write: ['bus/ap/apmask', '-6'],
    errno: 'ok',
  },
];
for (const c of busy) {
  for (const kernel of c.kernels) {
    test(`mask write [${kernel}]: ${c.why} -> ${c.errno}`, (t) => {
      const { sys } = makeNode({ kernel });
      for (let i = 0; i < c.setup.length; i += 2) sys.write(c.setup[i]!, c.setup[i + 1]!);
      createMdev(sys, UUID1, { adapters: [5], domains: [4] });
      const before = [sys.read('bus/ap/apmask'), sys.read('bus/ap/aqmask'), driverOf(sys, '05.0004')];
      t.is(errnoOf(() => sys.write(c.write[0], c.write[1])), c.errno);
      if (c.errno !== 'ok') {
        t.deepEqual([sys.read('bus/ap/apmask'), sys.read('bus/ap/aqmask'), driverOf(sys, '05.0004')], before, 'nothing changes');
      }
      t.is(driverOf(sys, '05.0004'), 'vfio_ap', 'the assigned queue stays with vfio_ap either way');
    });
  }
}

test('EBUSY whether or not a guest runs', (t) => {
  const { sys, model } = makeNode();
  sys.write('bus/ap/apmask', '-5');
  createMdev(sys, UUID1, { adapters: [5], domains: [4] });
  t.is(errnoOf(() => sys.write('bus/ap/apmask', '+5')), 'EBUSY');
  model.attachGuest(UUID1);
  t.is(errnoOf(() => sys.write('bus/ap/apmask', '+5')), 'EBUSY');
});

test('an mdev with adapters but no domains blocks nothing', (t) => {
  const { sys } = makeNode();
  sys.write('bus/ap/apmask', '-5');
  createMdev(sys, UUID1, { adapters: [5] });
  t.is(errnoOf(() => sys.write('bus/ap/apmask', '+5')), 'ok');
});

// ---------------------------------------------------------------- moving queues, host load

test('removing a queue from the host driver: requests go back (EAGAIN), counters drop to 0, reset and zeroize', (t) => {
  const { sys, model } = makeNode({ cards: [{ id: '05', type: 'CEX8P', domains: ['0004'] }] });
  model.addHostLoad({ adapter: 5, domain: 4 }, 3);
  t.is(sys.read(`${q('05.0004')}/pendingq_count`), '3\n');
  const zeroizes = model.queue({ adapter: 5, domain: 4 })!.zeroizes;
  sys.write('bus/ap/apmask', '-5');
  t.is(driverOf(sys, '05.0004'), 'vfio_ap');
  t.is(sys.read(`${q('05.0004')}/pendingq_count`), '0\n');
  t.is(sys.read(`${q('05.0004')}/requestq_count`), '0\n');
  t.is(model.queue({ adapter: 5, domain: 4 })!.zeroizes, zeroizes + 1);
  t.deepEqual(model.stats, { eagainReturned: 3, retried: 0 });
});

test('zcrypt retries returned requests on another online host queue of the same domain and mode', (t) => {
  const { sys, model } = makeNode();
  model.addHostLoad({ adapter: 5, domain: 4 }, 3);
  sys.write('bus/ap/apmask', '-5');
  t.is(sys.read(`${q('06.0004')}/pendingq_count`), '3\n', 'CEX8P 06.0004 took them; CEX7C 07.0004 is another mode');
  t.is(sys.read(`${q('07.0004')}/pendingq_count`), '0\n');
  t.deepEqual(model.stats, { eagainReturned: 3, retried: 3 });
});

test('zcrypt_queue.c online_store(): offline hands every queued and in-flight request back at once (ap_flush_queue), so nothing drains after a cordon; offline, zcrypt sends it nothing new', (t) => {
  const { sys, model } = makeNode();
  model.addHostLoad({ adapter: 5, domain: 4 }, 3, 10);
  sys.write(`${q('05.0004')}/online`, '0');
  t.is(sys.read(`${q('05.0004')}/online`), '0\n');
  t.is(sys.read(`${q('05.0004')}/pendingq_count`), '0\n', 'flushed, not drained');
  t.deepEqual(model.stats, { eagainReturned: 3, retried: 3 }, 'zcrypt_api retries them on 06.0004');
  t.throws(() => model.addHostLoad({ adapter: 5, domain: 4 }, 1), { message: /not an online queue/ });
  t.is(driverOf(sys, '05.0004'), 'cex4queue', 'offline is not a move');
  sys.write(`${q('05.0004')}/online`, '1');
  model.addHostLoad({ adapter: 5, domain: 4 }, 1);
  t.is(sys.read(`${q('05.0004')}/pendingq_count`), '1\n');
});

test('clearing a bit is never refused, even with host requests in flight', (t) => {
  const { sys, model } = makeNode();
  model.addHostLoad({ adapter: 5, domain: 4 }, 5);
  t.is(errnoOf(() => sys.write('bus/ap/aqmask', '-4')), 'ok');
  t.is(driverOf(sys, '05.0004'), 'vfio_ap');
});

test('moving a queue back from vfio_ap to the host resets and zeroizes it too', (t) => {
  const { sys, model } = makeNode();
  sys.write('bus/ap/apmask', '-5');
  const before = model.queue({ adapter: 5, domain: 4 })!;
  sys.write('bus/ap/apmask', '+5');
  const after = model.queue({ adapter: 5, domain: 4 })!;
  t.is(after.driver, 'cex4queue');
  t.is(after.zeroizes, before.zeroizes + 1);
  t.is(after.resets, before.resets + 1, 'the host driver resets a queue it takes');
  t.is(sys.read(`${q('05.0004')}/online`), '1\n');
});

test('host requests drain on the controlled clock; pendingq holds up to the card depth', (t) => {
  const { sys, model, clock } = makeNode({ hostLoad: [{ apqn: '05.0004', pendingRequests: 10, drainsAfterSeconds: 5 }] });
  const dir = q('05.0004');
  t.is(sys.read(`${dir}/pendingq_count`), '8\n');
  t.is(sys.read(`${dir}/requestq_count`), '2\n');
  t.is(sys.read(`${dir}/request_count`), '10\n');
  t.is(sys.read(`${dir}/reset`), 'Reset Timer armed.\n');
  t.is(sys.read('devices/ap/card05/pendingq_count'), '8\n');
  clock.advance(4.9);
  t.is(sys.read(`${dir}/pendingq_count`), '8\n');
  model.tick(0.1);
  t.is(sys.read(`${dir}/pendingq_count`), '0\n');
  t.is(sys.read(`${dir}/requestq_count`), '0\n');
  t.is(sys.read(`${dir}/request_count`), '10\n', 'request_count counts requests ever sent');
  t.is(sys.read(`${dir}/reset`), 'No Reset Timer set.\n');
});

test('host load without a drain time stays until the queue is taken from the host', (t) => {
  const { sys, model } = makeNode();
  model.addHostLoad({ adapter: 5, domain: 1 }, 2);
  model.tick(1e6);
  t.is(sys.read(`${q('05.0001')}/pendingq_count`), '2\n');
});

test('host load cannot be put on a queue zcrypt does not drive', (t) => {
  const { sys, model } = makeNode();
  sys.write('bus/ap/apmask', '-5');
  t.is(errnoOf(() => model.addHostLoad({ adapter: 5, domain: 1 }, 1)), 'ENODEV');
  t.is(errnoOf(() => model.addHostLoad({ adapter: 9, domain: 1 }, 1)), 'ENODEV');
});

test('the mask write returns after every affected queue moved', (t) => {
  const { sys } = makeNode();
  sys.write('bus/ap/aqmask', '-0-15');
  for (const apqn of ['05.0000', '05.000f', '06.0007', '07.0004', '07.0005']) t.is(driverOf(sys, apqn), 'vfio_ap', apqn);
  t.is(sys.read('bus/ap/bindings'), '34/34 (complete)\n');
});
