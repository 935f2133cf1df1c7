// Pure planning: the wanted state (spec) against one inventory → one item per thing the spec
// owns (satisfied or not), each unsatisfied one with the next small step to take, or what
// blocks it. The executor runs one step, re-inventories and plans again, so an item only ever
// says what to do NEXT from the bus as it is now — which is what makes any step safe to be the
// last before a crash.
//
// Order (the contract's): vfio_ap → host first (remove released mdevs, shrink matrices, set mask
// bits back / clear overrides), then host → vfio_ap (in-use check, clear mask bits / set
// overrides, create the mdev, set its matrix; verify guest_matrix).
//
// Besides the spec's items, one `restore:` item per journal entry the spec no longer names
// (restore.ts): the mask bit or override the agent changed, back to its original value.
import type { MdevInfo, MdevMatrix, QueueInfo } from '../apbus/backend.js';
import { formatAdapterId, formatApqn, formatDomainId } from '../apbus/ids.js';
import type { BusFacts, CardTrouble } from './bus-facts.js';
import { NO_RESTORES, type MaskRestore, type OnlineRestore, type OverrideRestore, type Restores } from './restore.js';
import type { WantedMaskBit, WantedMdev, WantedOverride, WantedState } from './spec.js';
import { type Step, formatMaskBit, formatMatrix } from './steps.js';

export type BlockKind = 'waiting' | 'guestAttached' | 'foreign' | 'conflict' | 'missing' | 'unsupported';

/** Why an unsatisfied item has no step now. `waiting` is transient (another step of this plan
 *  or a drain comes first); the others need something outside this pass to change. */
export interface Block {
  readonly kind: BlockKind;
  readonly message: string;
}

export interface Candidate {
  readonly step: Step;
  /** Queues now bound to cex4queue that this step takes away from the host: their in-use
   *  policy is asked first. */
  readonly moves: readonly QueueInfo[];
  /** Lower runs first among steps that may run now. */
  readonly priority: number;
}

export interface PlanItem {
  /** Stable name of the wanted fact ('apmask:05=vfio_ap', 'mdev:<uuid>=<matrix>'): a tracked
   *  item that was satisfied in an earlier pass and is not now has drifted. */
  readonly key: string;
  /** A fact the spec owns (drift-tracked); release and verification items are not. */
  readonly tracked: boolean;
  readonly reservations: readonly string[];
  readonly satisfied: boolean;
  /** What differs from the spec, a sentence; '' when satisfied. */
  readonly difference: string;
  readonly next?: Candidate;
  readonly block?: Block;
  /** Satisfied as far as the agent can make it, but a card or queue of it is not serving. */
  readonly degraded?: string;
}

const PRIORITY = {
  removeMdev: 0,
  shrinkMatrix: 1,
  // A queue left without a driver (after an unbind, or by hand) is probed back first: the
  // window in which it has none stays one step wide.
  bind: 2,
  toHost: 3,
  overrideToHost: 4,
  toVfio: 5,
  createMdev: 6,
  setMatrix: 7,
} as const;

const SEVERITY: Record<BlockKind, number> = { foreign: 5, conflict: 4, unsupported: 3, guestAttached: 2, missing: 1, waiting: 0 };

function worst(blocks: readonly Block[]): Block | undefined {
  let w: Block | undefined;
  for (const b of blocks) if (!w || SEVERITY[b.kind] > SEVERITY[w.kind]) w = b;
  return w;
}

const apqnText = (a: number, d: number) => formatApqn({ adapter: a, domain: d });
const apqnList = (pairs: ReadonlyArray<readonly [number, number]>, limit = 3) =>
  pairs.slice(0, limit).map(([a, d]) => apqnText(a, d)).join(', ') + (pairs.length > limit ? ` and ${pairs.length - limit} more` : '');

function inProduct(m: MdevMatrix, a: number, d: number): boolean {
  return m.adapters.includes(a) && m.domains.includes(d);
}

function sameIds(x: readonly number[], y: readonly number[]): boolean {
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

export function sameMatrix(x: MdevMatrix, y: MdevMatrix): boolean {
  return sameIds(x.adapters, y.adapters) && sameIds(x.domains, y.domains) && sameIds(x.controlDomains, y.controlDomains);
}

function subsetOf(x: readonly number[], y: readonly number[]): boolean {
  return x.every((v) => y.includes(v));
}

class Planner {
  readonly #specMdevs: Map<string, WantedMdev>;
  readonly #overrideAt: Map<number, WantedOverride>;
  readonly #specBit: Map<string, boolean>;

  constructor(
    readonly wanted: WantedState,
    readonly facts: BusFacts,
    /** Owned mdevs the spec no longer names: uuid → reservation. */
    readonly releases: ReadonlyMap<string, string | undefined>,
    /** Journal entries to undo (none of them named by the spec). */
    readonly restores: Restores,
  ) {
    this.#specMdevs = new Map(wanted.mdevs.map((m) => [m.uuid, m]));
    // Where the bus is headed: the spec's values, and the restores' (a restore is as much a
    // target as a spec entry when telling "waits for it" from "nobody will change it").
    this.#overrideAt = new Map([
      ...restores.overrides.map((r) => [r.index, { apqn: r.apqn, index: r.index, driver: r.driver }] as const),
      ...wanted.overrides.map((o) => [o.index, o] as const),
    ]);
    this.#specBit = new Map([...restores.maskBits.map((r) => [`${r.kind}:${r.bit}`, r.host] as const), ...wanted.maskBits.map((b) => [`${b.kind}:${b.bit}`, b.host] as const)]);
  }

  items(): PlanItem[] {
    const items: PlanItem[] = [];
    for (const [uuid, reservation] of this.releases) {
      const item = this.release(uuid, reservation);
      if (item) items.push(item);
    }
    for (const r of this.restores.maskBits) {
      const item = this.restoreMaskBit(r);
      if (item) items.push(item);
    }
    for (const r of this.restores.overrides) {
      const item = this.restoreOverride(r);
      if (item) items.push(item);
    }
    for (const r of this.restores.online) {
      // The cordon stands while the bus is headed to take the queue (the spec, or a restore:
      // a bit the operator set that was clear before it).
      if (!this.freedBySpec(r.apqn.adapter, r.apqn.domain)) items.push(this.restoreOnline(r));
    }
    for (const m of this.wanted.mdevs) items.push(this.mdev(m));
    for (const b of this.wanted.maskBits) items.push(this.maskBit(b));
    for (const o of this.wanted.overrides) items.push(this.override(o));
    items.push(...this.binds());
    for (const m of this.wanted.mdevs) {
      const item = this.guestMatrix(m);
      if (item) items.push(item);
    }
    return items;
  }

  /** What other mdevs holding some APQNs means for a change that needs them free. */
  holderBlocks(holders: ReadonlyArray<{ mdev: MdevInfo; shared: Array<[number, number]> }>, forWhat: string): Block[] {
    const blocks: Block[] = [];
    for (const { mdev, shared } of holders) {
      const apqns = apqnList(shared);
      if (this.releases.has(mdev.uuid)) {
        blocks.push(
          this.facts.mdevInUse(mdev)
            ? { kind: 'guestAttached', message: `mdev ${mdev.uuid} still holds ${apqns} and a guest has it open` }
            : { kind: 'waiting', message: `${forWhat} waits for mdev ${mdev.uuid} to be removed` },
        );
        continue;
      }
      const spec = this.#specMdevs.get(mdev.uuid);
      if (spec) {
        const kept = shared.filter(([a, d]) => inProduct(spec.matrix, a, d));
        blocks.push(
          kept.length === 0
            ? { kind: 'waiting', message: `${forWhat} waits for mdev ${mdev.uuid} to give up ${apqns}` }
            : { kind: 'conflict', message: `${forWhat} conflicts with mdev ${mdev.uuid} of the spec, which keeps ${apqnList(kept)}` },
        );
        continue;
      }
      blocks.push({ kind: 'foreign', message: `mdev ${mdev.uuid} (not the operator's) holds ${apqns}; left alone, so ${forWhat} cannot proceed` });
    }
    return blocks;
  }

  /** Mask writes fail (EINVAL) while any driver_override is set. */
  overrideBlock(forWhat: string): Block | undefined {
    if (this.facts.overridden.length === 0) return undefined;
    const foreign = this.facts.overridden.filter((q) => this.#overrideAt.get(q.apqn.adapter * 256 + q.apqn.domain)?.driver !== 'cex4queue');
    const names = (qs: readonly QueueInfo[]) => qs.slice(0, 3).map((q) => formatApqn(q.apqn)).join(', ') + (qs.length > 3 ? ` and ${qs.length - 3} more` : '');
    if (foreign.length === 0) {
      return { kind: 'waiting', message: `${forWhat} waits for the driver_override of ${names(this.facts.overridden)} to be cleared` };
    }
    return {
      kind: this.wanted.mode === 'DriverOverride' ? 'conflict' : 'foreign',
      message: `a driver_override is set on ${names(foreign)}, which the spec does not clear; the kernel refuses mask writes while one is set, so ${forWhat} cannot proceed`,
    };
  }

  release(uuid: string, reservation: string | undefined): PlanItem | undefined {
    const mdev = this.facts.mdevs.get(uuid);
    if (!mdev) return undefined; // released already
    const base = {
      key: `release:${uuid}`,
      tracked: false,
      reservations: reservation ? [reservation] : [],
      satisfied: false,
      difference: `mdev ${uuid} is no longer in the spec but still exists`,
    };
    if (this.facts.mdevInUse(mdev)) {
      return { ...base, block: { kind: 'guestAttached', message: `mdev ${uuid} is still open by a guest; it is removed once the guest lets go` } };
    }
    return { ...base, next: { step: { kind: 'removeMdev', uuid }, moves: [], priority: PRIORITY.removeMdev } };
  }

  /** A mask bit the agent changed and the spec no longer names, back to its original value. */
  restoreMaskBit(r: MaskRestore): PlanItem | undefined {
    const item = this.maskBit({ kind: r.kind, bit: r.bit, host: r.host });
    if (item.satisfied) return undefined;
    const name = formatMaskBit(r.kind, r.bit);
    const forWhom = r.reservations.length ? ` for ${r.reservations.join(', ')}` : '';
    const was = r.host ? 'cleared' : 'set';
    // A spec mdev in the way is one the spec will let go of (restore.ts defers the entries the
    // spec still relies on): waiting, not a conflict.
    const block = item.block?.kind === 'conflict' ? { kind: 'waiting' as const, message: item.block.message } : item.block;
    return {
      ...item,
      key: `restore:${r.kind}:${name}`,
      tracked: false,
      reservations: r.reservations,
      difference: `${r.kind} bit ${name} is ${was}: the operator ${was} it${forWhom} and the spec no longer names it, so it goes back to ${r.host ? 'set (host)' : 'cleared (vfio_ap)'}`,
      ...(block ? { block } : {}),
    };
  }

  /** A driver_override the agent changed and the spec no longer names, back to its original. */
  restoreOverride(r: OverrideRestore): PlanItem | undefined {
    const item = this.override({ apqn: r.apqn, index: r.index, driver: r.driver });
    if (item.satisfied || item.block?.kind === 'missing') return undefined;
    const name = formatApqn(r.apqn);
    const forWhom = r.reservations.length ? ` for ${r.reservations.join(', ')}` : '';
    return {
      ...item,
      key: `restore:override:${name}`,
      tracked: false,
      reservations: r.reservations,
      difference: `the driver_override of ${name} was changed by the operator${forWhom} and the spec no longer names it, so it goes back to ${r.driver === 'vfio_ap' ? 'vfio_ap' : 'none (the queue back on its owner by the masks)'}`,
    };
  }

  /** A queue the agent cordoned for a move the spec no longer wants: back online, so the
   *  host's zcrypt uses it again. Online needs a serving card (zcrypt online_store: ENODEV
   *  while deconfigured or checkstopped, EINVAL while the card is offline). */
  restoreOnline(r: OnlineRestore): PlanItem {
    const name = formatApqn(r.apqn);
    const forWhom = r.reservations.length ? ` for ${r.reservations.join(', ')}` : '';
    const item = {
      key: `restore:online:${name}`,
      tracked: false,
      reservations: r.reservations,
      satisfied: false,
      difference: `${name} is offline: the operator cordoned it to move it${forWhom}, and the spec no longer takes it from the host, so it goes back online`,
    };
    const trouble = this.facts.cardTrouble(r.apqn.adapter);
    const q = this.facts.queue(r.apqn.adapter, r.apqn.domain);
    if (trouble || !q || !q.config || q.chkstop) {
      return { ...item, block: { kind: 'missing', message: `${name} goes back online once its card serves again (${trouble ?? 'queue deconfigured or checkstopped'})` } };
    }
    return { ...item, next: { step: { kind: 'queueOnline', apqns: [r.apqn], online: true }, moves: [], priority: PRIORITY.toHost } };
  }

  /** Would the spec and the restores under way (once applied) take this APQN away from the host? */
  freedBySpec(a: number, d: number): boolean {
    if (this.#overrideAt.get(a * 256 + d)?.driver === 'vfio_ap') return true;
    return this.#specBit.get(`apmask:${a}`) === false || this.#specBit.get(`aqmask:${d}`) === false;
  }

  mdev(m: WantedMdev): PlanItem {
    const { uuid, matrix } = m;
    const key = `mdev:${uuid}=${formatMatrix(matrix)}`;
    const base = { key, tracked: true, reservations: m.reservation ? [m.reservation] : [] };
    const current = this.facts.mdevs.get(uuid);
    if (current && sameMatrix(current.matrix, matrix)) return { ...base, satisfied: true, difference: '' };
    const difference = current
      ? `mdev ${uuid} has matrix ${formatMatrix(current.matrix)}; the spec wants ${formatMatrix(matrix)}`
      : `mdev ${uuid} does not exist`;
    const unsatisfied = { ...base, satisfied: false, difference };

    const { maxAdapterId, maxDomainId } = this.facts.inv;
    const tooBig = [
      ...matrix.adapters.filter((a) => a > maxAdapterId).map((a) => `adapter ${formatAdapterId(a)} is above ap_max_adapter_id ${maxAdapterId}`),
      ...[...matrix.domains, ...matrix.controlDomains].filter((d) => d > maxDomainId).map((d) => `domain ${formatDomainId(d)} is above ap_max_domain_id ${maxDomainId}`),
    ];
    if (tooBig.length > 0) return { ...unsatisfied, block: { kind: 'conflict', message: `mdev ${uuid}: ${tooBig.join('; ')}` } };

    const hostOwned = this.facts.hostOwnedIn(matrix);
    if (hostOwned.length > 0) {
      const stuck = hostOwned.filter(([a, d]) => !this.freedBySpec(a, d));
      const block: Block =
        stuck.length > 0
          ? { kind: 'conflict', message: `mdev ${uuid} needs ${apqnList(stuck)}, which the host driver owns and the spec does not move` }
          : { kind: 'waiting', message: `mdev ${uuid} waits for ${apqnList(hostOwned)} to leave the host driver` };
      return { ...unsatisfied, block };
    }
    if (!current) return { ...unsatisfied, next: { step: { kind: 'createMdev', uuid }, moves: [], priority: PRIORITY.createMdev } };

    const block = worst(this.holderBlocks(this.facts.holders(matrix.adapters, matrix.domains, uuid), `the matrix of mdev ${uuid}`));
    if (block) return { ...unsatisfied, block };
    const shrink =
      subsetOf(matrix.adapters, current.matrix.adapters) &&
      subsetOf(matrix.domains, current.matrix.domains) &&
      subsetOf(matrix.controlDomains, current.matrix.controlDomains);
    return {
      ...unsatisfied,
      next: { step: { kind: 'setMatrix', uuid, matrix }, moves: [], priority: shrink ? PRIORITY.shrinkMatrix : PRIORITY.setMatrix },
    };
  }

  /** Reservations whose mdev (wanted) uses this row or column. */
  reservationsUsing(kind: 'apmask' | 'aqmask', bit: number): string[] {
    return this.wanted.mdevs
      .filter((m) => (kind === 'apmask' ? m.matrix.adapters : m.matrix.domains).includes(bit))
      .map((m) => m.reservation);
  }

  maskBit(b: WantedMaskBit): PlanItem {
    const name = formatMaskBit(b.kind, b.bit);
    const key = `${b.kind}:${name}=${b.host ? 'host' : 'vfio_ap'}`;
    const current = this.facts.inv[b.kind].has(b.bit);
    const base = { key, tracked: true };
    if (current === b.host) return { ...base, reservations: this.reservationsUsing(b.kind, b.bit), satisfied: true, difference: '' };
    const what = `${b.kind} bit ${name}`;
    const difference = `${what} is ${current ? 'set' : 'cleared'}; the spec wants it ${b.host ? 'set (host)' : 'cleared (vfio_ap)'}`;

    if (!b.host) {
      const moves = this.facts.queuesIn(b.kind, b.bit).filter((q) => q.driver === 'cex4queue');
      // The reservations this clear is for: those whose queues it moves. A reservation whose
      // queues an earlier bit already moved (the plan now frees them by this one instead) waits
      // for nothing here and stays as it is.
      const movedFor = new Set<string>();
      for (const q of moves) {
        const intent = this.wanted.intents.get(q.apqn.adapter * 256 + q.apqn.domain);
        if (intent) movedFor.add(intent.reservation);
      }
      const reservations = movedFor.size > 0 ? movedFor : new Set(this.reservationsUsing(b.kind, b.bit));
      const item = { ...base, reservations: [...reservations].sort(), satisfied: false, difference };
      const block = this.overrideBlock(`clearing ${what}`);
      if (block) return { ...item, block };
      return { ...item, next: { step: { kind: 'maskBits', mask: b.kind, bits: [b.bit], host: false }, moves, priority: PRIORITY.toVfio } };
    }

    // Setting a bit gives the host every APQN of that row/column (6.19: checked against all
    // 256 of the other dimension): none may be in any mdev (the kernel says EBUSY).
    const otherKind = b.kind === 'apmask' ? 'aqmask' : 'apmask';
    const other = this.facts.inv[otherKind];
    const span = this.facts.strictInUseCheck ? Array.from({ length: 256 }, (_, i) => i) : other.bits();
    const holdersOf = (ids: number[]) => (b.kind === 'apmask' ? this.facts.holders([b.bit], ids) : this.facts.holders(ids, [b.bit]));
    // The kernel (6.10: ap_bus.c's in-use check of the APQNs a mask write gives the default
    // driver) looks at the other mask as it is then. Where the spec also clears the other
    // mask's bits that make the overlap, that clear goes first (PRIORITY.toVfio): this waits
    // for it. 6.19 checks all 256 ids whatever the other mask says.
    const afterClears = this.facts.strictInUseCheck ? span : span.filter((id) => this.#specBit.get(`${otherKind}:${id}`) !== false);
    const remaining = holdersOf(afterClears);
    if (remaining.length === 0 && afterClears.length < span.length && holdersOf(span).length > 0) {
      const cleared = span.filter((id) => !afterClears.includes(id)).map((id) => formatMaskBit(otherKind, id));
      const item = { ...base, reservations: [], satisfied: false, difference };
      return { ...item, block: { kind: 'waiting', message: `setting ${what} waits for ${otherKind} ${cleared.slice(0, 3).join(', ')}${cleared.length > 3 ? ' …' : ''} to be cleared first` } };
    }
    const holders = remaining;
    const reservations = holders.map((h) => this.releases.get(h.mdev.uuid) ?? this.#specMdevs.get(h.mdev.uuid)?.reservation).filter((r): r is string => !!r);
    const item = { ...base, reservations: [...new Set(reservations)].sort(), satisfied: false, difference };
    const block = worst([...this.holderBlocks(holders, `setting ${what}`), ...[this.overrideBlock(`setting ${what}`)].filter((x): x is Block => !!x)]);
    if (block) return { ...item, block };
    return { ...item, next: { step: { kind: 'maskBits', mask: b.kind, bits: [b.bit], host: true }, moves: [], priority: PRIORITY.toHost } };
  }

  override(o: WantedOverride): PlanItem {
    const name = formatApqn(o.apqn);
    const key = `override:${name}=${o.driver}`;
    const intent = this.wanted.intents.get(o.index);
    const holding = this.wanted.mdevs.filter((m) => inProduct(m.matrix, o.apqn.adapter, o.apqn.domain)).map((m) => m.reservation);
    const reservations = [...new Set([...(intent ? [intent.reservation] : []), ...holding])].sort();
    const base = { key, tracked: true, reservations };
    const q = this.facts.queue(o.apqn.adapter, o.apqn.domain);
    const override = q?.driverOverride ?? '';
    const toVfio = o.driver === 'vfio_ap';

    if (q && q.driverOverride === null && toVfio) {
      return {
        ...base,
        satisfied: false,
        difference: `${name} should be on ${o.driver} by driver_override`,
        block: { kind: 'unsupported', message: `the kernel has no driver_override (needs 6.19); ${name} cannot be moved per queue` },
      };
    }
    const hostDriver = this.facts.hostOwned(o.apqn.adapter, o.apqn.domain) && !override ? 'cex4queue' : 'vfio_ap';
    const satisfied = q !== undefined && (toVfio ? override === 'vfio_ap' && q.driver === 'vfio_ap' : override === '' && q.driver === hostDriver);
    if (satisfied) return { ...base, satisfied: true, difference: '' };
    if (!q) {
      return {
        ...base,
        satisfied: false,
        difference: `${name} does not exist`,
        block: { kind: 'missing', message: `${name} is not on the node (card or domain gone); its driver_override is set when it is back` },
      };
    }
    const difference = `${name} is on ${q.driver || 'no driver'} with driver_override '${override}'; the spec wants ${o.driver}`;
    const item = { ...base, satisfied: false, difference };
    const at = (priority: number, step: Step, moves: readonly QueueInfo[] = []) => ({ ...item, next: { step, moves, priority } });

    if (toVfio) {
      if (override !== 'vfio_ap') {
        if (!this.facts.masksAllOnes()) return { ...item, block: this.masksNotAllOnes(`setting the driver_override of ${name}`) };
        return at(PRIORITY.toVfio, { kind: 'setOverride', apqn: o.apqn, driver: 'vfio_ap' }, q.driver === 'cex4queue' ? [q] : []);
      }
      // The override decides the next probe only: move the queue by unbind + bind.
      if (q.driver === 'cex4queue') return at(PRIORITY.toVfio, { kind: 'unbind', apqn: o.apqn, driver: 'cex4queue' }, [q]);
      if (q.driver === '') return at(PRIORITY.bind, { kind: 'bind', apqn: o.apqn, driver: 'vfio_ap' });
      return at(PRIORITY.overrideToHost, { kind: 'unbind', apqn: o.apqn, driver: q.driver as 'vfio_ap' });
    }

    // Back to the host: nothing may hold the queue in an mdev first.
    const block = worst(this.holderBlocks(this.facts.holders([o.apqn.adapter], [o.apqn.domain]), `giving ${name} back to the host`));
    if (block) return { ...item, block };
    if (override !== '') {
      if (!this.facts.masksAllOnes()) return { ...item, block: this.masksNotAllOnes(`clearing the driver_override of ${name}`) };
      return at(PRIORITY.overrideToHost, { kind: 'setOverride', apqn: o.apqn, driver: null });
    }
    if (q.driver === '') return at(PRIORITY.bind, { kind: 'bind', apqn: o.apqn, driver: hostDriver });
    return at(PRIORITY.overrideToHost, { kind: 'unbind', apqn: o.apqn, driver: q.driver as 'vfio_ap' | 'cex4queue' });
  }

  masksNotAllOnes(forWhat: string): Block {
    const unset = [
      ...Array.from({ length: 256 }, (_, i) => i).filter((i) => !this.facts.inv.apmask.has(i)).map((i) => ({ kind: 'apmask' as const, bit: i })),
      ...Array.from({ length: 256 }, (_, i) => i).filter((i) => !this.facts.inv.aqmask.has(i)).map((i) => ({ kind: 'aqmask' as const, bit: i })),
    ];
    const foreign = unset.filter((u) => this.#specBit.get(`${u.kind}:${u.bit}`) !== true);
    const list = (us: typeof unset) => us.slice(0, 3).map((u) => `${u.kind} ${formatMaskBit(u.kind, u.bit)}`).join(', ') + (us.length > 3 ? ` and ${us.length - 3} more` : '');
    if (foreign.length === 0) return { kind: 'waiting', message: `${forWhat} waits for ${list(unset)} to be set again` };
    return {
      kind: 'foreign',
      message: `${list(foreign)} are cleared and the spec does not set them; driver_override needs both masks all ones, so ${forWhat} cannot proceed`,
    };
  }

  /** Queues of a spec mdev left without a driver (someone unbound them): probe them back to
   *  their owner so the guest sees them. Override queues are handled by their own items. */
  binds(): PlanItem[] {
    const items: PlanItem[] = [];
    for (const m of this.wanted.mdevs) {
      for (const a of m.matrix.adapters) {
        for (const d of m.matrix.domains) {
          const q = this.facts.queue(a, d);
          if (!q || q.driver !== '' || this.#overrideAt.has(a * 256 + d)) continue;
          if (this.facts.hostOwned(a, d)) continue; // the mdev item waits for it to leave the host
          const name = apqnText(a, d);
          items.push({
            key: `bind:${name}`,
            tracked: false,
            reservations: [m.reservation],
            satisfied: false,
            difference: `${name} of mdev ${m.uuid} has no driver`,
            next: { step: { kind: 'bind', apqn: q.apqn, driver: 'vfio_ap' }, moves: [], priority: PRIORITY.bind },
          });
        }
      }
    }
    return items;
  }

  /** guest_matrix must show the whole wanted product; what is missing because a card or queue
   *  is gone is degradation (the agent cannot fix it), anything else is a difference. */
  guestMatrix(m: WantedMdev): PlanItem | undefined {
    const current = this.facts.mdevs.get(m.uuid);
    if (!current || !sameMatrix(current.matrix, m.matrix)) return undefined; // the mdev item speaks
    const guest = current.guestMatrix;
    const lackA = m.matrix.adapters.filter((a) => !guest.adapters.includes(a));
    const lackD = m.matrix.domains.filter((d) => !guest.domains.includes(d));
    const base = { key: `guest:${m.uuid}`, tracked: false, reservations: [m.reservation] };
    if (lackA.length === 0 && lackD.length === 0) {
      // The guest may still see a card that cannot serve it (deconfigured, checkstopped …).
      const troubled = m.matrix.adapters
        .map((a) => [a, this.facts.cardTrouble(a)] as const)
        .filter((x): x is readonly [number, CardTrouble] => x[1] !== null)
        .map(([a, trouble]) => `card ${formatAdapterId(a)} ${TROUBLE_TEXT[trouble]}`);
      return { ...base, satisfied: true, difference: '', ...(troubled.length ? { degraded: `mdev ${m.uuid}: ${troubled.join('; ')}` } : {}) };
    }

    const degraded: string[] = [];
    const unexplained: string[] = [];
    for (const a of lackA) {
      const trouble = this.facts.cardTrouble(a);
      if (trouble) {
        degraded.push(`card ${formatAdapterId(a)} ${TROUBLE_TEXT[trouble]}`);
        continue;
      }
      const missing = m.matrix.domains.filter((d) => !this.facts.queue(a, d));
      const elsewhere = m.matrix.domains
        .map((d) => this.facts.queue(a, d))
        .filter((q): q is QueueInfo => !!q && q.driver !== 'vfio_ap');
      if (elsewhere.length > 0) {
        unexplained.push(`${elsewhere.map((q) => `${formatApqn(q.apqn)} is on ${q.driver || 'no driver'}`).join(', ')}`);
      } else if (missing.length > 0) {
        degraded.push(`${missing.map((d) => apqnText(a, d)).join(', ')} missing`);
      } else {
        unexplained.push(`adapter ${formatAdapterId(a)} is not in guest_matrix`);
      }
    }
    for (const d of lackD) {
      const present = m.matrix.adapters.some((a) => this.facts.queue(a, d));
      if (present) unexplained.push(`domain ${formatDomainId(d)} is not in guest_matrix`);
      else degraded.push(`domain ${formatDomainId(d)} is not on the node`);
    }
    if (unexplained.length === 0) {
      return { ...base, satisfied: true, difference: '', degraded: `mdev ${m.uuid}: guest sees less because ${degraded.join('; ')}` };
    }
    return {
      ...base,
      satisfied: false,
      difference: `guest_matrix of mdev ${m.uuid} lacks what the spec wants: ${unexplained.join('; ')}`,
      block: { kind: 'waiting', message: `guest_matrix of mdev ${m.uuid}: ${unexplained.join('; ')}` },
    };
  }
}

export const TROUBLE_TEXT = {
  CardRemoved: 'is removed',
  CardDeconfigured: 'is deconfigured',
  CardCheckstopped: 'is checkstopped',
  CardOffline: 'is offline',
} as const;

/** Every item of the spec (plus releases of owned mdevs the spec dropped, and restores of
 *  what the agent changed and the spec no longer names) against the bus. */
export function planPass(
  wanted: WantedState,
  facts: BusFacts,
  releases: ReadonlyMap<string, string | undefined>,
  restores: Restores = NO_RESTORES,
): PlanItem[] {
  return new Planner(wanted, facts, releases, restores).items();
}

/** Steps that may run now, in the order to try them. */
export function candidates(items: readonly PlanItem[]): Array<{ item: PlanItem; next: Candidate }> {
  return items
    .filter((i): i is PlanItem & { next: Candidate } => !i.satisfied && i.next !== undefined)
    .map((item) => ({ item, next: item.next }))
    .sort((x, y) => x.next.priority - y.next.priority);
}
