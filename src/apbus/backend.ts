// SysfsBackend: the one implementation of the AP bus operations the node agent uses, over a
// SysfsIO (the real /sys or the model's virtual sysfs), so the code tested in simulation is
// the code that runs on an IBM Z host. Every path is built from validated numbers and
// canonical UUIDs (backend/paths.ts); sysfs failures surface as the SysfsError the write or
// read produced (errno + path), e.g. EADDRINUSE from assign_adapter.
import type { Apqn } from './ids.js';
import type { Mask } from './mask.js';
import type { SysfsIO } from './sysfs-io.js';
import { busFingerprint } from './backend/fingerprint.js';
import { listMdevUuids, readInventory } from './backend/inventory.js';
import { readMask, setMaskBits } from './backend/masks.js';
import { createMdev, mdevExists, readGuestMatrix, readMatrix, removeMdev, setMatrix } from './backend/mdevs.js';
import { bind, queueActivity, setDriverOverride, setQueueOnline, unbind } from './backend/queues.js';
import type {
  ApDevice,
  ApDriverName,
  BusInventory,
  GuestMatrix,
  MaskBitChange,
  MaskKind,
  MdevMatrix,
  QueueActivity,
  QueueDriverName,
  SetMatrixResult,
} from './backend/types.js';

export type * from './backend/types.js';
export { rollbackFailuresOf } from './backend/mdevs.js';
export { relativeMaskWrite } from './backend/masks.js';

export class SysfsBackend {
  constructor(readonly io: SysfsIO) {}

  /** Everything the node reports about its bus, from reads only. */
  inventory(): BusInventory {
    return readInventory(this.io);
  }

  /** Cheap digest of masks, bindings, scans, devices, card states and mdev matrices: poll
   *  it, and take a full inventory() only when it changes. */
  fingerprint(): string {
    return busFingerprint(this.io);
  }

  readMask(kind: MaskKind): Mask {
    return readMask(this.io, kind);
  }

  /** One relative write of just these bits; returns the mask the kernel then prints. */
  setMaskBits(kind: MaskKind, changes: readonly MaskBitChange[]): Mask {
    return setMaskBits(this.io, kind, changes);
  }

  /** driver_override of one queue (kernel 6.19); null clears it. */
  setDriverOverride(apqn: Apqn, driver: QueueDriverName | null): void {
    setDriverOverride(this.io, apqn, driver);
  }

  /** zcrypt `online` of a host queue: 0 cordons it (and flushes what it still holds). */
  setQueueOnline(apqn: Apqn, online: boolean): void {
    setQueueOnline(this.io, apqn, online);
  }

  bind(driver: ApDriverName, device: ApDevice): void {
    bind(this.io, driver, device);
  }

  unbind(driver: ApDriverName, device: ApDevice): void {
    unbind(this.io, driver, device);
  }

  /** UUIDs of existing matrix mdevs, ascending. */
  listMdevs(): string[] {
    return listMdevUuids(this.io);
  }

  mdevExists(uuid: string): boolean {
    return mdevExists(this.io, uuid);
  }

  createMdev(uuid: string): void {
    createMdev(this.io, uuid);
  }

  removeMdev(uuid: string): void {
    removeMdev(this.io, uuid);
  }

  /** Via ap_config when present, else assign_* and unassign_* writes with rollback on failure (the
   *  original error is rethrown; see rollbackFailuresOf). */
  setMatrix(uuid: string, matrix: MdevMatrix): SetMatrixResult {
    return setMatrix(this.io, uuid, matrix);
  }

  readMatrix(uuid: string): MdevMatrix {
    return readMatrix(this.io, uuid);
  }

  readGuestMatrix(uuid: string): GuestMatrix {
    return readGuestMatrix(this.io, uuid);
  }

  /** Host activity counters of these queues (drain check). */
  queueActivity(apqns: readonly Apqn[]): QueueActivity[] {
    return queueActivity(this.io, apqns);
  }
}
