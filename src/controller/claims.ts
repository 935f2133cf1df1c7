// One concern: an APQNClaim's status (claim-status.ts decides; this writes it when it changed).
import { isNotFound } from '../k8s/client.js';
import { writeStatus } from '../k8s/status.js';
import type { SyncResult } from '../k8s/workqueue.js';
import { desiredClaimStatus, judgeClaim } from './claim-status.js';
import { judgeView, type ControllerContext } from './context.js';

export async function reconcileClaim(key: string, ctx: ControllerContext): Promise<SyncResult> {
  const claim = ctx.caches.claims.get(key);
  if (!claim || (ctx.scope.namespace && claim.metadata.namespace !== ctx.scope.namespace)) return;
  // A claim's binding reads its reservation and the other claims naming it, nothing else.
  const target = `${claim.metadata.namespace ?? ''}/${claim.spec?.reservationName ?? ''}`;
  const r = ctx.caches.reservations.get(target);
  const view = { ...judgeView(ctx, []), reservations: r ? [r] : [], claims: ctx.decisions.claimsNaming(target) };
  const judgement = judgeClaim(claim, view);
  const generation = claim.metadata.generation;
  try {
    const result = await writeStatus(
      ctx.clients.claims,
      claim,
      (fresh) => desiredClaimStatus(fresh.status, judgement, generation, view.now),
      { log: ctx.log.child({ claim: key }) },
    );
    if (result.written && judgement.event) {
      await ctx.events.emit(claim, judgement.event.type, judgement.event.reason, judgement.event.message);
    }
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
}
