// What the agent remembers between passes. What must survive a restart — the mdevs it owns,
// the mask bits and driver_overrides it changed and their original values — is in its journal
// (journal.ts), kept on the node and written before each change; never taken from the status,
// which other writers could forge. The status only carries the conditions' transition times and
// the reservation phases over (so a restart announces nothing that was Applied before).
// Everything else is rebuilt by looking at the bus again: a restarted agent re-times drains
// from its first look, and takes the bus as it finds it as the new drift baseline.
import type { Mask } from '../apbus/mask.js';
import type { NodeStateStatus, ReservationPhase } from '../api/types.js';
import { parseMdevUuid } from '../apbus/ids.js';
import type { DrainLook } from './drain.js';
import { AgentJournal, MemoryJournalStore } from './journal.js';

/** The last pass's answer, reused while neither the spec nor the bus fingerprint moved. */
export interface IdleCache {
  readonly specKey: string;
  readonly generation: number | undefined;
  readonly fingerprint: string;
  /** A full pass is due by then anyway (periodic resync, a Drift hold running out). */
  readonly validUntilMs: number;
  readonly result: {
    readonly status: NodeStateStatus;
    readonly synced: boolean;
  };
}

export interface AgentMemory {
  /** PERSISTENT, on the node: the mdevs this operator owns (spec mdevs join when first seen;
   *  an owned mdev the spec dropped is removed, then forgotten) and the original values of the
   *  mask bits and overrides it changed, to be restored once the spec no longer names them. */
  readonly journal: AgentJournal;
  /** Drain looks of queues whose move is pending, by apqnIndex. */
  readonly drain: Map<number, DrainLook>;
  /** Keys of spec items the bus satisfied at the end of the last full pass: one of these
   *  unsatisfied at the start of a pass is drift. */
  satisfied: Set<string> | null;
  /** Foreign mdevs at the last full pass (null before the first): new ones are reported. */
  foreignMdevs: Set<string> | null;
  /** Masks at the last full pass, to notice changes of bits the spec does not own. */
  masks: { apmask: Mask; aqmask: Mask } | null;
  /** The last drift seen (Drift stays True for driftHoldSeconds after it). */
  drift: { atMs: number; repaired: boolean; details: string[] } | null;
  /** Keys of one-shot events already emitted (stuck drains, refusals, foreign blocks, step
   *  failures), dropped when the situation ends so a recurrence is reported again. */
  readonly emitted: Set<string>;
  /** Consecutive passes that ended in a failed step (backoff). */
  failures: number;
  /** Kernel capabilities once seen (ap_config is only visible while an mdev exists). */
  capabilities: { apConfig?: boolean; driverOverride?: boolean };
  /** Last status produced; its conditions keep their lastTransitionTime. */
  lastStatus: NodeStateStatus | undefined;
  /** Reservation phases last reported (the batch event names those reaching Applied). */
  readonly phases: Map<string, ReservationPhase>;
  /** What the current batch finished, for its one Normal event: reservations that reached
   *  Applied, and released ones (or `mdev <uuid>` when it named none). */
  batch: { ready: string[]; released: string[] };
  idle: IdleCache | null;
  /** Spec object last seen and its key (cheap identity check before stringifying). */
  specRef: { spec: unknown; key: string } | null;
}

/** A fresh memory over `journal`; `previous` (the status this node's agent last wrote) carries
 *  the conditions' transition times over a restart. Without a journal (a copy of a node, as
 *  `kubectl apqn plan` simulates it) one is kept in memory, owning the mdevs `previous` marks
 *  as owned — the agent itself always runs with the node's journal and trusts no status. */
export function newAgentMemory(previous?: NodeStateStatus, journal?: AgentJournal): AgentMemory {
  return {
    journal: journal ?? new AgentJournal(new MemoryJournalStore(), { seedMdevs: ownedIn(previous) }),
    drain: new Map(),
    satisfied: null,
    foreignMdevs: null,
    masks: null,
    drift: null,
    emitted: new Set(),
    failures: 0,
    capabilities: { ...(previous?.kernel ? { apConfig: previous.kernel.apConfig } : {}) },
    lastStatus: previous ? { conditions: previous.conditions ?? [] } : undefined,
    // Phases of the last report: a restarted agent does not announce what was Applied before.
    phases: new Map(
      (previous?.reservations ?? [])
        .filter((r) => r && typeof r.reservation === 'string' && typeof r.phase === 'string')
        .map((r) => [r.reservation, r.phase]),
    ),
    batch: { ready: [], released: [] },
    idle: null,
    specRef: null,
  };
}

function ownedIn(previous: NodeStateStatus | undefined): Map<string, string | undefined> {
  const owned = new Map<string, string | undefined>();
  for (const m of previous?.mdevs ?? []) {
    if (!m || m.owned !== true) continue;
    try {
      owned.set(parseMdevUuid(m.uuid), typeof m.reservation === 'string' && m.reservation ? m.reservation : undefined);
    } catch {
      // a malformed entry names nothing we could own
    }
  }
  return owned;
}
