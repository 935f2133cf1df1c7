// Picking queues for a request-based reservation on ONE node: `adapters` × `domains` queues
// that exist, sit on cards of the wanted type and mode, are free, and — on nodes in mask
// mode — cost the fewest displaced host queues to free.
//
// Cost of freeing a new product A × D, on top of the masks as they are (or will be once the
// node's pending spec is applied): pairs on an adapter or domain already outside the masks are
// free already; the rest, Ah × Dh, is a complete bipartite block, and a cover of a complete
// block clears all of its rows or all of its columns. So
//     cost(A, D) = 0 if Ah or Dh is empty, else min(Σ row(a∈Ah), Σ col(d∈Dh)) − inner
// where row/col are the host queues a cleared row/column displaces and `inner` the host
// queues of Ah × Dh itself (they are reserved now, not displaced). This is exactly what
// planMaskClears would do for this product alone; schedule.ts then runs the real planner on
// the winner together with the node's other reservations.
//
// Search: adapters ordered by row cost (cheapest — already outside apmask — first), then id;
// depth-first over n-subsets keeping the domains all of them offer, pruning as soon as fewer
// than m remain, within a visit budget. For each complete n-subset two domain choices are
// priced: the m cheapest columns, and the m domains with the most host queues in those rows.

import type { CardStatus } from '../api/types.js';
import { type Apqn, apqnIndex } from '../apbus/ids.js';
import { HWTYPE, MAX_VFIO_AP_HWTYPE, MIN_VFIO_AP_HWTYPE, type NodeInventory, cardHwtype, cardUsable } from './node-inventory.js';
import { plural } from './phrases.js';
import type { HostMasks } from './mask-bits.js';
import type { ValidSpec } from './validate.js';

export interface NodeQueueView {
  inventory: NodeInventory;
  /** Host-owned bits once the node's spec is applied. */
  masks: HostMasks;
  /** apqnIndex -> holder, for queues held by OTHER reservations; `protected` = held by a driver: host one. */
  heldByOthers: ReadonlyMap<number, { reservation: string; protected: boolean }>;
  bindingMode: 'Masks' | 'DriverOverride';
}

export type QueueSearch =
  | { ok: true; adapters: number[]; domains: number[]; estimatedCost: number }
  | { ok: false; why: string };

export const DEFAULT_SEARCH_BUDGET = 20_000;

export function searchQueues(view: NodeQueueView, spec: ValidSpec, budget = DEFAULT_SEARCH_BUDGET): QueueSearch {
  const request = spec.request;
  if (!request) throw new Error('searchQueues() needs a request-based spec');
  const { inventory, masks } = view;
  const n = request.adapters;
  const m = request.domains;
  const costly = spec.driver === 'vfio_ap' && view.bindingMode === 'Masks';

  // Host queues a cleared row/column would displace; PROTECTED ones make it unaffordable.
  const hostWeight = new Map<number, number>();
  for (const [i, q] of inventory.queues) {
    if (q.driver !== 'cex4queue' || !masks.apmask.has(i >> 8) || !masks.aqmask.has(i & 0xff)) continue;
    const holder = view.heldByOthers.get(i);
    if (holder && !holder.protected) continue; // reserved for vfio_ap by someone else: leaving anyway
    hostWeight.set(i, holder?.protected ? Infinity : 1);
  }
  const row = new Map<number, number>();
  const col = new Map<number, number>();
  for (const [i, w] of hostWeight) {
    row.set(i >> 8, (row.get(i >> 8) ?? 0) + w);
    col.set(i & 0xff, (col.get(i & 0xff) ?? 0) + w);
  }

  const eligible = [...inventory.cards.entries()]
    .filter(([, card]) => cardFits(card, spec))
    .map(([id]) => id);
  if (eligible.length < n) {
    return { ok: false, why: `only ${eligible.length} of the ${plural(n, 'adapter')} needed (${criteria(spec)})` };
  }

  const freeDomains = new Map<number, number[]>();
  for (const a of eligible) freeDomains.set(a, offeredDomains(view, spec, a));
  const rowCost = (a: number): number => (costly && masks.apmask.has(a) ? (row.get(a) ?? 0) : 0);
  const order = eligible
    .filter((a) => freeDomains.get(a)!.length >= m)
    .sort((x, y) => rowCost(x) - rowCost(y) || x - y);
  if (order.length < n) {
    const best = Math.max(0, ...eligible.map((a) => freeDomains.get(a)!.length));
    return {
      ok: false,
      why: `only ${order.length} of the ${plural(n, 'adapter')} needed have ${plural(m, 'free domain')} (most free on one adapter: ${best})`,
    };
  }

  const price = (A: number[], D: number[]): number => {
    if (!costly) return 0;
    const Ah = A.filter((a) => masks.apmask.has(a));
    const Dh = D.filter((d) => masks.aqmask.has(d));
    if (Ah.length === 0 || Dh.length === 0) return 0;
    let inner = 0;
    for (const a of Ah) for (const d of Dh) inner += hostWeight.get(apqnIndex(a, d)) ?? 0;
    const rows = Ah.reduce((s, a) => s + (row.get(a) ?? 0), 0) - inner;
    const cols = Dh.reduce((s, d) => s + (col.get(d) ?? 0), 0) - inner;
    return Math.min(rows, cols);
  };
  const hostCellsIn = (A: number[], d: number): number =>
    A.reduce((s, a) => s + (masks.apmask.has(a) && masks.aqmask.has(d) && hostWeight.has(apqnIndex(a, d)) ? 1 : 0), 0);

  let best: { adapters: number[]; domains: number[]; cost: number } | undefined;
  let mostShared = 0;
  let visits = 0;
  const chosen: number[] = [];
  const visit = (start: number, shared: number[]): boolean => {
    if (++visits > budget) return false;
    if (chosen.length === n) {
      const A = [...chosen].sort((x, y) => x - y);
      const colCost = (d: number): number => (costly && masks.aqmask.has(d) ? (col.get(d) ?? 0) - hostCellsIn(A, d) : 0);
      const cheapest = [...shared].sort((x, y) => colCost(x) - colCost(y) || x - y).slice(0, m);
      const densest = [...shared].sort((x, y) => hostCellsIn(A, y) - hostCellsIn(A, x) || x - y).slice(0, m);
      for (const D of [cheapest, densest]) {
        const sortedD = [...D].sort((x, y) => x - y);
        const cost = price(A, sortedD);
        if (!best || cost < best.cost) best = { adapters: A, domains: sortedD, cost };
      }
      return best!.cost > 0; // a free placement cannot be beaten: stop
    }
    for (let i = start; i <= order.length - (n - chosen.length); i++) {
      const a = order[i]!;
      const offered = new Set(freeDomains.get(a)!);
      const next = chosen.length === 0 ? [...offered] : shared.filter((d) => offered.has(d));
      if (chosen.length + 1 === n) mostShared = Math.max(mostShared, next.length);
      if (next.length < m) continue;
      chosen.push(a);
      const goOn = visit(i + 1, next);
      chosen.pop();
      if (!goOn) return false;
    }
    return true;
  };
  visit(0, []);

  if (!best) {
    const cut = visits > budget ? ' within the search budget' : '';
    return { ok: false, why: `no ${plural(n, 'fitting adapter')} share ${plural(m, 'free domain')}${cut} (at most ${mostShared})` };
  }
  if (best.cost === Infinity) {
    return { ok: false, why: 'every fitting choice would take queues from driver: host reservations' };
  }
  return { ok: true, adapters: best.adapters, domains: best.domains, estimatedCost: best.cost };
}

/** Type, mode and state filters for a card; vfio_ap also needs CEX4..CEX8. */
export function cardFits(card: CardStatus, spec: ValidSpec): boolean {
  if (!cardUsable(card)) return false;
  const hwtype = cardHwtype(card);
  if (spec.driver === 'vfio_ap' && (hwtype === undefined || hwtype < MIN_VFIO_AP_HWTYPE || hwtype > MAX_VFIO_AP_HWTYPE)) return false;
  const min = spec.request?.minCardType;
  if (min && (hwtype ?? 0) < HWTYPE[min]) return false;
  if (spec.request?.mode && card.mode !== spec.request.mode) return false;
  return true;
}

/** Domains of adapter `a` whose queue exists, works, and is free for this reservation. */
function offeredDomains(view: NodeQueueView, spec: ValidSpec, a: number): number[] {
  const { inventory, masks } = view;
  const out: number[] = [];
  for (const [i, q] of inventory.queues) {
    if (i >> 8 !== a) continue;
    const d = i & 0xff;
    if (d > inventory.maxDomainId || q.config === false || q.chkstop === true) continue;
    if (view.heldByOthers.has(i) || inventory.foreignMdevQueues.has(i)) continue;
    // driver: host takes only queues the host already has; moving others back is not planned here
    if (spec.driver === 'host' && !(q.driver === 'cex4queue' && masks.apmask.has(a) && masks.aqmask.has(d))) continue;
    out.push(d);
  }
  return out.sort((x, y) => x - y);
}

/** 'CEX7 or newer, EP11 mode, online' — what a fitting card is. */
export function criteria(spec: ValidSpec): string {
  const parts: string[] = [];
  const min = spec.request?.minCardType;
  if (min) parts.push(`${min} or newer`);
  else if (spec.driver === 'vfio_ap') parts.push('CEX4 to CEX8');
  if (spec.request?.mode) parts.push(`${spec.request.mode} mode`);
  parts.push('online');
  return parts.join(', ');
}

/** The pairs of a product, adapter-major. */
export function productOf(adapters: readonly number[], domains: readonly number[]): Apqn[] {
  return adapters.flatMap((adapter) => domains.map((domain) => ({ adapter, domain })));
}
