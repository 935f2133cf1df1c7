// One concern: a reservation's finalizer, status and events. Reads its decision from the
// incremental cache (decision-cache.ts) and its node's report, judges (reservation-status.ts,
// pure), and writes only what changed — once on the happy path: a change that only says
// "waiting for the agent" (Pending, MdevPending) of a placement the node spec may take without
// it waits briefly, so the usual status write is the one that says Ready.
import type { APQNReservation } from '../api/types.js';
import { RESERVATION_FINALIZER } from '../api/types.js';
import { isConflict, isNotFound } from '../k8s/client.js';
import { ObjectDeletingError, addFinalizer, removeFinalizer } from '../k8s/finalizers.js';
import { mergePatch } from '../k8s/merge-patch.js';
import { writeStatus } from '../k8s/status.js';
import type { SyncResult } from '../k8s/workqueue.js';
import { agentTookSpec, conditionOf } from './cluster-view.js';
import { judgeView, type ControllerContext } from './context.js';
import { fixedBySpec, hasFinalizer, recordedPlacement, sameApqns, type ReservationDecision } from './placement.js';
import { desiredStatus, judgeReservation, specNames, type ReservationEvent, type ReservationJudgement } from './reservation-status.js';

/** How long a progress-only status change waits for the next one (usually Ready). */
export const PROGRESS_WAIT_MS = 2_000;
/** ... and at most, while the node spec or the agent has not taken the reservation yet. */
export const PROGRESS_WAIT_MAX_MS = 10_000;
/** A status write that lost to another writer: the informer's event for the newer copy brings it back; this is the safety net. */
const CONFLICT_RETRY_MS = 1_000;

/** The decision and its judgement for the reservation as cached (undefined: not in the cache). */
export function judge(ctx: ControllerContext, key: string): { d: ReservationDecision; judgement: ReservationJudgement } | undefined {
  const d = ctx.decisions.decision(key);
  if (!d) return undefined;
  const node = d.standing.kind === 'holds' || d.standing.kind === 'conflict' ? d.standing.node : undefined;
  const view = judgeView(ctx, [node, d.reservation.status?.nodeName, d.reservation.spec?.nodeName]);
  const judgement = judgeReservation(d, view, { nodes: { get: (n) => ctx.decisions.node(n)?.composition } });
  return { d, judgement };
}

/** Whether the reservation's reconcile would write or act now (a node's fan-out asks this). */
export function needsReconcile(ctx: ControllerContext, key: string): boolean {
  const r = ctx.caches.reservations.get(key);
  if (!r) return false;
  if (!r.metadata.deletionTimestamp && !hasFinalizer(r)) return true;
  const judged = judge(ctx, key);
  if (!judged) return false;
  if (r.metadata.deletionTimestamp && judged.judgement.released) return hasFinalizer(r);
  const desired = desiredStatus(r.status, judged.judgement, r.metadata.generation, ctx.now());
  if (mergePatch(r.status, desired) === undefined) return false;
  // A progress-only change already waiting: its reconcile's timer brings it, unless what the
  // node shows now makes it due sooner (the agent took the spec that serves it).
  const waiting = ctx.progress.get(key);
  if (waiting && progressOnly(r, judged.d, judged.judgement, ctx) && progressDue(ctx, judged.d, waiting.since) >= waiting.due) return false;
  return true;
}

/**
 * A change that only reports progress towards Ready, of a placement the node spec takes
 * without a status record (fixed by the spec, displacing nothing) or that the status already
 * records: it may wait for the next change instead of being written on its own.
 */
function progressOnly(r: APQNReservation, d: ReservationDecision, j: ReservationJudgement, ctx: ControllerContext): boolean {
  if (d.standing.kind !== 'holds' || d.releasing || r.metadata.deletionTimestamp) return false;
  if (j.eventsBefore.length > 0 || j.eventsAfter.some((e) => e.type === 'Warning')) return false;
  const ready = j.conditions.find((c) => c.type === 'Ready');
  if (ready?.status !== 'False' || (ready.reason !== 'Pending' && ready.reason !== 'MdevPending')) return false;
  if (conditionOf(r.status?.conditions, 'Ready')?.status === 'True') return false; // losing Ready is news
  const recorded = recordedPlacement(r);
  if (recorded && recorded.node === d.standing.node && sameApqns(recorded.apqns, d.standing.apqns)) return true;
  const displaced = ctx.decisions.node(d.standing.node)?.composition.displaced.get(d.key) ?? [];
  return displaced.length === 0 && fixedBySpec(r, d.standing.node, d.standing.apqns);
}

/**
 * When a progress-only change that began waiting at `since` is written: after PROGRESS_WAIT_MS,
 * or PROGRESS_WAIT_MAX_MS while the operator's own pipeline still has it (the node spec does not
 * name it yet, or the agent has not taken that spec), since "waiting for the agent" says nothing new then.
 */
function progressDue(ctx: ControllerContext, d: ReservationDecision, since: number): number {
  return since + (inPipeline(ctx, d) ? PROGRESS_WAIT_MAX_MS : PROGRESS_WAIT_MS);
}

/** The node spec does not serve the reservation yet, or its agent has not taken the spec that does. */
function inPipeline(ctx: ControllerContext, d: ReservationDecision): boolean {
  if (d.standing.kind !== 'holds' || d.spec?.driver !== 'vfio_ap') return false; // a host reservation has no spec entry of its own
  const state = ctx.caches.nodeStates.get(d.standing.node);
  if (!state) return true;
  return !specNames(state.spec, d.key) || !agentTookSpec(state);
}

export async function reconcileReservation(key: string, ctx: ControllerContext): Promise<SyncResult> {
  let r = ctx.caches.reservations.get(key);
  if (!r || (ctx.scope.namespace && r.metadata.namespace !== ctx.scope.namespace)) {
    ctx.progress.delete(key);
    ctx.ownStatusWrites.delete(key);
    return;
  }
  const log = ctx.log.child({ reservation: key });

  // The finalizer comes before anything that could reach a node.
  if (!r.metadata.deletionTimestamp && !hasFinalizer(r)) {
    try {
      r = await addFinalizer(ctx.clients.reservations, r, RESERVATION_FINALIZER);
    } catch (err) {
      if (isNotFound(err)) return;
      if (!(err instanceof ObjectDeletingError)) throw err;
      r = await ctx.clients.reservations.find(key);
      if (!r) return;
    }
    ctx.enqueue.node(r.spec?.nodeName ?? r.status?.nodeName ?? ''); // the gate for its node spec opened
  }
  if (r.metadata.deletionTimestamp && !hasFinalizer(r)) return; // not ours to hold any more

  const judged = judge(ctx, key);
  if (!judged) return;
  const { d, judgement } = judged;

  if (r.metadata.deletionTimestamp && judgement.released) {
    await removeFinalizer(ctx.clients.reservations, r, RESERVATION_FINALIZER);
    ctx.progress.delete(key);
    log.info('queues handed back; finalizer removed', { node: r.status?.nodeName });
    return;
  }

  const generation = r.metadata.generation;
  const now = ctx.now();
  const current = r;
  if (mergePatch(r.status, desiredStatus(r.status, judgement, generation, now)) === undefined) {
    ctx.progress.delete(key);
    return requeue(judgement);
  }
  if (progressOnly(r, d, judgement, ctx)) {
    const since = ctx.progress.get(key)?.since ?? now;
    const due = progressDue(ctx, d, since);
    if (due > now) {
      // The timer brings it back when due; a node's fan-out sooner if the wait shortens (needsReconcile).
      ctx.progress.set(key, { since, due });
      return { requeueAfterMs: due - now };
    }
  }
  ctx.progress.delete(key);

  emitAll(ctx, r, judgement.eventsBefore);
  let written = false;
  try {
    // One attempt: a 409 means the cached reservation is behind, and the whole judgement (not
    // only the transition times) must be made again from the newer copy the informer brings.
    const result = await writeStatus(ctx.clients.reservations, current, desiredStatus(current.status, judgement, generation, now), { attempts: 1, log });
    written = result.written;
    const version = result.object.metadata.resourceVersion;
    if (written && version !== undefined) ctx.ownStatusWrites.set(key, version);
  } catch (err) {
    if (isNotFound(err)) return;
    if (isConflict(err)) return { requeueAfterMs: CONFLICT_RETRY_MS };
    throw err;
  }
  if (written) {
    log.debug('status written', { standing: d.standing.kind });
    emitAll(ctx, r, judgement.eventsAfter);
  }
  return requeue(judgement);
}

function requeue(j: ReservationJudgement): SyncResult {
  return j.requeueAfterMs !== undefined ? { requeueAfterMs: j.requeueAfterMs } : undefined;
}

/** Events are recorded in the background (never awaited: a slow event write holds nothing up). */
function emitAll(ctx: ControllerContext, r: APQNReservation, events: readonly ReservationEvent[]): void {
  for (const e of events) {
    ctx.events.emit(r, e.type, e.reason, e.message).catch((err: unknown) => ctx.log.debug('event not recorded', { error: String(err) }));
  }
}
