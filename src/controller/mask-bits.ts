// The mask bits the operator owns on a node (APNodeState.spec.apmask / aqmask): taking bits
// for a mask plan, and giving them back. The rule for giving back is "restore exactly what
// this operator changed, and only when no remaining reservation still needs it": a bit is
// restored to its recorded `original` value, and only while every remaining reserved pair on
// its row/column stays outside the host masks without it.
//
// An entry means: the agent keeps this bit at `host`. `original` is the bit's value before the
// operator first changed it; an entry without `original` is treated as "not changed by us"
// (nothing to restore: it is dropped when no longer needed, the bit left as it is).

import type { MaskBit } from '../api/types.js';
import { IdSet, type Ids } from './id-set.js';
import { type Apqn, formatAdapterId, formatDomainId, parseAdapterId, parseDomainId } from '../apbus/ids.js';

export interface OwnedMaskBits {
  apmask: MaskBit[];
  aqmask: MaskBit[];
}

/** Which bits are set (host-owned), as sets of ids. */
export interface HostMasks {
  apmask: Ids;
  aqmask: Ids;
}

export interface MaskRelease {
  /** The owned bits after the release (restored bits stay listed, at `host: original`, until the node shows them). */
  owned: OwnedMaskBits;
  restoreAdapters: number[];
  restoreDomains: number[];
}

type Axis = 'apmask' | 'aqmask';
const parseId: Record<Axis, (s: string) => number> = { apmask: parseAdapterId, aqmask: parseDomainId };
const formatId: Record<Axis, (n: number) => string> = { apmask: formatAdapterId, aqmask: formatDomainId };

/** The masks once the agent has applied the owned bits: the node's masks with every owned bit at `host`. */
export function effectiveMasks(owned: OwnedMaskBits, current: HostMasks): { apmask: IdSet; aqmask: IdSet } {
  const result = { apmask: IdSet.of(current.apmask), aqmask: IdSet.of(current.aqmask) };
  for (const axis of ['apmask', 'aqmask'] as const) {
    for (const bit of owned[axis]) {
      const id = parseId[axis](bit.id);
      if (bit.host) result[axis].add(id);
      else result[axis].delete(id);
    }
  }
  return result;
}

/** The masks as they were before the operator changed anything it still owns: every owned bit
 *  with a recorded `original` back at it (the others as the node shows them). */
export function originalMasks(owned: OwnedMaskBits, current: HostMasks): { apmask: IdSet; aqmask: IdSet } {
  const back = (axis: Axis): MaskBit[] => owned[axis].filter((b) => b.original !== undefined).map((b) => ({ id: b.id, host: b.original! }));
  return effectiveMasks({ apmask: back('apmask'), aqmask: back('aqmask') }, current);
}

/** Adds a plan's clears to the owned bits; a newly owned bit records the node's current value as `original`. */
export function acquireMaskBits(
  owned: OwnedMaskBits,
  plan: { readonly clearAdapters: readonly number[]; readonly clearDomains: readonly number[] },
  current: HostMasks,
): OwnedMaskBits {
  const take = (axis: Axis, clear: readonly number[]): MaskBit[] => {
    const byId = new Map(owned[axis].map((b) => [parseId[axis](b.id), { ...b }]));
    for (const id of clear) {
      const existing = byId.get(id);
      const original = existing ? (existing.original ?? existing.host) : current[axis].has(id);
      byId.set(id, { id: formatId[axis](id), host: false, original });
    }
    return sortBits(axis, [...byId.values()]);
  };
  return { apmask: take('apmask', plan.clearAdapters), aqmask: take('aqmask', plan.clearDomains) };
}

/**
 * Which owned cleared bits go back now that only `stillReserved` pairs need to stay off the
 * host. Decided one bit at a time (adapters ascending, then domains ascending), each against
 * the masks as they will be after the earlier decisions, so a pair freed by both its adapter
 * and its domain bit keeps exactly one of them.
 */
export function releasePlan(owned: OwnedMaskBits, current: HostMasks, stillReserved: Iterable<Apqn>): MaskRelease {
  const reserved = [...stillReserved];
  const masks = effectiveMasks(owned, current);
  const restored: Record<Axis, number[]> = { apmask: [], aqmask: [] };
  const result: OwnedMaskBits = { apmask: [], aqmask: [] };
  for (const axis of ['apmask', 'aqmask'] as const) {
    for (const bit of sortBits(axis, owned[axis])) {
      if (bit.host) {
        result[axis].push({ ...bit });
        continue;
      }
      const id = parseId[axis](bit.id);
      const needed = reserved.some((q) =>
        axis === 'apmask' ? q.adapter === id && masks.aqmask.has(q.domain) : q.domain === id && masks.apmask.has(q.adapter),
      );
      if (needed) {
        result[axis].push({ ...bit });
      } else if (bit.original === true) {
        masks[axis].add(id);
        restored[axis].push(id);
        result[axis].push({ id: bit.id, host: true, original: true });
      }
      // else: the bit was clear before us (or we never recorded otherwise): stop owning it.
    }
  }
  return { owned: result, restoreAdapters: restored.apmask, restoreDomains: restored.aqmask };
}

/**
 * Drops restored entries (set back to their original host value) once the node shows the
 * bit set under a spec that restores it: nothing left to own. `applied` is the owned bits of
 * the spec the node's status reports on (the current spec when the status's observedGeneration
 * is the spec's generation, none when it is older). A status about an older spec can show a
 * bit still set because the agent has not yet applied the clear that a newer spec asked for;
 * forgetting the bit then would leave it cleared with nobody owning it, never restored.
 * Cleared entries are releasePlan's to drop, since only it knows whether a reservation still
 * needs them.
 */
export function forgetSettledBits(owned: OwnedMaskBits, current: HostMasks, applied: OwnedMaskBits): OwnedMaskBits {
  const keep = (axis: Axis): MaskBit[] => {
    const restoredOnNode = new Set(applied[axis].filter((b) => b.host).map((b) => b.id));
    return owned[axis].filter(
      (b) => !(b.host && b.original !== false && restoredOnNode.has(b.id) && current[axis].has(parseId[axis](b.id))),
    );
  };
  return { apmask: keep('apmask'), aqmask: keep('aqmask') };
}

/** Nothing confirmed applied: for a node whose status is about an older spec than its current one. */
export const NONE_APPLIED: OwnedMaskBits = Object.freeze({ apmask: [], aqmask: [] }) as OwnedMaskBits;

function sortBits(axis: Axis, bits: readonly MaskBit[]): MaskBit[] {
  return [...bits].sort((x, y) => parseId[axis](x.id) - parseId[axis](y.id));
}
