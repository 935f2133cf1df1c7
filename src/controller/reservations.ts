// One concern: a reservation's finalizer, status and events. Read the caches, decide (pure:
// placement.ts, reservation-status.ts), write only what changed.
import type { APQNReservation } from '../api/types.js';
import { RESERVATION_FINALIZER } from '../api/types.js';
import { isNotFound } from '../k8s/client.js';
import { ObjectDeletingError, addFinalizer, removeFinalizer } from '../k8s/finalizers.js';
import { writeStatus } from '../k8s/status.js';
import type { SyncResult } from '../k8s/workqueue.js';
import { clusterView, type ControllerContext } from './context.js';
import { decideCluster, hasFinalizer } from './placement.js';
import { desiredStatus, judgeReservation, type ReservationEvent } from './reservation-status.js';

export async function reconcileReservation(key: string, ctx: ControllerContext): Promise<SyncResult> {
  let r = ctx.caches.reservations.get(key);
  if (!r || (ctx.scope.namespace && r.metadata.namespace !== ctx.scope.namespace)) return;
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
  }
  if (r.metadata.deletionTimestamp && !hasFinalizer(r)) return; // not ours to hold any more

  const view = clusterView(ctx, { reservation: r });
  const cluster = decideCluster(view);
  const decision = cluster.reservations.get(key)!;
  const judgement = judgeReservation(decision, view, cluster);

  if (r.metadata.deletionTimestamp && judgement.released) {
    await removeFinalizer(ctx.clients.reservations, r, RESERVATION_FINALIZER);
    log.info('queues handed back; finalizer removed', { node: r.status?.nodeName });
    return;
  }

  await emitAll(ctx, r, judgement.eventsBefore);
  const generation = r.metadata.generation;
  let written = false;
  try {
    const result = await writeStatus(
      ctx.clients.reservations,
      r,
      (fresh) => desiredStatus(fresh.status, judgement, generation, view.now),
      { log },
    );
    written = result.written;
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
  if (written) {
    log.debug('status written', { standing: decision.standing.kind });
    await emitAll(ctx, r, judgement.eventsAfter);
  }
  return judgement.requeueAfterMs !== undefined ? { requeueAfterMs: judgement.requeueAfterMs } : undefined;
}

async function emitAll(ctx: ControllerContext, r: APQNReservation, events: readonly ReservationEvent[]): Promise<void> {
  for (const e of events) await ctx.events.emit(r, e.type, e.reason, e.message);
}
