// An APQNClaim's DRA ResourceClaim (pure): the claim the controller creates for a bound
// APQNClaim — same name and namespace, owned by it, one request `apqn` for exactly one device
// of class vfio-ap.ap.s390x.io selected by the reservation attribute — and what of its
// allocation and consumers the APQNClaim's status shows (conditions Allocated and InUse).
import type { APQNClaim, ClaimStatus, Condition } from '../api/types.js';
import { API_VERSION } from '../api/types.js';
import {
  CLAIM_REQUEST,
  DEVICE_CLASS,
  DRA_DRIVER,
  MANAGED_BY,
  MANAGED_BY_LABEL,
  RESOURCE_API_VERSION,
  reservationSelector,
  type ResourceClaim,
} from '../api/dra.js';
import { deepEqual } from '../k8s/merge-patch.js';
import { setCondition, type ConditionInput } from './conditions.js';

export const ClaimDraCondition = { Allocated: 'Allocated', InUse: 'InUse' } as const;

export function desiredResourceClaim(claim: APQNClaim): ResourceClaim {
  const namespace = claim.metadata.namespace ?? '';
  const name = claim.metadata.name ?? '';
  return {
    apiVersion: RESOURCE_API_VERSION,
    kind: 'ResourceClaim',
    metadata: {
      name,
      namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY },
      ownerReferences: [
        { apiVersion: API_VERSION, kind: 'APQNClaim', name, uid: claim.metadata.uid ?? '', controller: true, blockOwnerDeletion: true },
      ],
    },
    spec: {
      devices: {
        requests: [
          {
            name: CLAIM_REQUEST,
            exactly: {
              deviceClassName: DEVICE_CLASS,
              allocationMode: 'ExactCount',
              count: 1,
              selectors: [{ cel: { expression: reservationSelector(`${namespace}/${claim.spec.reservationName}`) } }],
            },
          },
        ],
      },
    },
  };
}

/** The ResourceClaim is controlled by this APQNClaim object (not a namesake). */
export function ownedBy(rc: ResourceClaim, claim: APQNClaim): boolean {
  return (rc.metadata?.ownerReferences ?? []).some((o) => o.controller && o.uid === claim.metadata.uid && o.kind === 'APQNClaim');
}

/** Selects what `desired` selects (the server may add defaults; only the requests matter). */
export function sameRequest(rc: ResourceClaim, desired: ResourceClaim): boolean {
  const essence = (c: ResourceClaim) =>
    c.spec.devices.requests.map((r) => ({
      name: r.name,
      deviceClassName: r.exactly?.deviceClassName,
      count: r.exactly?.count ?? 1,
      selectors: (r.exactly?.selectors ?? []).map((s) => s.cel?.expression),
    }));
  return deepEqual(essence(rc), essence(desired));
}

/** The results of our driver for the `apqn` request. */
export function ourResults(rc: ResourceClaim | undefined) {
  return (rc?.status?.allocation?.devices?.results ?? []).filter((r) => r.request === CLAIM_REQUEST && r.driver === DRA_DRIVER);
}

export interface ClaimDraView {
  /** status.resourceClaimName, or undefined to clear it. */
  resourceClaimName?: string;
  allocated: Omit<ConditionInput, 'type'>;
  inUse: Omit<ConditionInput, 'type'>;
}

/** What the APQNClaim says about its ResourceClaim, given the stored one (or its absence). */
export function claimDraView(claim: APQNClaim, rc: ResourceClaim | undefined, note?: string): ClaimDraView {
  const name = claim.metadata.name ?? '';
  if (rc && !ownedBy(rc, claim)) {
    const message = `a ResourceClaim ${name} exists in this namespace but is not this claim's; delete or rename it so the controller can create its own`;
    return {
      allocated: { status: 'False', reason: 'ResourceClaimConflict', message },
      inUse: { status: 'Unknown', reason: 'ResourceClaimConflict', message },
    };
  }
  const results = ourResults(rc);
  const allocated: ClaimDraView['allocated'] =
    results.length > 0
      ? {
          status: 'True',
          reason: 'Allocated',
          message: `ResourceClaim ${name} is allocated device ${results.map((r) => `${r.pool}/${r.device}`).join(', ')}`,
        }
      : {
          status: 'False',
          reason: 'NotAllocated',
          message: rc
            ? `ResourceClaim ${name} is not allocated yet: the scheduler allocates it with the first pod that uses it (the VMI's virt-launcher)`
            : `ResourceClaim ${name} is being created`,
        };
  if (note) allocated.message = `${allocated.message}; ${note}`;
  const consumers = (rc?.status?.reservedFor ?? []).map((c) => (c.resource === 'pods' && !c.apiGroup ? c.name : `${c.resource}/${c.name}`));
  const inUse: ClaimDraView['inUse'] =
    consumers.length > 0
      ? { status: 'True', reason: 'ReservedForPod', message: `in use by pod ${consumers.join(', ')}` }
      : { status: 'False', reason: 'NotInUse', message: `no pod uses ResourceClaim ${name}` };
  return { resourceClaimName: name, allocated, inUse };
}

/** The APQNClaim status with this view applied; every other field (the binder's) kept. */
export function statusWithDraView(current: ClaimStatus | undefined, view: ClaimDraView, generation: number | undefined, now: number): ClaimStatus {
  const gen = generation !== undefined ? { observedGeneration: generation } : {};
  let conditions: Condition[] = setCondition(current?.conditions, { type: ClaimDraCondition.Allocated, ...view.allocated, ...gen }, now);
  conditions = setCondition(conditions, { type: ClaimDraCondition.InUse, ...view.inUse, ...gen }, now);
  const status: ClaimStatus = { ...(current ?? {}), conditions };
  if (view.resourceClaimName) status.resourceClaimName = view.resourceClaimName;
  else delete status.resourceClaimName;
  return status;
}
