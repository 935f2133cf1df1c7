// Every sysfs path the backend touches, built ONLY from validated numbers and canonical UUIDs:
// no caller-supplied text ever becomes a path segment, so no input can address anything
// outside the AP bus subtree (ap-bus.md "Paths").
import { ApbusInputError, MAX_ID, formatAdapterId, formatApqn, parseMdevUuid, type Apqn } from '../ids.js';
import type { ApDriverName, MaskKind, QueueDriverName } from './types.js';

export const BUS = 'bus/ap';
export const BUS_DEVICES = 'bus/ap/devices';
export const AP_DEVICES = 'devices/ap';
export const MATRIX = 'devices/vfio_ap/matrix';
export const MDEV_TYPE = `${MATRIX}/mdev_supported_types/vfio_ap-passthrough`;

export const busAttr = {
  apmask: `${BUS}/apmask`,
  aqmask: `${BUS}/aqmask`,
  maxAdapterId: `${BUS}/ap_max_adapter_id`,
  maxDomainId: `${BUS}/ap_max_domain_id`,
  adapterMask: `${BUS}/ap_adapter_mask`,
  usageDomainMask: `${BUS}/ap_usage_domain_mask`,
  controlDomainMask: `${BUS}/ap_control_domain_mask`,
  bindings: `${BUS}/bindings`,
  scans: `${BUS}/scans`,
} as const;

const DRIVERS: ReadonlySet<string> = new Set<ApDriverName>(['cex4card', 'cex4queue', 'vfio_ap']);
const QUEUE_DRIVERS: ReadonlySet<string> = new Set<QueueDriverName>(['cex4queue', 'vfio_ap']);

/** An adapter or domain id as a number 0..255; anything else is refused before any I/O. */
export function checkId(n: unknown, what: 'adapter' | 'domain' | 'control domain' | 'mask bit'): number {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > MAX_ID) {
    throw new ApbusInputError(`${what} ${String(n)} is not an integer 0..255`);
  }
  return n;
}

export function checkApqn(q: unknown): Apqn {
  if (typeof q !== 'object' || q === null) throw new ApbusInputError(`APQN ${String(q)} is not an {adapter, domain}`);
  const { adapter, domain } = q as Record<string, unknown>;
  return { adapter: checkId(adapter, 'adapter'), domain: checkId(domain, 'domain') };
}

export function checkDriver(driver: unknown): ApDriverName {
  if (typeof driver !== 'string' || !DRIVERS.has(driver)) {
    throw new ApbusInputError(`driver ${JSON.stringify(driver)} is not one of ${[...DRIVERS].join(', ')}`);
  }
  return driver as ApDriverName;
}

export function checkQueueDriver(driver: unknown): QueueDriverName {
  if (typeof driver !== 'string' || !QUEUE_DRIVERS.has(driver)) {
    throw new ApbusInputError(`queue driver ${JSON.stringify(driver)} is not one of ${[...QUEUE_DRIVERS].join(', ')}`);
  }
  return driver as QueueDriverName;
}

export function checkMaskKind(kind: unknown): MaskKind {
  if (kind !== 'apmask' && kind !== 'aqmask') throw new ApbusInputError(`mask ${JSON.stringify(kind)} is not apmask or aqmask`);
  return kind;
}

export function maskPath(kind: MaskKind): string {
  return busAttr[checkMaskKind(kind)];
}

export function cardName(adapter: number): string {
  return `card${formatAdapterId(checkId(adapter, 'adapter'))}`;
}

export function cardDir(adapter: number): string {
  return `${AP_DEVICES}/${cardName(adapter)}`;
}

/** The queue's name as the kernel spells it and as bind/unbind expect it: '05.0004'. */
export function queueName(apqn: Apqn): string {
  return formatApqn(checkApqn(apqn));
}

export function queueDir(apqn: Apqn): string {
  const q = checkApqn(apqn);
  return `${cardDir(q.adapter)}/${formatApqn(q)}`;
}

export function driverFile(driver: ApDriverName, file: 'bind' | 'unbind'): string {
  return `${BUS}/drivers/${checkDriver(driver)}/${file}`;
}

/** The mdev's directory; the UUID is canonicalised (lower case) or refused. */
export function mdevDir(uuid: string): string {
  return `${MATRIX}/${parseMdevUuid(uuid)}`;
}

export const CARD_NAME_RE = /^card([0-9a-f]{2})$/;
export const QUEUE_NAME_RE = /^([0-9a-f]{2})\.([0-9a-f]{4})$/;
