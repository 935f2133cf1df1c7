// Questions the planner asks about one inventory, answered from indexes built once: which
// queues sit in an adapter row or domain column, who owns a queue by the kernel's rule, which
// mdevs hold an APQN, whether a guest has an mdev open.
import type { BusInventory, CardInfo, MdevInfo, MdevMatrix, QueueInfo } from '../apbus/backend.js';

export class BusFacts {
  readonly queues = new Map<number, QueueInfo>();
  readonly cards = new Map<number, CardInfo>();
  readonly mdevs = new Map<string, MdevInfo>();
  readonly #byAdapter = new Map<number, QueueInfo[]>();
  readonly #byDomain = new Map<number, QueueInfo[]>();
  /** Queues with a driver_override set (6.19): while there is one, mask writes fail (EINVAL). */
  readonly overridden: QueueInfo[] = [];
  /** 6.19 checks bits being set against every domain/adapter, not only the other mask's. */
  readonly strictInUseCheck: boolean;

  constructor(readonly inv: BusInventory) {
    for (const c of inv.cards) this.cards.set(c.id, c);
    for (const q of inv.queues) {
      this.queues.set(q.apqn.adapter * 256 + q.apqn.domain, q);
      push(this.#byAdapter, q.apqn.adapter, q);
      push(this.#byDomain, q.apqn.domain, q);
      if (q.driverOverride) this.overridden.push(q);
    }
    for (const m of inv.mdevs) this.mdevs.set(m.uuid, m);
    this.strictInUseCheck = inv.capabilities.driverOverride === true;
  }

  queue(adapter: number, domain: number): QueueInfo | undefined {
    return this.queues.get(adapter * 256 + domain);
  }

  /** Existing queues of an adapter row (apmask) or a domain column (aqmask). */
  queuesIn(kind: 'apmask' | 'aqmask', bit: number): readonly QueueInfo[] {
    return (kind === 'apmask' ? this.#byAdapter : this.#byDomain).get(bit) ?? [];
  }

  masksAllOnes(): boolean {
    return this.inv.apmask.isAll() && this.inv.aqmask.isAll();
  }

  /** The kernel's "reserved for the host" rule (ap_apqn_in_matrix_owned_by_def_drv): with a
   *  driver_override set, that queue is the host's only while bound to cex4queue; otherwise
   *  the masks decide. */
  hostOwned(adapter: number, domain: number): boolean {
    const q = this.queue(adapter, domain);
    if (q?.driverOverride) return q.driver === 'cex4queue';
    return this.inv.apmask.has(adapter) && this.inv.aqmask.has(domain);
  }

  /** APQNs of `matrix`'s product the host owns (first `limit`). */
  hostOwnedIn(matrix: MdevMatrix, limit = 4): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    if (this.overridden.length === 0) {
      // Mask rule only: rows ∩ apmask times columns ∩ aqmask.
      const rows = matrix.adapters.filter((a) => this.inv.apmask.has(a));
      const cols = matrix.domains.filter((d) => this.inv.aqmask.has(d));
      for (const a of rows) for (const d of cols) if (out.length < limit) out.push([a, d]);
      return out;
    }
    for (const a of matrix.adapters) for (const d of matrix.domains) if (out.length < limit && this.hostOwned(a, d)) out.push([a, d]);
    return out;
  }

  /** Mdevs whose product shares an APQN with adapters × domains, with the shared APQNs. */
  holders(adapters: readonly number[], domains: readonly number[], exceptUuid?: string): Array<{ mdev: MdevInfo; shared: Array<[number, number]> }> {
    const out: Array<{ mdev: MdevInfo; shared: Array<[number, number]> }> = [];
    if (adapters.length === 0 || domains.length === 0) return out;
    const aSet = new Set(adapters);
    const dSet = new Set(domains);
    for (const m of this.inv.mdevs) {
      if (m.uuid === exceptUuid) continue;
      const as = m.matrix.adapters.filter((a) => aSet.has(a));
      const ds = m.matrix.domains.filter((d) => dSet.has(d));
      if (as.length === 0 || ds.length === 0) continue;
      const shared: Array<[number, number]> = [];
      for (const a of as) for (const d of ds) shared.push([a, d]);
      out.push({ mdev: m, shared });
    }
    return out;
  }

  /** A guest has the mdev open: a queue of its product reads `in use`. */
  mdevInUse(m: MdevInfo): boolean {
    for (const a of m.matrix.adapters) {
      for (const d of m.matrix.domains) if (this.queue(a, d)?.vfioStatus === 'in use') return true;
    }
    return false;
  }

  /** Why a card cannot serve a guest, or null when it is fine. */
  cardTrouble(adapter: number): CardTrouble | null {
    const c = this.cards.get(adapter);
    if (!c) return 'CardRemoved';
    if (c.chkstop) return 'CardCheckstopped';
    if (!c.config) return 'CardDeconfigured';
    if (!c.online) return 'CardOffline';
    return null;
  }
}

export type CardTrouble = 'CardRemoved' | 'CardDeconfigured' | 'CardCheckstopped' | 'CardOffline';

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
