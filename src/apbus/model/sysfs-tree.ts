// The sysfs tree of an ApBusModel: every path of ap-bus.md with the text the kernel prints
// (show functions of ap_bus.c, ap_card.c, ap_queue.c, zcrypt_card.c, zcrypt_queue.c,
// vfio_ap_ops.c and the mdev core) and the model's store functions behind writable files.
// Attributes a driver adds exist only while that driver is bound, as in the kernel:
// card type/online/load (cex4card), queue online/load (cex4queue), queue status (vfio_ap).
import type { Mask } from '../mask.js';
import { AP_DRIVERS, cardName, queueName, type ApBusModel, type ApDriverName } from './ap-bus-model.js';
import { ApBusError } from './errors.js';
import { formatMatrix, type MatrixAttr, type MatrixMdev } from './matrix-mdevs.js';
import { DeviceAttrFile, dynamicDir, file, link, staticDir, type DeviceAttr, type DirNode, type SysfsNode } from './sysfs-nodes.js';

const VFIO_AP_MDEV_TYPE = 'vfio_ap-passthrough';
const VFIO_AP_MDEV_NAME = 'VFIO AP Passthrough Device';
const VFIO_DEVICE_API_AP = 'vfio-ap';
const AP_FEATURES = 'APSC APXA QACT RC8A';

const CARD_RE = /^card([0-9a-f]{2})$/;
const QUEUE_RE = /^([0-9a-f]{2})\.([0-9a-f]{4})$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const line = (v: string | number) => `${v}\n`;
const flag = (b: boolean) => (b ? '1\n' : '0\n');
const maskText = (m: Mask) => `${m.toKernelString()}\n`;

export function buildSysfsTree(model: ApBusModel): DirNode {
  // Directories whose entries do not depend on one device are built once; per-device
  // directories are made on lookup.
  const busAp = busApDir(model);
  const bus = staticDir({ ap: () => busAp });
  const apDevices = apDevicesDir(model);
  const matrix = matrixDir(model);
  const vfioAp = staticDir({ matrix: () => matrix });
  const devices = staticDir({ ap: () => apDevices, vfio_ap: () => vfioAp });
  const iommuGroups = iommuGroupsDir(model);
  const kernel = staticDir({ iommu_groups: () => iommuGroups });
  return staticDir({ bus: () => bus, devices: () => devices, kernel: () => kernel });
}

// ------------------------------------------------------------------------------ bus/ap

function busApDir(model: ApBusModel): DirNode {
  const devices = busDevicesDir(model);
  const drivers = new Map(AP_DRIVERS.map((d) => [d as string, driverDir(model, d)]));
  const driversDir = dynamicDir(
    () => [...drivers.keys()],
    (name) => drivers.get(name),
  );
  return onceDir({
    apmask: () => file(() => maskText(model.apmask), (v) => model.storeApmask(v)),
    aqmask: () => file(() => maskText(model.aqmask), (v) => model.storeAqmask(v)),
    ap_adapter_mask: () => file(() => maskText(model.adapterConfigMask())),
    ap_usage_domain_mask: () => file(() => maskText(model.usageDomainMask())),
    ap_control_domain_mask: () => file(() => maskText(model.controlDomainMask())),
    ap_domain: () => file(() => line(model.apDomain), (v) => model.storeApDomain(v)),
    ap_interrupts: () => file(() => '1\n'),
    ap_max_adapter_id: () => file(() => line(model.maxAdapterId)),
    ap_max_domain_id: () => file(() => line(model.maxDomainId)),
    bindings: () =>
      file(() => {
        const b = model.bindings();
        return `${b.bound}/${b.total}${b.complete ? ' (complete)' : ''}\n`;
      }),
    config_time: () => file(() => line(model.configTime), (v) => model.storeConfigTime(v)),
    features: () => file(() => line(AP_FEATURES)),
    poll_thread: () => file(() => flag(model.pollThread), (v) => model.storePollThread(v)),
    poll_timeout: () => file(() => line(model.pollTimeout), (v) => model.storePollTimeout(v)),
    scans: () => file(() => line(model.scans), (v) => model.storeScans(v)),
    drivers_autoprobe: () => file(() => flag(model.driversAutoprobe), (v) => model.storeDriversAutoprobe(v)),
    drivers_probe: () => file(undefined, (v) => model.storeDriversProbe(v)),
    devices: () => devices,
    drivers: () => driversDir,
  });
}

/** A static directory whose children are built on first lookup and then kept. */
function onceDir(children: Record<string, () => SysfsNode>): DirNode {
  const built = new Map<string, SysfsNode>();
  return staticDir(
    Object.fromEntries(
      Object.entries(children).map(([name, make]) => [
        name,
        () => {
          let node = built.get(name);
          if (!node) built.set(name, (node = make()));
          return node;
        },
      ]),
    ),
  );
}

/** bus/ap/devices: a link per card and queue device. */
function busDevicesDir(model: ApBusModel): DirNode {
  return dynamicDir(
    () => {
      const names: string[] = [];
      for (const a of model.cardIds()) {
        names.push(cardName(a));
        for (const d of model.queueDomains(a)) names.push(queueName(a, d));
      }
      return names;
    },
    (name) => {
      const dev = parseDeviceName(model, name);
      if (!dev) return undefined;
      return link(`../../../devices/ap/${devicePath(dev)}`);
    },
  );
}

/** bus/ap/drivers/<driver>: bind, unbind and a link per bound device. */
function driverDir(model: ApBusModel, driver: ApDriverName): DirNode {
  const bind = file(undefined, (v) => model.bind(driver, v));
  const unbind = file(undefined, (v) => model.unbind(driver, v));
  return dynamicDir(
    () => ['bind', 'unbind', ...model.boundDevices(driver)],
    (name) => {
      if (name === 'bind') return bind;
      if (name === 'unbind') return unbind;
      const dev = parseDeviceName(model, name);
      if (!dev || deviceDriver(model, dev) !== driver) return undefined;
      return link(`../../../../devices/ap/${devicePath(dev)}`);
    },
  );
}

// ------------------------------------------------------------------------------ devices/ap

type Device = { kind: 'card'; adapter: number } | { kind: 'queue'; adapter: number; domain: number };

function parseDeviceName(model: ApBusModel, name: string): Device | null {
  let m = CARD_RE.exec(name);
  if (m) {
    const adapter = parseInt(m[1]!, 16);
    return model.hasCard(adapter) ? { kind: 'card', adapter } : null;
  }
  m = QUEUE_RE.exec(name);
  if (!m) return null;
  const adapter = parseInt(m[1]!, 16);
  const domain = parseInt(m[2]!, 16);
  return domain <= 255 && model.queueExists(adapter, domain) ? { kind: 'queue', adapter, domain } : null;
}

function devicePath(dev: Device): string {
  return dev.kind === 'card' ? cardName(dev.adapter) : `${cardName(dev.adapter)}/${queueName(dev.adapter, dev.domain)}`;
}

function deviceDriver(model: ApBusModel, dev: Device): string {
  return dev.kind === 'card' ? model.cardDriver(dev.adapter) : model.queueDriver(dev.adapter, dev.domain);
}

function apDevicesDir(model: ApBusModel): DirNode {
  return dynamicDir(
    () => model.cardIds().map(cardName),
    (name) => {
      const m = CARD_RE.exec(name);
      if (!m) return undefined;
      const adapter = parseInt(m[1]!, 16);
      return model.hasCard(adapter) ? new CardDir(model, adapter) : undefined;
    },
  );
}

type CardAttr = DeviceAttr<ApBusModel, number>;
const card = (m: ApBusModel, adapter: number) => m.card(adapter)!;

// ap_card.c attributes, on every card device.
const CARD_ATTRS: Record<string, CardAttr> = {
  ap_functions: { show: (m, a) => `0x${card(m, a).functions.toString(16).toUpperCase().padStart(8, '0')}\n` },
  chkstop: { show: (m, a) => flag(card(m, a).chkstop) },
  config: { show: (m, a) => flag(card(m, a).config), store: (m, a, v) => m.storeCardConfig(a, v) },
  depth: { show: (m, a) => line(card(m, a).depth) },
  hwtype: { show: (m, a) => line(card(m, a).hwtype) },
  max_msg_size: { show: (m, a) => line(card(m, a).maxMessageSize) },
  modalias: { show: (m, a) => `ap:t${card(m, a).hwtype.toString(16).toUpperCase().padStart(2, '0')}\n` },
  pendingq_count: { show: (m, a) => line(card(m, a).pendingqCount) },
  raw_hwtype: { show: (m, a) => line(card(m, a).rawHwtype) },
  request_count: { show: (m, a) => line(card(m, a).requestCount), store: (m, a, v) => m.storeCardRequestCount(a, v) },
  requestq_count: { show: (m, a) => line(card(m, a).requestqCount) },
};
// zcrypt_card.c attributes, while the card is bound to cex4card.
const ZCRYPT_CARD_ATTRS: Record<string, CardAttr> = {
  load: { show: () => '0\n' },
  online: { show: (m, a) => flag(card(m, a).online), store: (m, a, v) => m.storeCardOnline(a, v) },
  type: { show: (m, a) => line(card(m, a).type ?? '') },
};
const CARD_ATTR_NAMES = [...Object.keys(CARD_ATTRS), 'subsystem'];
const ZCRYPT_CARD_ATTR_NAMES = ['driver', ...Object.keys(ZCRYPT_CARD_ATTRS)];
const CARD_SUBSYSTEM = link('../../../bus/ap');
const CARD_DRIVER = link('../../../bus/ap/drivers/cex4card');

class CardDir implements DirNode {
  readonly kind = 'dir' as const;
  constructor(
    readonly model: ApBusModel,
    readonly adapter: number,
  ) {}

  entries(): string[] {
    const { model, adapter } = this;
    const names = [...CARD_ATTR_NAMES];
    if (model.cardDriver(adapter) === 'cex4card') names.push(...ZCRYPT_CARD_ATTR_NAMES);
    for (const d of model.queueDomains(adapter)) names.push(queueName(adapter, d));
    return names;
  }

  child(name: string): SysfsNode | undefined {
    const { model, adapter } = this;
    const attr = CARD_ATTRS[name];
    if (attr && Object.prototype.hasOwnProperty.call(CARD_ATTRS, name)) return new DeviceAttrFile(attr, model, adapter);
    if (name === 'subsystem') return CARD_SUBSYSTEM;
    if (model.cardDriver(adapter) === 'cex4card') {
      if (name === 'driver') return CARD_DRIVER;
      const zattr = ZCRYPT_CARD_ATTRS[name];
      if (zattr && Object.prototype.hasOwnProperty.call(ZCRYPT_CARD_ATTRS, name)) return new DeviceAttrFile(zattr, model, adapter);
    }
    const m = QUEUE_RE.exec(name);
    if (!m || parseInt(m[1]!, 16) !== adapter) return undefined;
    const domain = parseInt(m[2]!, 16);
    return domain <= 255 && model.queueExists(adapter, domain) ? new QueueDir(model, adapter * 256 + domain) : undefined;
  }
}

type QueueAttr = DeviceAttr<ApBusModel, number>;
const apqnOf = (index: number) => ({ adapter: index >> 8, domain: index & 255 });
const queue = (m: ApBusModel, index: number) => m.queue(apqnOf(index))!;

// ap_queue.c attributes, on every queue device.
const QUEUE_ATTRS: Record<string, QueueAttr> = {
  chkstop: { show: (m, i) => flag(m.queueFlag(i >> 8, i & 255, 'chkstop')) },
  config: { show: (m, i) => flag(m.queueFlag(i >> 8, i & 255, 'config')) },
  interrupt: { show: (m, i) => m.queueInterruptText(i >> 8, i & 255) },
  pendingq_count: { show: (m, i) => line(m.queueCounter(i >> 8, i & 255, 'pendingq')) },
  request_count: {
    // request_count_show(): "-" while the queue is uninitiated (not taken by cex4queue since
    // it was last removed from a driver).
    show: (m, i) => (m.queueInitiated(i >> 8, i & 255) ? line(m.queueCounter(i >> 8, i & 255, 'request')) : '-\n'),
    store: (m, i, v) => m.storeQueueRequestCount(i >> 8, i & 255, v),
  },
  requestq_count: { show: (m, i) => line(m.queueCounter(i >> 8, i & 255, 'requestq')) },
  reset: { show: (m, i) => m.queueResetText(i >> 8, i & 255), store: (m, i, v) => m.storeQueueReset(i >> 8, i & 255, v) },
};
// ap_queue.c driver_override (6.19 only).
const DRIVER_OVERRIDE_ATTR: QueueAttr = {
  show: (m, i) => line(queue(m, i).driverOverride ?? ''),
  store: (m, i, v) => m.storeDriverOverride(i >> 8, i & 255, v),
};
// zcrypt_queue.c attributes, while bound to cex4queue.
const ZCRYPT_QUEUE_ATTRS: Record<string, QueueAttr> = {
  load: { show: () => '0\n' },
  online: { show: (m, i) => flag(m.queueFlag(i >> 8, i & 255, 'online')), store: (m, i, v) => m.storeQueueOnline(i >> 8, i & 255, v) },
};
// vfio_ap_drv.c/vfio_ap_ops.c `status`, while bound to vfio_ap.
const STATUS_ATTR: QueueAttr = { show: (m, i) => line(m.mdevs.queueStatus(i >> 8, i & 255)) };
const QUEUE_ATTR_NAMES = [...Object.keys(QUEUE_ATTRS), 'subsystem'];
const QUEUE_SUBSYSTEM = link('../../../../bus/ap');
const QUEUE_DRIVER = {
  cex4queue: link('../../../../bus/ap/drivers/cex4queue'),
  vfio_ap: link('../../../../bus/ap/drivers/vfio_ap'),
};

class QueueDir implements DirNode {
  readonly kind = 'dir' as const;
  constructor(
    readonly model: ApBusModel,
    readonly index: number,
  ) {}

  entries(): string[] {
    const { model, index } = this;
    const driver = model.queueDriver(index >> 8, index & 255);
    const names = [...QUEUE_ATTR_NAMES];
    if (model.features.driverOverride) names.push('driver_override');
    if (driver !== '') names.push('driver');
    if (driver === 'cex4queue') names.push(...Object.keys(ZCRYPT_QUEUE_ATTRS));
    if (driver === 'vfio_ap') names.push('status');
    return names;
  }

  child(name: string): SysfsNode | undefined {
    const { model, index } = this;
    const attr = QUEUE_ATTRS[name];
    if (attr && Object.prototype.hasOwnProperty.call(QUEUE_ATTRS, name)) return new DeviceAttrFile(attr, model, index);
    if (name === 'subsystem') return QUEUE_SUBSYSTEM;
    if (name === 'driver_override') return model.features.driverOverride ? new DeviceAttrFile(DRIVER_OVERRIDE_ATTR, model, index) : undefined;
    const driver = model.queueDriver(index >> 8, index & 255);
    if (driver === '') return undefined;
    if (name === 'driver') return QUEUE_DRIVER[driver];
    if (driver === 'cex4queue') {
      const zattr = ZCRYPT_QUEUE_ATTRS[name];
      return zattr && Object.prototype.hasOwnProperty.call(ZCRYPT_QUEUE_ATTRS, name) ? new DeviceAttrFile(zattr, model, index) : undefined;
    }
    return name === 'status' ? new DeviceAttrFile(STATUS_ATTR, model, index) : undefined;
  }
}

// ------------------------------------------------------------------------------ vfio_ap

function matrixDir(model: ApBusModel): DirNode {
  const mdevType = mdevTypeDir(model);
  const supportedTypes = staticDir({ [VFIO_AP_MDEV_TYPE]: () => mdevType });
  return dynamicDir(
    () => ['mdev_supported_types', ...model.mdevs.list().map((m) => m.uuid)],
    (name) => {
      if (name === 'mdev_supported_types') return supportedTypes;
      const mdev = UUID_RE.test(name) ? model.mdevs.get(name) : undefined;
      return mdev ? mdevDir(model, mdev) : undefined;
    },
  );
}

function mdevTypeDir(model: ApBusModel): DirNode {
  return onceDir({
    name: () => file(() => line(VFIO_AP_MDEV_NAME)),
    device_api: () => file(() => line(VFIO_DEVICE_API_AP)),
    available_instances: () => file(() => line(model.mdevs.availableInstances())),
    create: () => file(undefined, (v) => void model.createMdev(v)),
    devices: () =>
      dynamicDir(
        () => model.mdevs.list().map((m) => m.uuid),
        (name) => (model.mdevs.get(name) ? link(`../../../${name}`) : undefined),
      ),
  });
}

function mdevDir(model: ApBusModel, mdev: MatrixMdev): DirNode {
  const mdevs = model.mdevs;
  // An mdev that was removed keeps no files (a stale handle reads ENODEV, like a dead kobject).
  const live = <T>(op: () => T): T => {
    if (mdevs.get(mdev.uuid) !== mdev) throw new ApBusError('ENODEV', `mdev ${mdev.uuid} was removed`);
    return op();
  };
  const assign = (what: MatrixAttr) => file(undefined, (v) => live(() => mdevs.assign(mdev, what, v)));
  const unassign = (what: MatrixAttr) => file(undefined, (v) => live(() => mdevs.unassign(mdev, what, v)));
  const maxA = model.maxAdapterId;
  const maxD = model.maxDomainId;
  const children: Record<string, () => SysfsNode> = {
    assign_adapter: () => assign('adapter'),
    unassign_adapter: () => unassign('adapter'),
    assign_domain: () => assign('domain'),
    unassign_domain: () => unassign('domain'),
    assign_control_domain: () => assign('control_domain'),
    unassign_control_domain: () => unassign('control_domain'),
    control_domains: () =>
      file(() =>
        mdev.adm
          .bits()
          .filter((d) => d <= maxD)
          .map((d) => `${d.toString(16).padStart(4, '0')}\n`)
          .join(''),
      ),
    matrix: () => file(() => formatMatrix(mdev.apm.bits(), mdev.aqm.bits(), maxA, maxD)),
    guest_matrix: () =>
      file(() => {
        const view = mdevs.guestView(mdev);
        return formatMatrix(view.adapters, view.domains, maxA, maxD);
      }),
    remove: () => file(undefined, (v) => mdevs.remove(mdev, v)),
    mdev_type: () => link(`../mdev_supported_types/${VFIO_AP_MDEV_TYPE}`),
    iommu_group: () => link(`../../../../kernel/iommu_groups/${mdev.iommuGroup}`),
  };
  if (model.features.apConfig) {
    children['ap_config'] = () =>
      file(
        () => `${mdev.apm.toKernelString()},${mdev.aqm.toKernelString()},${mdev.adm.toKernelString()}\n`,
        (v) => live(() => mdevs.storeApConfig(mdev, v)),
      );
  }
  return staticDir(children);
}

function iommuGroupsDir(model: ApBusModel): DirNode {
  const byGroup = () => new Map(model.mdevs.list().map((m) => [String(m.iommuGroup), m]));
  return dynamicDir(
    () => [...byGroup().keys()],
    (name) => {
      const mdev = byGroup().get(name);
      if (!mdev) return undefined;
      return staticDir({
        devices: () => staticDir({ [mdev.uuid]: () => link(`../../../../devices/vfio_ap/matrix/${mdev.uuid}`) }),
      });
    },
  );
}

