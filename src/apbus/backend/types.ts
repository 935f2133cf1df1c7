// What the sysfs backend reports about one node's AP bus, in apbus-native terms (numbers for
// ids, Mask for masks). The agent translates these to the APNodeState wire types at its edge.
import type { Apqn } from '../ids.js';
import type { Mask } from '../mask.js';

export type CardMode = 'CCA' | 'EP11' | 'Accel' | 'Unknown';

/** Drivers a queue can be bound to (the kernel's names). */
export type QueueDriverName = 'cex4queue' | 'vfio_ap';
/** Drivers that have bind/unbind files under bus/ap/drivers. */
export type ApDriverName = QueueDriverName | 'cex4card';

/** `status` of a queue bound to vfio_ap. */
export type VfioQueueStatus = 'unassigned' | 'assigned' | 'in use';

/** What the running kernel offers, found by looking for the attribute files.
 *  null: cannot tell yet (no mdev / no queue to look at). */
export interface KernelCapabilities {
  /** `ap_config` on matrix mdevs (kernel 6.10+): one all-or-nothing matrix write. */
  readonly apConfig: boolean | null;
  /** Per-queue `driver_override` (kernel 6.19+). */
  readonly driverOverride: boolean | null;
}

export interface CardInfo {
  readonly id: number;
  /** `hwtype`: CEX4=10 … CEX8=14. */
  readonly hwtype: number;
  /** `type` as the kernel prints it, e.g. 'CEX8P'. */
  readonly type: string;
  readonly mode: CardMode;
  readonly online: boolean;
  readonly config: boolean;
  readonly chkstop: boolean;
}

export interface QueueInfo {
  readonly apqn: Apqn;
  /** Kernel driver name ('cex4queue', 'vfio_ap', …) or '' when the queue has none. */
  readonly driver: string;
  /** `online`; null when the attribute is absent (it exists only under the host driver). */
  readonly online: boolean | null;
  readonly config: boolean;
  readonly chkstop: boolean;
  /** requestq_count + pendingq_count: host requests queued or being processed. */
  readonly requestsInFlight: number;
  /** request_count: host requests processed so far (moves while the host uses the queue). */
  readonly requestCount: number;
  /** `status` while bound to vfio_ap, else null. */
  readonly vfioStatus: VfioQueueStatus | null;
  /** `driver_override` (6.19): the driver name, '' when none is set, null when the kernel has no such attribute. */
  readonly driverOverride: string | null;
}

/** An mdev's matrix: adapters × usage domains, plus control domains. Ids ascending. */
export interface MdevMatrix {
  readonly adapters: readonly number[];
  readonly domains: readonly number[];
  readonly controlDomains: readonly number[];
}

/** A guest matrix: what the guest sees (control domains are not part of it). */
export interface GuestMatrix {
  readonly adapters: readonly number[];
  readonly domains: readonly number[];
}

export interface MdevInfo {
  readonly uuid: string;
  readonly matrix: MdevMatrix;
  /** `matrix` lines as the kernel printed them ('05.0004', '05.', '.0004'). */
  readonly matrixLines: readonly string[];
  readonly guestMatrix: GuestMatrix;
  readonly guestMatrixLines: readonly string[];
  /** `ap_config` as read (trimmed), null when the kernel has no such attribute. */
  readonly apConfig: string | null;
}

export interface Bindings {
  readonly bound: number;
  readonly total: number;
  /** ' (complete)': every queue device has a driver. */
  readonly complete: boolean;
}

export interface BusInventory {
  readonly capabilities: KernelCapabilities;
  readonly maxAdapterId: number;
  readonly maxDomainId: number;
  readonly apmask: Mask;
  readonly aqmask: Mask;
  readonly bindings: Bindings;
  /** Cards ascending by id. */
  readonly cards: readonly CardInfo[];
  /** Queues adapter-major ascending. */
  readonly queues: readonly QueueInfo[];
  /** Mdevs ascending by UUID. */
  readonly mdevs: readonly MdevInfo[];
}

export interface MaskBitChange {
  readonly bit: number;
  /** true: bit set (the host driver owns the row/column); false: cleared. */
  readonly value: boolean;
}

export type MaskKind = 'apmask' | 'aqmask';

/** Counters to decide whether the host still uses a queue (drain check). */
export interface QueueActivity {
  readonly apqn: Apqn;
  /** false when the queue device does not exist (card removed …); counters are then 0. */
  readonly present: boolean;
  readonly requestsInFlight: number;
  readonly requestCount: number;
}

/** A card device, for bind/unbind of cex4card. */
export interface CardRef {
  readonly card: number;
}
export type ApDevice = Apqn | CardRef;

export interface SetMatrixResult {
  /** Which interface changed the matrix. */
  readonly via: 'ap_config' | 'assign' | 'unchanged';
  /** Number of sysfs writes that succeeded. */
  readonly writes: number;
}
