// The node agent's brain, without Kubernetes: one reconcile pass turns APNodeState.spec into
// small sysfs steps on this node's AP bus and reports what it found and did. The runtime
// (src/agent runtime helper) feeds it the spec, writes PassResult.status back, emits the
// events and calls again after requeueAfterMs or when the spec/bus changes.
//
// A pass: look (fingerprint + inventory) → plan (plan.ts) → take the first step that may run
// (asking the in-use policy, drain.ts, for steps that take queues off the host; cordoning the
// idle ones first) → look again →
// plan again … until nothing may run; then report (report.ts, drift.ts, degraded.ts).
// An error stops the pass (report, requeue with backoff); a crash at any point is fine because
// the next pass plans from the bus as it is — and from the journal (journal.ts), which records
// before every mask bit or driver_override change the value to restore, and the mdevs the agent
// owns. What the journal holds and the spec no longer names is restored (restore.ts): the bus is
// Synced only when it equals the spec plus everything the journal says to hand back.
import { SysfsError } from '../apbus/errno.js';
import { formatApqn } from '../apbus/ids.js';
import type { BusInventory, QueueInfo, SysfsBackend } from '../apbus/backend.js';
import type { Condition, NodeStateSpec, NodeStateStatus, ReservationPhase } from '../api/types.js';
import { setCondition, type ConditionInput } from '../controller/conditions.js';
import { BusFacts } from './bus-facts.js';
import { degradedCondition } from './degraded.js';
import { DEFAULT_LOOK_INTERVAL_MS, judgeMoves, describeActivity, queuesToCordon, type MoveVerdict, type QueueVerdict } from './drain.js';
import {
  DEFAULT_DRIFT_HOLD_SECONDS,
  driftCondition,
  observeDrift,
  rememberBaseline,
  rememberDrift,
} from './drift.js';
import { executeStep } from './execute.js';
import { JournalError } from './journal.js';
import { newAgentMemory, type AgentMemory } from './memory.js';
import { candidates, planPass, type Candidate, type PlanItem } from './plan.js';
import { pendingRestores, recordBefore, tidyJournal } from './restore.js';
import { busStatus, reservationStatuses, syncedCondition, type PassOutcome } from './report.js';
import { normalizeSpec, specReservations, validateSpec, type WantedState } from './spec.js';
import { describeStep, type Step } from './steps.js';

export { newAgentMemory, validateSpec };
export type { AgentMemory };

export interface AgentEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  reservation?: string;
  apqns?: string[];
}

export interface PassResult {
  /** Full status except heartbeatTime and observedGeneration (the runtime sets those). */
  status: NodeStateStatus;
  /** The bus equals the spec in everything the spec owns. */
  synced: boolean;
  /** What a person should notice: Warnings (Force cut-offs, stuck drains, drift repaired,
   *  foreign changes, step failures), each once per episode, and at most one Normal event
   *  about the node when a batch is done (reservations ready, released). */
  events: AgentEvent[];
  /** Call again after this long even if nothing changes (draining, backoff, a guest to let go). */
  requeueAfterMs?: number;
  /** Set when this status is a short-lived step on the way to applying the spec: if the bus
   *  stays quiet, a pass at this clock time (ms) finds more done — steps left over for the
   *  next pass. The status
   *  writer may hold it back until then, so a spec applied without real waiting costs one
   *  write. Unset: the status stands until something changes, and a person should see it. */
  settlesAtMs?: number;
  /** Human-readable, for logs and tests. */
  stepsExecuted: string[];
}

export interface PassOptions {
  nowMs: number;
  /** metadata.generation of the APNodeState: stamped on the conditions. */
  generation?: number;
  /** Called just before step `index` (0-based within the pass) runs; if it throws, the pass
   *  stops there with steps 0..index-1 done and the error propagates (tests: a kill). */
  onStep?: (index: number, step: string) => void;
  /** Called just before the journal is written (`index` counts writes within the pass, `what`
   *  says what is recorded or forgotten); if it throws, the pass stops there and the write does
   *  not happen (tests: a kill between a journal write and the bus change it covers). */
  onJournal?: (index: number, what: string) => void;
  /** Drift stays True this long after the last difference (default 30). */
  driftHoldSeconds?: number;
  /** Wait/Fail: how often to look again at queues with host requests in flight (default 1000). */
  drainLookIntervalMs?: number;
  /** With nothing changing, a full pass still runs this often (default 60): catches what the
   *  fingerprint does not cover (hand-written driver_override, guests attaching, counters). */
  resyncSeconds?: number;
}

const DEFAULT_RESYNC_SECONDS = 60;
/** A pass that took this many steps yields and asks to be called again at once. */
const MAX_STEPS_PER_PASS = 400;
/** An item needs at most three steps (driver_override, unbind, bind); more in one pass means
 *  its steps do not stick, and the pass moves on instead of looping. */
const MAX_STEPS_PER_ITEM = 4;
const RECHECK_MS = 5000;
const MAX_BACKOFF_MS = 60_000;

function specKeyOf(spec: NodeStateSpec): string {
  return JSON.stringify(spec ?? null);
}

function tryFingerprint(backend: SysfsBackend): string | null {
  try {
    return backend.fingerprint();
  } catch {
    return null;
  }
}

/** True when reconcileNode would do real work (not just hand back the last answer): never ran,
 *  the spec or bus fingerprint changed, the last pass asked for a requeue, or a periodic
 *  resync / Drift hold expiry is due. An idle rescan costs one fingerprint. */
export function needsFullPass(backend: SysfsBackend, memory: AgentMemory, nowMs: number, spec?: NodeStateSpec, generation?: number): boolean {
  const idle = memory.idle;
  if (!idle || nowMs >= idle.validUntilMs) return true;
  if (spec !== undefined && (specKeyOf(spec) !== idle.specKey || generation !== idle.generation)) return true;
  const fp = tryFingerprint(backend);
  return fp === null || fp !== idle.fingerprint;
}

interface Look {
  readonly fingerprint: string;
  readonly inv: BusInventory;
}

/** Fingerprint first, then inventory: if the bus changes in between, the stored fingerprint is
 *  the older one and the next rescan sees a difference. */
function look(backend: SysfsBackend): Look {
  const fingerprint = backend.fingerprint();
  return { fingerprint, inv: backend.inventory() };
}

function errorText(err: unknown): string {
  if (err instanceof SysfsError) return `${err.message} (${err.path})`;
  return err instanceof Error ? err.message : String(err);
}

interface Chosen {
  readonly step: Step;
  readonly items: readonly PlanItem[];
  readonly forced: readonly QueueVerdict[];
  /** A cordon step: the queues as they were just before it (request_count). */
  readonly cordoned?: readonly QueueInfo[];
  /** Steps of the same kind for other items, run right after this one without a look in
   *  between (BATCHED_KINDS). */
  readonly alongside?: ReadonlyArray<{ readonly step: Step; readonly items: readonly PlanItem[] }>;
}

/** Steps that touch one mdev each and move no queue: those of different items do not depend on
 *  each other, so all that may run now run in one go, with one journal write before them and one
 *  look after (a node applying hundreds of reservations would otherwise read its whole bus
 *  after every one). An item still takes one step per look: its next step depends on this one. */
const BATCHED_KINDS: ReadonlySet<Step['kind']> = new Set(['createMdev', 'setMatrix', 'removeMdev']);

/** The first step that may run now. Steps that take queues off the host ask the in-use policy
 *  (recording the verdicts for the report); mask bit changes that may all run now are merged
 *  into one relative write. */
function choose(
  items: readonly PlanItem[],
  wanted: WantedState,
  memory: AgentMemory,
  opts: PassOptions,
  verdicts: Map<string, MoveVerdict>,
  skip: ReadonlySet<string>,
  attempts: ReadonlyMap<string, number>,
): Chosen | null {
  // Once per item per call: the cordon scan below judges every candidate, the step choice
  // after it asks again.
  const judge = (item: PlanItem, next: Candidate): MoveVerdict | null => {
    if (next.moves.length === 0) return null;
    const known = verdicts.get(item.key);
    if (known) return known;
    const v = judgeMoves(next.moves, wanted.intents, memory.drain, opts.nowMs);
    verdicts.set(item.key, v);
    return v;
  };
  const list = candidates(items).filter((c) => !skip.has(describeStep(c.next.step)) && (attempts.get(c.item.key) ?? 0) < MAX_STEPS_PER_ITEM);
  // Cordon first: every idle queue still online that a pending move takes, in one step, before
  // anything moves (drain.ts: only an idle queue can be cordoned without cutting requests off).
  const cordon = new Map<number, QueueInfo>();
  const cordonItems: PlanItem[] = [];
  for (const { item, next } of list) {
    const v = judge(item, next);
    const queues = v ? queuesToCordon(v) : [];
    if (queues.length === 0) continue;
    cordonItems.push(item);
    for (const q of queues) cordon.set(q.apqn.adapter * 256 + q.apqn.domain, q);
  }
  if (cordon.size > 0) {
    const cordoned = [...cordon.entries()].sort(([a], [b]) => a - b).map(([, q]) => q);
    const step: Step = { kind: 'queueOnline', apqns: cordoned.map((q) => q.apqn), online: false };
    if (!skip.has(describeStep(step))) return { step, items: cordonItems, forced: [], cordoned };
  }
  for (let i = 0; i < list.length; i++) {
    const { item, next } = list[i]!;
    const v = judge(item, next);
    if (v && !v.go) continue;
    const forced = [...(v?.queues.filter((q) => q.state === 'forced') ?? [])];
    const step = next.step;
    if (BATCHED_KINDS.has(step.kind)) {
      const seen = new Set([describeStep(step)]);
      const alongside = list.slice(i + 1).filter((c) => {
        if (c.next.step.kind !== step.kind || c.next.moves.length > 0) return false;
        const d = describeStep(c.next.step);
        if (seen.has(d)) return false;
        seen.add(d);
        return true;
      });
      return { step, items: [item], forced, alongside: alongside.map((c) => ({ step: c.next.step, items: [c.item] })) };
    }
    if (step.kind !== 'maskBits') return { step, items: [item], forced };
    // One write for every bit of this mask and direction that may change now.
    const bits = new Set(step.bits);
    const merged = [item];
    for (const other of list.slice(i + 1)) {
      const s = other.next.step;
      if (s.kind !== 'maskBits' || s.mask !== step.mask || s.host !== step.host) continue;
      const ov = judge(other.item, other.next);
      if (ov && !ov.go) continue;
      s.bits.forEach((b) => bits.add(b));
      merged.push(other.item);
      forced.push(...(ov?.queues.filter((q) => q.state === 'forced') ?? []));
    }
    return { step: { ...step, bits: [...bits].sort((a, b) => a - b) }, items: merged, forced };
  }
  return null;
}

/** A request zcrypt sent a queue between the agent's look and its cordon was handed back with
 *  EAGAIN (online_store → ap_flush_queue); zcrypt retries it on another online queue of the
 *  domain if there is one. request_count shows such a request: say so. */
function cordonRaceEvents(chosen: Chosen, facts: BusFacts): AgentEvent[] {
  const raced = (chosen.cordoned ?? []).filter((q) => (facts.queue(q.apqn.adapter, q.apqn.domain)?.requestCount ?? q.requestCount) > q.requestCount);
  if (raced.length === 0) return [];
  return [
    {
      type: 'Warning',
      reason: 'CordonRace',
      message: `The host sent ${raced.map((q) => formatApqn(q.apqn)).join(', ')} a request between the agent's look and its cordon: zcrypt got it back with EAGAIN and retries it on another online queue of the domain, if there is one.`,
      apqns: raced.map((q) => formatApqn(q.apqn)),
    },
  ];
}

function forcedEvents(chosen: Chosen): AgentEvent[] {
  const cut = chosen.forced.filter((q) => q.queue.requestsInFlight > 0);
  if (cut.length === 0) return [];
  const byReservation = new Map<string, QueueVerdict[]>();
  for (const q of cut) {
    const r = q.reservation ?? chosen.items[0]?.reservations[0] ?? '';
    byReservation.set(r, [...(byReservation.get(r) ?? []), q]);
  }
  return [...byReservation].map(([reservation, qs]) => {
    const total = qs.reduce((n, q) => n + q.queue.requestsInFlight, 0);
    return {
      type: 'Warning' as const,
      reason: 'ForcedMove',
      message: `Moved ${qs.map((q) => `${formatApqn(q.queue.apqn)} (${q.queue.requestsInFlight} cut off)`).join(', ')} off the host driver under inUsePolicy Force: ${total} host request${total === 1 ? ' was' : 's were'} cut off (returned with EAGAIN).`,
      ...(reservation ? { reservation } : {}),
      apqns: qs.map((q) => formatApqn(q.queue.apqn)),
    };
  });
}

/** One reconcile pass: inventory → compare with spec → plan ordered small steps → execute
 *  them until done, blocked (draining/refused/guest attached) or an error (then stop, report,
 *  requeue); re-inventory between steps. Never throws, except what opts.onStep throws. */
export function reconcileNode(backend: SysfsBackend, spec: NodeStateSpec, memory: AgentMemory, opts: PassOptions): PassResult {
  const nowMs = opts.nowMs;
  const holdMs = (opts.driftHoldSeconds ?? DEFAULT_DRIFT_HOLD_SECONDS) * 1000;
  const specKey = specKeyOf(spec);

  // Idle: nothing moved since the last pass → the same answer, for the price of a fingerprint.
  const idle = memory.idle;
  if (idle && idle.specKey === specKey && idle.generation === opts.generation && nowMs < idle.validUntilMs) {
    const fp = tryFingerprint(backend);
    if (fp !== null && fp === idle.fingerprint) return { ...idle.result, events: [], stepsExecuted: [] };
  }
  memory.idle = null;

  const { wanted, problems } = normalizeSpec(spec);
  const events: AgentEvent[] = [];
  const stepsExecuted: string[] = [];

  let current: Look;
  try {
    current = look(backend);
  } catch (err) {
    return inventoryFailed(memory, err, nowMs, opts.generation);
  }
  let facts = new BusFacts(current.inv);

  if (problems.length > 0) {
    // A spec we do not fully understand is not applied at all; the bus is still reported.
    const outcome: PassOutcome = { items: [], verdicts: new Map(), failure: null, problems };
    return finish(memory, facts, wanted, outcome, current.fingerprint, specKey, opts, holdMs, events, stepsExecuted, undefined, false);
  }

  // The journal first: readable, and owning every spec mdev before any step touches one.
  const journal = memory.journal;
  let journalWrites = 0;
  let unwritten: ReturnType<typeof journal.draft> | null = null;
  const writeJournal = (draft: ReturnType<typeof journal.draft>) => {
    if (!draft.changed) return;
    opts.onJournal?.(journalWrites++, draft.notes.join('; '));
    journal.commit(draft);
  };
  try {
    journal.load();
    if (journal.loadNote) {
      events.push({ type: 'Warning', reason: 'JournalDiscarded', message: `${journal.loadNote[0]!.toUpperCase()}${journal.loadNote.slice(1)}.` });
      journal.loadNote = undefined;
    }
    // Written with the first step's record (or the tidy-up, if no step runs): before any step.
    unwritten = journal.draft();
    for (const m of wanted.mdevs) unwritten.setMdev(m.uuid, m.reservation || undefined);
  } catch (err) {
    if (!(err instanceof JournalError)) throw err;
    // Without its record the agent cannot know what to hand back: it changes nothing.
    const items = planPass(wanted, facts, new Map());
    const outcome: PassOutcome = { items, verdicts: new Map(), failure: { step: 'the journal', message: err.message, reservations: [] }, problems: [] };
    events.push(...situationEvents(memory, outcome));
    return finish(memory, facts, wanted, outcome, current.fingerprint, specKey, opts, holdMs, events, stepsExecuted, requeueFor(outcome, memory, opts, false), false);
  }

  const specUuids = new Set(wanted.mdevs.map((m) => m.uuid));
  const releases = () => new Map([...journal.mdevs()].filter(([u]) => !specUuids.has(u)));
  const plan = () => planPass(wanted, facts, releases(), pendingRestores(journal, wanted, facts));

  let items = plan();
  const seen = observeDrift(items, facts, wanted, memory);
  const repairs: ReadonlySet<string> = memory.satisfied ?? new Set();

  const verdicts = new Map<string, MoveVerdict>();
  const skip = new Set<string>(); // steps done or refused (not as an error) this pass
  const attempts = new Map<string, number>(); // steps taken per plan item this pass
  const guestHeld = new Set<string>();
  const removed: string[] = [];
  let failure: PassOutcome['failure'] = null;
  let hitLimit = false;

  for (let index = 0; ; ) {
    if (index >= MAX_STEPS_PER_PASS) {
      hitLimit = true;
      break;
    }
    verdicts.clear();
    const chosen = choose(items, wanted, memory, opts, verdicts, skip, attempts);
    if (!chosen) break;
    const batch = [{ step: chosen.step, items: chosen.items }, ...(chosen.alongside ?? [])].slice(0, MAX_STEPS_PER_PASS - index);
    for (const b of batch) for (const i of b.items) attempts.set(i.key, (attempts.get(i.key) ?? 0) + 1);
    // What the steps change is recorded (with the value to restore) before any is made.
    const record = unwritten ?? journal.draft();
    unwritten = null;
    for (const b of batch) recordBefore(record, journal, b.step, facts, wanted, b.items, repairs);
    try {
      writeJournal(record);
    } catch (err) {
      if (!(err instanceof JournalError)) throw err;
      failure = { step: describeStep(chosen.step), message: `not done: ${err.message}`, reservations: [...new Set(batch.flatMap((b) => b.items.flatMap((i) => i.reservations)))] };
      break;
    }
    let ran = 0;
    for (const b of batch) {
      const description = describeStep(b.step);
      opts.onStep?.(index++, description);
      try {
        executeStep(backend, b.step);
      } catch (err) {
        if (b.step.kind === 'removeMdev' && err instanceof SysfsError && err.errno === 'EBUSY') {
          guestHeld.add(b.step.uuid); // a guest holds it though no queue reads `in use`
          skip.add(description);
          continue;
        }
        failure = { step: description, message: errorText(err), reservations: [...new Set(b.items.flatMap((i) => i.reservations))] };
        break;
      }
      ran++;
      stepsExecuted.push(description);
      skip.add(description); // the same step twice in one pass would mean it had no effect
      if (b.step.kind === 'removeMdev') removed.push(b.step.uuid);
    }
    if (ran > 0) events.push(...forcedEvents(chosen));
    if (failure) {
      // The steps of the batch before the failed one did run: report the bus as they left it.
      if (ran > 0) {
        try {
          current = look(backend);
          facts = new BusFacts(current.inv);
          items = plan();
        } catch {
          // the failure already says what went wrong; the next pass looks again
        }
      }
      break;
    }
    if (ran === 0) continue; // only guest-held removals: nothing changed, plan on
    const description = describeStep(batch[batch.length - 1]!.step);
    try {
      current = look(backend);
    } catch (err) {
      failure = { step: `inventory after ${description}`, message: errorText(err), reservations: [] };
      break;
    }
    facts = new BusFacts(current.inv);
    events.push(...cordonRaceEvents(chosen, facts));
    items = plan();
  }

  if (guestHeld.size > 0) {
    items = items.map((i) =>
      i.key.startsWith('release:') && guestHeld.has(i.key.slice('release:'.length))
        ? { ...i, next: undefined, block: { kind: 'guestAttached' as const, message: `mdev ${i.key.slice(8)} is still open by a guest (remove: EBUSY); it is removed once the guest lets go` } }
        : i,
    );
  }

  // Released mdevs (gone and no longer in the spec) are forgotten with the journal's tidy-up.
  for (const [uuid, reservation] of journal.mdevs()) {
    if (specUuids.has(uuid) || facts.mdevs.has(uuid)) continue;
    if (removed.includes(uuid)) memory.batch.released.push(reservation ?? `mdev ${uuid}`);
  }
  const tidy = unwritten ?? journal.draft();
  tidyJournal(tidy, journal, wanted, facts);
  try {
    writeJournal(tidy);
  } catch (err) {
    if (!(err instanceof JournalError)) throw err;
    failure ??= { step: 'updating the journal', message: err.message, reservations: [] };
  }

  // Drain looks are kept only for queues whose move is still pending.
  const pending = new Set<number>();
  for (const c of candidates(items)) for (const q of c.next.moves) pending.add(q.apqn.adapter * 256 + q.apqn.domain);
  for (const k of [...memory.drain.keys()]) if (!pending.has(k)) memory.drain.delete(k);

  rememberDrift(memory, seen, nowMs, holdMs);
  if (seen.repaired.length) {
    events.push({ type: 'Warning', reason: 'DriftRepaired', message: `Changed behind the operator's back, now repaired per spec: ${seen.repaired.join('; ')}.` });
  }
  if (seen.foreign.length) events.push({ type: 'Warning', reason: 'ForeignChange', message: `${seen.foreign.join('; ')}.` });
  rememberBaseline(memory, items, facts, wanted);

  const outcome: PassOutcome = { items, verdicts: new Map(verdicts), failure, problems: [] };
  events.push(...situationEvents(memory, outcome));
  const settlesAtMs = settlesAt(outcome, opts, hitLimit);
  const result = finish(memory, facts, wanted, outcome, current.fingerprint, specKey, opts, holdMs, events, stepsExecuted, requeueFor(outcome, memory, opts, hitLimit), hitLimit, settlesAtMs);
  return settlesAtMs !== undefined ? { ...result, settlesAtMs } : result;
}

/** When this pass's status stops being true by itself (see PassResult.settlesAtMs), or
 *  undefined when it stands: only a pass that stopped at its step limit, with nothing but
 *  steps left for the next pass. Anything that keeps a reservation from Applied — requests in
 *  flight, Stuck, a Fail refusal, a failed step, a block — is news, and stands. */
function settlesAt(outcome: PassOutcome, opts: PassOptions, hitLimit: boolean): number | undefined {
  if (!hitLimit || outcome.failure || outcome.problems.length > 0) return undefined;
  for (const item of outcome.items) {
    if (item.satisfied) continue;
    const verdict = outcome.verdicts.get(item.key);
    if (verdict && verdict.queues.some((q) => q.state !== 'idle' && q.state !== 'forced' && q.state !== 'cordon')) return undefined;
    if (verdict || item.next || item.block?.kind === 'waiting') continue;
    return undefined;
  }
  return opts.nowMs;
}

/** One Normal event about the node for what a batch finished: the reservations that reached
 *  Applied and those released since the last one — not one per reservation (a node applies
 *  hundreds at once; the reservations' own status says Ready). */
function batchEvent(memory: AgentMemory, generation: number | undefined): AgentEvent | undefined {
  const ready = [...new Set(memory.batch.ready)];
  const released = [...new Set(memory.batch.released)];
  if (ready.length === 0 && released.length === 0) return undefined;
  const parts: string[] = [];
  if (ready.length > 0) parts.push(`${ready.length} reservation${ready.length === 1 ? '' : 's'} ready (${nameList(ready)})`);
  if (released.length > 0) {
    const what = `${released.length}${ready.length > 0 ? '' : ` reservation${released.length === 1 ? '' : 's'}`} released`;
    parts.push(`${what} (${nameList(released)}; mdevs removed, their queues reset and zeroized by the kernel)`);
  }
  memory.batch = { ready: [], released: [] };
  const spec = generation !== undefined ? `Spec generation ${generation}` : 'The spec';
  return { type: 'Normal', reason: ready.length > 0 ? 'Applied' : 'Released', message: `${spec} applied: ${parts.join('; ')}.` };
}

const NAMES_IN_EVENT = 10;

function nameList(names: readonly string[]): string {
  const sorted = [...names].sort();
  const shown = sorted.slice(0, NAMES_IN_EVENT).join(', ');
  return sorted.length > NAMES_IN_EVENT ? `${shown} (+${sorted.length - NAMES_IN_EVENT} more)` : shown;
}

/** Warnings a person should hear once per episode: stuck drains, Fail refusals, foreign
 *  blocks, step failures. */
function situationEvents(memory: AgentMemory, outcome: PassOutcome): AgentEvent[] {
  const events: AgentEvent[] = [];
  const live = new Set<string>();
  const once = (key: string, event: AgentEvent) => {
    live.add(key);
    if (memory.emitted.has(key)) return;
    memory.emitted.add(key);
    events.push(event);
  };
  for (const item of outcome.items) {
    const v = outcome.verdicts.get(item.key);
    for (const q of v?.queues ?? []) {
      const apqn = formatApqn(q.queue.apqn);
      const reservation = q.reservation ?? item.reservations[0];
      const r = reservation ? { reservation } : {};
      if (q.state === 'stuck') {
        const since = memory.drain.get(q.queue.apqn.adapter * 256 + q.queue.apqn.domain)?.sinceMs ?? 0;
        once(`stuck:${apqn}:${since}`, {
          type: 'Warning',
          reason: 'DrainStuck',
          message: `${describeActivity(q)}; still waiting after ${Math.round(q.waitedMs / 1000)} s (inUsePolicy Wait, drainTimeoutSeconds ${q.drainTimeoutSeconds}).`,
          ...r,
          apqns: [apqn],
        });
      } else if (q.state === 'refused') {
        once(`inuse:${apqn}`, { type: 'Warning', reason: 'InUse', message: `${describeActivity(q)}; not moved (inUsePolicy Fail).`, ...r, apqns: [apqn] });
      }
    }
    if (item.block?.kind === 'foreign' && !item.satisfied) {
      once(`foreign:${item.block.message}`, {
        type: 'Warning',
        reason: 'ForeignChange',
        message: item.block.message,
        ...(item.reservations[0] ? { reservation: item.reservations[0] } : {}),
      });
    }
  }
  if (outcome.failure) {
    const f = outcome.failure;
    once(`failed:${f.step}:${f.message}`, {
      type: 'Warning',
      reason: 'StepFailed',
      message: `${f.step} failed: ${f.message}; retrying with backoff.`,
      ...(f.reservations[0] ? { reservation: f.reservations[0] } : {}),
    });
  }
  for (const key of [...memory.emitted]) if (!live.has(key)) memory.emitted.delete(key);
  return events;
}

function requeueFor(outcome: PassOutcome, memory: AgentMemory, opts: PassOptions, hitLimit: boolean): number | undefined {
  let ms: number | undefined;
  const want = (n: number) => {
    ms = ms === undefined ? n : Math.min(ms, n);
  };
  if (outcome.failure) {
    memory.failures++;
    want(Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(memory.failures - 1, 16)));
  } else {
    memory.failures = 0;
  }
  if (hitLimit) want(1);
  const states = new Set([...outcome.verdicts.values()].flatMap((v) => v.queues.map((q) => q.state)));
  if (states.has('waiting') || states.has('stuck')) want(opts.drainLookIntervalMs ?? DEFAULT_LOOK_INTERVAL_MS);
  if (states.has('refused')) want(RECHECK_MS);
  // Guests closing an mdev and guest_matrix catching up are not in the bus fingerprint.
  for (const i of outcome.items) {
    if (!i.satisfied && (i.block?.kind === 'guestAttached' || i.key.startsWith('guest:'))) want(RECHECK_MS);
  }
  return ms;
}

function rememberCapabilities(memory: AgentMemory, inv: BusInventory): void {
  if (inv.capabilities.apConfig !== null) memory.capabilities.apConfig = inv.capabilities.apConfig;
  if (inv.capabilities.driverOverride !== null) memory.capabilities.driverOverride = inv.capabilities.driverOverride;
}

function conditionsWith(memory: AgentMemory, list: readonly ConditionInput[], nowMs: number): Condition[] {
  let conditions: Condition[] = memory.lastStatus?.conditions ?? [];
  for (const c of list) conditions = setCondition(conditions, c, nowMs);
  return conditions;
}

function finish(
  memory: AgentMemory,
  facts: BusFacts,
  wanted: WantedState,
  outcome: PassOutcome,
  fingerprint: string,
  specKey: string,
  opts: PassOptions,
  holdMs: number,
  events: AgentEvent[],
  stepsExecuted: string[],
  requeueAfterMs: number | undefined,
  hitLimit: boolean,
  settlesAtMs?: number,
): PassResult {
  const nowMs = opts.nowMs;
  rememberCapabilities(memory, facts.inv);
  const { condition: synced, synced: isSynced } = syncedCondition(outcome, opts.generation);
  const foreignBlocks = outcome.items.filter((i) => !i.satisfied && i.block?.kind === 'foreign').map((i) => i.block!);
  const drift = driftCondition(memory, foreignBlocks, isSynced, nowMs, holdMs, opts.generation);
  const degraded = degradedCondition(wanted, facts, opts.generation);

  const names = [...specReservations(wanted), ...outcome.items.filter((i) => isHandBack(i.key)).flatMap((i) => i.reservations)];
  const reservations = reservationStatuses(names, outcome);
  for (const r of reservations) {
    if (r.phase === 'Applied' && memory.phases.get(r.reservation) !== 'Applied') memory.batch.ready.push(r.reservation);
  }
  memory.phases.clear();
  for (const r of reservations) memory.phases.set(r.reservation, r.phase as ReservationPhase);
  // The batch ends with a pass that has nothing more coming by itself.
  if (settlesAtMs === undefined) {
    const event = batchEvent(memory, opts.generation);
    if (event) events.push(event);
  }

  const status: NodeStateStatus = {
    ...busStatus(facts, ownedMdevs(memory), memory.capabilities, cordonedQueues(memory)),
    reservations,
    conditions: conditionsWith(memory, [synced, degraded, drift], nowMs),
  };
  memory.lastStatus = status;

  if (requeueAfterMs === undefined && !outcome.failure && !hitLimit) {
    const resyncMs = (opts.resyncSeconds ?? DEFAULT_RESYNC_SECONDS) * 1000;
    let validUntilMs = nowMs + resyncMs;
    // A running Drift hold ends with a full pass that flips the condition back.
    if (memory.drift && nowMs - memory.drift.atMs < holdMs) validUntilMs = Math.min(validUntilMs, memory.drift.atMs + holdMs);
    memory.idle = { specKey, generation: opts.generation, fingerprint, validUntilMs, result: { status, synced: isSynced } };
  }
  return { status, synced: isSynced, events, ...(requeueAfterMs !== undefined ? { requeueAfterMs } : {}), stepsExecuted };
}

/** Release and restore items: what the agent hands back for reservations the spec dropped. */
function isHandBack(key: string): boolean {
  return key.startsWith('release:') || key.startsWith('restore:');
}

/** The host queues the journal says the agent cordoned (none while it cannot be read). */
function cordonedQueues(memory: AgentMemory): ReadonlySet<number> {
  try {
    return new Set([...memory.journal.cordons()].map((c) => c.index));
  } catch {
    return new Set();
  }
}

/** The mdevs the journal says are ours (none while it cannot be read). */
function ownedMdevs(memory: AgentMemory): ReadonlyMap<string, string | undefined> {
  try {
    return memory.journal.mdevs();
  } catch {
    return new Map();
  }
}

function inventoryFailed(memory: AgentMemory, err: unknown, nowMs: number, generation?: number): PassResult {
  memory.failures++;
  const gen = generation !== undefined ? { observedGeneration: generation } : {};
  const message = `Could not read the AP bus: ${errorText(err)}; retrying.`;
  const status: NodeStateStatus = {
    ...(memory.lastStatus ?? {}),
    conditions: conditionsWith(memory, [{ type: 'Synced', status: 'False', reason: 'InventoryFailed', message, ...gen }], nowMs),
  };
  memory.lastStatus = status;
  return {
    status,
    synced: false,
    events: [{ type: 'Warning', reason: 'InventoryFailed', message }],
    requeueAfterMs: Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(memory.failures - 1, 16)),
    stepsExecuted: [],
  };
}
