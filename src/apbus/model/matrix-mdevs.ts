// vfio_ap's matrix mediated devices (drivers/s390/crypto/vfio_ap_ops.c): create/remove,
// assign_*/unassign_*, ap_config, the guest's filtered view (shadow APCB) and the queue
// `status` attribute. The AP bus side (who owns a queue, which queues exist) is asked through
// VfioApHost, so this module holds only mdev state.
import { KernelParseError, Mask, parseKernelNumber } from '../mask.js';
import { fail } from './errors.js';
import { cString, parseApConfigText, uuidIsValid } from './kernel-text.js';

/** What vfio_ap needs to know about the AP bus. */
export interface VfioApHost {
  readonly maxAdapterId: number;
  readonly maxDomainId: number;
  /** Bumped on every change of bus or mdev state (caches key on it). */
  readonly generation: number;
  /** ap_apqn_in_matrix_owned_by_def_drv(): is any APQN of apm x aqm reserved for the host? */
  apqnInMatrixOwnedByDefDrv(apm: Mask, aqm: Mask): boolean;
  /** Is the queue device bound to vfio_ap (vfio_ap_find_queue() finds it)? */
  boundToVfioAp(adapter: number, domain: number): boolean;
  /** The host's AP configuration (QCI apm / aqm): adapters and usage domains it has. */
  adapterInConfig(adapter: number): boolean;
  domainInConfig(domain: number): boolean;
  /** vfio_ap_mdev_reset_queue(): ZAPQ a queue bound to vfio_ap. */
  zeroizeVfioQueue(adapter: number, domain: number): void;
  /** Something about the mdevs changed. */
  touch(): void;
}

export type MatrixAttr = 'adapter' | 'domain' | 'control_domain';
export type VfioQueueStatus = 'unassigned' | 'assigned' | 'in use';

export interface GuestView {
  readonly adapters: number[];
  readonly domains: number[];
}

export class MatrixMdev {
  apm = Mask.none();
  aqm = Mask.none();
  adm = Mask.none();
  /** A KVM guest has the vfio device open (vfio_ap_mdev_set_kvm). */
  guestAttached = false;
  #view: { generation: number; view: GuestView; apqns: Set<number> } | null = null;

  constructor(
    readonly uuid: string,
    readonly iommuGroup: number,
  ) {}

  /** Cached guest view; recomputed when the host generation moved. */
  cachedView(generation: number, compute: () => GuestView): { view: GuestView; apqns: Set<number> } {
    if (this.#view === null || this.#view.generation !== generation) {
      const view = compute();
      const apqns = new Set<number>();
      for (const a of view.adapters) for (const d of view.domains) apqns.add(a * 256 + d);
      this.#view = { generation, view, apqns };
    }
    return this.#view;
  }
}

/** MAX_ZDEV_ENTRIES_EXT: vfio_ap's max_instances. */
export const MAX_MDEV_INSTANCES = 256 * 256;

function parseId(text: string): number {
  try {
    return parseKernelNumber(text); // kstrtoul(buf, 0, &id)
  } catch (err) {
    if (err instanceof KernelParseError) fail(err.errno, err.message);
    throw err;
  }
}

export class MatrixMdevs {
  readonly #host: VfioApHost;
  readonly #mdevs = new Map<string, MatrixMdev>();

  constructor(host: VfioApHost) {
    this.#host = host;
  }

  /** Every mdev, by UUID ascending. */
  list(): MatrixMdev[] {
    return [...this.#mdevs.values()].sort((a, b) => (a.uuid < b.uuid ? -1 : a.uuid > b.uuid ? 1 : 0));
  }

  get(uuid: string): MatrixMdev | undefined {
    return this.#mdevs.get(uuid);
  }

  get count(): number {
    return this.#mdevs.size;
  }

  availableInstances(): number {
    return MAX_MDEV_INSTANCES - this.#mdevs.size;
  }

  /** mdev_sysfs.c create_store(): 36 or 37 bytes, a UUID in the first 36 (any letter case,
   *  the 37th byte is not looked at), EEXIST for a UUID in use (mdev_device_create()). */
  create(raw: string): MatrixMdev {
    const count = new TextEncoder().encode(raw).length; // write() counts bytes
    if (count < 36 || count > 37) fail('EINVAL', 'an mdev UUID is 36 characters');
    if (!uuidIsValid(cString(raw))) fail('EINVAL', 'not a UUID');
    const uuid = raw.slice(0, 36).toLowerCase();
    if (this.#mdevs.has(uuid)) fail('EEXIST', `mdev ${uuid} exists`);
    const mdev = new MatrixMdev(uuid, this.#freeIommuGroup());
    this.#mdevs.set(uuid, mdev);
    this.#host.touch();
    return mdev;
  }

  /** mdev_sysfs.c remove_store(): kstrtoul, 0 does nothing. The real kernel blocks until the
   *  guest lets go of the device; the model answers EBUSY (ap-bus.md). vfio_ap_mdev_remove()
   *  resets every queue of the mdev. */
  remove(mdev: MatrixMdev, raw: string): void {
    let value: number;
    try {
      value = parseKernelNumber(raw);
    } catch {
      fail('EINVAL', 'remove takes a number');
    }
    if (value === 0) return;
    if (!this.#mdevs.has(mdev.uuid)) fail('ENODEV');
    if (mdev.guestAttached) fail('EBUSY', `mdev ${mdev.uuid} is in use by a guest`);
    this.#resetQueues(mdev);
    this.#mdevs.delete(mdev.uuid);
    this.#host.touch();
  }

  /** assign_adapter_store / assign_domain_store / assign_control_domain_store: kstrtoul
   *  (EINVAL) -> above the maximum (ENODEV) -> already set (no-op) -> set and validate the
   *  whole product (vfio_ap_mdev_validate_masks: EADDRNOTAVAIL, then EADDRINUSE); on error
   *  the bit is cleared again. Control domains are only range-checked. */
  assign(mdev: MatrixMdev, what: MatrixAttr, raw: string): void {
    const id = parseId(raw);
    if (id > this.#max(what)) fail('ENODEV', `${what} ${id} is above the maximum ${this.#max(what)}`);
    if (what === 'control_domain') {
      if (mdev.adm.has(id)) return;
      mdev.adm = mdev.adm.with(id, true);
      this.#host.touch();
      return;
    }
    const apm = what === 'adapter' ? mdev.apm.with(id, true) : mdev.apm;
    const aqm = what === 'domain' ? mdev.aqm.with(id, true) : mdev.aqm;
    if (apm.equals(mdev.apm) && aqm.equals(mdev.aqm)) return;
    this.#validate(mdev, apm, aqm);
    mdev.apm = apm;
    mdev.aqm = aqm;
    this.#host.touch();
  }

  /** unassign_*_store: kstrtoul (EINVAL) -> above the maximum (ENODEV) -> not set (no-op) ->
   *  clear, hot-unplug from the guest view and reset the queues that were in it
   *  (vfio_ap_mdev_hot_unplug_adapter/_domain). */
  unassign(mdev: MatrixMdev, what: MatrixAttr, raw: string): void {
    const id = parseId(raw);
    if (id > this.#max(what)) fail('ENODEV', `${what} ${id} is above the maximum ${this.#max(what)}`);
    if (what === 'control_domain') {
      if (!mdev.adm.has(id)) return;
      mdev.adm = mdev.adm.with(id, false);
      this.#host.touch();
      return;
    }
    const apm = what === 'adapter' ? mdev.apm.with(id, false) : mdev.apm;
    const aqm = what === 'domain' ? mdev.aqm.with(id, false) : mdev.aqm;
    if (apm.equals(mdev.apm) && aqm.equals(mdev.aqm)) return;
    this.#replaceMatrix(mdev, apm, aqm, mdev.adm);
  }

  /** ap_config_store (6.10+): parse all three masks (EINVAL) -> validate the product
   *  (EADDRNOTAVAIL, EADDRINUSE) -> every bit within the maxima (ENODEV); all or nothing. */
  storeApConfig(mdev: MatrixMdev, raw: string): void {
    const parsed = parseApConfigText(raw);
    if (parsed === null) fail('EINVAL', "ap_config takes '0x<apm>,0x<aqm>,0x<adm>'");
    const { apm, aqm, adm } = parsed;
    this.#validate(mdev, apm, aqm);
    const over = (m: Mask, max: number) => m.bits().some((b) => b > max);
    if (over(apm, this.#host.maxAdapterId) || over(aqm, this.#host.maxDomainId) || over(adm, this.#host.maxDomainId)) {
      fail('ENODEV', 'an id is above the maximum');
    }
    this.#replaceMatrix(mdev, apm, aqm, adm);
  }

  /** vfio_ap_mdev_set_kvm(): a guest opens the device. One guest per mdev here. */
  attachGuest(mdev: MatrixMdev): void {
    if (mdev.guestAttached) fail('EBUSY', `mdev ${mdev.uuid} is already open by a guest`);
    mdev.guestAttached = true;
    this.#host.touch();
  }

  /** vfio_ap_mdev_unset_kvm(): the guest closes the device; its queues are reset. */
  detachGuest(mdev: MatrixMdev): void {
    if (!mdev.guestAttached) return;
    mdev.guestAttached = false;
    this.#resetQueues(mdev);
    this.#host.touch();
  }

  /** vfio_ap_mdev_filter_matrix(): adapters and domains of the matrix that are in the host's
   *  configuration, minus every adapter with an APQN in that product not bound to vfio_ap
   *  (the architecture cannot filter single APQNs). */
  guestView(mdev: MatrixMdev): GuestView {
    return this.#view(mdev).view;
  }

  /** status_show(): 'in use' when the queue is in the guest view of an mdev a guest has open,
   *  'assigned' when in some mdev's matrix, else 'unassigned' (vfio_ap_mdev_for_queue). */
  queueStatus(adapter: number, domain: number): VfioQueueStatus {
    const mdev = this.mdevForQueue(adapter, domain);
    if (!mdev) return 'unassigned';
    if (mdev.guestAttached && this.#view(mdev).apqns.has(adapter * 256 + domain)) return 'in use';
    return 'assigned';
  }

  mdevForQueue(adapter: number, domain: number): MatrixMdev | undefined {
    for (const mdev of this.#mdevs.values()) if (mdev.apm.has(adapter) && mdev.aqm.has(domain)) return mdev;
    return undefined;
  }

  /** vfio_ap_mdev_resource_in_use(): does any mdev's product meet apm x aqm? */
  resourceInUse(apm: Mask, aqm: Mask): boolean {
    for (const mdev of this.#mdevs.values()) {
      if (!mdev.apm.and(apm).isNone() && !mdev.aqm.and(aqm).isNone()) return true;
    }
    return false;
  }

  /** Reboot: every mdev is gone (no resets: the whole machine resets). */
  clear(): void {
    this.#mdevs.clear();
    this.#host.touch();
  }

  // -------------------------------------------------------------------------------------

  #max(what: MatrixAttr): number {
    return what === 'adapter' ? this.#host.maxAdapterId : this.#host.maxDomainId;
  }

  /** vfio_ap_mdev_validate_masks(): host-owned first, then shared with another mdev. */
  #validate(mdev: MatrixMdev, apm: Mask, aqm: Mask): void {
    if (this.#host.apqnInMatrixOwnedByDefDrv(apm, aqm)) {
      fail('EADDRNOTAVAIL', 'an APQN of the matrix is reserved for the host (apmask/aqmask)');
    }
    for (const other of this.#mdevs.values()) {
      if (other === mdev) continue;
      if (!other.apm.and(apm).isNone() && !other.aqm.and(aqm).isNone()) {
        fail('EADDRINUSE', `an APQN of the matrix is assigned to mdev ${other.uuid}`);
      }
    }
  }

  /** Installs a new matrix; queues that leave the guest view because their adapter or domain
   *  left the matrix are reset (hot unplug). */
  #replaceMatrix(mdev: MatrixMdev, apm: Mask, aqm: Mask, adm: Mask): void {
    const before = this.#view(mdev).view;
    const unplugged: Array<[number, number]> = [];
    for (const a of before.adapters) {
      for (const d of before.domains) {
        if ((!apm.has(a) || !aqm.has(d)) && this.#host.boundToVfioAp(a, d)) unplugged.push([a, d]);
      }
    }
    mdev.apm = apm;
    mdev.aqm = aqm;
    mdev.adm = adm;
    for (const [a, d] of unplugged) this.#host.zeroizeVfioQueue(a, d);
    this.#host.touch();
  }

  /** vfio_ap_mdev_reset_queues(): every queue of the matrix that is bound to vfio_ap. */
  #resetQueues(mdev: MatrixMdev): void {
    for (const a of mdev.apm.bits()) {
      for (const d of mdev.aqm.bits()) if (this.#host.boundToVfioAp(a, d)) this.#host.zeroizeVfioQueue(a, d);
    }
  }

  #view(mdev: MatrixMdev): { view: GuestView; apqns: Set<number> } {
    return mdev.cachedView(this.#host.generation, () => {
      const host = this.#host;
      const domains = mdev.aqm.bits().filter((d) => d <= host.maxDomainId && host.domainInConfig(d));
      const adapters = mdev.apm
        .bits()
        .filter((a) => a <= host.maxAdapterId && host.adapterInConfig(a))
        .filter((a) => domains.every((d) => host.boundToVfioAp(a, d)));
      return { adapters, domains };
    });
  }

  /** Lowest free group number, like the kernel's IDA. */
  #freeIommuGroup(): number {
    const used = new Set([...this.#mdevs.values()].map((m) => m.iommuGroup));
    let n = 0;
    while (used.has(n)) n++;
    return n;
  }
}

/** vfio_ap_mdev_matrix_show(): 'aa.dddd' per APQN, or 'aa.' / '.dddd' lines when only
 *  adapters / only domains are set; bits above the maxima are not shown. */
export function formatMatrix(adapters: readonly number[], domains: readonly number[], maxA: number, maxD: number): string {
  const as = adapters.filter((a) => a <= maxA);
  const ds = domains.filter((d) => d <= maxD);
  const hexA = (a: number) => a.toString(16).padStart(2, '0');
  const hexD = (d: number) => d.toString(16).padStart(4, '0');
  let out = '';
  if (as.length > 0 && ds.length > 0) {
    for (const a of as) for (const d of ds) out += `${hexA(a)}.${hexD(d)}\n`;
  } else if (as.length > 0) {
    for (const a of as) out += `${hexA(a)}.\n`;
  } else {
    for (const d of ds) out += `.${hexD(d)}\n`;
  }
  return out;
}
