// TypeScript shapes of the ap.s390x.io/v1alpha1 custom resources (see crds/ and
// ../shared/design/api.md). These are the wire shapes: ids are strings in canonical hex
// (`05`, `0004`, `05.0004`). The apbus layer never sees these types; the agent and the
// controller translate at their edges.

export const GROUP = 'ap.s390x.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

export const PLURAL = {
  reservation: 'apqnreservations',
  claim: 'apqnclaims',
  nodeState: 'apnodestates',
} as const;

/** Finalizer the controller puts on reservations before it changes any node. */
export const RESERVATION_FINALIZER = 'ap.s390x.io/release-queues';

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }>;
}

export type ConditionStatus = 'True' | 'False' | 'Unknown';

/** metav1.Condition */
export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export type Driver = 'vfio_ap' | 'host';
export type InUsePolicy = 'Wait' | 'Fail' | 'Force';
export type CardMode = 'CCA' | 'EP11' | 'Accel';
export type CardGeneration = 'CEX4' | 'CEX5' | 'CEX6' | 'CEX7' | 'CEX8';

// ---------------------------------------------------------------------------------------------
// APQNReservation (namespaced, short name apqnr)

export interface ReservationRequest {
  adapters: number;
  domains: number;
  minCardType?: CardGeneration;
  mode?: CardMode;
}

export interface ReservationSpec {
  nodeName?: string;
  nodeSelector?: Record<string, string>;
  apqns?: string[];
  request?: ReservationRequest;
  driver?: Driver; // default vfio_ap
  controlDomains?: string[];
  inUsePolicy?: InUsePolicy; // default Wait
  drainTimeoutSeconds?: number; // default 300
}

export type QueueState =
  | 'Pending' // not yet moved
  | 'Draining' // waiting for host requests to finish (Wait)
  | 'InUse' // refused because of host activity (Fail)
  | 'Stuck' // Wait ran past drainTimeoutSeconds
  | 'Bound' // on the wanted driver (driver: host)
  | 'Assigned' // on vfio_ap and in the reservation's mdev
  | 'Missing' // the node does not report the queue (card removed, …)
  | 'Releasing';

export interface ReservationQueueStatus {
  apqn: string;
  driver: string; // kernel driver name as the node reports it, '' when unbound
  state: QueueState;
  message?: string;
}

export interface ReservationMatrix {
  adapters: string[];
  domains: string[];
  controlDomains?: string[];
}

export interface ReservationStatus {
  observedGeneration?: number;
  nodeName?: string;
  apqns?: string[];
  matrix?: ReservationMatrix;
  mdevUUID?: string;
  claimedBy?: { name: string };
  queues?: ReservationQueueStatus[];
  /** Host queues (not reserved) that the mask plan takes away from the host. */
  displacedQueues?: string[];
  conditions?: Condition[];
}

export interface APQNReservation {
  apiVersion: typeof API_VERSION;
  kind: 'APQNReservation';
  metadata: ObjectMeta;
  spec: ReservationSpec;
  status?: ReservationStatus;
}

/** Condition types of a reservation (api.md). */
export const ReservationCondition = {
  Accepted: 'Accepted',
  Scheduled: 'Scheduled',
  Conflict: 'Conflict',
  Bound: 'Bound',
  Ready: 'Ready',
} as const;

// ---------------------------------------------------------------------------------------------
// APQNClaim (namespaced, short name apqnc)

export interface ClaimSpec {
  reservationName: string;
  guest?: { apiVersion?: string; kind?: string; name?: string };
}

export type ClaimPhase = 'Pending' | 'Bound' | 'Lost';

export interface ClaimStatus {
  observedGeneration?: number;
  phase?: ClaimPhase;
  nodeName?: string;
  mdevUUID?: string;
  apqns?: string[];
  resourceClaimName?: string;
  conditions?: Condition[];
}

export interface APQNClaim {
  apiVersion: typeof API_VERSION;
  kind: 'APQNClaim';
  metadata: ObjectMeta;
  spec: ClaimSpec;
  status?: ClaimStatus;
}

// ---------------------------------------------------------------------------------------------
// APNodeState (cluster-scoped, named after the node, short name apns)
//
// spec: written only by the controller. It names exactly what the operator owns on the node;
// the agent touches nothing else.

/** One mask bit the operator owns, and the value it wants. `host: true` = bit set. */
export interface MaskBit {
  id: string; // adapter `05` or domain `0004`
  host: boolean;
  /** The bit's value before the operator first changed it; restored on release. */
  original?: boolean;
}

/** A queue's driver_override (profile 6.19, override mode). */
export interface QueueOverride {
  apqn: string;
  driver: 'vfio_ap' | 'cex4queue';
}

/** A queue that leaves the host for vfio_ap, and how to treat host programs still using it. */
export interface QueueIntent {
  apqn: string;
  reservation: string; // namespace/name
  inUsePolicy: InUsePolicy;
  drainTimeoutSeconds: number;
}

export interface MdevIntent {
  uuid: string;
  reservation: string; // namespace/name
  adapters: string[];
  domains: string[];
  controlDomains: string[];
}

export type BindingMode = 'Masks' | 'DriverOverride';

export interface NodeStateSpec {
  /** How queues are moved on this node: mask bits, or per-queue driver_override (6.19). */
  bindingMode?: BindingMode;
  apmask?: MaskBit[];
  aqmask?: MaskBit[];
  overrides?: QueueOverride[];
  queues?: QueueIntent[];
  mdevs?: MdevIntent[];
}

// status: written only by that node's agent.

export interface CardStatus {
  id: string;
  type: string; // e.g. CEX8C
  hwtype?: number;
  mode: CardMode | 'Unknown';
  online: boolean;
  config: boolean;
  chkstop: boolean;
}

export interface QueueStatus {
  apqn: string;
  driver: string; // cex4queue | vfio_ap | ''
  online: boolean;
  config?: boolean;
  chkstop?: boolean;
  requestsInFlight: number; // requestq_count + pendingq_count
  requestCount: number;
  vfioStatus?: 'unassigned' | 'assigned' | 'in use';
  /** The agent set this host queue offline (zcrypt `online` 0) to move it to vfio_ap. */
  cordoned?: boolean;
}

export interface MdevStatus {
  uuid: string;
  matrix: string[]; // APQNs `aa.dddd`, adapter-only `aa.`, domain-only `.dddd` lines kept as read
  guestMatrix: string[];
  controlDomains: string[];
  owned: boolean; // created by this operator (named in spec)
  reservation?: string;
  inUse?: boolean; // a guest has it open
}

export type ReservationPhase =
  | 'Pending'
  | 'Draining'
  | 'InUse'
  | 'Stuck'
  | 'Applied'
  | 'Releasing'
  | 'Released'
  | 'Failed';

/** The agent's report of how far it got applying one reservation's part of the spec. */
export interface ReservationApplyStatus {
  reservation: string; // namespace/name
  phase: ReservationPhase;
  reason: string;
  message: string;
  queues?: Array<{ apqn: string; requestsInFlight: number; requestCount: number; state: QueueState }>;
}

export interface NodeStateStatus {
  observedGeneration?: number;
  heartbeatTime?: string;
  kernel?: { apConfig: boolean; driverOverride: boolean; profile?: string };
  maxAdapterId?: number;
  maxDomainId?: number;
  apmask?: string;
  aqmask?: string;
  /** Number of entries in `queues`: the QUEUES printer column (a jsonPath cannot count). */
  queueCount?: number;
  cards?: CardStatus[];
  queues?: QueueStatus[];
  mdevs?: MdevStatus[];
  reservations?: ReservationApplyStatus[];
  conditions?: Condition[];
}

export interface APNodeState {
  apiVersion: typeof API_VERSION;
  kind: 'APNodeState';
  metadata: ObjectMeta;
  spec: NodeStateSpec;
  status?: NodeStateStatus;
}

export const NodeStateCondition = {
  Synced: 'Synced',
  Degraded: 'Degraded',
  Drift: 'Drift',
} as const;

/** `namespace/name` key used for reservations inside node specs and statuses. */
export function reservationKey(r: { metadata: ObjectMeta }): string {
  return `${r.metadata.namespace ?? ''}/${r.metadata.name ?? ''}`;
}
