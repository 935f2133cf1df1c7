// The sysfs backend, tested the way the agent uses it. One set of read tests runs twice: over
// the model's virtual sysfs, and over the same tree rendered to disk and read with RealSysfs
// (the code path of a real IBM Z host). Write tests run over the virtual sysfs, and every
// result is checked against the model's own state, not against what the backend believes.
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import {
  SysfsBackend,
  relativeMaskWrite,
  rollbackFailuresOf,
  type BusInventory,
  type MaskBitChange,
  type MdevMatrix,
} from '../../src/apbus/backend.js';
import { SysfsError, type Errno } from '../../src/apbus/errno.js';
import { ApbusInputError, formatApqn, type Apqn } from '../../src/apbus/ids.js';
import { ApBusModel, type KernelProfile } from '../../src/apbus/model/index.js';
import { RealSysfs } from '../../src/apbus/real-sysfs.js';
import { renderSysfs } from '../../src/apbus/render.js';
import type { SysfsIO } from '../../src/apbus/sysfs-io.js';
import { topologyFromObject } from '../../src/apbus/topology.js';
import { VirtualSysfs } from '../../src/apbus/virtual-sysfs.js';

const UUID_A = '6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab';
const UUID_B = '11111111-2222-4333-8444-555555555555';
const UUID_C = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
const UUID_D = '0b0b0b0b-1c1c-4d2d-8e3e-4f4f4f4f4f4f';

// ------------------------------------------------------------------------------ fixtures

/** A small node with every card mode, a host request in flight and ids up to 63 x 84. */
function makeModel(kernel: KernelProfile): ApBusModel {
  const topology = topologyFromObject({
    nodes: [
      {
        name: 'node-a',
        kernel,
        maxAdapterId: 63,
        maxDomainId: 84,
        cards: [
          { id: '05', type: 'CEX8P', domains: '0000-0007' },
          { id: '06', type: 'CEX7C', domains: '0004-0007' },
          { id: '07', type: 'CEX8A', domains: ['0004', '0005'] },
          { id: '08', type: 'CEX8C', domains: '0004-0007' },
          { id: '0a', type: 'CEX6C', domains: '0004-0007' },
        ],
        hostLoad: [{ apqn: '05.0004', pendingRequests: 3, drainsAfterSeconds: 5 }],
      },
    ],
  });
  return ApBusModel.fromTopology(topology.nodes[0]!);
}

function virtualBackend(kernel: KernelProfile) {
  const model = makeModel(kernel);
  const io = new VirtualSysfs(model);
  return { model, io, backend: new SysfsBackend(io) };
}

/** Where rendered trees go: tmpfs when there is one (sysfs is in memory too). */
function scratchDir(t: ExecutionContext): string {
  const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
  const dir = fs.mkdtempSync(nodePath.join(base, 'apbus-backend-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The same bus, read back from a directory tree through RealSysfs. */
function diskBackend(t: ExecutionContext, io: SysfsIO): SysfsBackend {
  const dir = scratchDir(t);
  renderSysfs(io, dir);
  return new SysfsBackend(new RealSysfs(dir));
}

const q = (adapter: number, domain: number): Apqn => ({ adapter, domain });

/** A bus in an interesting state, reached through the backend's own operations:
 *  - masks (5.15/6.10): adapter 06 and domain 0006 cleared, so row 06.* and column *.0006 are
 *    on vfio_ap; overrides (6.19): 06.0004 and 06.0005 moved to vfio_ap one by one;
 *  - mdev A: 06 x 0004,0005 with control domain 0004, opened by a guest;
 *  - mdev B: adapter 07 only; mdev C: domain 0006 only (both have an empty product);
 *  - 05.0000 unbound by hand; card 0a deconfigured; 05.0004 with 3 host requests. */
function prepareBus(model: ApBusModel, backend: SysfsBackend): void {
  if (model.features.driverOverride) {
    for (const apqn of [q(6, 4), q(6, 5)]) {
      backend.setDriverOverride(apqn, 'vfio_ap');
      backend.unbind('cex4queue', apqn);
      backend.bind('vfio_ap', apqn);
    }
  } else {
    backend.setMaskBits('apmask', [{ bit: 6, value: false }]);
    backend.setMaskBits('aqmask', [{ bit: 6, value: false }]);
  }
  for (const uuid of [UUID_A, UUID_B, UUID_C]) backend.createMdev(uuid);
  backend.setMatrix(UUID_A, { adapters: [6], domains: [4, 5], controlDomains: [4] });
  backend.setMatrix(UUID_B, { adapters: [7], domains: [], controlDomains: [] });
  backend.setMatrix(UUID_C, { adapters: [], domains: [6], controlDomains: [] });
  model.attachGuest(UUID_A);
  backend.unbind('cex4queue', q(5, 0));
  model.setCardConfig(0x0a, false);
}

const MODE = { C: 'CCA', P: 'EP11', A: 'Accel' } as const;

/** What the inventory must say, computed from the model's state (not from sysfs). */
function modelTruth(model: ApBusModel) {
  const cards = model.cardIds().map((id) => {
    const c = model.card(id)!;
    return {
      id,
      hwtype: c.hwtype,
      type: c.type,
      mode: MODE[c.mode],
      online: c.driver === 'cex4card' && c.online,
      config: c.config,
      chkstop: c.chkstop,
    };
  });
  const queues = model.cardIds().flatMap((a) =>
    model.queueDomains(a).map((d) => {
      const s = model.queue(q(a, d))!;
      return {
        apqn: formatApqn(s.apqn),
        driver: s.driver,
        online: s.driver === 'cex4queue' ? s.online : null,
        config: s.config,
        chkstop: s.chkstop,
        requestsInFlight: s.requestqCount + s.pendingqCount,
        requestCount: s.requestCount,
        vfioStatus: s.driver === 'vfio_ap' ? model.mdevs.queueStatus(a, d) : null,
        driverOverride: model.features.driverOverride ? (s.driverOverride ?? '') : null,
      };
    }),
  );
  const mdevs = model.mdevs
    .list()
    .map((m) => ({
      uuid: m.uuid,
      matrix: { adapters: m.apm.bits(), domains: m.aqm.bits(), controlDomains: m.adm.bits() },
      guestMatrix: model.mdevs.guestView(m),
    }))
    .sort((x, y) => x.uuid.localeCompare(y.uuid));
  return {
    maxAdapterId: model.maxAdapterId,
    maxDomainId: model.maxDomainId,
    apmask: model.apmask.toKernelString(),
    aqmask: model.aqmask.toKernelString(),
    bindings: model.bindings(),
    cards,
    queues,
    mdevs,
  };
}

/** The inventory in the same shape as modelTruth (masks as text, APQNs formatted). */
function comparable(inv: BusInventory) {
  return {
    maxAdapterId: inv.maxAdapterId,
    maxDomainId: inv.maxDomainId,
    apmask: inv.apmask.toKernelString(),
    aqmask: inv.aqmask.toKernelString(),
    bindings: inv.bindings,
    cards: inv.cards,
    queues: inv.queues.map((x) => ({ ...x, apqn: formatApqn(x.apqn) })),
    mdevs: inv.mdevs.map((m) => ({ uuid: m.uuid, matrix: m.matrix, guestMatrix: m.guestMatrix })),
  };
}

/** Drivers of all queues, 'aa.dddd' -> driver. */
function driversOf(model: ApBusModel): Map<string, string> {
  const out = new Map<string, string>();
  for (const a of model.cardIds()) for (const d of model.queueDomains(a)) out.set(formatApqn(q(a, d)), model.queue(q(a, d))!.driver);
  return out;
}

/** SysfsIO that records every call and forwards to `inner` (or answers nothing). */
class RecordingIO implements SysfsIO {
  readonly calls: Array<{ op: string; path: string; value?: string }> = [];
  constructor(readonly inner?: SysfsIO) {}
  #fwd<T>(op: keyof SysfsIO, path: string, run: (io: SysfsIO) => T, fallback: T, value?: string): T {
    this.calls.push(value === undefined ? { op, path } : { op, path, value });
    return this.inner ? run(this.inner) : fallback;
  }
  read(path: string): string {
    return this.#fwd('read', path, (io) => io.read(path), '');
  }
  write(path: string, value: string): void {
    this.#fwd('write', path, (io) => io.write(path, value), undefined, value);
  }
  list(path: string): string[] {
    return this.#fwd('list', path, (io) => io.list(path), []);
  }
  readlink(path: string): string {
    return this.#fwd('readlink', path, (io) => io.readlink(path), '');
  }
  exists(path: string): boolean {
    return this.#fwd('exists', path, (io) => io.exists(path), false);
  }
}

// ------------------------------------------------------------------------------ read suite, twice

type Backing = 'virtual sysfs' | 'on-disk tree';
const BACKINGS: Backing[] = ['virtual sysfs', 'on-disk tree'];
const PROFILES: KernelProfile[] = ['5.15', '6.10', '6.19'];

/** A prepared bus and a read-only backend over the chosen backing. */
function readFixture(t: ExecutionContext, backing: Backing, kernel: KernelProfile) {
  const { model, io, backend } = virtualBackend(kernel);
  prepareBus(model, backend);
  const reader = backing === 'virtual sysfs' ? backend : diskBackend(t, io);
  return { model, io, writer: backend, reader };
}

for (const backing of BACKINGS) {
  for (const kernel of PROFILES) {
    test(`${backing} ${kernel}: inventory equals the model's own state`, (t) => {
      const { model, reader } = readFixture(t, backing, kernel);
      const truth = modelTruth(model);
      t.deepEqual(comparable(reader.inventory()), truth);
      // The prepared state really is varied (else the comparison proves little).
      const drivers = new Set(truth.queues.map((x) => x.driver));
      t.deepEqual([...drivers].sort(), ['', 'cex4queue', 'vfio_ap']);
      t.true(truth.queues.some((x) => x.vfioStatus === 'in use'));
      t.true(truth.queues.some((x) => x.requestsInFlight === 3));
      t.true(truth.cards.some((c) => !c.config));
    });

    test(`${backing} ${kernel}: capabilities are found from the attribute files`, (t) => {
      const { reader } = readFixture(t, backing, kernel);
      t.deepEqual(reader.inventory().capabilities, {
        apConfig: kernel !== '5.15',
        driverOverride: kernel === '6.19',
      });
    });

    test(`${backing} ${kernel}: readMatrix and readGuestMatrix agree with the model`, (t) => {
      const { model, reader } = readFixture(t, backing, kernel);
      for (const m of model.mdevs.list()) {
        t.deepEqual(
          reader.readMatrix(m.uuid),
          { adapters: m.apm.bits(), domains: m.aqm.bits(), controlDomains: m.adm.bits() },
          m.uuid,
        );
        t.deepEqual(reader.readGuestMatrix(m.uuid), model.mdevs.guestView(m), m.uuid);
      }
      t.deepEqual(reader.readMatrix(UUID_B), { adapters: [7], domains: [], controlDomains: [] }, 'adapter-only matrix');
      t.deepEqual(reader.readMatrix(UUID_C), { adapters: [], domains: [6], controlDomains: [] }, 'domain-only matrix');
      t.deepEqual(reader.readGuestMatrix(UUID_A), { adapters: [6], domains: [4, 5] });
      t.deepEqual(reader.listMdevs(), [UUID_B, UUID_A, UUID_C].sort());
    });
  }

  test(`${backing}: matrix lines are kept as the kernel printed them`, (t) => {
    const { reader } = readFixture(t, backing, '5.15');
    const byUuid = new Map(reader.inventory().mdevs.map((m) => [m.uuid, m]));
    t.deepEqual(byUuid.get(UUID_A)!.matrixLines, ['06.0004', '06.0005']);
    t.deepEqual(byUuid.get(UUID_B)!.matrixLines, ['07.']);
    t.deepEqual(byUuid.get(UUID_C)!.matrixLines, ['.0006']);
    t.is(byUuid.get(UUID_A)!.apConfig, null);
  });

  test(`${backing}: a missing mdev reads as ENOENT with its path`, (t) => {
    const { reader } = readFixture(t, backing, '6.10');
    const err = t.throws(() => reader.readMatrix(UUID_D), { instanceOf: SysfsError });
    t.is(err?.errno, 'ENOENT');
    t.true(err?.path.includes(UUID_D));
  });
}

test('the on-disk tree gives the same inventory and fingerprint as the virtual sysfs', (t) => {
  for (const kernel of PROFILES) {
    const { io, writer } = readFixture(t, 'virtual sysfs', kernel);
    const disk = diskBackend(t, io);
    t.deepEqual(disk.inventory(), writer.inventory(), kernel);
    t.is(disk.fingerprint(), writer.fingerprint(), kernel);
  }
});

test('renderSysfs copies files, directories and symlinks (targets as stored), write-only files empty', (t) => {
  const { model, io, backend } = virtualBackend('6.10');
  backend.createMdev(UUID_A);
  const dir = scratchDir(t);
  const stats = renderSysfs(io, dir);
  const disk = new RealSysfs(dir);
  for (const link of ['bus/ap/devices/05.0004', 'devices/ap/card05/05.0004/driver', 'bus/ap/drivers/cex4queue/06.0007']) {
    t.is(disk.readlink(link), io.readlink(link), link);
  }
  for (const file of ['bus/ap/apmask', 'bus/ap/bindings', 'devices/ap/card07/type', `devices/vfio_ap/matrix/${UUID_A}/ap_config`]) {
    t.is(disk.read(file), io.read(file), file);
  }
  const writeOnly = fs.statSync(nodePath.join(dir, 'devices/vfio_ap/matrix', UUID_A, 'assign_adapter'));
  t.is(writeOnly.size, 0, 'write-only attributes are empty files');
  t.is(writeOnly.mode & 0o777, 0o200, 'with mode 0200');
  t.deepEqual(disk.list('devices/ap/card05/05.0004'), io.list('devices/ap/card05/05.0004'));
  const queues = model.cardIds().reduce((n, a) => n + model.queueDomains(a).length, 0);
  t.true(stats.directories > queues && stats.symlinks > 2 * queues && stats.writeOnly > 0);
});

test('with no mdev, whether the kernel has ap_config is unknown (null)', (t) => {
  const { backend } = virtualBackend('6.10');
  t.deepEqual(backend.inventory().capabilities, { apConfig: null, driverOverride: false });
  t.deepEqual(backend.inventory().mdevs, []);
});

test('a card without cex4card bound still reports its type and mode (from hwtype and function bits)', (t) => {
  const { model, backend } = virtualBackend('6.10');
  backend.unbind('cex4card', { card: 8 });
  const card = backend.inventory().cards.find((c) => c.id === 8)!;
  t.deepEqual(card, { id: 8, hwtype: 14, type: 'CEX8C', mode: 'CCA', online: false, config: true, chkstop: false });
  t.is(model.card(8)!.driver, '');
});

test('contents that do not match the kernel format are an EIO naming the file, never a guess', (t) => {
  const cases: Array<{ path: string; contents: string; read: (b: SysfsBackend) => unknown; why: string }> = [
    { path: 'devices/ap/card05/05.0001/request_count', contents: '12x\n', read: (b) => b.inventory(), why: 'a counter with a letter' },
    { path: 'devices/ap/card05/05.0001/pendingq_count', contents: '\n', read: (b) => b.inventory(), why: 'an empty counter' },
    { path: 'devices/ap/card05/05.0001/requestq_count', contents: '-1\n', read: (b) => b.inventory(), why: 'a negative counter' },
    { path: 'devices/ap/card05/05.0001/online', contents: 'yes\n', read: (b) => b.inventory(), why: 'a flag that is not 0/1' },
    { path: 'bus/ap/apmask', contents: '0xff\n', read: (b) => b.inventory(), why: 'a short mask' },
    { path: 'bus/ap/bindings', contents: 'all\n', read: (b) => b.inventory(), why: 'bindings without bound/total' },
    { path: `devices/vfio_ap/matrix/${UUID_A}/matrix`, contents: '5.4\n', read: (b) => b.readMatrix(UUID_A), why: 'a matrix line with short ids' },
    { path: `devices/vfio_ap/matrix/${UUID_A}/matrix`, contents: '100.0004\n', read: (b) => b.readMatrix(UUID_A), why: 'an adapter of three digits' },
    { path: `devices/vfio_ap/matrix/${UUID_A}/control_domains`, contents: '0100\n', read: (b) => b.readMatrix(UUID_A), why: 'a control domain above 255' },
  ];
  for (const c of cases) {
    const { io, backend } = virtualBackend('5.15');
    backend.createMdev(UUID_A);
    const tampered: SysfsIO = {
      read: (p) => (p === c.path ? c.contents : io.read(p)),
      write: (p, v) => io.write(p, v),
      list: (p) => io.list(p),
      readlink: (p) => io.readlink(p),
      exists: (p) => io.exists(p),
    };
    const err = t.throws(() => c.read(new SysfsBackend(tampered)), { instanceOf: SysfsError }, c.why);
    t.is(err?.errno, 'EIO', c.why);
    t.is(err?.path, c.path, c.why);
  }
});

// ------------------------------------------------------------------------------ masks

test('relativeMaskWrite names only the given bits, runs as ranges', (t) => {
  const cases: Array<{ changes: MaskBitChange[]; expected: string; why: string }> = [
    { changes: [], expected: '', why: 'no change, no write' },
    { changes: [{ bit: 5, value: true }], expected: '+0x5', why: 'one bit set' },
    { changes: [{ bit: 0, value: false }], expected: '-0x0', why: 'bit 0 cleared (hex, never a lone octal 0)' },
    {
      changes: [16, 17, 18, 19].map((bit) => ({ bit, value: false })),
      expected: '-0x10-0x13',
      why: 'adjacent bits become one range',
    },
    {
      changes: [
        { bit: 9, value: false },
        { bit: 5, value: true },
        { bit: 7, value: false },
        { bit: 8, value: false },
        { bit: 255, value: true },
      ],
      expected: '+0x5,+0xff,-0x7-0x9',
      why: 'sets and clears, sorted',
    },
    {
      changes: [
        { bit: 3, value: true },
        { bit: 3, value: true },
      ],
      expected: '+0x3',
      why: 'a repeated change is written once',
    },
  ];
  for (const c of cases) t.is(relativeMaskWrite(c.changes), c.expected, c.why);
  t.throws(
    () =>
      relativeMaskWrite([
        { bit: 3, value: true },
        { bit: 3, value: false },
      ]),
    { instanceOf: ApbusInputError },
    'a bit both set and cleared is refused',
  );
});

test('mask bit changes move whole rows and columns of queues, and nothing else', (t) => {
  const cases: Array<{ kind: 'apmask' | 'aqmask'; bits: number[]; moved: (a: number, d: number) => boolean; why: string }> = [
    { kind: 'apmask', bits: [6], moved: (a) => a === 6, why: 'clearing adapter 06 frees row 06 in every domain' },
    { kind: 'aqmask', bits: [5], moved: (_a, d) => d === 5, why: 'clearing domain 0005 frees column 0005 on every adapter' },
    { kind: 'apmask', bits: [5, 7], moved: (a) => a === 5 || a === 7, why: 'two adapters, two rows' },
  ];
  for (const c of cases) {
    const { model, backend } = virtualBackend('6.10');
    const before = driversOf(model);
    backend.setMaskBits(c.kind, c.bits.map((bit) => ({ bit, value: false })));
    const after = driversOf(model);
    for (const [name, driver] of before) {
      const [a, d] = name.split('.').map((x) => parseInt(x, 16)) as [number, number];
      t.is(after.get(name), c.moved(a, d) ? 'vfio_ap' : driver, `${c.why}: ${name}`);
    }
    backend.setMaskBits(c.kind, c.bits.map((bit) => ({ bit, value: true })));
    t.deepEqual(driversOf(model), before, `${c.why}: setting the bits again brings them back`);
  }
});

test('setMaskBits is one relative write and never rewrites bits it was not given', (t) => {
  const { model, io } = virtualBackend('6.10');
  const recorder = new RecordingIO(io);
  const backend = new SysfsBackend(recorder);
  io.write('bus/ap/apmask', '-9'); // someone else clears adapter 09 between our read and write
  const result = backend.setMaskBits('apmask', [
    { bit: 5, value: false },
    { bit: 6, value: false },
  ]);
  t.deepEqual(
    recorder.calls.filter((c) => c.op === 'write'),
    [{ op: 'write', path: 'bus/ap/apmask', value: '-0x5-0x6' }],
  );
  t.false(model.apmask.has(9), 'the bit cleared by someone else stays cleared');
  t.deepEqual(result.bits().filter((b) => b < 12), [0, 1, 2, 3, 4, 7, 8, 10, 11]);
  t.true(result.equals(model.apmask), 'returns the mask as the kernel prints it afterwards');
});

test('setMaskBits with no changes writes nothing', (t) => {
  const { io } = virtualBackend('6.10');
  const recorder = new RecordingIO(io);
  new SysfsBackend(recorder).setMaskBits('aqmask', []);
  t.deepEqual(
    recorder.calls.filter((c) => c.op === 'write'),
    [],
  );
});

test('a refused mask write surfaces as the SysfsError (EBUSY, bus/ap/apmask) and changes nothing', (t) => {
  const { model, backend } = virtualBackend('6.10');
  backend.setMaskBits('apmask', [{ bit: 6, value: false }]);
  backend.createMdev(UUID_A);
  backend.setMatrix(UUID_A, { adapters: [6], domains: [4], controlDomains: [] });
  const before = model.apmask;
  const err = t.throws(() => backend.setMaskBits('apmask', [{ bit: 6, value: true }]), { instanceOf: SysfsError });
  t.is(err?.errno, 'EBUSY');
  t.is(err?.path, 'bus/ap/apmask');
  t.true(model.apmask.equals(before));
});

// ------------------------------------------------------------------------------ matrices

/** Adapters 05..08 on vfio_ap (all domains), mdev A created. */
function matrixFixture(kernel: KernelProfile) {
  const f = virtualBackend(kernel);
  f.backend.setMaskBits('apmask', [5, 6, 7, 8].map((bit) => ({ bit, value: false })));
  f.backend.createMdev(UUID_A);
  return f;
}

function modelMatrix(model: ApBusModel, uuid: string): MdevMatrix {
  const m = model.mdevs.get(uuid)!;
  return { adapters: m.apm.bits(), domains: m.aqm.bits(), controlDomains: m.adm.bits() };
}

for (const [kernel, via] of [
  ['5.15', 'assign'],
  ['6.10', 'ap_config'],
  ['6.19', 'ap_config'],
] as const) {
  test(`${kernel}: setMatrix changes the matrix via ${via}`, (t) => {
    const { model, backend } = matrixFixture(kernel);
    const steps: MdevMatrix[] = [
      { adapters: [5, 6], domains: [4, 5], controlDomains: [4] },
      { adapters: [6, 7], domains: [5, 6], controlDomains: [5, 6] }, // removals and additions
      { adapters: [7], domains: [], controlDomains: [] }, // adapter only
      { adapters: [], domains: [], controlDomains: [] },
    ];
    for (const want of steps) {
      const result = backend.setMatrix(UUID_A, want);
      t.is(result.via, via);
      t.deepEqual(modelMatrix(model, UUID_A), want);
      t.deepEqual(backend.readMatrix(UUID_A), want);
    }
    t.deepEqual(backend.setMatrix(UUID_A, { adapters: [], domains: [], controlDomains: [] }), { via: 'unchanged', writes: 0 });
  });
}

test('5.15: setMatrix writes only the differences, removals first', (t) => {
  const { io, backend } = matrixFixture('5.15');
  backend.setMatrix(UUID_A, { adapters: [5, 6], domains: [4, 5], controlDomains: [4] });
  const recorder = new RecordingIO(io);
  const result = new SysfsBackend(recorder).setMatrix(UUID_A, { adapters: [6, 7], domains: [4, 6], controlDomains: [4] });
  const dir = `devices/vfio_ap/matrix/${UUID_A}`;
  t.deepEqual(
    recorder.calls.filter((c) => c.op === 'write'),
    [
      { op: 'write', path: `${dir}/unassign_domain`, value: '0x5' },
      { op: 'write', path: `${dir}/unassign_adapter`, value: '0x5' },
      { op: 'write', path: `${dir}/assign_adapter`, value: '0x7' },
      { op: 'write', path: `${dir}/assign_domain`, value: '0x6' },
    ],
  );
  t.deepEqual(result, { via: 'assign', writes: 4 });
});

test('setMatrix input is validated, de-duplicated and sorted', (t) => {
  const { model, backend } = matrixFixture('5.15');
  backend.setMatrix(UUID_A, { adapters: [6, 5, 6], domains: [5, 4], controlDomains: [] });
  t.deepEqual(modelMatrix(model, UUID_A), { adapters: [5, 6], domains: [4, 5], controlDomains: [] });
});

// assign_* failing midway: the writes already made are undone and the original error comes out.
const rollbackCases: Array<{
  why: string;
  errno: Errno;
  file: string;
  setup: (b: SysfsBackend) => void;
  target: MdevMatrix;
}> = [
  {
    why: 'another mdev holds 07.0004 (EADDRINUSE)',
    errno: 'EADDRINUSE',
    file: 'assign_adapter',
    setup: (b) => {
      b.createMdev(UUID_B);
      b.setMatrix(UUID_B, { adapters: [7], domains: [4], controlDomains: [] });
    },
    target: { adapters: [5, 6, 7], domains: [4], controlDomains: [4, 6] },
  },
  {
    why: 'adapter 09 is still the host driver\u2019s (EADDRNOTAVAIL)',
    errno: 'EADDRNOTAVAIL',
    file: 'assign_adapter',
    setup: () => {},
    target: { adapters: [5, 6, 9], domains: [4], controlDomains: [4] },
  },
  {
    why: 'a new domain meets another mdev\u2019s adapter (EADDRINUSE on assign_domain)',
    errno: 'EADDRINUSE',
    file: 'assign_domain',
    setup: (b) => {
      b.createMdev(UUID_B);
      b.setMatrix(UUID_B, { adapters: [6], domains: [7], controlDomains: [] });
    },
    target: { adapters: [5, 6], domains: [4, 7], controlDomains: [] },
  },
  {
    why: 'adapter 0x50 is above ap_max_adapter_id 63 (ENODEV)',
    errno: 'ENODEV',
    file: 'assign_adapter',
    setup: () => {},
    target: { adapters: [6, 0x50], domains: [4], controlDomains: [] },
  },
];

for (const c of rollbackCases) {
  test(`5.15: setMatrix rolls back when ${c.why}`, (t) => {
    const { model, backend } = matrixFixture('5.15');
    c.setup(backend);
    const previous: MdevMatrix = { adapters: [5], domains: [4, 5], controlDomains: [4] };
    backend.setMatrix(UUID_A, previous);
    const err = t.throws(() => backend.setMatrix(UUID_A, c.target), { instanceOf: SysfsError });
    t.is(err?.errno, c.errno);
    t.is(err?.path, `devices/vfio_ap/matrix/${UUID_A}/${c.file}`);
    t.deepEqual(modelMatrix(model, UUID_A), previous, 'the previous matrix is back');
    t.deepEqual(rollbackFailuresOf(err), []);
  });
}

test('6.10: a refused ap_config write leaves the matrix alone and keeps the errno', (t) => {
  const { model, backend } = matrixFixture('6.10');
  backend.createMdev(UUID_B);
  backend.setMatrix(UUID_B, { adapters: [7], domains: [4], controlDomains: [] });
  const previous: MdevMatrix = { adapters: [5], domains: [4], controlDomains: [] };
  backend.setMatrix(UUID_A, previous);
  const err = t.throws(() => backend.setMatrix(UUID_A, { adapters: [5, 7], domains: [4], controlDomains: [] }), {
    instanceOf: SysfsError,
  });
  t.is(err?.errno, 'EADDRINUSE');
  t.is(err?.path, `devices/vfio_ap/matrix/${UUID_A}/ap_config`);
  t.deepEqual(modelMatrix(model, UUID_A), previous);
});

test('5.15: when undoing also fails, the original error is rethrown and the undo failures are attached', (t) => {
  const { io, backend } = matrixFixture('5.15');
  backend.createMdev(UUID_B);
  backend.setMatrix(UUID_B, { adapters: [7], domains: [4], controlDomains: [] });
  backend.setMatrix(UUID_A, { adapters: [5], domains: [4], controlDomains: [] });
  // A SysfsIO whose unassign_adapter breaks: the undo of 'assign_adapter 6' cannot happen.
  const broken: SysfsIO = {
    read: (p) => io.read(p),
    list: (p) => io.list(p),
    readlink: (p) => io.readlink(p),
    exists: (p) => io.exists(p),
    write: (p, v) => {
      if (p.endsWith('/unassign_adapter')) throw new SysfsError('EIO', p);
      io.write(p, v);
    },
  };
  const err = t.throws(() => new SysfsBackend(broken).setMatrix(UUID_A, { adapters: [5, 6, 7], domains: [4], controlDomains: [] }), {
    instanceOf: SysfsError,
  });
  t.is(err?.errno, 'EADDRINUSE');
  const failures = rollbackFailuresOf(err);
  t.is(failures.length, 1);
  t.is((failures[0] as SysfsError).errno, 'EIO');
});

// ------------------------------------------------------------------------------ mdevs

test('createMdev/removeMdev: canonical UUIDs, EEXIST in any letter case, EBUSY while a guest has it', (t) => {
  const { model, backend } = virtualBackend('6.10');
  backend.createMdev(UUID_A.toUpperCase());
  t.deepEqual(backend.listMdevs(), [UUID_A]);
  t.true(backend.mdevExists(UUID_A.toUpperCase()));
  const exists = t.throws(() => backend.createMdev(UUID_A), { instanceOf: SysfsError });
  t.is(exists?.errno, 'EEXIST');
  model.attachGuest(UUID_A);
  const busy = t.throws(() => backend.removeMdev(UUID_A), { instanceOf: SysfsError });
  t.is(busy?.errno, 'EBUSY');
  t.is(busy?.path, `devices/vfio_ap/matrix/${UUID_A}/remove`);
  model.detachGuest(UUID_A);
  backend.removeMdev(UUID_A);
  t.deepEqual(backend.listMdevs(), []);
  t.false(backend.mdevExists(UUID_A));
});

// ------------------------------------------------------------------------------ drivers

test('6.19: driver_override moves single queues, blocks mask writes while set, and clears', (t) => {
  const { model, backend } = virtualBackend('6.19');
  const apqn = q(5, 4);
  backend.setDriverOverride(apqn, 'vfio_ap');
  backend.unbind('cex4queue', apqn);
  backend.bind('vfio_ap', apqn);
  const queue = () => backend.inventory().queues.find((x) => x.apqn.adapter === 5 && x.apqn.domain === 4)!;
  t.like(queue(), { driver: 'vfio_ap', driverOverride: 'vfio_ap', online: null, vfioStatus: 'unassigned', requestsInFlight: 0 });
  t.is(model.queue(q(5, 5))!.driver, 'cex4queue', 'the neighbours stay with the host');

  const err = t.throws(() => backend.setMaskBits('apmask', [{ bit: 9, value: false }]), { instanceOf: SysfsError });
  t.is(err?.errno, 'EINVAL', 'mask writes fail while an override is set');
  t.is(err?.path, 'bus/ap/apmask');

  backend.setDriverOverride(apqn, null);
  t.is(model.queue(apqn)!.driverOverride, null);
  backend.unbind('vfio_ap', apqn);
  backend.bind('cex4queue', apqn);
  t.like(queue(), { driver: 'cex4queue', driverOverride: '', online: true });
  backend.setMaskBits('apmask', [{ bit: 9, value: false }]);
  t.false(model.apmask.has(9), 'mask writes work again');
});

test('6.19: driver_override cannot be set while the masks are not all ones (EINVAL)', (t) => {
  const { backend } = virtualBackend('6.19');
  backend.setMaskBits('apmask', [{ bit: 9, value: false }]);
  const err = t.throws(() => backend.setDriverOverride(q(5, 4), 'vfio_ap'), { instanceOf: SysfsError });
  t.is(err?.errno, 'EINVAL');
  t.is(err?.path, 'devices/ap/card05/05.0004/driver_override');
});

test('6.10: there is no driver_override to write (ENOENT)', (t) => {
  const { backend } = virtualBackend('6.10');
  const err = t.throws(() => backend.setDriverOverride(q(5, 4), 'vfio_ap'), { instanceOf: SysfsError });
  t.is(err?.errno, 'ENOENT');
});

test('bind/unbind: a queue without a driver, the wrong side of the masks (ENODEV), and back', (t) => {
  const { model, backend } = virtualBackend('6.10');
  const apqn = q(5, 1);
  backend.unbind('cex4queue', apqn);
  t.is(model.queue(apqn)!.driver, '');
  t.like(backend.inventory().bindings, { complete: false });
  const err = t.throws(() => backend.bind('vfio_ap', apqn), { instanceOf: SysfsError });
  t.is(err?.errno, 'ENODEV');
  t.is(err?.path, 'bus/ap/drivers/vfio_ap/bind');
  backend.bind('cex4queue', apqn);
  t.is(model.queue(apqn)!.driver, 'cex4queue');
  t.like(backend.inventory().bindings, { complete: true });
});

// ------------------------------------------------------------------------------ activity, fingerprint

test('queueActivity reports host requests in flight until they drain, and missing queues', (t) => {
  const { model, backend } = virtualBackend('6.10');
  const apqns = [q(5, 4), q(5, 5), q(0x20, 4)];
  t.deepEqual(backend.queueActivity(apqns), [
    { apqn: q(5, 4), present: true, requestsInFlight: 3, requestCount: 3 },
    { apqn: q(5, 5), present: true, requestsInFlight: 0, requestCount: 0 },
    { apqn: q(0x20, 4), present: false, requestsInFlight: 0, requestCount: 0 },
  ]);
  model.tick(5);
  t.like(backend.queueActivity([q(5, 4)])[0], { requestsInFlight: 0, requestCount: 3 });
});

test('fingerprint is stable while nothing changes and moves with each kind of change', (t) => {
  const { model, backend } = virtualBackend('6.10');
  let last = backend.fingerprint();
  t.is(backend.fingerprint(), last, 'reading twice gives the same digest');
  model.tick(5); // host requests draining are counters, not configuration
  t.is(backend.fingerprint(), last, 'counters do not change the fingerprint');
  const changes: Array<{ why: string; change: () => void }> = [
    { why: 'a mask bit', change: () => backend.setMaskBits('apmask', [{ bit: 6, value: false }]) },
    { why: 'an mdev created', change: () => backend.createMdev(UUID_A) },
    { why: 'a matrix', change: () => backend.setMatrix(UUID_A, { adapters: [6], domains: [4], controlDomains: [] }) },
    { why: 'a binding', change: () => backend.unbind('cex4queue', q(5, 1)) },
    { why: 'a card deconfigured', change: () => model.setCardConfig(8, false) },
    { why: 'a card removed', change: () => model.removeCard(7) },
  ];
  for (const c of changes) {
    c.change();
    const now = backend.fingerprint();
    t.not(now, last, c.why);
    last = now;
  }
});

// ------------------------------------------------------------------------------ hostile input

const GOOD_APQN = q(5, 4);
const hostileUuids = [
  '../../../../etc/passwd',
  `${UUID_A}/../../../../etc`,
  `${UUID_A}/remove`,
  `${UUID_A}\n`,
  `${UUID_A}\0`,
  ` ${UUID_A}`,
  UUID_A.slice(0, 35),
  'mdev_supported_types',
  '*',
  '',
];
const hostileApqns: unknown[] = [
  { adapter: -1, domain: 4 },
  { adapter: 256, domain: 4 },
  { adapter: 5, domain: 0x100 },
  { adapter: 1.5, domain: 4 },
  { adapter: Number.NaN, domain: 4 },
  { adapter: '05', domain: 4 },
  { adapter: '../..', domain: '../../etc' },
  { adapter: 5 },
  null,
  '05.0004',
];
const hostileDrivers: unknown[] = ['../../../devices', 'vfio_ap/../..', 'vfio_ap\n', '', 'zcrypt', null];

const hostileCalls: Array<{ why: string; call: (b: SysfsBackend) => unknown }> = [
  ...hostileUuids.flatMap((u) => [
    { why: `createMdev(${JSON.stringify(u)})`, call: (b: SysfsBackend) => b.createMdev(u) },
    { why: `removeMdev(${JSON.stringify(u)})`, call: (b: SysfsBackend) => b.removeMdev(u) },
    { why: `mdevExists(${JSON.stringify(u)})`, call: (b: SysfsBackend) => b.mdevExists(u) },
    { why: `readMatrix(${JSON.stringify(u)})`, call: (b: SysfsBackend) => b.readMatrix(u) },
    { why: `readGuestMatrix(${JSON.stringify(u)})`, call: (b: SysfsBackend) => b.readGuestMatrix(u) },
    {
      why: `setMatrix(${JSON.stringify(u)})`,
      call: (b: SysfsBackend) => b.setMatrix(u, { adapters: [5], domains: [4], controlDomains: [] }),
    },
  ]),
  ...hostileApqns.flatMap((a) => [
    { why: `setDriverOverride(${JSON.stringify(a)})`, call: (b: SysfsBackend) => b.setDriverOverride(a as Apqn, 'vfio_ap') },
    { why: `bind(vfio_ap, ${JSON.stringify(a)})`, call: (b: SysfsBackend) => b.bind('vfio_ap', a as Apqn) },
    { why: `unbind(cex4queue, ${JSON.stringify(a)})`, call: (b: SysfsBackend) => b.unbind('cex4queue', a as Apqn) },
    { why: `queueActivity([${JSON.stringify(a)}])`, call: (b: SysfsBackend) => b.queueActivity([GOOD_APQN, a as Apqn]) },
  ]),
  ...hostileDrivers.flatMap((d) => [
    { why: `bind(${JSON.stringify(d)})`, call: (b: SysfsBackend) => b.bind(d as never, GOOD_APQN) },
    { why: `unbind(${JSON.stringify(d)})`, call: (b: SysfsBackend) => b.unbind(d as never, GOOD_APQN) },
  ]),
  // null is how an override is cleared, so only the strings are hostile here.
  ...hostileDrivers
    .filter((d) => d !== null)
    .map((d) => ({
      why: `setDriverOverride(…, ${JSON.stringify(d)})`,
      call: (b: SysfsBackend) => b.setDriverOverride(GOOD_APQN, d as never),
    })),
  { why: 'bind to cex4card with card -1', call: (b) => b.bind('cex4card', { card: -1 }) },
  { why: 'bind to cex4card with card "../x"', call: (b) => b.bind('cex4card', { card: '../x' as never }) },
  ...['../apmask', 'ap_domain', 'apmask/..', ''].map((kind) => ({
    why: `setMaskBits(${JSON.stringify(kind)})`,
    call: (b: SysfsBackend) => b.setMaskBits(kind as never, [{ bit: 1, value: false }]),
  })),
  ...[-1, 256, 0.5, '5', Number.NaN, Number.POSITIVE_INFINITY, null].map((bit) => ({
    why: `setMaskBits bit ${String(bit)}`,
    call: (b: SysfsBackend) => b.setMaskBits('apmask', [{ bit: 2, value: false }, { bit: bit as number, value: false }]),
  })),
  { why: 'setMaskBits value "0"', call: (b) => b.setMaskBits('aqmask', [{ bit: 2, value: '0' as never }]) },
  ...[
    { adapters: [256], domains: [], controlDomains: [] },
    { adapters: ['05'], domains: [], controlDomains: [] },
    { adapters: [], domains: [-1], controlDomains: [] },
    { adapters: [], domains: [], controlDomains: [1e9] },
    { adapters: '05', domains: [], controlDomains: [] },
    null,
  ].map((m) => ({
    why: `setMatrix(${JSON.stringify(m)})`,
    call: (b: SysfsBackend) => b.setMatrix(UUID_A, m as never),
  })),
];

test('hostile ids, UUIDs, driver names and mask kinds are refused before any sysfs access', (t) => {
  for (const c of hostileCalls) {
    const recorder = new RecordingIO();
    t.throws(() => c.call(new SysfsBackend(recorder)), { instanceOf: ApbusInputError }, c.why);
    t.deepEqual(recorder.calls, [], `${c.why}: no sysfs access`);
  }
});

test('every path the backend touches stays inside the AP bus subtrees', (t) => {
  const { model, io } = virtualBackend('5.15');
  const recorder = new RecordingIO(io);
  const backend = new SysfsBackend(recorder);
  prepareBus(model, backend);
  backend.inventory();
  backend.fingerprint();
  backend.queueActivity([q(5, 4), q(0x3f, 0x54)]);
  backend.setMatrix(UUID_A, { adapters: [6], domains: [4], controlDomains: [] });
  backend.readGuestMatrix(UUID_A);
  backend.removeMdev(UUID_B);
  backend.bind('cex4queue', q(5, 0));
  const allowed = /^(bus\/ap(\/|$)|devices\/ap(\/|$)|devices\/vfio_ap\/matrix(\/|$))/;
  const outside = recorder.calls.filter((c) => !allowed.test(c.path) || c.path.split('/').includes('..'));
  t.deepEqual(outside, []);
  t.true(recorder.calls.length > 100);
});
