// The soak's simulated nodes: K nodes cycling through every kernel profile (5.15 and 6.10 move
// queues with apmask/aqmask, 6.19 with driver_override), each with the same small, crowded
// set of cards so that random reservations keep wanting the same queues:
//
//   01 CEX8C  domains 0000-0005      CCA
//   02 CEX7C  domains 0000-0005      CCA
//   03 CEX8P  domains 0002-0007      EP11
//   04 CEX6P  domains 0002-0007      EP11 (older than a `minCardType: CEX7` request takes)
//   05 CEX7A  domains 0000-0003      accelerator
//
// 28 queues a node. The 5.15 nodes boot with domain 0007 off the host (aqmask), the 6.10
// nodes with adapter 05 off the host (apmask): queues already on vfio_ap before the operator
// arrives, whose mask bits must read the same after everything is released (`original: false`).
// The 6.19 nodes boot with both masks all ones (driver_override mode needs that).
import { formatAdapterId, formatDomainId } from '../src/apbus/ids.js';
import { KERNEL_PROFILES, type KernelProfile } from '../src/apbus/model/profile.js';
import { topologyFromObject, type Topology } from '../src/apbus/topology.js';

export const SOAK_MAX_ADAPTER_ID = 15;
export const SOAK_MAX_DOMAIN_ID = 15;

export interface SoakCard {
  id: string;
  type: string;
  mode: 'CCA' | 'EP11' | 'Accel';
  domains: string[];
}

const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => formatDomainId(lo + i));

export const SOAK_CARDS: readonly SoakCard[] = [
  { id: '01', type: 'CEX8C', mode: 'CCA', domains: range(0, 5) },
  { id: '02', type: 'CEX7C', mode: 'CCA', domains: range(0, 5) },
  { id: '03', type: 'CEX8P', mode: 'EP11', domains: range(2, 7) },
  { id: '04', type: 'CEX6P', mode: 'EP11', domains: range(2, 7) },
  { id: '05', type: 'CEX7A', mode: 'Accel', domains: range(0, 3) },
];

export interface SoakNode {
  name: string;
  kernel: KernelProfile;
}

/** `count` nodes named `<prefix>-<i>`, kernels 5.15, 6.10, 6.19, 5.15, … */
export function soakNodes(prefix: string, count: number): SoakNode[] {
  return Array.from({ length: count }, (_, i) => ({ name: `${prefix}-${i}`, kernel: KERNEL_PROFILES[i % KERNEL_PROFILES.length]! }));
}

export function soakTopology(nodes: readonly SoakNode[]): Topology {
  const allAdapters = Array.from({ length: SOAK_MAX_ADAPTER_ID + 1 }, (_, a) => formatAdapterId(a));
  const allDomains = range(0, SOAK_MAX_DOMAIN_ID);
  return topologyFromObject(
    {
      nodes: nodes.map((n) => ({
        name: n.name,
        kernel: n.kernel,
        maxAdapterId: SOAK_MAX_ADAPTER_ID,
        maxDomainId: SOAK_MAX_DOMAIN_ID,
        cards: SOAK_CARDS.map((c) => ({ id: c.id, type: c.type, domains: c.domains })),
        apmask: n.kernel === '6.10' ? allAdapters.filter((a) => a !== '05') : 'all',
        aqmask: n.kernel === '5.15' ? allDomains.filter((d) => d !== '0007') : 'all',
      })),
    },
    'soak topology',
  );
}
