// Drift: the bus changed behind the operator's back. Owned things (spec items that were
// satisfied at the end of an earlier pass and are not now) are repaired by the normal plan and
// reported as DriftRepaired; foreign changes (mdevs the operator does not own appearing, mask
// bits the spec does not name changing) are left alone and reported as ForeignChange — as is
// anything foreign that blocks the spec. Drift stays True for driftHoldSeconds after the last
// difference so a person (or a test) can see it.
import { formatMaskBit } from './steps.js';
import type { BusFacts } from './bus-facts.js';
import type { AgentMemory } from './memory.js';
import type { Block, PlanItem } from './plan.js';
import type { WantedState } from './spec.js';
import type { ConditionInput } from '../controller/conditions.js';

export const DEFAULT_DRIFT_HOLD_SECONDS = 30;
const MAX_DETAILS = 12;

export interface DriftObservation {
  /** Owned facts that differed from the spec (now being repaired). */
  readonly repaired: readonly string[];
  /** Foreign changes seen since the last pass, left alone. */
  readonly foreign: readonly string[];
}

/** Mdevs on the bus that are neither in the spec nor owned. */
export function foreignMdevs(facts: BusFacts, wanted: WantedState, owned: ReadonlyMap<string, unknown>): string[] {
  const spec = new Set(wanted.mdevs.map((m) => m.uuid));
  return [...facts.mdevs.keys()].filter((u) => !spec.has(u) && !owned.has(u));
}

/** Compares the bus at the START of a pass with what the last pass left behind. */
export function observeDrift(items: readonly PlanItem[], facts: BusFacts, wanted: WantedState, memory: AgentMemory): DriftObservation {
  const repaired: string[] = [];
  if (memory.satisfied) {
    for (const i of items) if (i.tracked && !i.satisfied && memory.satisfied.has(i.key)) repaired.push(i.difference);
  }
  const foreign: string[] = [];
  if (memory.foreignMdevs) {
    for (const u of foreignMdevs(facts, wanted, memory.journal.mdevs())) {
      if (!memory.foreignMdevs.has(u)) foreign.push(`mdev ${u} was created outside the operator; left alone`);
    }
  }
  if (memory.masks) {
    // The spec's bits, and those the journal says the agent changed and may be restoring.
    const owned = new Set([...wanted.maskBits.map((b) => `${b.kind}:${b.bit}`), ...[...memory.journal.maskBits()].map((b) => `${b.mask}:${b.bit}`)]);
    for (const kind of ['apmask', 'aqmask'] as const) {
      const before = memory.masks[kind];
      const now = facts.inv[kind];
      if (before.equals(now)) continue;
      for (let bit = 0; bit < 256; bit++) {
        if (before.has(bit) === now.has(bit) || owned.has(`${kind}:${bit}`)) continue;
        foreign.push(`${kind} bit ${formatMaskBit(kind, bit)} (not the operator's) was ${now.has(bit) ? 'set' : 'cleared'}; left alone`);
      }
    }
  }
  return { repaired, foreign };
}

/** Folds an observation into memory.drift (details merge while the hold runs). */
export function rememberDrift(memory: AgentMemory, seen: DriftObservation, nowMs: number, holdMs: number): void {
  if (seen.repaired.length === 0 && seen.foreign.length === 0) return;
  const earlier = memory.drift && nowMs - memory.drift.atMs < holdMs ? memory.drift : null;
  const details = [...new Set([...seen.repaired, ...seen.foreign, ...(earlier?.details ?? [])])].slice(0, MAX_DETAILS);
  memory.drift = { atMs: nowMs, repaired: seen.repaired.length > 0 || (earlier?.repaired ?? false), details };
}

/** The baseline the next pass compares against: what the bus looks like after this one. */
export function rememberBaseline(memory: AgentMemory, items: readonly PlanItem[], facts: BusFacts, wanted: WantedState): void {
  memory.satisfied = new Set(items.filter((i) => i.tracked && i.satisfied).map((i) => i.key));
  memory.foreignMdevs = new Set(foreignMdevs(facts, wanted, memory.journal.mdevs()));
  memory.masks = { apmask: facts.inv.apmask, aqmask: facts.inv.aqmask };
}

export function driftCondition(
  memory: AgentMemory,
  foreignBlocks: readonly Block[],
  allApplied: boolean,
  nowMs: number,
  holdMs: number,
  generation?: number,
): ConditionInput {
  const gen = generation !== undefined ? { observedGeneration: generation } : {};
  if (foreignBlocks.length > 0) {
    const shown = foreignBlocks.slice(0, 4).map((b) => b.message);
    const more = foreignBlocks.length > 4 ? ` (and ${foreignBlocks.length - 4} more)` : '';
    return { type: 'Drift', status: 'True', reason: 'ForeignChange', message: `${shown.join('; ')}${more}.`, ...gen };
  }
  const d = memory.drift;
  if (d && nowMs - d.atMs < holdMs) {
    const repair = d.repaired ? (allApplied ? ' The operator repaired what its spec owns.' : ' The operator is repairing what its spec owns.') : '';
    return {
      type: 'Drift',
      status: 'True',
      reason: d.repaired ? 'DriftRepaired' : 'ForeignChange',
      message: `Changed behind the operator's back: ${d.details.join('; ')}.${repair}`,
      ...gen,
    };
  }
  return { type: 'Drift', status: 'False', reason: 'NoDrift', message: 'The bus matches what the operator applied.', ...gen };
}
