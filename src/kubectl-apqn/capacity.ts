// `kubectl apqn capacity [NODE]`: what is left to reserve. Per node and adapter: queues by state
// and the domains still free; per node and card type: the largest adapters × domains matrix
// that free queues still form, and how much of the free space no such matrix can use together
// (fragmentation). Pure: the node states and reservations in, a report out.
//
// A queue is free when no reservation holds it (an mdev of the node spec, or a `driver: host`
// reservation placed there), no foreign mdev has it, its card can serve, and it exists. Free
// host queues count: a reservation takes them from the host (through its in-use policy).
import type { APNodeState, APQNReservation } from '../api/types.js';
import { formatDomainId, parseApqn, parseDomainId } from '../apbus/ids.js';
import { popcount } from '../controller/id-set.js';
import { idRanges, plural } from '../controller/phrases.js';
import { buildGrid, type CellState } from './matrix.js';
import { table } from './text.js';

const FREE_STATES = new Set<CellState>(['host', 'hostBusy', 'vfioFree', 'unbound']);

export interface AdapterCapacity {
  adapter: string;
  type: string;
  /** Why the card cannot serve, or ''. */
  trouble: string;
  queues: { host: number; hostBusy: number; vfioFree: number; reserved: number; foreign: number; unbound: number };
  freeDomains: string[];
}

export interface TypeCapacity {
  /** Card type with its mode letter, e.g. CEX8C. */
  type: string;
  adapters: number;
  freeQueues: number;
  /** For 1..adapters adapters: the most domains free on all of them together. */
  byAdapterCount: Array<{ adapters: number; domains: number }>;
  /** The product with the most queues (fewer adapters on a tie). */
  largest: { adapters: number; domains: number; queues: number };
  /** Free queues the largest matrix cannot use, as a share of the free queues (0 when none are free). */
  fragmentation: number;
}

export interface NodeCapacity {
  node: string;
  adapters: AdapterCapacity[];
  types: TypeCapacity[];
}

/** Exact over every subset up to this many adapters of a type; beyond it, greedy. */
const EXACT_ADAPTERS = 16;

/** `alsoHeld`: queues a caller knows are held beyond what the node spec says (a plan's decision). */
export function nodeCapacity(state: APNodeState, reservations: readonly APQNReservation[], alsoHeld: Iterable<string> = []): NodeCapacity {
  const grid = buildGrid(state);
  const node = grid.node;
  // Held beyond the spec's mdevs: what the caller knows, and the queues `driver: host`
  // reservations keep on this node (not free for anyone else).
  const heldBeyondSpec = new Set<string>(alsoHeld);
  for (const r of reservations) {
    if (r.spec?.driver !== 'host' || r.status?.nodeName !== node) continue;
    for (const q of r.status?.apqns ?? []) heldBeyondSpec.add(q);
  }
  const adapters: AdapterCapacity[] = [];
  const freeByType = new Map<string, Array<Set<number>>>();
  for (const row of grid.rows) {
    const counts = { host: 0, hostBusy: 0, vfioFree: 0, reserved: 0, foreign: 0, unbound: 0 };
    const free = new Set<number>();
    for (const cell of row.cells) {
      // Named by a reservation's mdev, even while still on the host driver (the grid shows
      // where a queue is; its `reservation` says who has it).
      const held = heldBeyondSpec.has(cell.apqn) || cell.reservation !== undefined;
      switch (cell.state) {
        case 'absent':
          break;
        case 'guest':
        case 'reserved':
          counts.reserved++;
          break;
        case 'foreign':
          counts.foreign++;
          break;
        default:
          if (held) counts.reserved++;
          else counts[cell.state]++;
      }
      if (!held && FREE_STATES.has(cell.state) && row.trouble === '') free.add(parseApqn(cell.apqn).domain);
    }
    adapters.push({
      adapter: row.adapter,
      type: row.type,
      trouble: row.trouble,
      queues: counts,
      freeDomains: [...free].sort((a, b) => a - b).map(formatDomainId),
    });
    if (row.type && row.trouble === '') {
      const list = freeByType.get(row.type) ?? [];
      list.push(free);
      freeByType.set(row.type, list);
    }
  }
  const types = [...freeByType.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([type, sets]) => typeCapacity(type, sets));
  return { node, adapters, types };
}

function typeCapacity(type: string, sets: ReadonlyArray<Set<number>>): TypeCapacity {
  const byAdapterCount = largestCommon(sets);
  const freeQueues = sets.reduce((n, s) => n + s.size, 0);
  let largest = { adapters: 0, domains: 0, queues: 0 };
  for (const { adapters, domains } of byAdapterCount) {
    if (adapters * domains > largest.queues) largest = { adapters, domains, queues: adapters * domains };
  }
  return { type, adapters: sets.length, freeQueues, byAdapterCount, largest, fragmentation: freeQueues === 0 ? 0 : 1 - largest.queues / freeQueues };
}

/**
 * For k = 1..n: the most domains free on some k of the adapters together (the size of the
 * largest intersection of k of the sets). Exact for up to EXACT_ADAPTERS sets; greedy beyond.
 */
export function largestCommon(sets: ReadonlyArray<ReadonlySet<number>>): Array<{ adapters: number; domains: number }> {
  const n = sets.length;
  const best = new Array<number>(n + 1).fill(0);
  if (n === 0) return [];
  if (n <= EXACT_ADAPTERS) {
    // Intersections of every subset as 256-bit words (8 per subset, 2 MB at 16 adapters), each
    // from the subset without its highest member.
    const bits = sets.map((s) => {
      const w = new Uint32Array(8);
      for (const d of s) if (d >= 0 && d < 256) w[d >>> 5]! |= 1 << (d & 31);
      return w;
    });
    const common = new Uint32Array(8 << n);
    for (let mask = 1; mask < 1 << n; mask++) {
      const top = 31 - Math.clz32(mask);
      const rest = mask & ~(1 << top);
      let size = 0;
      for (let w = 0; w < 8; w++) {
        const word = rest === 0 ? bits[top]![w]! : common[(rest << 3) + w]! & bits[top]![w]!;
        common[(mask << 3) + w] = word;
        size += popcount(word);
      }
      const k = popcount(mask);
      if (size > best[k]!) best[k] = size;
    }
  } else {
    // Greedy from each adapter: add the one that keeps the most domains.
    for (let start = 0; start < n; start++) {
      let set = new Set(sets[start]);
      const used = new Set([start]);
      best[1] = Math.max(best[1]!, set.size);
      for (let k = 2; k <= n; k++) {
        let pick = -1;
        let keep = new Set<number>();
        for (let i = 0; i < n; i++) {
          if (used.has(i)) continue;
          const next = new Set([...set].filter((d) => sets[i]!.has(d)));
          if (pick < 0 || next.size > keep.size) [pick, keep] = [i, next];
        }
        used.add(pick);
        set = keep;
        best[k] = Math.max(best[k]!, set.size);
      }
    }
  }
  return best.slice(1).map((domains, i) => ({ adapters: i + 1, domains }));
}

export function renderCapacity(nodes: readonly NodeCapacity[]): string {
  if (nodes.length === 0) return 'No APNodeState found (is the agent running?).\n';
  const rows: string[][] = [];
  for (const n of nodes) {
    for (const a of n.adapters) {
      const q = a.queues;
      const domains = a.freeDomains.map((d) => parseDomainId(d));
      rows.push([
        n.node,
        a.adapter,
        a.type || '-',
        String(q.host),
        String(q.hostBusy),
        String(q.vfioFree + q.unbound),
        String(q.reserved),
        String(q.foreign),
        a.trouble ? `- (${a.trouble})` : `${domains.length}${domains.length ? ` (${idRanges(domains, formatDomainId)})` : ''}`,
      ]);
    }
  }
  let out = table(['NODE', 'ADAPTER', 'TYPE', 'HOST', 'HOST-BUSY', 'VFIO-FREE', 'RESERVED', 'FOREIGN', 'FREE DOMAINS'], rows);
  out += '\nLargest free matrix per card type (adapters x domains whose every queue is free):\n';
  for (const n of nodes) {
    for (const t of n.types) {
      const outside = t.freeQueues - t.largest.queues;
      const frag = t.freeQueues === 0 ? 'nothing free' : outside === 0 ? 'no fragmentation' : `${plural(outside, 'free queue')} (${Math.round(t.fragmentation * 100)} %) left outside it`;
      out += `  ${n.node} ${t.type}: ${t.largest.adapters} x ${t.largest.domains} (${t.largest.queues} of ${t.freeQueues} free queues; ${frag})\n`;
    }
  }
  return out;
}
