// One concern: the DRA ResourceClaim of an APQNClaim. For a Bound claim, create it (same
// name, owned by the claim: Kubernetes' garbage collector deletes it with the claim); then
// mirror its allocation and consumers into the claim's status (conditions Allocated, InUse).
// A Pending claim gets nothing yet; a Lost one keeps what it has (its device is gone).
import type { APQNClaim } from '../api/types.js';
import type { ResourceClaim } from '../api/dra.js';
import { isAlreadyExists, isNotFound, type CustomResourceClient } from '../k8s/client.js';
import type { Informer } from '../k8s/informer.js';
import { writeStatus } from '../k8s/status.js';
import type { SyncResult } from '../k8s/workqueue.js';
import type { Logger } from '../log.js';
import type { Scope } from './context.js';
import { claimDraView, desiredResourceClaim, ourResults, ownedBy, sameRequest, statusWithDraView } from './dra-resourceclaim.js';

export interface ClaimDraContext {
  claims: Informer<APQNClaim>;
  resourceClaims: Informer<ResourceClaim & { metadata?: { name?: string; namespace?: string } }>;
  claimClient: CustomResourceClient<APQNClaim>;
  resourceClaimClient: CustomResourceClient<ResourceClaim>;
  scope: Scope;
  log: Logger;
  now(): number;
}

export async function reconcileClaimDra(key: string, ctx: ClaimDraContext): Promise<SyncResult> {
  const claim = ctx.claims.get(key);
  if (!claim || (ctx.scope.namespace && claim.metadata.namespace !== ctx.scope.namespace)) return;
  if (claim.metadata.deletionTimestamp) return;
  let rc = ctx.resourceClaims.get(key);
  const phase = claim.status?.phase;
  if (!rc && phase !== 'Bound') return; // nothing to create or to mirror yet
  const log = ctx.log.child({ claim: key });
  let note: string | undefined;

  if (!rc) {
    try {
      rc = await ctx.resourceClaimClient.create(desiredResourceClaim(claim));
      log.info('created ResourceClaim', { reservation: claim.spec.reservationName });
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      // Ours with the cache behind, or a namesake someone else made (the informer only sees
      // labelled ones): read it to tell.
      rc = await ctx.resourceClaimClient.find(key);
      if (!rc) return { requeueAfterMs: 500 };
    }
  } else if (ownedBy(rc, claim) && !sameRequest(rc, desiredResourceClaim(claim))) {
    // spec.reservationName changed. A ResourceClaim's spec is immutable: replace it while
    // nothing holds it, else keep it (its device stays with its pods) and say so.
    const held = ourResults(rc).length > 0 || (rc.status?.reservedFor ?? []).length > 0;
    if (!held) {
      try {
        await ctx.resourceClaimClient.delete(key);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
      log.info('deleted ResourceClaim selecting another reservation; it is recreated');
      return;
    }
    note = `it still selects the reservation it was made for; it is replaced once no pod uses it`;
  }

  const view = claimDraView(claim, rc, note);
  try {
    await writeStatus(ctx.claimClient, claim, (fresh) => statusWithDraView(fresh.status, view, fresh.metadata.generation, ctx.now()), { log });
  } catch (err) {
    if (isNotFound(err)) return;
    throw err;
  }
}
