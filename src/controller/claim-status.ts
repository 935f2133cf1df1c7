// APQNClaim binding, the way a PVC binds a PV: a claim binds to a Ready vfio_ap reservation of
// its namespace; one claim per reservation (a bound one keeps it, else the oldest); a bound
// claim stays bound while its reservation exists (the reservation's deletion waits for it) and
// is Lost, for good, once the reservation is gone. Pure.
import type { APQNClaim, ClaimStatus, Condition, ConditionStatus } from '../api/types.js';
import { claimWinnerOf, conditionOf, type ClusterView } from './cluster-view.js';
import { setCondition } from './conditions.js';

export interface ClaimJudgement {
  phase: 'Pending' | 'Bound' | 'Lost';
  bound: { status: ConditionStatus; reason: string; message: string };
  published?: { nodeName?: string; mdevUUID?: string; apqns?: string[] };
  event?: { type: 'Normal' | 'Warning'; reason: string; message: string };
}

export function judgeClaim(claim: APQNClaim, view: ClusterView): ClaimJudgement {
  const namespace = claim.metadata.namespace ?? '';
  const name = claim.spec?.reservationName ?? '';
  const wasBound = claim.status?.phase === 'Bound';
  const r = view.reservations.find((x) => x.metadata.namespace === namespace && x.metadata.name === name);
  const pending = (reason: string, message: string, type: 'Normal' | 'Warning' = 'Normal'): ClaimJudgement => {
    const j: ClaimJudgement = { phase: 'Pending', bound: { status: 'False', reason, message } };
    if (conditionOf(claim.status?.conditions, 'Bound')?.reason !== reason) j.event = { type, reason, message };
    return j;
  };

  if (claim.status?.phase === 'Lost' || (wasBound && !r)) {
    const message = `reservation ${name} is gone: this claim is lost; delete it (and create a new one for another reservation)`;
    const j: ClaimJudgement = { phase: 'Lost', bound: { status: 'False', reason: 'ReservationDeleted', message } };
    if (claim.status?.phase !== 'Lost') j.event = { type: 'Warning', reason: 'Lost', message };
    return j;
  }
  if (!r) return pending('ReservationNotFound', `no APQNReservation ${name} in namespace ${namespace}`);
  if ((r.spec?.driver ?? 'vfio_ap') !== 'vfio_ap') {
    return pending('NotVfioAp', `reservation ${name} keeps its queues on the host driver; only vfio_ap reservations can be claimed`, 'Warning');
  }
  const winner = claimWinnerOf(view, namespace, name);
  if (winner && winner.metadata.name !== claim.metadata.name) {
    return pending('AlreadyClaimed', `reservation ${name} is held by claim ${winner.metadata.name}`, 'Warning');
  }
  const publish = {
    nodeName: r.status?.nodeName,
    mdevUUID: r.status?.mdevUUID,
    apqns: r.status?.apqns,
  };
  if (wasBound) {
    return { phase: 'Bound', bound: { status: 'True', reason: 'Bound', message: boundMessage(name, publish) }, published: publish };
  }
  if (r.metadata.deletionTimestamp) return pending('ReservationDeleting', `reservation ${name} is being deleted`);
  const ready = conditionOf(r.status?.conditions, 'Ready');
  if (ready?.status !== 'True' || !r.status?.mdevUUID) {
    const why = ready ? `Ready=${ready.status}, ${ready.reason}: ${ready.message}` : 'no Ready condition yet';
    return pending('ReservationNotReady', `waiting for reservation ${name} to become Ready (${why})`);
  }
  const message = boundMessage(name, publish);
  return { phase: 'Bound', bound: { status: 'True', reason: 'Bound', message }, published: publish, event: { type: 'Normal', reason: 'Bound', message } };
}

function boundMessage(name: string, p: { nodeName?: string; mdevUUID?: string }): string {
  return `bound to reservation ${name}: mdev ${p.mdevUUID ?? '?'} on node ${p.nodeName ?? '?'}`;
}

export function desiredClaimStatus(current: ClaimStatus | undefined, j: ClaimJudgement, generation: number | undefined, now: number): ClaimStatus {
  const conditions: Condition[] = setCondition(current?.conditions, { type: 'Bound', ...j.bound, observedGeneration: generation }, now);
  const status: ClaimStatus = { observedGeneration: generation, phase: j.phase, conditions };
  if (j.phase === 'Bound' && j.published) {
    if (j.published.nodeName) status.nodeName = j.published.nodeName;
    if (j.published.mdevUUID) status.mdevUUID = j.published.mdevUUID;
    if (j.published.apqns) status.apqns = [...j.published.apqns];
  }
  if (current?.resourceClaimName) status.resourceClaimName = current.resourceClaimName; // the DRA side owns it
  return status;
}
