// The node's AP bus as sysfs shows it, from reads only, so the same code describes the model
// and a real IBM Z host. Hot path for 5,000+ queues: one list() per directory tells which
// optional attributes exist (online, status, driver, driver_override …), so nothing is read
// speculatively and no exception is thrown for an attribute a kernel or driver lacks.
import type { SysfsIO } from '../sysfs-io.js';
import { MDEV_UUID_RE, type Apqn } from '../ids.js';
import {
  AP_DEVICES,
  CARD_NAME_RE,
  MATRIX,
  QUEUE_NAME_RE,
  busAttr,
} from './paths.js';
import {
  cardMode,
  chomp,
  driverFromLink,
  lines,
  parseApConfig,
  parseBindings,
  parseControlDomains,
  parseDecimal,
  parseDriverOverride,
  parseFlag,
  parseMask,
  parseMatrixLines,
  parseVfioStatus,
} from './parse.js';
import type { BusInventory, CardInfo, MdevInfo, MdevMatrix, QueueActivity, QueueInfo } from './types.js';

export function readInventory(io: SysfsIO): BusInventory {
  const cards: CardInfo[] = [];
  const queues: QueueInfo[] = [];
  let sawDriverOverride: boolean | null = null;

  for (const entry of io.list(AP_DEVICES)) {
    const card = CARD_NAME_RE.exec(entry);
    if (!card) continue;
    const adapter = Number.parseInt(card[1]!, 16);
    const dir = `${AP_DEVICES}/${entry}`;
    const attrs = io.list(dir);
    cards.push(readCard(io, adapter, dir, attrs));
    for (const name of attrs) {
      const q = QUEUE_NAME_RE.exec(name);
      if (!q) continue;
      const domain = Number.parseInt(q[2]!, 16);
      // A queue directory always sits under its own card; anything else is not a queue.
      if (Number.parseInt(q[1]!, 16) !== adapter) continue;
      const queue = readQueue(io, { adapter, domain }, `${dir}/${name}`);
      sawDriverOverride = sawDriverOverride === true || queue.driverOverride !== null;
      queues.push(queue);
    }
  }
  cards.sort((a, b) => a.id - b.id);
  queues.sort((a, b) => a.apqn.adapter - b.apqn.adapter || a.apqn.domain - b.apqn.domain);

  const mdevs = readMdevs(io);
  const apConfig = mdevs.length === 0 ? null : mdevs.every((m) => m.apConfig !== null);

  return {
    capabilities: { apConfig, driverOverride: sawDriverOverride },
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

function readCard(io: SysfsIO, id: number, dir: string, attrs: readonly string[]): CardInfo {
  const type = attrs.includes('type') ? chomp(io.read(`${dir}/type`)).trim() : '';
  // ap_functions only when the type has no mode letter (older kernels print e.g. 'CEX4').
  const functions =
    /[CPA]$/.test(type) || !attrs.includes('ap_functions') ? undefined : io.read(`${dir}/ap_functions`);
  return {
    id,
    hwtype: readCount(io, dir, attrs, 'hwtype'),
    type,
    mode: cardMode(type, functions),
    online: readFlag(io, dir, attrs, 'online', false),
    // Kernels before `config`/`chkstop` existed only showed configured, running cards.
    config: readFlag(io, dir, attrs, 'config', true),
    chkstop: readFlag(io, dir, attrs, 'chkstop', false),
  };
}

function readQueue(io: SysfsIO, apqn: Apqn, dir: string): QueueInfo {
  const attrs = io.list(dir);
  const driver = attrs.includes('driver') ? driverFromLink(io.readlink(`${dir}/driver`)) : '';
  return {
    apqn,
    driver,
    online: attrs.includes('online') ? readFlag(io, dir, attrs, 'online', false) : null,
    config: readFlag(io, dir, attrs, 'config', true),
    chkstop: readFlag(io, dir, attrs, 'chkstop', false),
    requestsInFlight: readCount(io, dir, attrs, 'requestq_count') + readCount(io, dir, attrs, 'pendingq_count'),
    requestCount: readCount(io, dir, attrs, 'request_count'),
    vfioStatus: attrs.includes('status') ? parseVfioStatus(io.read(`${dir}/status`), `${dir}/status`) : null,
    driverOverride: attrs.includes('driver_override') ? parseDriverOverride(io.read(`${dir}/driver_override`)) : null,
  };
}

/** Host activity counters of some queues (for a drain check), without a full inventory. */
export function readQueueActivity(io: SysfsIO, apqn: Apqn, dir: string): QueueActivity {
  if (!io.exists(dir)) return { apqn, present: false, requestsInFlight: 0, requestCount: 0 };
  const attrs = io.list(dir);
  return {
    apqn,
    present: true,
    requestsInFlight: readCount(io, dir, attrs, 'requestq_count') + readCount(io, dir, attrs, 'pendingq_count'),
    requestCount: readCount(io, dir, attrs, 'request_count'),
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
  const controlDomains = parseControlDomains(lines(io.read(`${dir}/control_domains`)), `${dir}/control_domains`);
  const fromLines = parseMatrixLines(matrixLines, `${dir}/matrix`);
  const apConfig = attrs.includes('ap_config') ? chomp(io.read(`${dir}/ap_config`)) : null;
  // ap_config is exact even for an adapter-only or domain-only matrix; matrix lines agree with it.
  const matrix = apConfig !== null ? parseApConfig(apConfig, `${dir}/ap_config`) : { ...fromLines, controlDomains };
  return {
    uuid,
    matrix,
    matrixLines,
    guestMatrix: parseMatrixLines(guestMatrixLines, `${dir}/guest_matrix`),
    guestMatrixLines,
    apConfig,
  };
}
