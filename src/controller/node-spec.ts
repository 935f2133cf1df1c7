// Composing one node's APNodeState.spec from the reservations that hold queues on it. Pure:
// the node's current spec and status and the holding reservations in, the desired spec out,
// with what it means for each reservation (queues displaced from the host, pairs blocked by a
// `driver: host` reservation, host queues that cannot be brought back).
//
// Mask bits are the node's memory of what the operator changed: an owned bit keeps the value
// the bit had before we first took it (`original`). Each composition (1) gives back the bits
// no remaining reservation needs, (2) sets the bits `driver: host` reservations need to bring
// their queues back, when that moves no reserved queue, (3) runs the mask planner for the
// vfio_ap pairs still on the host, with the host reservations' queues PROTECTED, and drops
// (as conflicts) reservations whose pairs cannot be freed without displacing one of those;
// (4) plans every pair afresh from the bits' original values, preferring the bits cleared now,
// and takes that plan when it displaces less than steps 1–3 (or as much, changing fewer bits).
import type {
  APNodeState,
  MaskBit,
  MdevIntent,
  NodeStateSpec,
  QueueIntent,
  QueueOverride,
  QueueStatus,
} from '../api/types.js';
import {
  type Apqn,
  apqnFromIndex,
  apqnIndex,
  formatAdapterId,
  formatApqn,
  formatDomainId,
  parseAdapterId,
  parseDomainId,
} from '../apbus/ids.js';
import { Mask } from '../apbus/mask.js';
import { acquireMaskBits, effectiveMasks, forgetSettledBits, NONE_APPLIED, originalMasks, releasePlan, type HostMasks, type OwnedMaskBits } from './mask-bits.js';
import { PROTECTED, planMaskClears, type HostQueue, type MaskPlan } from './mask-plan.js';
import { nodeInventory, type NodeInventory } from './node-inventory.js';
import { agentTookSpec } from './cluster-view.js';
import type { ValidSpec } from './validate.js';

/** A reservation that holds queues on the node (conflicts already resolved). */
export interface NodeMember {
  key: string; // namespace/name
  spec: ValidSpec;
  /** Its queues on this node, APQN order. */
  apqns: Apqn[];
  /** The mdev UUID (vfio_ap only). */
  mdevUUID?: string;
}

export interface NodeComposition {
  spec: Required<Pick<NodeStateSpec, 'bindingMode' | 'apmask' | 'aqmask' | 'overrides' | 'queues' | 'mdevs'>>;
  /** Members that made it into the spec, in the order given. */
  included: string[];
  /** Host queues (not reserved) the spec takes from the host, per causing reservation. */
  displaced: Map<string, string[]>;
  /** vfio_ap members left out: their pairs cannot be freed without moving a protected queue. */
  blocked: Map<string, { pairs: string[]; holders: string[] }>;
  /** driver: host members whose off-host queues cannot come back without moving reserved ones. */
  hostBlocked: Map<string, { apqns: string[]; holders: string[] }>;
  /** Queues the spec moves off the host while host requests are in flight under inUsePolicy Force. */
  forced: Map<string, string[]>;
}

type Axis = 'apmask' | 'aqmask';
const parseId: Record<Axis, (s: string) => number> = { apmask: parseAdapterId, aqmask: parseDomainId };
const formatId: Record<Axis, (n: number) => string> = { apmask: formatAdapterId, aqmask: formatDomainId };

/** Whether the node moves queues with driver_override (profile 6.19, masks left all ones). */
export function bindingModeOf(state: APNodeState | undefined): 'Masks' | 'DriverOverride' {
  const status = state?.status;
  if (!status?.kernel?.driverOverride) return 'Masks';
  const all = (text: string | undefined, max: number): boolean => {
    if (text === undefined) return true;
    try {
      const mask = Mask.parseKernel(text);
      for (let b = 0; b <= max; b++) if (!mask.has(b)) return false;
      return true;
    } catch {
      return false;
    }
  };
  return all(status.apmask, status.maxAdapterId ?? 255) && all(status.aqmask, status.maxDomainId ?? 255) ? 'DriverOverride' : 'Masks';
}

export function composeNodeSpec(node: string, state: APNodeState | undefined, members: readonly NodeMember[]): NodeComposition {
  const inventory = nodeInventory(node, state?.status ?? {});
  const current = { apmask: inventory.apmask, aqmask: inventory.aqmask };
  const owned0: OwnedMaskBits = { apmask: [...(state?.spec?.apmask ?? [])], aqmask: [...(state?.spec?.aqmask ?? [])] };
  const mode = bindingModeOf(state);
  // The owned bits the node's status has seen applied: only a status about the current spec
  // vouches for its restored bits (forgetSettledBits).
  const applied = state && agentTookSpec(state) ? owned0 : NONE_APPLIED;
  const result: NodeComposition = {
    spec: { bindingMode: mode, apmask: [], aqmask: [], overrides: [], queues: [], mdevs: [] },
    included: [],
    displaced: new Map(),
    blocked: new Map(),
    hostBlocked: new Map(),
    forced: new Map(),
  };
  const hostMembers = members.filter((m) => m.spec.driver === 'host');
  let vfioMembers = members.filter((m) => m.spec.driver === 'vfio_ap');

  let owned: OwnedMaskBits = owned0;
  if (mode === 'Masks') {
    // Re-plan until no included member needs a pair only a protected queue's move would free.
    for (;;) {
      const attempt = planMasks(inventory, current, owned0, applied, hostMembers, vfioMembers);
      if (attempt.blocked.size === 0) {
        owned = attempt.owned;
        for (const [k, v] of attempt.hostBlocked) result.hostBlocked.set(k, v);
        break;
      }
      for (const [k, v] of attempt.blocked) result.blocked.set(k, v);
      vfioMembers = vfioMembers.filter((m) => !attempt.blocked.has(m.key));
    }
  } else {
    // Override mode: masks stay as they are; give back any bits owned from an earlier mode.
    owned = forgetSettledBits(releasePlan(owned0, current, []).owned, current, applied);
    result.spec.overrides = composeOverrides(state, inventory, vfioMembers);
  }
  result.spec.apmask = owned.apmask;
  result.spec.aqmask = owned.aqmask;
  const included = new Set([...hostMembers, ...vfioMembers].map((m) => m.key));
  result.included = members.filter((m) => included.has(m.key)).map((m) => m.key);

  // Which host queues leave, and who causes it.
  const reserved = new Set(vfioMembers.flatMap((m) => m.apqns.map((q) => apqnIndex(q.adapter, q.domain))));
  const causes = new Map<number, NodeMember[]>();
  if (mode === 'Masks') {
    const final = effectiveMasks(owned, current);
    const original = originalMasks(owned, current);
    const clearedByUs = (axis: Axis, id: number) => original[axis].has(id) && !final[axis].has(id);
    for (const i of inventory.queues.keys()) {
      const { adapter, domain } = apqnFromIndex(i);
      const wasHost = original.apmask.has(adapter) && original.aqmask.has(domain);
      const staysHost = final.apmask.has(adapter) && final.aqmask.has(domain);
      if (!wasHost || staysHost || reserved.has(i)) continue;
      const byRow = clearedByUs('apmask', adapter);
      const byCol = clearedByUs('aqmask', domain);
      const who = vfioMembers.filter((m) =>
        m.apqns.some((q) => (byRow && q.adapter === adapter) || (byCol && q.domain === domain)),
      );
      causes.set(i, who);
      for (const m of who) pushTo(result.displaced, m.key, formatApqn(apqnFromIndex(i)));
    }
    for (const list of result.displaced.values()) list.sort();
  }

  // Queue intents: every reserved queue, and every displaced one with its (oldest) cause's
  // policy — except Force: a reservation may cut off host requests on its own queues, never on
  // host queues nobody asked for that its mask plan moves; those are drained as with Wait.
  const intents = new Map<number, QueueIntent>();
  for (const m of vfioMembers) {
    for (const q of m.apqns) intents.set(apqnIndex(q.adapter, q.domain), intentFor(formatApqn(q), m));
  }
  for (const [i, who] of causes) {
    if (who.length === 0 || intents.has(i)) continue;
    const intent = intentFor(formatApqn(apqnFromIndex(i)), who[0]!);
    intents.set(i, intent.inUsePolicy === 'Force' ? { ...intent, inUsePolicy: 'Wait' } : intent);
  }
  result.spec.queues = [...intents.entries()].sort(([a], [b]) => a - b).map(([, intent]) => intent);

  // Forced moves: host queues with requests in flight that the spec moves under Force.
  const moving = queuesLeavingHost(mode, inventory, owned, current, result.spec.overrides);
  for (const i of moving) {
    const q = inventory.queues.get(i)!;
    const intent = intents.get(i);
    if (q.requestsInFlight > 0 && intent?.inUsePolicy === 'Force') pushTo(result.forced, intent.reservation, q.apqn);
  }

  result.spec.mdevs = vfioMembers
    .filter((m) => m.mdevUUID)
    .map((m): MdevIntent => {
      const adapters = [...new Set(m.apqns.map((q) => q.adapter))].sort((a, b) => a - b);
      const domains = [...new Set(m.apqns.map((q) => q.domain))].sort((a, b) => a - b);
      return {
        uuid: m.mdevUUID!,
        reservation: m.key,
        adapters: adapters.map(formatAdapterId),
        domains: domains.map(formatDomainId),
        controlDomains: m.spec.controlDomains.map(formatDomainId),
      };
    })
    .sort((a, b) => (a.reservation < b.reservation ? -1 : a.reservation > b.reservation ? 1 : 0));
  return result;
}

interface MaskAttempt {
  owned: OwnedMaskBits;
  plan: MaskPlan;
  blocked: Map<string, { pairs: string[]; holders: string[] }>;
  hostBlocked: Map<string, { apqns: string[]; holders: string[] }>;
}

function planMasks(
  inventory: NodeInventory,
  current: HostMasks,
  owned0: OwnedMaskBits,
  applied: OwnedMaskBits,
  hostMembers: readonly NodeMember[],
  vfioMembers: readonly NodeMember[],
): MaskAttempt {
  const reservedPairs = vfioMembers.flatMap((m) => m.apqns);
  const reservedSet = new Set(reservedPairs.map((q) => apqnIndex(q.adapter, q.domain)));
  const hostWanted = new Map<number, string>(); // queue -> host reservation
  for (const m of hostMembers) for (const q of m.apqns) hostWanted.set(apqnIndex(q.adapter, q.domain), m.key);

  // (1) bits no vfio_ap pair needs go back; bits we set for host reservations that none needs any more go back too.
  let owned = releasePlan(owned0, current, reservedPairs).owned;
  owned = releaseHostBits(owned, hostWanted);

  // (2) bring host reservations' queues back when that moves no reserved pair.
  const hostBlocked = new Map<string, { apqns: string[]; holders: string[] }>();
  for (const m of hostMembers) {
    for (const q of m.apqns) {
      const masks = effectiveMasks(owned, current);
      if (masks.apmask.has(q.adapter) && masks.aqmask.has(q.domain)) continue;
      const setA = !masks.apmask.has(q.adapter);
      const setD = !masks.aqmask.has(q.domain);
      const after = { apmask: masks.apmask.copy(), aqmask: masks.aqmask.copy() };
      if (setA) after.apmask.add(q.adapter);
      if (setD) after.aqmask.add(q.domain);
      const moved = reservedPairs.filter(
        (p) =>
          after.apmask.has(p.adapter) &&
          after.aqmask.has(p.domain) &&
          !(masks.apmask.has(p.adapter) && masks.aqmask.has(p.domain)),
      );
      if (moved.length > 0) {
        const holders = vfioMembers
          .filter((v) => v.apqns.some((p) => moved.some((x) => x.adapter === p.adapter && x.domain === p.domain)))
          .map((v) => v.key);
        const entry = hostBlocked.get(m.key) ?? { apqns: [], holders: [] };
        entry.apqns.push(formatApqn(q));
        entry.holders = [...new Set([...entry.holders, ...holders])].sort();
        hostBlocked.set(m.key, entry);
        continue;
      }
      if (setA) owned = setOwned(owned, 'apmask', q.adapter, true, current);
      if (setD) owned = setOwned(owned, 'aqmask', q.domain, true, current);
    }
  }

  // (3) free the vfio_ap pairs, protected host-reservation queues weighing Infinity.
  const masks = effectiveMasks(owned, current);
  const hostQueues: HostQueue[] = [...inventory.queues.keys()]
    .filter((i) => !reservedSet.has(i))
    .map((i) => ({ apqn: apqnFromIndex(i), weight: hostWanted.has(i) ? PROTECTED : 1 }));
  const plan = planMaskClears({ apmask: masks.apmask, aqmask: masks.aqmask, reserved: reservedPairs, hostQueues });
  const blocked = new Map<string, { pairs: string[]; holders: string[] }>();
  if (plan.blockedPairs.length > 0) {
    const blockedSet = new Set(plan.blockedPairs);
    for (const m of vfioMembers) {
      const pairs = m.apqns.map(formatApqn).filter((p) => blockedSet.has(p));
      if (pairs.length === 0) continue;
      // The host reservations whose queues share a row or column with a blocked pair.
      const holders = new Set<string>();
      for (const p of m.apqns.filter((q) => blockedSet.has(formatApqn(q)))) {
        for (const [i, key] of hostWanted) {
          const h = apqnFromIndex(i);
          if (h.adapter === p.adapter || h.domain === p.domain) holders.add(key);
        }
      }
      blocked.set(m.key, { pairs, holders: [...holders].sort() });
    }
  }
  const incremental = settle(acquireMaskBits(owned, plan, current), current, reservedPairs, applied);
  if (blocked.size > 0 || hostBlocked.size > 0) return { owned: incremental, plan, blocked, hostBlocked };

  // (4) a fresh plan. Steps 1–3 keep every cleared bit a reservation still needs, so once
  // reservations come and go the node can keep a worse plan than a fresh one would make: a
  // cleared adapter bit that, after one of its domains' reservations left, keeps that queue off
  // the host for nobody. Re-plan every pair from the bits' original values, preferring the bits
  // cleared now, and take the fresh plan when it displaces less, or as much with fewer changed
  // bits (the agent clears before it restores, so a reserved queue never passes through the host).
  // Most compositions skip it: when the incremental plan displaces nothing and gives back none
  // of the bits cleared now, its changes are only the bits the new pairs need, and no plan
  // changes fewer.
  const before = effectiveMasks(owned0, current);
  const incrementalOutcome = outcome(incremental);
  if (incrementalOutcome.protectedCount === 0 && incrementalOutcome.weight === 0 && !givesBackCleared(owned0, incremental)) {
    return { owned: incremental, plan, blocked, hostBlocked };
  }
  const fresh = freshPlan(owned, current, reservedPairs, hostQueues, applied);
  if (fresh && compareOutcomes(outcome(fresh.owned), incrementalOutcome) < 0) {
    return { owned: fresh.owned, plan: fresh.plan, blocked, hostBlocked };
  }
  return { owned: incremental, plan, blocked, hostBlocked };

  /** What a final set of owned bits costs: displaced queues (protected apart), bits changed from the spec as it is, bits cleared. */
  function outcome(final: OwnedMaskBits): Outcome {
    const after = effectiveMasks(final, current);
    const original = originalMasks(final, current);
    const cost: Outcome = { protectedCount: 0, weight: 0, changes: 0, cleared: 0 };
    for (const hq of hostQueues) {
      const { adapter, domain } = hq.apqn;
      const wasHost = original.apmask.has(adapter) && original.aqmask.has(domain);
      if (!wasHost || (after.apmask.has(adapter) && after.aqmask.has(domain))) continue;
      if (hq.weight === PROTECTED) cost.protectedCount++;
      else cost.weight += hq.weight ?? 1;
    }
    for (const axis of ['apmask', 'aqmask'] as const) {
      cost.changes += before[axis].differences(after[axis]);
      cost.cleared += final[axis].filter((b) => !b.host).length;
    }
    return cost;
  }
}

/** Whether a bit cleared in `from` (ours, host: false) is no longer cleared in `to`. */
function givesBackCleared(from: OwnedMaskBits, to: OwnedMaskBits): boolean {
  for (const axis of ['apmask', 'aqmask'] as const) {
    const clearedAfter = new Set(to[axis].filter((b) => !b.host).map((b) => b.id));
    if (from[axis].some((b) => !b.host && !clearedAfter.has(b.id))) return true;
  }
  return false;
}

interface Outcome {
  protectedCount: number;
  weight: number;
  changes: number;
  cleared: number;
}

function compareOutcomes(a: Outcome, b: Outcome): number {
  return a.protectedCount - b.protectedCount || a.weight - b.weight || a.changes - b.changes || a.cleared - b.cleared;
}

/** Owned bits after the plan, with the cleared bits no reserved pair needs any more given back at once. */
function settle(owned: OwnedMaskBits, current: HostMasks, reservedPairs: readonly Apqn[], applied: OwnedMaskBits): OwnedMaskBits {
  return forgetSettledBits(releasePlan(owned, current, reservedPairs).owned, current, applied);
}

/**
 * Every vfio_ap pair planned anew from the original values of the cleared bits we own (the
 * bits set for host reservations stay), preferring the bits cleared now. Undefined when the
 * fresh plan would block a pair: the incremental plan, which blocked none, stands.
 */
function freshPlan(
  owned: OwnedMaskBits,
  current: HostMasks,
  reservedPairs: readonly Apqn[],
  hostQueues: readonly HostQueue[],
  applied: OwnedMaskBits,
): { owned: OwnedMaskBits; plan: MaskPlan } | undefined {
  const prefer = { adapters: new Set<number>(), domains: new Set<number>() };
  const undo = (axis: Axis): MaskBit[] =>
    owned[axis].flatMap((b): MaskBit[] => {
      if (b.host) return [b];
      (axis === 'apmask' ? prefer.adapters : prefer.domains).add(parseId[axis](b.id));
      // A bit that was clear before us stays as it is: nothing of ours to undo.
      return b.original === true ? [{ id: b.id, host: true, original: true }] : [b];
    });
  const base: OwnedMaskBits = { apmask: undo('apmask'), aqmask: undo('aqmask') };
  if (prefer.adapters.size === 0 && prefer.domains.size === 0) return undefined; // nothing owned to re-plan
  const masks = effectiveMasks(base, current);
  const plan = planMaskClears({ apmask: masks.apmask, aqmask: masks.aqmask, reserved: reservedPairs, hostQueues }, { prefer });
  if (plan.blockedPairs.length > 0 || plan.conflicts.length > 0) return undefined;
  // Bits cleared now that the plan clears again keep their recorded original (acquireMaskBits).
  return { owned: settle(acquireMaskBits(base, plan, current), current, reservedPairs, applied), plan };
}

/** Owned `host: true` bits set for host reservations (original false) that no host reservation needs now. */
function releaseHostBits(owned: OwnedMaskBits, hostWanted: ReadonlyMap<number, string>): OwnedMaskBits {
  const needs = (axis: Axis, id: number) =>
    [...hostWanted.keys()].some((i) => (axis === 'apmask' ? i >> 8 : i & 0xff) === id);
  const fix = (axis: Axis): MaskBit[] =>
    owned[axis].map((b) =>
      b.host && b.original === false && !needs(axis, parseId[axis](b.id)) ? { id: b.id, host: false, original: false } : b,
    );
  return { apmask: fix('apmask'), aqmask: fix('aqmask') };
}

function setOwned(owned: OwnedMaskBits, axis: Axis, id: number, host: boolean, current: HostMasks): OwnedMaskBits {
  const bits = owned[axis].filter((b) => parseId[axis](b.id) !== id);
  const existing = owned[axis].find((b) => parseId[axis](b.id) === id);
  const original = existing ? (existing.original ?? existing.host) : current[axis].has(id);
  bits.push({ id: formatId[axis](id), host, original });
  bits.sort((x, y) => parseId[axis](x.id) - parseId[axis](y.id));
  return { ...owned, [axis]: bits };
}


/** driver_override entries: reserved queues to vfio_ap; earlier ones back to cex4queue until the node shows them there. */
function composeOverrides(state: APNodeState | undefined, inventory: NodeInventory, vfioMembers: readonly NodeMember[]): QueueOverride[] {
  const wanted = new Map<number, QueueOverride>();
  for (const m of vfioMembers) {
    for (const q of m.apqns) wanted.set(apqnIndex(q.adapter, q.domain), { apqn: formatApqn(q), driver: 'vfio_ap' });
  }
  for (const o of state?.spec?.overrides ?? []) {
    let i: number;
    try {
      const [a, d] = o.apqn.split('.');
      i = apqnIndex(parseAdapterId(a!), parseDomainId(d!));
    } catch {
      continue;
    }
    if (wanted.has(i)) continue;
    const onHost = inventory.queues.get(i)?.driver === 'cex4queue';
    if (!onHost && inventory.queues.has(i)) wanted.set(i, { apqn: formatApqn(apqnFromIndex(i)), driver: 'cex4queue' });
  }
  return [...wanted.entries()].sort(([a], [b]) => a - b).map(([, o]) => o);
}

/** Host queues (driver cex4queue now) that the composed spec moves to vfio_ap. */
function queuesLeavingHost(
  mode: 'Masks' | 'DriverOverride',
  inventory: NodeInventory,
  owned: OwnedMaskBits,
  current: HostMasks,
  overrides: readonly QueueOverride[],
): number[] {
  const onHost = (q: QueueStatus) => q.driver === 'cex4queue';
  if (mode === 'DriverOverride') {
    const toVfio = new Set(overrides.filter((o) => o.driver === 'vfio_ap').map((o) => o.apqn));
    return [...inventory.queues].filter(([, q]) => onHost(q) && toVfio.has(q.apqn)).map(([i]) => i);
  }
  const final = effectiveMasks(owned, current);
  return [...inventory.queues]
    .filter(([i, q]) => onHost(q) && !(final.apmask.has(i >> 8) && final.aqmask.has(i & 0xff)))
    .map(([i]) => i);
}

function intentFor(apqn: string, m: NodeMember): QueueIntent {
  return { apqn, reservation: m.key, inUsePolicy: m.spec.inUsePolicy, drainTimeoutSeconds: m.spec.drainTimeoutSeconds };
}

function pushTo(map: Map<string, string[]>, key: string, value: string): void {
  const list = map.get(key) ?? [];
  if (!list.includes(value)) list.push(value);
  map.set(key, list);
}
