// The node's AP bus as sysfs shows it, from reads only, so the same code describes the model
// and a real IBM Z host. A 64 x 85 node has 5,440 queue directories, so this reads only what
// it needs and never throws for an attribute a kernel or driver lacks:
// - which driver has each queue: one list() per driver directory (bus/ap/drivers/<drv> holds
//   a link per bound device), not a readlink per queue;
// - which attributes a queue has: the bus-level ones (config, counters, driver_override …)
//   are the same on every queue, so one queue's listing tells them; the driver-level ones
//   follow from the driver (cex4queue adds `online`, vfio_ap adds `status`). A queue bound to
//   any other driver is listed and read in full;
// - vfio_ap `status` is read only for queues inside some mdev's matrix: for every other queue
//   the kernel prints 'unassigned' by definition;
// - host request counters only where the host can have requests (see hostCounters below);
// - a queue's config/chkstop are skipped only when its `online` already tells them.
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
    const { info, hostIdle } = readCard(io, adapter, dir, entries);
    cards.push(info);
    const context: CardContext = { card: info, hostIdle };
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
        layout = queueLayout(io.list(queueDir), false); // a driver we do not know: look, read all
      } else if ((layout = layouts.get(driver)) === undefined) {
        busQueueAttrs ??= io.list(queueDir).filter((a) => !DRIVER_LEVEL.has(a));
        layout = queueLayout([...busQueueAttrs, ...driverAttrs], driver !== 'cex4queue');
        layouts.set(driver, layout);
      }
      queues.push(readQueue(io, { adapter, domain }, queueDir, layout, driver, context, inMatrix[adapter * 256 + domain] === 1));
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

/** What a card's queues are read against. */
interface CardContext {
  readonly card: CardInfo;
  /** The card's requestq_count and pendingq_count both read 0: none of its queues has a host
   *  request queued or pending. ap_card.c prints the sums of its queues' own counters (every
   *  queue in ap_queues with this card), which are never negative, so a zero sum means zero
   *  for each; the queues' files are then not read. A busy card's queues are read one by one. */
  readonly hostIdle: boolean;
}

function readCard(io: SysfsIO, id: number, dir: string, attrs: readonly string[]): { info: CardInfo; hostIdle: boolean } {
  const hwtype = readCount(io, dir, attrs, 'hwtype');
  // `type` and `online` exist only while cex4card is bound; the mode then comes from the
  // function bits and the type is spelled the way zcrypt would ('CEX' + generation + mode).
  const printed = attrs.includes('type') ? chomp(io.read(`${dir}/type`)).trim() : '';
  const functions = /[CPA]$/.test(printed) || !attrs.includes('ap_functions') ? undefined : io.read(`${dir}/ap_functions`);
  const mode = cardMode(printed, functions);
  const type = printed !== '' ? printed : hwtype >= 10 && hwtype <= 14 && mode !== 'Unknown' ? `CEX${hwtype - 6}${MODE_LETTER[mode]}` : '';
  const hostIdle =
    attrs.includes('requestq_count') &&
    attrs.includes('pendingq_count') &&
    readCount(io, dir, attrs, 'requestq_count') === 0 &&
    readCount(io, dir, attrs, 'pendingq_count') === 0;
  const info: CardInfo = {
    id,
    hwtype,
    type,
    mode,
    online: readFlag(io, dir, attrs, 'online', false),
    // Kernels before `config`/`chkstop` existed only showed configured, running cards.
    config: readFlag(io, dir, attrs, 'config', true),
    chkstop: readFlag(io, dir, attrs, 'chkstop', false),
  };
  return { info, hostIdle };
}

/** Which attribute files a queue directory has, and what its driver lets us know unread. */
interface QueueLayout {
  readonly online: boolean;
  readonly config: boolean;
  readonly chkstop: boolean;
  readonly requestq: boolean;
  readonly pendingq: boolean;
  readonly requestCount: boolean;
  readonly status: boolean;
  readonly driverOverride: boolean;
  /** The queue is bound to a known driver other than the host's (vfio_ap) or to none. */
  readonly noHostRequests: boolean;
}

function queueLayout(attrs: readonly string[], noHostRequests: boolean): QueueLayout {
  return {
    online: attrs.includes('online'),
    config: attrs.includes('config'),
    chkstop: attrs.includes('chkstop'),
    requestq: attrs.includes('requestq_count'),
    pendingq: attrs.includes('pendingq_count'),
    requestCount: attrs.includes('request_count'),
    status: attrs.includes('status'),
    driverOverride: attrs.includes('driver_override'),
    noHostRequests,
  };
}

function flagAt(io: SysfsIO, path: string): boolean {
  return parseFlag(io.read(path), path);
}

function countAt(io: SysfsIO, path: string): number {
  return parseDecimal(io.read(path), path);
}

/**
 * One queue. What is not read, and why the value is still the kernel's:
 * - Host request counters of a queue that is not bound to cex4queue: only zcrypt (through
 *   cex4queue) queues host requests on an AP queue, and taking a queue away from cex4queue
 *   flushes them (ap_queue_prepare_remove) and leaves it uninitiated (ap_queue_remove), so
 *   request_count reads "-" and requestq/pendingq read 0 (ap_queue.c). A queue that never
 *   had cex4queue since it was created (vfio_ap or no driver from the start) is initiated by
 *   the bus scan but has never had a host request: request_count 0, counters 0. (A queue
 *   read while the kernel is taking it from cex4queue — link gone, flush not yet done — is
 *   reported as it is a moment later: no requests.)
 * - requestq_count/pendingq_count of any queue of a card whose sums are 0 (CardContext).
 * - config/chkstop of a cex4queue queue whose `online` reads 1 on a card that reads
 *   configured and not checkstopped: zcrypt prints online as
 *   `aq->config && !aq->chkstop && zq->online`, so online 1 means this queue is configured
 *   and not checkstopped. (Kernels from before checkstop support print
 *   `aq->config && zq->online`; there the card's chkstop, which the bus scan sets together
 *   with its queues', stands in.) The kernel keeps config/chkstop per queue (from each
 *   queue's own TAPQ in ap_scan_domains), and they can differ from the card's for a while (a
 *   card `config` write changes the card at once and its queues at the next scan), so any
 *   other queue — online 0, not on cex4queue, or on a card that reads deconfigured or
 *   checkstopped — has both read.
 */
function readQueue(
  io: SysfsIO,
  apqn: Apqn,
  dir: string,
  has: QueueLayout,
  driver: string,
  context: CardContext,
  inMatrix: boolean,
): QueueInfo {
  let vfioStatus: QueueInfo['vfioStatus'] = null;
  if (has.status) vfioStatus = inMatrix ? parseVfioStatus(io.read(`${dir}/status`), `${dir}/status`) : 'unassigned';
  const online = has.online ? flagAt(io, `${dir}/online`) : null;
  const stateKnown = online === true && context.card.config && !context.card.chkstop;
  const countersRead = !has.noHostRequests && !context.hostIdle;
  const requestq = has.requestq && countersRead ? countAt(io, `${dir}/requestq_count`) : 0;
  const pendingq = has.pendingq && countersRead ? countAt(io, `${dir}/pendingq_count`) : 0;
  return {
    apqn,
    driver,
    online,
    // Kernels before `config`/`chkstop` existed only showed configured, running queues.
    config: has.config && !stateKnown ? flagAt(io, `${dir}/config`) : true,
    chkstop: has.chkstop && !stateKnown ? flagAt(io, `${dir}/chkstop`) : false,
    requestsInFlight: requestq + pendingq,
    requestCount:
      has.requestCount && !has.noHostRequests ? parseRequestCount(io.read(`${dir}/request_count`), `${dir}/request_count`) : 0,
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
