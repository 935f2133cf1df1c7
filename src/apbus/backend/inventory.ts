// The node's AP bus as sysfs shows it, from reads only, so the same code describes the model
// and a real IBM Z host. A 64 x 85 node has 5,440 queue directories, so this reads only what
// it needs and never throws for an attribute a kernel or driver lacks:
// - which driver has each queue: one list() per driver directory (bus/ap/drivers/<drv> holds
//   a link per bound device), not a readlink per queue;
// - which attributes a queue has: the bus-level ones (config, counters, driver_override …)
//   are the same on every queue, so one queue's listing tells them; the driver-level ones
//   follow from the driver (cex4queue adds `online`, vfio_ap adds `status`). A queue bound to
//   any other driver is listed on its own;
// - vfio_ap `status` is read only for queues inside some mdev's matrix: for every other queue
//   the kernel prints 'unassigned' by definition.
import type { SysfsIO } from '../sysfs-io.js';
import { MDEV_UUID_RE, type Apqn } from '../ids.js';
import { AP_DEVICES, BUS, CARD_NAME_RE, MATRIX, QUEUE_NAME_RE, busAttr } from './paths.js';
import {
  cardMode,
  chomp,
  lines,
  parseApConfig,
  parseBindings,
  parseControlDomains,
  parseDecimal,
  parseRequestCount,
  parseDriverOverride,
  parseFlag,
  parseMask,
  parseMatrixLines,
  parseVfioStatus,
} from './parse.js';
import type { BusInventory, CardInfo, CardMode, MdevInfo, MdevMatrix, QueueActivity, QueueInfo } from './types.js';

const DRIVERS_DIR = `${BUS}/drivers`;

/** Queue attributes a driver adds while bound (zcrypt_queue_attr_group, vfio_queue_attr_group). */
const DRIVER_QUEUE_ATTRS: Readonly<Record<string, readonly string[]>> = {
  '': [],
  cex4queue: ['driver', 'online', 'load'],
  vfio_ap: ['driver', 'status'],
};
const DRIVER_LEVEL = new Set(['driver', 'online', 'load', 'status']);

export function readInventory(io: SysfsIO): BusInventory {
  const mdevs = readMdevs(io);
  const inMatrix = new Uint8Array(65536);
  for (const m of mdevs) for (const a of m.matrix.adapters) for (const d of m.matrix.domains) inMatrix[a * 256 + d] = 1;
  const drivers = readQueueDrivers(io);

  const cards: CardInfo[] = [];
  const queues: QueueInfo[] = [];
  let busQueueAttrs: string[] | null = null;
  const layouts = new Map<string, QueueLayout>(); // per known driver

  for (const entry of io.list(AP_DEVICES)) {
    const card = CARD_NAME_RE.exec(entry);
    if (!card) continue;
    const adapter = Number.parseInt(card[1]!, 16);
    const dir = `${AP_DEVICES}/${entry}`;
    const entries = io.list(dir);
    cards.push(readCard(io, adapter, dir, entries));
    for (const name of entries) {
      const q = QUEUE_NAME_RE.exec(name);
      // A queue directory sits under its own card; anything else is not a queue.
      if (!q || Number.parseInt(q[1]!, 16) !== adapter) continue;
      const domain = Number.parseInt(q[2]!, 16);
      const queueDir = `${dir}/${name}`;
      const driver = drivers.get(name) ?? '';
      const driverAttrs = DRIVER_QUEUE_ATTRS[driver];
      let layout: QueueLayout | undefined;
      if (driverAttrs === undefined) {
        layout = queueLayout(io.list(queueDir)); // a driver we do not know: look
      } else if ((layout = layouts.get(driver)) === undefined) {
        busQueueAttrs ??= io.list(queueDir).filter((a) => !DRIVER_LEVEL.has(a));
        layout = queueLayout([...busQueueAttrs, ...driverAttrs]);
        layouts.set(driver, layout);
      }
      queues.push(readQueue(io, { adapter, domain }, queueDir, layout, driver, inMatrix[adapter * 256 + domain] === 1));
    }
  }
  cards.sort((a, b) => a.id - b.id);
  queues.sort((a, b) => a.apqn.adapter - b.apqn.adapter || a.apqn.domain - b.apqn.domain);

  return {
    capabilities: {
      apConfig: mdevs.length === 0 ? null : mdevs.every((m) => m.apConfig !== null),
      driverOverride: queues.length === 0 ? null : queues.some((q) => q.driverOverride !== null),
    },
    maxAdapterId: parseDecimal(io.read(busAttr.maxAdapterId), busAttr.maxAdapterId),
    maxDomainId: parseDecimal(io.read(busAttr.maxDomainId), busAttr.maxDomainId),
    apmask: parseMask(io.read(busAttr.apmask), busAttr.apmask),
    aqmask: parseMask(io.read(busAttr.aqmask), busAttr.aqmask),
    bindings: parseBindings(io.read(busAttr.bindings), busAttr.bindings),
    cards,
    queues,
    mdevs,
  };
}

/** Queue name ('05.0004') -> driver name, from the links in each driver's directory. */
export function readQueueDrivers(io: SysfsIO): Map<string, string> {
  const drivers = new Map<string, string>();
  if (!io.exists(DRIVERS_DIR)) return drivers;
  for (const driver of io.list(DRIVERS_DIR)) {
    for (const name of io.list(`${DRIVERS_DIR}/${driver}`)) if (QUEUE_NAME_RE.test(name)) drivers.set(name, driver);
  }
  return drivers;
}

function readFlag(io: SysfsIO, dir: string, attrs: readonly string[], name: string, absent: boolean): boolean {
  if (!attrs.includes(name)) return absent;
  const path = `${dir}/${name}`;
  return parseFlag(io.read(path), path);
}

function readCount(io: SysfsIO, dir: string, attrs: readonly string[], name: string): number {
  if (!attrs.includes(name)) return 0;
  const path = `${dir}/${name}`;
  return parseDecimal(io.read(path), path);
}

const MODE_LETTER: Readonly<Record<CardMode, string>> = { CCA: 'C', EP11: 'P', Accel: 'A', Unknown: '' };

function readCard(io: SysfsIO, id: number, dir: string, attrs: readonly string[]): CardInfo {
  const hwtype = readCount(io, dir, attrs, 'hwtype');
  // `type` and `online` exist only while cex4card is bound; the mode then comes from the
  // function bits and the type is spelled the way zcrypt would ('CEX' + generation + mode).
  const printed = attrs.includes('type') ? chomp(io.read(`${dir}/type`)).trim() : '';
  const functions = /[CPA]$/.test(printed) || !attrs.includes('ap_functions') ? undefined : io.read(`${dir}/ap_functions`);
  const mode = cardMode(printed, functions);
  const type = printed !== '' ? printed : hwtype >= 10 && hwtype <= 14 && mode !== 'Unknown' ? `CEX${hwtype - 6}${MODE_LETTER[mode]}` : '';
  return {
    id,
    hwtype,
    type,
    mode,
    online: readFlag(io, dir, attrs, 'online', false),
    // Kernels before `config`/`chkstop` existed only showed configured, running cards.
    config: readFlag(io, dir, attrs, 'config', true),
    chkstop: readFlag(io, dir, attrs, 'chkstop', false),
  };
}

/** Which attribute files a queue directory has. */
interface QueueLayout {
  readonly online: boolean;
  readonly config: boolean;
  readonly chkstop: boolean;
  readonly requestq: boolean;
  readonly pendingq: boolean;
  readonly requestCount: boolean;
  readonly status: boolean;
  readonly driverOverride: boolean;
}

function queueLayout(attrs: readonly string[]): QueueLayout {
  return {
    online: attrs.includes('online'),
    config: attrs.includes('config'),
    chkstop: attrs.includes('chkstop'),
    requestq: attrs.includes('requestq_count'),
    pendingq: attrs.includes('pendingq_count'),
    requestCount: attrs.includes('request_count'),
    status: attrs.includes('status'),
    driverOverride: attrs.includes('driver_override'),
  };
}

function flagAt(io: SysfsIO, path: string): boolean {
  return parseFlag(io.read(path), path);
}

function countAt(io: SysfsIO, path: string): number {
  return parseDecimal(io.read(path), path);
}

function readQueue(io: SysfsIO, apqn: Apqn, dir: string, has: QueueLayout, driver: string, inMatrix: boolean): QueueInfo {
  let vfioStatus: QueueInfo['vfioStatus'] = null;
  if (has.status) vfioStatus = inMatrix ? parseVfioStatus(io.read(`${dir}/status`), `${dir}/status`) : 'unassigned';
  const requestq = has.requestq ? countAt(io, `${dir}/requestq_count`) : 0;
  const pendingq = has.pendingq ? countAt(io, `${dir}/pendingq_count`) : 0;
  return {
    apqn,
    driver,
    online: has.online ? flagAt(io, `${dir}/online`) : null,
    // Kernels before `config`/`chkstop` existed only showed configured, running queues.
    config: has.config ? flagAt(io, `${dir}/config`) : true,
    chkstop: has.chkstop ? flagAt(io, `${dir}/chkstop`) : false,
    requestsInFlight: requestq + pendingq,
    requestCount: has.requestCount ? parseRequestCount(io.read(`${dir}/request_count`), `${dir}/request_count`) : 0,
    vfioStatus,
    driverOverride: has.driverOverride ? parseDriverOverride(io.read(`${dir}/driver_override`)) : null,
  };
}

/** Host activity counters of one queue (for a drain check), without a full inventory. */
export function readQueueActivity(io: SysfsIO, apqn: Apqn, dir: string): QueueActivity {
  if (!io.exists(dir)) return { apqn, present: false, requestsInFlight: 0, requestCount: 0 };
  const attrs = io.list(dir);
  return {
    apqn,
    present: true,
    requestsInFlight: readCount(io, dir, attrs, 'requestq_count') + readCount(io, dir, attrs, 'pendingq_count'),
    requestCount: attrs.includes('request_count')
      ? parseRequestCount(io.read(`${dir}/request_count`), `${dir}/request_count`)
      : 0,
  };
}

/** UUIDs of the matrix mdevs that exist, ascending. */
export function listMdevUuids(io: SysfsIO): string[] {
  if (!io.exists(MATRIX)) return []; // vfio_ap not loaded
  return io.list(MATRIX).filter((name) => MDEV_UUID_RE.test(name));
}

function readMdevs(io: SysfsIO): MdevInfo[] {
  return listMdevUuids(io).map((uuid) => readMdev(io, `${MATRIX}/${uuid}`, uuid));
}

/** An mdev's matrix from `ap_config` when the kernel has it (exact, one read), else from
 *  `matrix` + `control_domains`. `attrs` is the mdev directory's listing. */
export function readMdevMatrix(io: SysfsIO, dir: string, attrs: readonly string[]): MdevMatrix {
  if (attrs.includes('ap_config')) return parseApConfig(io.read(`${dir}/ap_config`), `${dir}/ap_config`);
  const matrix = parseMatrixLines(lines(io.read(`${dir}/matrix`)), `${dir}/matrix`);
  const controlDomains = parseControlDomains(lines(io.read(`${dir}/control_domains`)), `${dir}/control_domains`);
  return { adapters: matrix.adapters, domains: matrix.domains, controlDomains };
}

function readMdev(io: SysfsIO, dir: string, uuid: string): MdevInfo {
  const attrs = io.list(dir);
  const matrixLines = lines(io.read(`${dir}/matrix`));
  const guestMatrixLines = attrs.includes('guest_matrix') ? lines(io.read(`${dir}/guest_matrix`)) : [];
  const apConfig = attrs.includes('ap_config') ? chomp(io.read(`${dir}/ap_config`)) : null;
  // ap_config is exact (it has control domains, and adapters even when there are no domains).
  let matrix: MdevMatrix;
  if (apConfig !== null) {
    matrix = parseApConfig(apConfig, `${dir}/ap_config`);
  } else {
    const fromLines = parseMatrixLines(matrixLines, `${dir}/matrix`);
    const controlDomains = parseControlDomains(lines(io.read(`${dir}/control_domains`)), `${dir}/control_domains`);
    matrix = { adapters: fromLines.adapters, domains: fromLines.domains, controlDomains };
  }
  return {
    uuid,
    matrix,
    matrixLines,
    guestMatrix: parseMatrixLines(guestMatrixLines, `${dir}/guest_matrix`),
    guestMatrixLines,
    apConfig,
  };
}
