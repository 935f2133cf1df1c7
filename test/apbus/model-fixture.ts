// Shared set-up for the AP bus model tests: a small node described the way a topology file
// describes it, its virtual sysfs, a manual clock, and helpers that read the bus the way the
// agent does (paths, errnos).
import { SysfsError } from '../../src/apbus/errno.js';
import { ApBusModel, ManualClock } from '../../src/apbus/model/index.js';
import type { KernelProfile } from '../../src/apbus/model/index.js';
import { topologyFromObject } from '../../src/apbus/topology.js';
import { VirtualSysfs } from '../../src/apbus/virtual-sysfs.js';

export const UUID1 = '6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab';
export const UUID2 = '11111111-2222-4333-8444-555555555555';
export const UUID3 = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';

export const MATRIX = 'devices/vfio_ap/matrix';
export const CREATE = `${MATRIX}/mdev_supported_types/vfio_ap-passthrough/create`;
export const ALL = '0x' + 'f'.repeat(64);

export interface NodeOptions {
  kernel?: KernelProfile;
  maxAdapterId?: number;
  maxDomainId?: number;
  cards?: Array<{ id: string; type: string; domains: string | string[] }>;
  apmask?: unknown;
  aqmask?: unknown;
  controlDomains?: string[];
  hostLoad?: Array<{ apqn: string; pendingRequests: number; drainsAfterSeconds?: number }>;
}

/** The standard node: two EP11 cards with 16 domains each and a CCA card with two. */
export const STANDARD_CARDS = [
  { id: '05', type: 'CEX8P', domains: '0000-000f' },
  { id: '06', type: 'CEX8P', domains: '0000-000f' },
  { id: '07', type: 'CEX7C', domains: ['0004', '0005'] },
];

export function makeNode(opts: NodeOptions = {}) {
  const node: Record<string, unknown> = {
    name: 'node-a',
    kernel: opts.kernel ?? '6.10',
    maxDomainId: opts.maxDomainId ?? 84,
    cards: opts.cards ?? STANDARD_CARDS,
  };
  if (opts.maxAdapterId !== undefined) node['maxAdapterId'] = opts.maxAdapterId;
  if (opts.apmask !== undefined) node['apmask'] = opts.apmask;
  if (opts.aqmask !== undefined) node['aqmask'] = opts.aqmask;
  if (opts.controlDomains !== undefined) node['controlDomains'] = opts.controlDomains;
  if (opts.hostLoad !== undefined) node['hostLoad'] = opts.hostLoad;
  const topo = topologyFromObject({ nodes: [node] });
  const clock = new ManualClock();
  const model = ApBusModel.fromTopology(topo.nodes[0]!, { clock });
  const sys = new VirtualSysfs(model);
  return { model, sys, clock };
}

/** 'devices/ap/card05/05.0004' for '05.0004'. */
export function q(apqn: string): string {
  return `devices/ap/card${apqn.slice(0, 2)}/${apqn}`;
}

export function mdev(uuid: string): string {
  return `${MATRIX}/${uuid}`;
}

/** The errno a SysfsIO call failed with, or 'ok'. */
export function errnoOf(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof SysfsError) return err.errno;
    if (err && typeof err === 'object' && 'errno' in err) return String((err as { errno: unknown }).errno);
    throw err;
  }
}

/** The driver a queue is bound to, from its `driver` link ('' when none). */
export function driverOf(sys: VirtualSysfs, apqn: string): string {
  const dir = q(apqn);
  if (!sys.list(dir).includes('driver')) return '';
  const target = sys.readlink(`${dir}/driver`);
  return target.slice(target.lastIndexOf('/') + 1);
}

/** Creates an mdev and assigns adapters/domains/control domains through sysfs. */
export function createMdev(
  sys: VirtualSysfs,
  uuid: string,
  matrix: { adapters?: number[]; domains?: number[]; controlDomains?: number[] } = {},
): void {
  sys.write(CREATE, uuid);
  for (const a of matrix.adapters ?? []) sys.write(`${mdev(uuid)}/assign_adapter`, `0x${a.toString(16)}`);
  for (const d of matrix.domains ?? []) sys.write(`${mdev(uuid)}/assign_domain`, `0x${d.toString(16)}`);
  for (const d of matrix.controlDomains ?? []) sys.write(`${mdev(uuid)}/assign_control_domain`, `0x${d.toString(16)}`);
}

export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

/** A mask's bits from its kernel text. */
export function bitsOf(text: string): number[] {
  const hex = text.trim().slice(2);
  const out: number[] = [];
  for (let i = 0; i < hex.length; i++) {
    const nibble = parseInt(hex[i]!, 16);
    for (let b = 0; b < 4; b++) if (nibble & (8 >> b)) out.push(i * 4 + b);
  }
  return out;
}
