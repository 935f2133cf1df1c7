// What the inventory reads per queue, and that what it leaves unread is still the kernel's
// value. The model cannot show every state a real host can (per-queue config/chkstop that
// differ from the card's, for one), so those cases edit a rendered on-disk tree the way such
// a host would print it and read it back through RealSysfs.
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { SysfsBackend, type QueueInfo } from '../../src/apbus/backend.js';
import { RealSysfs } from '../../src/apbus/real-sysfs.js';
import { renderSysfs } from '../../src/apbus/render.js';
import type { SysfsIO } from '../../src/apbus/sysfs-io.js';
import { makeNode, q, UUID1 } from './model-fixture.js';

const CARDS = [
  { id: '05', type: 'CEX8P', domains: '0000-0003' },
  { id: '06', type: 'CEX8C', domains: '0000-0003' },
];

/** Forwards to `inner` and keeps every path read. */
function recording(inner: SysfsIO): { io: SysfsIO; reads: string[] } {
  const reads: string[] = [];
  const io: SysfsIO = {
    read: (p) => (reads.push(p), inner.read(p)),
    write: (p, v) => inner.write(p, v),
    list: (p) => inner.list(p),
    readlink: (p) => inner.readlink(p),
    exists: (p) => inner.exists(p),
  };
  return { io, reads };
}

/** Attribute names read under one queue directory. */
function readsOf(reads: readonly string[], apqn: string): string[] {
  const dir = `${q(apqn)}/`;
  return reads.filter((p) => p.startsWith(dir)).map((p) => p.slice(dir.length)).sort();
}

function queueOf(queues: readonly QueueInfo[], apqn: string): QueueInfo {
  const [a, d] = apqn.split('.').map((x) => parseInt(x, 16)) as [number, number];
  return queues.find((x) => x.apqn.adapter === a && x.apqn.domain === d)!;
}

test('an idle host queue is read for online, request_count and driver_override only; a vfio_ap queue for config, chkstop, driver_override (and status inside a matrix)', (t) => {
  const { model, sys } = makeNode({ kernel: '6.19', cards: CARDS });
  const writer = new SysfsBackend(sys);
  for (const apqn of [
    { adapter: 6, domain: 1 },
    { adapter: 6, domain: 2 },
  ]) {
    writer.setDriverOverride(apqn, 'vfio_ap');
    writer.unbind('cex4queue', apqn);
    writer.bind('vfio_ap', apqn);
  }
  writer.createMdev(UUID1);
  writer.setMatrix(UUID1, { adapters: [6], domains: [1], controlDomains: [] });
  const { io, reads } = recording(sys);
  const inventory = new SysfsBackend(io).inventory();
  t.deepEqual(readsOf(reads, '05.0000'), ['driver_override', 'online', 'request_count']);
  t.deepEqual(readsOf(reads, '06.0001'), ['chkstop', 'config', 'driver_override', 'status']);
  t.deepEqual(readsOf(reads, '06.0002'), ['chkstop', 'config', 'driver_override'], 'outside every matrix: unassigned by definition');
  t.deepEqual(queueOf(inventory.queues, '06.0001'), {
    apqn: { adapter: 6, domain: 1 },
    driver: 'vfio_ap',
    online: null,
    config: true,
    chkstop: false,
    requestsInFlight: 0,
    requestCount: 0,
    vfioStatus: 'assigned',
    driverOverride: 'vfio_ap',
  });
  t.is(model.queue({ adapter: 6, domain: 1 })!.requestqCount + model.queue({ adapter: 6, domain: 1 })!.pendingqCount, 0);
});

test("a card with host requests in flight has every host queue's counters read; an idle card's are not", (t) => {
  const { sys } = makeNode({ kernel: '6.10', cards: CARDS, hostLoad: [{ apqn: '05.0002', pendingRequests: 3 }] });
  const { io, reads } = recording(sys);
  const inventory = new SysfsBackend(io).inventory();
  for (const apqn of ['05.0000', '05.0002']) {
    t.deepEqual(readsOf(reads, apqn), ['online', 'pendingq_count', 'request_count', 'requestq_count'], apqn);
  }
  t.deepEqual(readsOf(reads, '06.0002'), ['online', 'request_count']);
  t.is(queueOf(inventory.queues, '05.0002').requestsInFlight, 3);
  t.is(queueOf(inventory.queues, '05.0000').requestsInFlight, 0);
});

/** The node rendered to disk, and a reader over it. */
function onDisk(t: ExecutionContext, sys: SysfsIO) {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = fs.mkdtempSync(nodePath.join(base, 'apbus-inventory-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  renderSysfs(sys, dir);
  const edit = (rel: string, contents: string) => fs.writeFileSync(nodePath.join(dir, rel), contents);
  return { dir, edit, read: () => new SysfsBackend(new RealSysfs(dir)).inventory() };
}

test('per-queue config and chkstop are the queue’s own when they differ from the card’s (a real host between scans)', (t) => {
  const cases: Array<{ why: string; files: Record<string, string>; apqn: string; expected: Partial<QueueInfo> }> = [
    {
      why: 'a queue deconfigured before its card (online 0, config 0, card still configured)',
      files: { [`${q('05.0001')}/online`]: '0\n', [`${q('05.0001')}/config`]: '0\n' },
      apqn: '05.0001',
      expected: { online: false, config: false, chkstop: false },
    },
    {
      why: 'a card deconfigured by a write while its queues still read configured until the next scan',
      files: { 'devices/ap/card05/config': '0\n' },
      apqn: '05.0002',
      expected: { online: true, config: true, chkstop: false },
    },
    {
      why: 'a queue checkstopped while its card does not show it yet',
      files: { [`${q('05.0002')}/online`]: '0\n', [`${q('05.0002')}/chkstop`]: '1\n' },
      apqn: '05.0002',
      expected: { online: false, config: true, chkstop: true },
    },
    {
      why: 'a card checkstopped while its queues still read running',
      files: { 'devices/ap/card06/chkstop': '1\n' },
      apqn: '06.0000',
      expected: { online: true, config: true, chkstop: false },
    },
    {
      why: 'a vfio_ap queue deconfigured on its own',
      files: { [`${q('06.0003')}/config`]: '0\n' },
      apqn: '06.0003',
      expected: { online: null, config: false, chkstop: false },
    },
  ];
  for (const c of cases) {
    const { sys } = makeNode({ kernel: '6.10', cards: CARDS });
    new SysfsBackend(sys).setMaskBits('aqmask', [{ bit: 3, value: false }]); // *.0003 -> vfio_ap
    const disk = onDisk(t, sys);
    for (const [rel, contents] of Object.entries(c.files)) disk.edit(rel, contents);
    const queue = queueOf(disk.read().queues, c.apqn);
    t.like(queue, c.expected, c.why);
  }
});

test('counters of a busy card are read per queue on disk too, and an unknown driver’s queue is read in full', (t) => {
  const { sys } = makeNode({ kernel: '6.10', cards: CARDS });
  const disk = onDisk(t, sys);
  disk.edit('devices/ap/card06/pendingq_count', '2\n');
  disk.edit(`${q('06.0002')}/pendingq_count`, '2\n');
  disk.edit(`${q('06.0002')}/request_count`, '41\n');
  // 05.0001 bound to a driver the backend does not know.
  fs.rmSync(nodePath.join(disk.dir, 'bus/ap/drivers/cex4queue/05.0001'));
  fs.mkdirSync(nodePath.join(disk.dir, 'bus/ap/drivers/other'));
  fs.symlinkSync('../../../../devices/ap/card05/05.0001', nodePath.join(disk.dir, 'bus/ap/drivers/other/05.0001'));
  disk.edit(`${q('05.0001')}/request_count`, '7\n');
  disk.edit(`${q('05.0001')}/requestq_count`, '1\n');
  disk.edit('devices/ap/card05/requestq_count', '1\n'); // the card's sum includes every driver's queues
  const queues = disk.read().queues;
  t.like(queueOf(queues, '06.0002'), { requestsInFlight: 2, requestCount: 41 });
  t.like(queueOf(queues, '06.0001'), { requestsInFlight: 0 });
  t.like(queueOf(queues, '05.0001'), { driver: 'other', requestCount: 7, requestsInFlight: 1 });
});
