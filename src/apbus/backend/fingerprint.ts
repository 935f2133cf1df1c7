// A cheap digest of what changes when the bus is reconfigured (masks, bindings, scans, the
// device list, card states, mdevs and their matrices), so the agent can poll every few seconds
// and take a full inventory only when it changed. Not covered: per-queue counters (use
// queueActivity) and per-queue driver_override values written by hand (a periodic full
// inventory catches those).
import { createHash } from 'node:crypto';
import type { SysfsIO } from '../sysfs-io.js';
import { AP_DEVICES, BUS, BUS_DEVICES, CARD_NAME_RE, MATRIX, busAttr } from './paths.js';
import { listMdevUuids } from './inventory.js';

const BUS_FILES = [
  busAttr.apmask,
  busAttr.aqmask,
  busAttr.bindings,
  busAttr.scans,
  busAttr.adapterMask,
  busAttr.usageDomainMask,
  busAttr.controlDomainMask,
].map((p) => p.slice(BUS.length + 1));
const CARD_STATE = ['online', 'config', 'chkstop'];
const MDEV_FILES = ['matrix', 'guest_matrix', 'control_domains', 'ap_config'];

export function busFingerprint(io: SysfsIO): string {
  const hash = createHash('sha256');
  const add = (label: string, text: string): void => {
    hash.update(label);
    hash.update('\0');
    hash.update(text);
    hash.update('\0');
  };
  const busEntries = io.list(BUS);
  for (const name of BUS_FILES) if (busEntries.includes(name)) add(name, io.read(`${BUS}/${name}`));
  add('devices', io.list(BUS_DEVICES).join(' '));
  for (const entry of io.list(AP_DEVICES)) {
    if (!CARD_NAME_RE.test(entry)) continue;
    const dir = `${AP_DEVICES}/${entry}`;
    const attrs = io.list(dir);
    for (const name of CARD_STATE) if (attrs.includes(name)) add(`${entry}/${name}`, io.read(`${dir}/${name}`));
  }
  for (const uuid of listMdevUuids(io)) {
    const dir = `${MATRIX}/${uuid}`;
    const attrs = io.list(dir);
    add('mdev', uuid);
    for (const name of MDEV_FILES) if (attrs.includes(name)) add(name, io.read(`${dir}/${name}`));
  }
  return hash.digest('hex');
}
