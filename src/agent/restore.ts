// What the journal says the agent must still hand back, against the spec and the bus. Pure.
//
// The rule: the bus must equal the spec plus every change in the journal undone. A journal
// entry the spec names is the spec's (the spec's value is applied; the entry keeps the value
// from before the agent's first change). One the spec no longer names is restored to its
// original value — unless the spec still relies on the change: an aqmask/apmask bit whose
// setting would give the host an APQN of a spec mdev (a later reservation may use the row the
// earlier one freed, with the controller planning from a status that showed it freed). Such an
// entry waits, adopted by the reservations that rely on it, and is restored after they go.
//
// Entries are dropped (tidy) once the bus shows the original value and the spec wants nothing
// else; mdev entries once the mdev is gone and the spec no longer names it.
//
// A cordon (a host queue the agent set offline to move it) stays while the queue is offline on
// the host driver; the planner puts such a queue back online unless the bus is headed to take
// it from the host (plan.ts, freedBySpec: the spec and the restores under way). It is dropped
// once the queue has left the host driver (the move happened; a queue that comes back is
// probed online) or reads online again.
import type { MaskKind } from '../apbus/backend.js';
import type { BusFacts } from './bus-facts.js';
import type { Apqn } from '../apbus/ids.js';
import type { AgentJournal, CordonRecord, JournalDraft, MaskBitRecord, OverrideRecord } from './journal.js';
import { specReservations, type WantedState } from './spec.js';
import type { PlanItem } from './plan.js';
import type { Step } from './steps.js';

export interface MaskRestore {
  readonly kind: MaskKind;
  readonly bit: number;
  /** The value to restore (true = set, host). */
  readonly host: boolean;
  /** Released reservations the change was made for (not those the spec still names). */
  readonly reservations: readonly string[];
}

export interface OverrideRestore {
  readonly apqn: OverrideRecord['apqn'];
  readonly index: number;
  /** 'cex4queue': the override cleared and the queue back with its owner by the masks. */
  readonly driver: 'vfio_ap' | 'cex4queue';
  readonly reservations: readonly string[];
}

/** A host queue the agent cordoned that is still offline on the host driver: back online,
 *  unless the plan still moves it (the planner decides, knowing where the bus is headed). */
export interface OnlineRestore {
  readonly apqn: Apqn;
  readonly index: number;
  readonly reservations: readonly string[];
}

export interface Restores {
  readonly maskBits: readonly MaskRestore[];
  readonly overrides: readonly OverrideRestore[];
  readonly online: readonly OnlineRestore[];
}

export const NO_RESTORES: Restores = { maskBits: [], overrides: [], online: [] };

/** The spec's view, indexed once per call. */
class SpecIndex {
  readonly bits: ReadonlyMap<string, boolean>;
  readonly overrides: ReadonlyMap<number, 'vfio_ap' | 'cex4queue'>;
  constructor(
    readonly wanted: WantedState,
    readonly facts: BusFacts,
  ) {
    this.bits = new Map(wanted.maskBits.map((b) => [`${b.kind}:${b.bit}`, b.host]));
    this.overrides = new Map(wanted.overrides.map((o) => [o.index, o.driver]));
  }

  /** Spec values of named bits applied to the bus's masks: what the masks will be. */
  wantedHas(kind: MaskKind, bit: number): boolean {
    return this.bits.get(`${kind}:${bit}`) ?? this.facts.inv[kind].has(bit);
  }

  /** Reservations of spec mdevs with an APQN that setting this bit would give to the host —
   *  and, where the kernel checks a bit being set against all 256 ids of the other dimension
   *  (6.19), spec mdevs that hold any APQN of that row/column now: the kernel refuses the write
   *  while they do. */
  mdevsNeedingCleared(kind: MaskKind, bit: number): string[] {
    const other: MaskKind = kind === 'apmask' ? 'aqmask' : 'apmask';
    const onRow = (m: { adapters: readonly number[]; domains: readonly number[] }) => {
      const [mine, theirs] = kind === 'apmask' ? [m.adapters, m.domains] : [m.domains, m.adapters];
      return mine.includes(bit) ? theirs : [];
    };
    return this.wanted.mdevs
      .filter((m) => {
        if (onRow(m.matrix).some((id) => this.wantedHas(other, id))) return true;
        const now = this.facts.strictInUseCheck ? this.facts.mdevs.get(m.uuid) : undefined;
        return now !== undefined && onRow(now.matrix).length > 0;
      })
      .map((m) => m.reservation);
  }
}

/** Reservations of the spec that use this row/column (mdevs and queue intents). */
function specUsersOfBit(wanted: WantedState, kind: MaskKind, bit: number): string[] {
  const users = new Set<string>();
  for (const m of wanted.mdevs) if ((kind === 'apmask' ? m.matrix.adapters : m.matrix.domains).includes(bit)) users.add(m.reservation);
  for (const q of wanted.intents.values()) if ((kind === 'apmask' ? q.apqn.adapter : q.apqn.domain) === bit) users.add(q.reservation);
  users.delete('');
  return [...users].sort();
}

function specUsersOfQueue(wanted: WantedState, index: number): string[] {
  const a = index >> 8;
  const d = index & 0xff;
  const users = new Set<string>();
  for (const m of wanted.mdevs) if (m.matrix.adapters.includes(a) && m.matrix.domains.includes(d)) users.add(m.reservation);
  const intent = wanted.intents.get(index);
  if (intent) users.add(intent.reservation);
  users.delete('');
  return [...users].sort();
}

function overrideNow(facts: BusFacts, index: number): string | undefined {
  const q = facts.queue(index >> 8, index & 0xff);
  if (!q) return undefined;
  return q.driverOverride ?? '';
}

/** The driver a spec override entry wants as an override value ('' = none). */
const overrideValue = (driver: 'vfio_ap' | 'cex4queue') => (driver === 'vfio_ap' ? 'vfio_ap' : '');

type MaskState = 'spec' | 'restore' | 'deferred' | 'done';
/** Whether a cordon still holds: the queue is offline on the host driver. Gone, moved, or
 *  online again (by us, by the kernel's probe, or by hand): nothing to undo. */
function cordonHolds(r: CordonRecord, facts: BusFacts): boolean {
  const q = facts.queue(r.apqn.adapter, r.apqn.domain);
  return q?.driver === 'cex4queue' && q.online === false;
}
type OverrideState = 'spec' | 'restore' | 'deferred' | 'done' | 'absent';

function maskState(r: MaskBitRecord, spec: SpecIndex): MaskState {
  const named = spec.bits.get(`${r.mask}:${r.bit}`);
  const now = spec.facts.inv[r.mask].has(r.bit);
  if (named !== undefined) return named === r.original && now === r.original ? 'done' : 'spec';
  if (now === r.original) return 'done';
  if (r.original && spec.mdevsNeedingCleared(r.mask, r.bit).length > 0) return 'deferred';
  return 'restore';
}

function overrideState(r: OverrideRecord, spec: SpecIndex): OverrideState {
  const { facts, wanted } = spec;
  const named = spec.overrides.get(r.index);
  const now = overrideNow(facts, r.index);
  if (now === undefined) return 'absent'; // the queue is gone (card removed): undone when it is back
  const q = facts.queue(r.index >> 8, r.index & 0xff)!;
  const owner = facts.hostOwned(r.apqn.adapter, r.apqn.domain) ? 'cex4queue' : 'vfio_ap';
  const settled = now === r.original && q.driver === owner;
  if (named) return overrideValue(named) === r.original && settled ? 'done' : 'spec';
  if (settled) return 'done';
  const inSpecMdev = wanted.mdevs.some((m) => m.matrix.adapters.includes(r.apqn.adapter) && m.matrix.domains.includes(r.apqn.domain));
  if (r.original !== 'vfio_ap' && inSpecMdev) return 'deferred';
  return 'restore';
}

/** The journal entries to undo now. */
export function pendingRestores(journal: AgentJournal, wanted: WantedState, facts: BusFacts): Restores {
  const spec = new SpecIndex(wanted, facts);
  const inSpec = new Set(specReservations(wanted));
  const released = (rs: readonly string[]) => rs.filter((r) => !inSpec.has(r));
  const maskBits: MaskRestore[] = [];
  for (const r of journal.maskBits()) {
    const state = maskState(r, spec);
    // The spec itself may name the bit back at its original value: the controller keeps a
    // restore in the spec until a status about that spec shows it done. The released
    // reservations the change was made for still wait for it, as for a restore of our own.
    const specRestores = state === 'spec' && spec.bits.get(`${r.mask}:${r.bit}`) === r.original && released(r.reservations).length > 0;
    if (state !== 'restore' && !specRestores) continue;
    maskBits.push({ kind: r.mask, bit: r.bit, host: r.original, reservations: released(r.reservations) });
  }
  const overrides: OverrideRestore[] = [];
  for (const r of journal.overrides()) {
    if (overrideState(r, spec) !== 'restore') continue;
    overrides.push({ apqn: r.apqn, index: r.index, driver: r.original === 'vfio_ap' ? 'vfio_ap' : 'cex4queue', reservations: released(r.reservations) });
  }
  const online: OnlineRestore[] = [];
  for (const r of journal.cordons()) {
    if (!cordonHolds(r, facts)) continue;
    online.push({ apqn: r.apqn, index: r.index, reservations: released(r.reservations) });
  }
  return { maskBits, overrides, online };
}

/** Bookkeeping at the end of a pass (into `draft`): entries whose change is undone and not
 *  wanted again are dropped; entries the spec names or relies on take its reservations (so the
 *  ones last using a change wait for it to be undone); owned mdevs that are gone and no longer
 *  in the spec are forgotten. */
export function tidyJournal(draft: JournalDraft, journal: AgentJournal, wanted: WantedState, facts: BusFacts): void {
  const spec = new SpecIndex(wanted, facts);
  for (const r of journal.maskBits()) {
    const state = maskState(r, spec);
    if (state === 'done') {
      draft.deleteMaskBit(r.mask, r.bit);
      continue;
    }
    const users = state === 'deferred' ? spec.mdevsNeedingCleared(r.mask, r.bit) : state === 'spec' ? specUsersOfBit(wanted, r.mask, r.bit) : [];
    if (users.length > 0) draft.setMaskBit({ ...r, reservations: [...new Set(users)].sort() });
  }
  for (const r of journal.overrides()) {
    const state = overrideState(r, spec);
    if (state === 'done') {
      draft.deleteOverride(r.index);
      continue;
    }
    const users = state === 'spec' || state === 'deferred' ? specUsersOfQueue(wanted, r.index) : [];
    if (users.length > 0) draft.setOverride({ ...r, reservations: users });
  }
  for (const r of journal.cordons()) {
    if (!cordonHolds(r, facts)) draft.deleteCordon(r.index);
  }
  const specUuids = new Set(wanted.mdevs.map((m) => m.uuid));
  for (const uuid of journal.mdevs().keys()) if (!specUuids.has(uuid) && !facts.mdevs.has(uuid)) draft.deleteMdev(uuid);
}

/** Journal entries a step needs before it runs: the original value of each mask bit or
 *  override it changes, unless one is recorded already (the first original is the one to
 *  restore) or the step repairs drift (`repairs`: keys of spec items the bus satisfied at the
 *  end of the last pass — the value before the operator's change is the one it repairs to, not
 *  what someone changed it to since), and the mdev it creates. Each is recorded with the spec's
 *  reservations using that row, column or queue (as tidyJournal keeps them), else those of the
 *  plan items it serves. */
export function recordBefore(
  draft: JournalDraft,
  journal: AgentJournal,
  step: Step,
  facts: BusFacts,
  wanted: WantedState,
  items: readonly PlanItem[],
  repairs: ReadonlySet<string>,
): void {
  const served = [...new Set(items.flatMap((i) => i.reservations))].sort();
  const or = (users: string[]) => (users.length > 0 ? users : served);
  switch (step.kind) {
    case 'maskBits':
      for (const bit of step.bits) {
        const now = facts.inv[step.mask].has(bit);
        if (now === step.host || journal.maskBit(step.mask, bit)) continue;
        const forBit = items.filter((i) => i.next?.step.kind === 'maskBits' && i.next.step.bits.includes(bit));
        if (forBit.some((i) => repairs.has(i.key))) continue;
        draft.setMaskBit({ mask: step.mask, bit, original: now, reservations: or(specUsersOfBit(wanted, step.mask, bit)) });
      }
      return;
    case 'setOverride': {
      const index = step.apqn.adapter * 256 + step.apqn.domain;
      const now = overrideNow(facts, index) ?? '';
      if (now === (step.driver ?? '') || journal.override(index) || items.some((i) => repairs.has(i.key))) return;
      draft.setOverride({ apqn: step.apqn, index, original: now, reservations: or(specUsersOfQueue(wanted, index)) });
      return;
    }
    case 'queueOnline':
      if (step.online) return;
      for (const apqn of step.apqns) {
        const index = apqn.adapter * 256 + apqn.domain;
        if (journal.cordon(index) || facts.queue(apqn.adapter, apqn.domain)?.online !== true) continue;
        const intent = wanted.intents.get(index);
        draft.setCordon({ apqn, index, reservations: intent?.reservation ? [intent.reservation] : served });
      }
      return;
    case 'createMdev':
      if (!journal.ownsMdev(step.uuid)) draft.setMdev(step.uuid, wanted.mdevs.find((m) => m.uuid === step.uuid)?.reservation || served[0]);
      return;
    default:
      return;
  }
}
