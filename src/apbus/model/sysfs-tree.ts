// The sysfs tree of an ApBusModel: every path of ap-bus.md with the text the kernel prints
// (show functions of ap_bus.c, ap_card.c, ap_queue.c, zcrypt_card.c, zcrypt_queue.c,
// vfio_ap_ops.c and the mdev core) and the model's store functions behind writable files.
// Attributes a driver adds exist only while that driver is bound, as in the kernel:
// card type/online/load (cex4card), queue online/load (cex4queue), queue status (vfio_ap).
import type { Mask } from '../mask.js';
import { AP_DRIVERS, cardName, queueName, type ApBusModel, type ApDriverName } from './ap-bus-model.js';
import { ApBusError } from './errors.js';
import { formatMatrix, type MatrixAttr, type MatrixMdev } from './matrix-mdevs.js';
import { dynamicDir, file, link, staticDir, type DirNode, type SysfsNode } from './sysfs-nodes.js';

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
  return staticDir({
    bus: () => staticDir({ ap: () => busApDir(model) }),
    devices: () =>
      staticDir({
        ap: () => apDevicesDir(model),
        vfio_ap: () => staticDir({ matrix: () => matrixDir(model) }),
      }),
    kernel: () => staticDir({ iommu_groups: () => iommuGroupsDir(model) }),
  });
}

// ------------------------------------------------------------------------------ bus/ap

function busApDir(model: ApBusModel): DirNode {
  return staticDir({
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
    devices: () => busDevicesDir(model),
    drivers: () =>
      dynamicDir(
        () => [...AP_DRIVERS],
        (name) => ((AP_DRIVERS as readonly string[]).includes(name) ? driverDir(model, name as ApDriverName) : undefined),
      ),
  });
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
  return dynamicDir(
    () => ['bind', 'unbind', ...model.boundDevices(driver)],
    (name) => {
      if (name === 'bind') return file(undefined, (v) => model.bind(driver, v));
      if (name === 'unbind') return file(undefined, (v) => model.unbind(driver, v));
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
    return model.card(adapter) ? { kind: 'card', adapter } : null;
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
  if (dev.kind === 'card') return model.card(dev.adapter)?.driver ?? '';
  return model.queue({ adapter: dev.adapter, domain: dev.domain })?.driver ?? '';
}

function apDevicesDir(model: ApBusModel): DirNode {
  return dynamicDir(
    () => model.cardIds().map(cardName),
    (name) => {
      const m = CARD_RE.exec(name);
      if (!m) return undefined;
      const adapter = parseInt(m[1]!, 16);
      return model.card(adapter) ? cardDir(model, adapter) : undefined;
    },
  );
}

const CARD_ATTRS = [
  'ap_functions',
  'chkstop',
  'config',
  'depth',
  'hwtype',
  'max_msg_size',
  'modalias',
  'pendingq_count',
  'raw_hwtype',
  'request_count',
  'requestq_count',
  'subsystem',
] as const;
const ZCRYPT_CARD_ATTRS = ['load', 'online', 'type'] as const;

function cardDir(model: ApBusModel, adapter: number): DirNode {
  const state = () => model.card(adapter)!;
  return dynamicDir(
    () => {
      const bound = state().driver === 'cex4card';
      return [
        ...CARD_ATTRS,
        ...(bound ? ['driver', ...ZCRYPT_CARD_ATTRS] : []),
        ...model.queueDomains(adapter).map((d) => queueName(adapter, d)),
      ];
    },
    (name): SysfsNode | undefined => {
      const bound = state().driver === 'cex4card';
      switch (name) {
        case 'ap_functions':
          return file(() => `0x${state().functions.toString(16).toUpperCase().padStart(8, '0')}\n`);
        case 'chkstop':
          return file(() => flag(state().chkstop));
        case 'config':
          return file(
            () => flag(state().config),
            (v) => model.storeCardConfig(adapter, v),
          );
        case 'depth':
          return file(() => line(state().depth));
        case 'hwtype':
          return file(() => line(state().hwtype));
        case 'raw_hwtype':
          return file(() => line(state().rawHwtype));
        case 'max_msg_size':
          return file(() => line(state().maxMessageSize));
        case 'modalias':
          return file(() => `ap:t${state().hwtype.toString(16).toUpperCase().padStart(2, '0')}\n`);
        case 'pendingq_count':
          return file(() => line(state().pendingqCount));
        case 'requestq_count':
          return file(() => line(state().requestqCount));
        case 'request_count':
          return file(
            () => line(state().requestCount),
            (v) => model.storeCardRequestCount(adapter, v),
          );
        case 'subsystem':
          return link('../../../bus/ap');
        case 'driver':
          return bound ? link('../../../bus/ap/drivers/cex4card') : undefined;
        case 'type':
          return bound ? file(() => line(state().type ?? '')) : undefined;
        case 'online':
          return bound
            ? file(
                () => flag(state().online),
                (v) => model.storeCardOnline(adapter, v),
              )
            : undefined;
        case 'load':
          return bound ? file(() => '0\n') : undefined;
      }
      const m = QUEUE_RE.exec(name);
      if (!m || parseInt(m[1]!, 16) !== adapter) return undefined;
      const domain = parseInt(m[2]!, 16);
      return domain <= 255 && model.queueExists(adapter, domain) ? queueDir(model, adapter, domain) : undefined;
    },
  );
}

const QUEUE_ATTRS = [
  'chkstop',
  'config',
  'interrupt',
  'pendingq_count',
  'request_count',
  'requestq_count',
  'reset',
  'subsystem',
] as const;

function queueDir(model: ApBusModel, adapter: number, domain: number): DirNode {
  const apqn = { adapter, domain };
  const state = () => model.queue(apqn)!;
  const overrides = model.features.driverOverride;
  return dynamicDir(
    () => {
      const driver = state().driver;
      const names: string[] = [...QUEUE_ATTRS];
      if (overrides) names.push('driver_override');
      if (driver !== '') names.push('driver');
      if (driver === 'cex4queue') names.push('load', 'online');
      if (driver === 'vfio_ap') names.push('status');
      return names;
    },
    (name): SysfsNode | undefined => {
      const driver = state().driver;
      switch (name) {
        case 'chkstop':
          return file(() => flag(state().chkstop));
        case 'config':
          return file(() => flag(state().config));
        case 'interrupt':
          return file(() => model.queueInterruptText(adapter, domain));
        case 'pendingq_count':
          return file(() => line(state().pendingqCount));
        case 'requestq_count':
          return file(() => line(state().requestqCount));
        case 'request_count':
          return file(
            () => line(state().requestCount),
            (v) => model.storeQueueRequestCount(adapter, domain, v),
          );
        case 'reset':
          return file(
            () => model.queueResetText(adapter, domain),
            (v) => model.storeQueueReset(adapter, domain, v),
          );
        case 'subsystem':
          return link('../../../../bus/ap');
        case 'driver_override':
          return overrides
            ? file(
                () => line(state().driverOverride ?? ''),
                (v) => model.storeDriverOverride(adapter, domain, v),
              )
            : undefined;
        case 'driver':
          return driver !== '' ? link(`../../../../bus/ap/drivers/${driver}`) : undefined;
        case 'online':
          return driver === 'cex4queue'
            ? file(
                () => flag(state().online),
                (v) => model.storeQueueOnline(adapter, domain, v),
              )
            : undefined;
        case 'load':
          return driver === 'cex4queue' ? file(() => '0\n') : undefined;
        case 'status':
          return driver === 'vfio_ap' ? file(() => line(model.mdevs.queueStatus(adapter, domain))) : undefined;
      }
      return undefined;
    },
  );
}

// ------------------------------------------------------------------------------ vfio_ap

function matrixDir(model: ApBusModel): DirNode {
  return dynamicDir(
    () => ['mdev_supported_types', ...model.mdevs.list().map((m) => m.uuid)],
    (name) => {
      if (name === 'mdev_supported_types') return staticDir({ [VFIO_AP_MDEV_TYPE]: () => mdevTypeDir(model) });
      const mdev = UUID_RE.test(name) ? model.mdevs.get(name) : undefined;
      return mdev ? mdevDir(model, mdev) : undefined;
    },
  );
}

function mdevTypeDir(model: ApBusModel): DirNode {
  return staticDir({
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

