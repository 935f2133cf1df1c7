// Reads a simulated node's AP bus straight from the model (ApBusModel), for the invariants:
// masks, every queue's driver, driver_override and (on the host driver) online, every mdev's matrix. Never the operator's
// status: the soak judges the operator by the bus itself.
import { formatAdapterId, formatApqn, formatDomainId } from '../src/apbus/ids.js';
import type { ApBusModel } from '../src/apbus/model/index.js';
import type { BusSnapshot, MdevSnapshot, QueueSnapshot } from './soak-invariants.js';

export function snapshotBus(model: ApBusModel): BusSnapshot {
  const apmask: string[] = [];
  for (let a = 0; a <= model.maxAdapterId; a++) if (model.apmask.has(a)) apmask.push(formatAdapterId(a));
  const aqmask: string[] = [];
  for (let d = 0; d <= model.maxDomainId; d++) if (model.aqmask.has(d)) aqmask.push(formatDomainId(d));
  const queues: QueueSnapshot[] = [];
  for (const adapter of model.cardIds()) {
    for (const domain of model.queueDomains(adapter)) {
      const q = model.queue({ adapter, domain });
      if (!q) continue;
      queues.push({ apqn: formatApqn(q.apqn), driver: q.driver, override: q.driverOverride, online: q.driver === 'cex4queue' ? q.online : null });
    }
  }
  const mdevs: MdevSnapshot[] = model.mdevs.list().map((m) => ({
    uuid: m.uuid,
    adapters: m.apm.bits().map(formatAdapterId),
    domains: m.aqm.bits().map(formatDomainId),
    controlDomains: m.adm.bits().map(formatDomainId),
  }));
  return { node: model.name, kernel: model.profile, apmask, aqmask, queues, mdevs };
}

