// Per-device operations: driver_override (6.19), manual bind/unbind, activity counters.
import { ApbusInputError, type Apqn } from '../ids.js';
import type { SysfsIO } from '../sysfs-io.js';
import { readQueueActivity } from './inventory.js';
import { cardName, checkApqn, checkDriver, checkId, checkQueueDriver, driverFile, queueDir, queueName } from './paths.js';
import type { ApDevice, ApDriverName, QueueActivity, QueueDriverName } from './types.js';

/** Sets (driver name) or clears (null) a queue's driver_override. Clearing writes a lone
 *  newline: the kernel treats an empty value as "no override", and sysfs ignores 0-byte writes. */
export function setDriverOverride(io: SysfsIO, apqn: Apqn, driver: QueueDriverName | null): void {
  const value = driver === null ? '\n' : checkQueueDriver(driver);
  io.write(`${queueDir(apqn)}/driver_override`, value);
}

/** A host queue's zcrypt `online` (exists only under cex4queue). Offline, zcrypt sends it no new
 *  request; going offline hands back what is queued or in flight with EAGAIN (online_store →
 *  ap_flush_queue). Online needs a configured queue (ENODEV) on an online card (EINVAL). */
export function setQueueOnline(io: SysfsIO, apqn: Apqn, online: boolean): void {
  io.write(`${queueDir(checkApqn(apqn))}/online`, online ? '1' : '0');
}

/** The device name bind/unbind expect: '05.0004' for a queue, 'card05' for a card. */
export function deviceName(device: ApDevice): string {
  if (typeof device === 'object' && device !== null && 'card' in device) return cardName(checkId(device.card, 'adapter'));
  if (typeof device === 'object' && device !== null && 'adapter' in device) return queueName(checkApqn(device));
  throw new ApbusInputError(`device ${JSON.stringify(device)} is neither an APQN nor a card`);
}

export function bind(io: SysfsIO, driver: ApDriverName, device: ApDevice): void {
  io.write(driverFile(checkDriver(driver), 'bind'), deviceName(device));
}

export function unbind(io: SysfsIO, driver: ApDriverName, device: ApDevice): void {
  io.write(driverFile(checkDriver(driver), 'unbind'), deviceName(device));
}

/** All APQNs are validated before the first read. */
export function queueActivity(io: SysfsIO, apqns: readonly Apqn[]): QueueActivity[] {
  const queues = apqns.map((apqn) => checkApqn(apqn));
  return queues.map((q) => readQueueActivity(io, q, queueDir(q)));
}
