// The agent's report: the inventory in the APNodeState.status wire shape (canonical hex ids),
// one ReservationApplyStatus per reservation, and the Synced condition. Pure.
import type { BusInventory } from '../apbus/backend.js';
import { formatAdapterId, formatApqn, formatDomainId } from '../apbus/ids.js';
import type {
  CardStatus,
  MdevStatus,
  NodeStateStatus,
  QueueState,
  QueueStatus,
  ReservationApplyStatus,
  ReservationPhase,
} from '../api/types.js';
import type { ConditionInput } from '../controller/conditions.js';
import type { BusFacts } from './bus-facts.js';
import { describeActivity, type MoveVerdict, type QueueVerdict } from './drain.js';
import type { BlockKind, PlanItem } from './plan.js';

export type BusStatus = Pick<
  NodeStateStatus,
  'kernel' | 'maxAdapterId' | 'maxDomainId' | 'apmask' | 'aqmask' | 'queueCount' | 'cards' | 'queues' | 'mdevs'
>;

export function busStatus(
  facts: BusFacts,
  owned: ReadonlyMap<string, string | undefined>,
  capabilities: { apConfig?: boolean; driverOverride?: boolean },
  /** apqnIndex of the host queues the agent's journal says it cordoned. */
  cordoned: ReadonlySet<number> = new Set(),
): BusStatus {
  const inv: BusInventory = facts.inv;
  const cards: CardStatus[] = inv.cards.map((c) => ({
    id: formatAdapterId(c.id),
    type: c.type,
    hwtype: c.hwtype,
    mode: c.mode,
    online: c.online,
    config: c.config,
    chkstop: c.chkstop,
  }));
  const queues: QueueStatus[] = inv.queues.map((q) => {
    const s: QueueStatus = {
      apqn: formatApqn(q.apqn),
      driver: q.driver,
      // `online` exists only under cex4queue; elsewhere a configured, running queue is online.
      online: q.online ?? (q.config && !q.chkstop),
      config: q.config,
      chkstop: q.chkstop,
      requestsInFlight: q.requestsInFlight,
      requestCount: q.requestCount,
    };
    if (q.vfioStatus) s.vfioStatus = q.vfioStatus;
    if (q.online === false && q.driver === 'cex4queue' && cordoned.has(q.apqn.adapter * 256 + q.apqn.domain)) s.cordoned = true;
    return s;
  });
  const mdevs: MdevStatus[] = inv.mdevs.map((m) => {
    const s: MdevStatus = {
      uuid: m.uuid,
      matrix: [...m.matrixLines],
      guestMatrix: [...m.guestMatrixLines],
      controlDomains: m.matrix.controlDomains.map(formatDomainId),
      owned: owned.has(m.uuid),
      inUse: facts.mdevInUse(m),
    };
    const reservation = owned.get(m.uuid);
    if (reservation) s.reservation = reservation;
    return s;
  });
  return {
    kernel: { apConfig: capabilities.apConfig ?? false, driverOverride: capabilities.driverOverride ?? false },
    maxAdapterId: inv.maxAdapterId,
    maxDomainId: inv.maxDomainId,
    apmask: inv.apmask.toKernelString(),
    aqmask: inv.aqmask.toKernelString(),
    queueCount: queues.length,
    cards,
    queues,
    mdevs,
  };
}

/** How a pass ended for the report. */
export interface PassOutcome {
  readonly items: readonly PlanItem[];
  /** Drain verdicts of the steps still gated at the end, by item key. */
  readonly verdicts: ReadonlyMap<string, MoveVerdict>;
  readonly failure: { readonly step: string; readonly message: string; readonly reservations: readonly string[] } | null;
  /** Spec problems: nothing was applied. */
  readonly problems: readonly string[];
}

const DRAIN_STATE: Record<QueueVerdict['state'], QueueState> = {
  idle: 'Pending',
  forced: 'Pending',
  cordon: 'Pending',
  waiting: 'Draining',
  stuck: 'Stuck',
  refused: 'InUse',
};

function verdictsFor(reservation: string, outcome: PassOutcome): QueueVerdict[] {
  const out = new Map<string, QueueVerdict>();
  for (const item of outcome.items) {
    const v = outcome.verdicts.get(item.key);
    if (!v) continue;
    for (const q of v.queues) {
      const mine = q.reservation === reservation || (q.reservation === undefined && item.reservations.includes(reservation));
      if (mine) out.set(formatApqn(q.queue.apqn), q);
    }
  }
  return [...out.values()].sort((x, y) => x.queue.apqn.adapter - y.queue.apqn.adapter || x.queue.apqn.domain - y.queue.apqn.domain);
}

function firstBlock(items: readonly PlanItem[], kind: BlockKind): string | undefined {
  return items.find((i) => i.block?.kind === kind)?.block?.message;
}

function phase(reservation: string, outcome: PassOutcome): ReservationApplyStatus {
  const r = (p: ReservationPhase, reason: string, message: string, queues?: ReservationApplyStatus['queues']): ReservationApplyStatus => ({
    reservation,
    phase: p,
    reason,
    message,
    ...(queues && queues.length ? { queues } : {}),
  });
  if (outcome.problems.length) return r('Failed', 'InvalidSpec', `The node spec is invalid, nothing was applied: ${outcome.problems.slice(0, 3).join('; ')}`);
  const mine = outcome.items.filter((i) => i.reservations.includes(reservation));
  // Handing back: its mdev still to remove, or a mask bit / override the agent changed for it
  // still to restore (the spec no longer names either).
  const release = mine.find((i) => i.key.startsWith('release:') && !i.satisfied) ?? mine.find((i) => i.key.startsWith('restore:') && !i.satisfied);
  if (release) {
    if (release.block?.kind === 'guestAttached') return r('Releasing', 'GuestAttached', release.block.message);
    const blocked = release.block && release.block.kind !== 'waiting' ? `; ${release.block.message}` : '';
    return r('Releasing', 'Releasing', `${release.difference}${blocked}`);
  }
  if (outcome.failure && outcome.failure.reservations.includes(reservation)) {
    return r('Failed', 'ApplyFailed', `${outcome.failure.step} failed: ${outcome.failure.message}; retrying`);
  }
  for (const [kind, reason] of [
    ['foreign', 'ForeignChange'],
    ['conflict', 'SpecConflict'],
    ['unsupported', 'Unsupported'],
  ] as const) {
    const message = firstBlock(mine, kind);
    if (message) return r('Failed', reason, message);
  }
  const all = verdictsFor(reservation, outcome);
  const verdicts = all.filter((v) => v.state !== 'idle' && v.state !== 'forced');
  if (verdicts.length) {
    const queues = verdicts.map((v) => ({
      apqn: formatApqn(v.queue.apqn),
      requestsInFlight: v.queue.requestsInFlight,
      requestCount: v.queue.requestCount,
      state: DRAIN_STATE[v.state],
    }));
    const refused = verdicts.filter((v) => v.state === 'refused');
    if (refused.length) {
      return r('InUse', 'InUse', `${refused.map(describeActivity).join('; ')}; not moved (inUsePolicy Fail); checking again`, queues);
    }
    const stuck = verdicts.filter((v) => v.state === 'stuck');
    if (stuck.length) {
      const s = stuck[0]!;
      return r(
        'Stuck',
        'DrainTimeout',
        `${stuck.map(describeActivity).join('; ')}; still waiting after ${Math.round(s.waitedMs / 1000)} s (inUsePolicy Wait, drainTimeoutSeconds ${s.drainTimeoutSeconds})`,
        queues,
      );
    }
    const waiting = verdicts.filter((v) => v.state === 'waiting');
    if (waiting.length) {
      const w = waiting[0]!;
      const cordoned = all.filter((v) => v.state === 'idle' && v.queue.online === false);
      const parts = [
        ...waiting.map(describeActivity),
        ...(cordoned.length ? [`${cordoned.map((v) => formatApqn(v.queue.apqn)).join(', ')} cordoned (offline to the host) meanwhile`] : []),
      ];
      return r('Draining', 'Draining', `${parts.join('; ')}; waiting up to ${w.drainTimeoutSeconds} s for the requests in flight to finish (inUsePolicy Wait)`, queues);
    }
    return r('Pending', 'CheckingHostActivity', `checking host activity on ${verdicts.map((v) => formatApqn(v.queue.apqn)).join(', ')} before moving`, queues);
  }
  const missing = firstBlock(mine, 'missing');
  if (missing) return r('Pending', 'QueueMissing', missing);
  const open = mine.filter((i) => !i.satisfied);
  if (open.length) {
    const waiting = open.find((i) => i.block?.kind === 'waiting')?.block?.message;
    return r('Pending', 'Applying', waiting ?? open[0]!.difference);
  }
  const degraded = mine.find((i) => i.degraded)?.degraded;
  const mdevs = mine.filter((i) => i.key.startsWith('mdev:')).map((i) => i.key.slice('mdev:'.length).split('=')[0]);
  const applied = mdevs.length ? `mdev ${mdevs.join(', ')} has the reserved matrix and guest_matrix shows it` : 'Applied';
  return degraded ? r('Applied', 'Degraded', `Applied; ${degraded}`) : r('Applied', 'Applied', `${applied}.`);
}

export function reservationStatuses(names: readonly string[], outcome: PassOutcome): ReservationApplyStatus[] {
  return [...new Set(names)].sort().map((n) => phase(n, outcome));
}

/** Synced: True only when the bus equals the spec in everything the spec owns, and everything
 *  the agent changed that the spec no longer names is restored (restore items). */
export function syncedCondition(outcome: PassOutcome, generation?: number): { condition: ConditionInput; synced: boolean } {
  const gen = generation !== undefined ? { observedGeneration: generation } : {};
  const no = (reason: string, message: string) => ({ condition: { type: 'Synced', status: 'False' as const, reason, message, ...gen }, synced: false });
  if (outcome.problems.length) {
    return no('InvalidSpec', `The node spec is invalid, so nothing is applied: ${outcome.problems.slice(0, 5).join('; ')}${outcome.problems.length > 5 ? ` (and ${outcome.problems.length - 5} more)` : ''}.`);
  }
  const open = outcome.items.filter((i) => !i.satisfied);
  const differs = open.length
    ? ` ${open.length} difference${open.length === 1 ? '' : 's'}: ${open.slice(0, 3).map((i) => i.difference).join('; ')}${open.length > 3 ? ' …' : ''}.`
    : '';
  if (outcome.failure) return no('ApplyFailed', `${outcome.failure.step} failed: ${outcome.failure.message}; retrying with backoff.${differs}`);
  if (open.length === 0) {
    return { condition: { type: 'Synced', status: 'True', reason: 'Synced', message: 'The bus matches the spec.', ...gen }, synced: true };
  }
  const allVerdicts = [...outcome.verdicts.values()].flatMap((v) => v.queues);
  const byState = (s: QueueVerdict['state']) => allVerdicts.filter((v) => v.state === s);
  const checks: Array<[string, () => string | undefined]> = [
    ['ForeignChange', () => firstBlock(open, 'foreign')],
    ['SpecConflict', () => firstBlock(open, 'conflict')],
    ['Unsupported', () => firstBlock(open, 'unsupported')],
    ['InUse', () => (byState('refused').length ? `${byState('refused').map(describeActivity).join('; ')} (inUsePolicy Fail)` : undefined)],
    ['Stuck', () => (byState('stuck').length ? `${byState('stuck').map(describeActivity).join('; ')}; drain timeout passed, still waiting` : undefined)],
    ['GuestAttached', () => firstBlock(open, 'guestAttached')],
    ['Draining', () => (byState('waiting').length ? `waiting for host requests on ${byState('waiting').map((v) => formatApqn(v.queue.apqn)).join(', ')} to finish` : undefined)],
    ['QueueMissing', () => firstBlock(open, 'missing')],
  ];
  for (const [reason, check] of checks) {
    const message = check();
    if (message) return no(reason, `${message}.${differs}`);
  }
  if (open.every((i) => i.key.startsWith('release:') || i.key.startsWith('restore:'))) {
    return no('Restoring', `Handing back what the operator changed for reservations the spec no longer names.${differs}`);
  }
  return no('Applying', `Applying the spec.${differs}`);
}
