// A model of one node's s390 AP bus as the Linux kernel runs it (drivers/s390/crypto/ap_bus.c,
// ap_card.c, ap_queue.c, zcrypt_card.c, zcrypt_queue.c; vfio_ap in matrix-mdevs.ts): cards and
// queue devices, the apmask/aqmask ownership rule, probe/remove of queues when it changes,
// manual bind/unbind, driver_override (6.19), host requests in flight on a controlled clock,
// and the errno every store function returns, in the kernel's order of checks.
//
// Store methods take the raw bytes a write() would carry and throw ApBusError; VirtualSysfs
// routes paths to them. Per-queue state lives in typed arrays indexed by apqnIndex
// (adapter*256 + domain) so a 5,440-queue node stays small and a mask change touching
// thousands of queues is a tight loop.
import { ApbusInputError, apqnIndex, formatApqn, type Apqn } from '../ids.js';
import { KernelParseError, Mask, applyMaskWrite, parseKernelNumber } from '../mask.js';
import type { NodeTopology } from '../topology.js';
import { ManualClock, type Clock } from './clock.js';
import { ApBusError, fail } from './errors.js';
import {
  AP_DEFAULT_MAX_MSG_SIZE,
  DEFAULT_QUEUE_DEPTH,
  cardTypeString,
  functionsForMode,
  isSupportedHwtype,
  type CardModeLetter,
} from './hardware.js';
import { HostLoad } from './host-load.js';
import { cString, kstrtobool, scanInt } from './kernel-text.js';
import { MatrixMdevs, type MatrixMdev, type VfioApHost } from './matrix-mdevs.js';
import { profileFeatures, type KernelProfile, type ProfileFeatures } from './profile.js';

export type ApDriverName = 'cex4card' | 'cex4queue' | 'vfio_ap';
export type QueueDriverName = 'cex4queue' | 'vfio_ap';
export const AP_DRIVERS: readonly ApDriverName[] = ['cex4card', 'cex4queue', 'vfio_ap'];

// Queue driver codes in the per-queue array.
const NONE = 0;
const CEX4QUEUE = 1;
const VFIO_AP = 2;
const QUEUE_DRIVER_NAMES = ['', 'cex4queue', 'vfio_ap'] as const;

const PAGE_SIZE = 4096;
const DEFAULT_CONFIG_TIME = 30;
const DEFAULT_POLL_TIMEOUT = 250000;
const MAX_POLL_TIMEOUT = 120_000_000_000;

export interface CardSpec {
  readonly id: number;
  readonly hwtype: number;
  readonly mode: CardModeLetter;
  /** Usage domains the card has queues for. */
  readonly domains: readonly number[];
  readonly depth?: number;
}

/** A card device as the model keeps it. */
class Card {
  readonly functions: number;
  readonly depth: number;
  readonly domainFlags = new Uint8Array(256);
  config = true;
  chkstop = false;
  /** Bound to cex4card (the zcrypt card exists). */
  bound = false;
  /** zcrypt card online flag (zc->online). */
  zcOnline = true;
  requestCount = 0;

  constructor(readonly spec: CardSpec) {
    this.functions = functionsForMode(spec.mode);
    this.depth = spec.depth ?? DEFAULT_QUEUE_DEPTH;
    for (const d of spec.domains) this.domainFlags[d] = 1;
  }

  get id(): number {
    return this.spec.id;
  }
  get hwtype(): number {
    return this.spec.hwtype;
  }
  get mode(): CardModeLetter {
    return this.spec.mode;
  }
}

export interface CardState {
  readonly id: number;
  readonly hwtype: number;
  readonly rawHwtype: number;
  readonly mode: CardModeLetter;
  /** zcrypt's name ('CEX8P'), or null for types no modelled driver knows. */
  readonly type: string | null;
  readonly functions: number;
  readonly depth: number;
  readonly maxMessageSize: number;
  readonly config: boolean;
  readonly chkstop: boolean;
  /** Driver bound to the card device ('cex4card' or ''). */
  readonly driver: '' | 'cex4card';
  /** What the card's `online` reads (meaningful while bound). */
  readonly online: boolean;
  readonly requestCount: number;
  readonly requestqCount: number;
  readonly pendingqCount: number;
}

export interface QueueState {
  readonly apqn: Apqn;
  readonly driver: '' | QueueDriverName;
  /** What `online` reads while bound to cex4queue. */
  readonly online: boolean;
  readonly config: boolean;
  readonly chkstop: boolean;
  readonly requestqCount: number;
  readonly pendingqCount: number;
  readonly requestCount: number;
  /** Resets (RAPQ) and reset-and-zeroize operations (ZAPQ) the queue went through. */
  readonly resets: number;
  readonly zeroizes: number;
  /** driver_override (6.19), null when none. */
  readonly driverOverride: string | null;
}

export interface ModelStats {
  /** Host requests handed back with EAGAIN (queue removed from the host driver, reset, offline). */
  eagainReturned: number;
  /** Of those, how many zcrypt could retry on another eligible queue. */
  retried: number;
}

export interface ApBusModelOptions {
  readonly clock?: Clock;
}

export class ApBusModel {
  readonly name: string;
  readonly profile: KernelProfile;
  readonly features: ProfileFeatures;
  readonly maxAdapterId: number;
  readonly maxDomainId: number;
  readonly clock: Clock;
  readonly stats: ModelStats = { eagainReturned: 0, retried: 0 };
  readonly mdevs: MatrixMdevs;

  readonly #cards = new Map<number, Card>();
  #cardIds: number[] = [];
  readonly #unplugged = new Map<number, CardSpec>();
  readonly #configDomains = new Uint8Array(256);
  #controlDomains: Mask;

  #apmask = Mask.all();
  #aqmask = Mask.all();
  readonly #apmFlags = new Uint8Array(256).fill(1);
  readonly #aqmFlags = new Uint8Array(256).fill(1);

  // Per queue, indexed by apqnIndex.
  readonly #present = new Uint8Array(65536);
  readonly #driver = new Uint8Array(65536);
  readonly #zqOnline = new Uint8Array(65536);
  /** dev_state > AP_DEV_STATE_UNINITIATED: set when the bus creates an operational queue
   *  (ap_scan_domains) and when cex4queue probes it (ap_queue_init_state); cleared by every
   *  driver removal (ap_queue_remove). vfio_ap never initiates a queue. While uninitiated,
   *  request_count reads "-" and the queue counters read 0. */
  readonly #initiated = new Uint8Array(65536);
  readonly #requestCount = new Float64Array(65536);
  readonly #resets = new Uint32Array(65536);
  readonly #zeroizes = new Uint32Array(65536);
  readonly #overrides = new Map<number, string>();
  readonly #load = new HostLoad();
  #queueCount = 0;
  #boundCount = 0;

  #generation = 0;
  /** Scans up to #scanTimerStart; the AP bus timer adds one every config_time seconds after. */
  #scans = 0;
  #scanTimerStart = 0;
  #apDomain = -1;
  #configTime = DEFAULT_CONFIG_TIME;
  #pollTimeout = DEFAULT_POLL_TIMEOUT;
  #pollThread = false;
  #autoprobe = true;

  private constructor(node: NodeTopology, clock: Clock) {
    this.name = node.name;
    this.profile = node.kernel;
    this.features = profileFeatures(node.kernel);
    this.maxAdapterId = node.maxAdapterId;
    this.maxDomainId = node.maxDomainId;
    this.clock = clock;
    this.#controlDomains = Mask.of(node.controlDomains.filter((d) => d <= node.maxDomainId));
    this.mdevs = new MatrixMdevs(this.#vfioHost());
    for (const c of node.cards) {
      for (const d of c.domains) this.#configDomains[d] = 1;
      this.#cards.set(c.id, new Card({ id: c.id, hwtype: c.hwtype, mode: c.mode, domains: c.domains }));
    }
    this.#sortCardIds();
    this.#boot(node.apmask, node.aqmask);
  }

  /** A booted node as the topology describes it, with its initial host load in flight. */
  static fromTopology(node: NodeTopology, opts: ApBusModelOptions = {}): ApBusModel {
    const model = new ApBusModel(node, opts.clock ?? new ManualClock());
    for (const load of node.hostLoad) {
      try {
        model.addHostLoad(load.apqn, load.pendingRequests, load.drainsAfterSeconds ?? undefined);
      } catch (err) {
        if (!(err instanceof ApBusError)) throw err;
        throw new ApbusInputError(
          `node ${node.name}: hostLoad ${formatApqn(load.apqn)}: the queue is not bound to the host driver at boot (check apmask/aqmask)`,
        );
      }
    }
    return model;
  }

  // ====================================================================== bus-wide state

  /** Bumped on every change of devices, bindings, masks or mdevs. */
  get generation(): number {
    return this.#generation;
  }

  /** bus/ap/scans: AP bus scans since boot. Like the kernel's ap_scan_bus_timer, the model
   *  scans every config_time seconds of its clock (nothing changes unless hardware did). */
  get scans(): number {
    const elapsed = this.clock.now() - this.#scanTimerStart;
    return this.#scans + (elapsed > 0 ? Math.floor(elapsed / this.#configTime) : 0);
  }

  get apmask(): Mask {
    return this.#apmask;
  }

  get aqmask(): Mask {
    return this.#aqmask;
  }

  /** QCI adapter mask (ap_adapter_mask): the adapters in the host's configuration. */
  adapterConfigMask(): Mask {
    return Mask.of(this.#cardIds.filter((a) => a <= this.maxAdapterId));
  }

  /** QCI usage domain mask (ap_usage_domain_mask). */
  usageDomainMask(): Mask {
    const bits: number[] = [];
    for (let d = 0; d <= this.maxDomainId; d++) if (this.#configDomains[d]) bits.push(d);
    return Mask.of(bits);
  }

  /** QCI control domain mask (ap_control_domain_mask). */
  controlDomainMask(): Mask {
    return this.#controlDomains;
  }

  get apDomain(): number {
    return this.#apDomain;
  }
  get configTime(): number {
    return this.#configTime;
  }
  get pollTimeout(): number {
    return this.#pollTimeout;
  }
  get pollThread(): boolean {
    return this.#pollThread;
  }
  get driversAutoprobe(): boolean {
    return this.#autoprobe;
  }

  /** bindings_show(): queue devices with a driver / all queue devices. */
  bindings(): { bound: number; total: number; complete: boolean } {
    return {
      bound: this.#boundCount,
      total: this.#queueCount,
      complete: this.scans >= 1 && this.#boundCount === this.#queueCount,
    };
  }

  // ====================================================================== devices

  /** Card ids present on the bus, ascending. */
  cardIds(): readonly number[] {
    return this.#cardIds;
  }

  card(id: number): CardState | undefined {
    const card = this.#cards.get(id);
    if (!card) return undefined;
    this.#settle();
    let requestq = 0;
    let pendingq = 0;
    for (const d of this.#presentDomains(card)) {
      const idx = id * 256 + d;
      if (this.#driver[idx] === NONE) continue; // only probed queues are in ap_queues
      const c = this.#counts(card, idx);
      requestq += c.requestq;
      pendingq += c.pendingq;
    }
    return {
      id,
      hwtype: card.hwtype,
      rawHwtype: card.hwtype,
      mode: card.mode,
      type: isSupportedHwtype(card.hwtype) ? cardTypeString(card.hwtype, card.mode) : null,
      functions: card.functions,
      depth: card.depth,
      maxMessageSize: AP_DEFAULT_MAX_MSG_SIZE,
      config: card.config,
      chkstop: card.chkstop,
      driver: card.bound ? 'cex4card' : '',
      online: card.config && !card.chkstop && card.zcOnline,
      requestCount: card.requestCount,
      requestqCount: requestq,
      pendingqCount: pendingq,
    };
  }

  hasCard(id: number): boolean {
    return this.#cards.has(id);
  }

  /** Driver of a card device: 'cex4card' or '' (cheap; no counters). */
  cardDriver(id: number): '' | 'cex4card' {
    return this.#cards.get(id)?.bound ? 'cex4card' : '';
  }

  /** Driver of a queue device, '' when it has none or does not exist (cheap). */
  queueDriver(adapter: number, domain: number): '' | QueueDriverName {
    if (!this.queueExists(adapter, domain)) return '';
    return QUEUE_DRIVER_NAMES[this.#driver[adapter * 256 + domain]!]!;
  }

  /** Domains with a queue device on this card, ascending. */
  queueDomains(adapter: number): number[] {
    const card = this.#cards.get(adapter);
    return card ? this.#presentDomains(card) : [];
  }

  queueExists(adapter: number, domain: number): boolean {
    return this.#validId(adapter, domain) && this.#present[adapter * 256 + domain] === 1;
  }

  queue(apqn: Apqn): QueueState | undefined {
    const { adapter, domain } = apqn;
    if (!this.queueExists(adapter, domain)) return undefined;
    this.#settle();
    const idx = adapter * 256 + domain;
    const card = this.#cards.get(adapter)!;
    const c = this.#counts(card, idx);
    return {
      apqn: { adapter, domain },
      driver: QUEUE_DRIVER_NAMES[this.#driver[idx]!]!,
      online: card.config && !card.chkstop && this.#zqOnline[idx] === 1,
      config: card.config,
      chkstop: card.chkstop,
      requestqCount: c.requestq,
      pendingqCount: c.pendingq,
      requestCount: this.#requestCount[idx]!,
      resets: this.#resets[idx]!,
      zeroizes: this.#zeroizes[idx]!,
      driverOverride: this.#overrides.get(idx) ?? null,
    };
  }

  /** One counter of an existing queue, without building a QueueState (attribute reads). */
  queueCounter(adapter: number, domain: number, which: 'requestq' | 'pendingq' | 'request'): number {
    const idx = adapter * 256 + domain;
    if (!this.#initiated[idx]) return 0;
    if (which === 'request') return this.#requestCount[idx]!;
    this.#settle();
    const c = this.#counts(this.#cards.get(adapter)!, idx);
    return which === 'requestq' ? c.requestq : c.pendingq;
  }

  /** Whether the queue's state machine is initiated (see #initiated): request_count reads
   *  "-" when it is not. */
  queueInitiated(adapter: number, domain: number): boolean {
    return this.#initiated[adapter * 256 + domain] === 1;
  }

  /** One state flag of an existing queue, without building a QueueState. */
  queueFlag(adapter: number, domain: number, which: 'online' | 'config' | 'chkstop'): boolean {
    const card = this.#cards.get(adapter)!;
    if (which === 'config') return card.config;
    if (which === 'chkstop') return card.chkstop;
    return card.config && !card.chkstop && this.#zqOnline[adapter * 256 + domain] === 1;
  }

  /** Names of the devices bound to a driver ('card05', '05.0004'), ascending. */
  boundDevices(driver: ApDriverName): string[] {
    if (driver === 'cex4card') return this.#cardIds.filter((a) => this.#cards.get(a)!.bound).map(cardName);
    const code = driver === 'cex4queue' ? CEX4QUEUE : VFIO_AP;
    const out: string[] = [];
    for (const a of this.#cardIds) {
      for (const d of this.#presentDomains(this.#cards.get(a)!)) {
        if (this.#driver[a * 256 + d] === code) out.push(queueName(a, d));
      }
    }
    return out;
  }

  /** `reset` attribute text (reset_show). */
  queueResetText(adapter: number, domain: number): string {
    this.#settle();
    const idx = adapter * 256 + domain;
    const working = this.#driver[idx] === CEX4QUEUE && this.#load.inFlight(idx) > 0;
    return working ? 'Reset Timer armed.\n' : 'No Reset Timer set.\n';
  }

  /** `interrupt` attribute text (interrupt_show): the AP bus enables interrupts on queues it
   *  drives (cex4queue); queues handed to vfio_ap are left to the guest. */
  queueInterruptText(adapter: number, domain: number): string {
    const card = this.#cards.get(adapter)!;
    const enabled = this.#driver[adapter * 256 + domain] === CEX4QUEUE && card.config && !card.chkstop;
    return enabled ? 'Interrupts enabled.\n' : 'Interrupts disabled.\n';
  }

  // ====================================================================== store: bus/ap

  /** apmask_store(): parse (EINVAL) -> [6.19: any driver_override set -> EINVAL] -> unchanged
   *  (done) -> newly set adapters checked against every mdev (__verify_card_reservations ->
   *  vfio_ap in_use: EBUSY) -> commit -> ap_bus_revise_bindings(). */
  storeApmask(raw: string): void {
    this.#storeMask('apmask', raw);
  }

  /** aqmask_store(): as apmask_store, for domains. */
  storeAqmask(raw: string): void {
    this.#storeMask('aqmask', raw);
  }

  /** ap_domain_store(): sscanf "%i", 0..ap_max_domain_id and in aqmask, else EINVAL. */
  storeApDomain(raw: string): void {
    const d = scanInt(raw, 'i');
    if (d === null || d < 0 || d > this.maxDomainId || !this.#aqmFlags[d]) fail('EINVAL', 'not a usable domain');
    this.#apDomain = d;
    this.#touch();
  }

  /** config_time_store(): sscanf "%d", 5..120 seconds. */
  storeConfigTime(raw: string): void {
    const t = scanInt(raw, 'd');
    if (t === null || t < 5 || t > 120) fail('EINVAL', 'config_time is 5..120 seconds');
    this.#restartScanTimer();
    this.#configTime = t;
  }

  /** poll_timeout_store(): kstrtoul, at most 120 s in nanoseconds. */
  storePollTimeout(raw: string): void {
    const v = parseNumber(raw);
    if (v > MAX_POLL_TIMEOUT) fail('EINVAL', 'poll_timeout is at most 120000000000 ns');
    this.#pollTimeout = v;
  }

  /** poll_thread_store(): kstrtobool. */
  storePollThread(raw: string): void {
    const v = kstrtobool(raw);
    if (v === null) fail('EINVAL', 'poll_thread takes 0 or 1');
    this.#pollThread = v;
  }

  /** scans_store(): any write forces a bus rescan. */
  storeScans(_raw: string): void {
    this.rescan();
  }

  /** drivers_autoprobe_store(): '0' turns probing of new devices off, anything else on. */
  storeDriversAutoprobe(raw: string): void {
    this.#autoprobe = raw[0] !== '0';
  }

  /** drivers_probe_store(): probe a driverless device by name (ENODEV if there is none). */
  storeDriversProbe(raw: string): void {
    const dev = this.#findDevice(raw);
    if (!dev) fail('ENODEV', 'no such AP device');
    if (dev.kind === 'card') {
      if (!dev.card.bound && isSupportedHwtype(dev.card.hwtype)) this.#bindCard(dev.card);
    } else if (this.#driver[dev.index] === NONE) {
      this.#attach(dev.index);
    }
  }

  /** A bus scan: nothing new to find in the model, but the counter moves and a default domain
   *  is chosen if there is none (ap_scan_bus). */
  rescan(): void {
    this.#restartScanTimer();
    this.#scans++;
    if (this.#apDomain < 0) this.#apDomain = this.#selectDomain();
    this.#touch();
  }

  // ====================================================================== store: drivers

  /** bind_store() (drivers/base/bus.c): no such device or the driver does not match its type
   *  -> ENODEV; already bound -> EBUSY; ap_device_probe() refuses (wrong side of the masks
   *  or of a driver_override) -> ENODEV. */
  bind(driver: ApDriverName, raw: string): void {
    const dev = this.#findDevice(raw);
    if (!dev || !this.#driverMatches(driver, dev)) fail('ENODEV', `no ${driver} device ${JSON.stringify(cString(raw))}`);
    if (dev.kind === 'card') {
      if (dev.card.bound) fail('EBUSY', `${cardName(dev.card.id)} is bound`);
      this.#bindCard(dev.card);
      return;
    }
    if (this.#driver[dev.index] !== NONE) fail('EBUSY', `${queueName(dev.index >> 8, dev.index & 255)} is bound`);
    const code = driver === 'cex4queue' ? CEX4QUEUE : VFIO_AP;
    if (this.#ownerOf(dev.index) !== code) fail('ENODEV', `${driver} may not take this queue (apmask/aqmask or driver_override)`);
    this.#bindQueue(dev.index, code);
  }

  /** unbind_store(): detach if bound to this driver (never refused), else ENODEV. */
  unbind(driver: ApDriverName, raw: string): void {
    const dev = this.#findDevice(raw);
    if (!dev) fail('ENODEV', 'no such AP device');
    if (dev.kind === 'card') {
      if (driver !== 'cex4card' || !dev.card.bound) fail('ENODEV', `not bound to ${driver}`);
      dev.card.bound = false;
      this.#touch();
      return;
    }
    const code = driver === 'cex4queue' ? CEX4QUEUE : driver === 'vfio_ap' ? VFIO_AP : -1;
    if (this.#driver[dev.index] !== code) fail('ENODEV', `not bound to ${driver}`);
    this.#release(dev.index, true);
  }

  // ====================================================================== store: card attrs

  /** ap_card.c config_store(): sscanf "%d" 0/1, then SCLP (de)configures the adapter. */
  storeCardConfig(adapter: number, raw: string): void {
    const v = scanInt(raw, 'd');
    if (v === null || v < 0 || v > 1) fail('EINVAL', 'config takes 0 or 1');
    this.setCardConfig(adapter, v === 1);
  }

  /** zcrypt_card.c online_store(): 0/1 (EINVAL); online needs a configured, running card
   *  (ENODEV); the card's queues follow (zcrypt_queue_force_online). */
  storeCardOnline(adapter: number, raw: string): void {
    const card = this.#cardOrFail(adapter);
    const v = scanInt(raw, 'd');
    if (v === null || v < 0 || v > 1) fail('EINVAL', 'online takes 0 or 1');
    if (v === 1 && (!card.config || card.chkstop)) fail('ENODEV', 'the card is deconfigured or checkstopped');
    card.zcOnline = v === 1;
    for (const d of this.#presentDomains(card)) {
      const idx = adapter * 256 + d;
      if (this.#driver[idx] !== CEX4QUEUE) continue;
      this.#zqOnline[idx] = v;
      if (v === 0) this.#flush(idx);
    }
    this.#touch();
  }

  /** request_count_store(): any write zeroes the card's and its queues' counters. */
  storeCardRequestCount(adapter: number, _raw: string): void {
    const card = this.#cardOrFail(adapter);
    card.requestCount = 0;
    for (const d of this.#presentDomains(card)) {
      const idx = adapter * 256 + d;
      if (this.#driver[idx] !== NONE) this.#requestCount[idx] = 0;
    }
  }

  // ====================================================================== store: queue attrs

  /** zcrypt_queue.c online_store(): 0/1 (EINVAL); online needs config and no checkstop
   *  (ENODEV) and an online card (EINVAL); offline hands requests back. */
  storeQueueOnline(adapter: number, domain: number, raw: string): void {
    const idx = this.#queueIndexOrFail(adapter, domain);
    const card = this.#cards.get(adapter)!;
    const v = scanInt(raw, 'd');
    if (v === null || v < 0 || v > 1) fail('EINVAL', 'online takes 0 or 1');
    if (v === 1 && (!card.config || card.chkstop)) fail('ENODEV', 'the queue is deconfigured or checkstopped');
    if (v === 1 && !card.zcOnline) fail('EINVAL', 'the card is offline');
    this.#zqOnline[idx] = v;
    if (v === 0) this.#flush(idx);
    this.#touch();
  }

  /** ap_queue.c reset_store(): flush (EAGAIN) and reset the queue; any text. */
  storeQueueReset(adapter: number, domain: number, _raw: string): void {
    const idx = this.#queueIndexOrFail(adapter, domain);
    this.#flush(idx);
    this.#resets[idx]!++;
    this.#touch();
  }

  storeQueueRequestCount(adapter: number, domain: number, _raw: string): void {
    this.#requestCount[this.#queueIndexOrFail(adapter, domain)] = 0;
  }

  /** driver_override_store() (6.19): EINVAL unless both masks are all ones; then
   *  driver_set_override(): up to the first newline, '' or '\n' clears. Does not rebind: the
   *  override decides the next probe (unbind + bind, or drivers_probe). */
  storeDriverOverride(adapter: number, domain: number, raw: string): void {
    const idx = this.#queueIndexOrFail(adapter, domain);
    if (!this.features.driverOverride) fail('ENOENT', 'this kernel has no driver_override');
    if (!this.#apmask.isAll() || !this.#aqmask.isAll()) fail('EINVAL', 'driver_override needs apmask and aqmask all ones');
    if (raw.length >= PAGE_SIZE - 1) fail('EINVAL', 'driver_override is too long');
    const s = cString(raw);
    const nl = s.indexOf('\n');
    const name = nl === -1 ? s : s.slice(0, nl);
    if (name === '') this.#overrides.delete(idx);
    else this.#overrides.set(idx, name);
    this.#touch();
  }

  // ====================================================================== vfio_ap mdevs

  /** mdev_supported_types/vfio_ap-passthrough/create. */
  createMdev(raw: string): MatrixMdev {
    return this.mdevs.create(raw);
  }

  // ====================================================================== test hooks

  /** A KVM guest opens the mdev (model-only: no sysfs file does this). */
  attachGuest(uuid: string): void {
    this.mdevs.attachGuest(this.#mdevOrFail(uuid));
  }

  /** The guest closes the mdev: its queues are reset and zeroized. */
  detachGuest(uuid: string): void {
    this.mdevs.detachGuest(this.#mdevOrFail(uuid));
  }

  /** Host (zcrypt) requests on a queue bound to cex4queue and online; they complete after
   *  `drainsAfterSeconds` on the model's clock (never, if omitted). ENODEV if zcrypt could
   *  not send to that queue. */
  addHostLoad(apqn: Apqn, requests: number, drainsAfterSeconds?: number): void {
    if (!Number.isInteger(requests) || requests < 1) throw new RangeError(`requests must be a positive integer, got ${requests}`);
    if (drainsAfterSeconds !== undefined && !(drainsAfterSeconds >= 0)) {
      throw new RangeError(`drainsAfterSeconds must be >= 0, got ${drainsAfterSeconds}`);
    }
    const idx = apqnIndex(apqn.adapter, apqn.domain);
    if (!this.queueExists(apqn.adapter, apqn.domain) || !this.#eligibleForLoad(idx)) {
      fail('ENODEV', `${formatApqn(apqn)} is not an online queue of the host driver`);
    }
    const drainAt = drainsAfterSeconds === undefined ? Infinity : this.clock.now() + drainsAfterSeconds;
    this.#load.add(idx, { count: requests, drainAt });
    this.#requestCount[idx]! += requests;
    this.#cards.get(apqn.adapter)!.requestCount += requests;
  }

  /** Advances the clock (when it is a ManualClock) and completes due host requests. */
  tick(seconds: number): void {
    if (this.clock instanceof ManualClock) this.clock.advance(seconds);
    this.#settle();
  }

  /** Hot-unplug: the card and its queues disappear; host requests go back with EAGAIN;
   *  mdevs keep the APQNs in `matrix` (they leave the guest view). */
  removeCard(id: number): void {
    const card = this.#cardOrFail(id);
    for (const d of this.#presentDomains(card)) this.#unregisterQueue(id * 256 + d);
    card.bound = false;
    this.#cards.delete(id);
    this.#unplugged.set(id, card.spec);
    this.#sortCardIds();
    this.#scanned();
  }

  /** Hot-plug a new card; its queues are probed by whoever owns them. */
  addCard(spec: CardSpec): void {
    if (!Number.isInteger(spec.id) || spec.id < 0 || spec.id > this.maxAdapterId) {
      throw new RangeError(`card id ${spec.id} is not 0..${this.maxAdapterId}`);
    }
    if (this.#cards.has(spec.id)) throw new ApBusError('EEXIST', `card ${cardName(spec.id)} is present`);
    for (const d of spec.domains) if (!Number.isInteger(d) || d < 0 || d > 255) throw new RangeError(`domain ${d} is not 0..255`);
    const card = new Card(spec);
    this.#cards.set(spec.id, card);
    this.#unplugged.delete(spec.id);
    this.#sortCardIds();
    if (this.#autoprobe && isSupportedHwtype(card.hwtype)) card.bound = true;
    for (const d of spec.domains) this.#registerQueue(card, d);
    this.#scanned();
  }

  /** Plug a removed card back in (same type and domains). */
  replugCard(id: number): void {
    const spec = this.#unplugged.get(id);
    if (!spec) throw new ApBusError('ENODEV', `card ${cardName(id)} was not unplugged`);
    this.addCard(spec);
  }

  /** SCLP (de)configure an adapter. A deconfigured card keeps its devices and bindings;
   *  `online` reads 0 and host requests go back with EAGAIN. */
  setCardConfig(id: number, config: boolean): void {
    const card = this.#cardOrFail(id);
    if (card.config === config) return;
    card.config = config;
    this.#cardStateChanged(card, config);
  }

  /** Checkstop on/off for an adapter (as the next bus scan sees it). */
  setCheckstop(id: number, chkstop: boolean): void {
    const card = this.#cardOrFail(id);
    if (card.chkstop === chkstop) return;
    card.chkstop = chkstop;
    this.#cardStateChanged(card, !chkstop);
  }

  /** A usage domain leaves the host configuration: its queues disappear on every card. */
  removeDomain(domain: number): void {
    if (!this.#configDomains[domain]) return;
    for (const a of this.#cardIds) {
      const idx = a * 256 + domain;
      if (this.#present[idx]) this.#unregisterQueue(idx);
    }
    this.#configDomains[domain] = 0;
    this.#scanned();
  }

  /** A usage domain (re)joins the host configuration; `onCards` also gives it to those cards. */
  addDomain(domain: number, onCards: readonly number[] = []): void {
    if (!Number.isInteger(domain) || domain < 0 || domain > 255) throw new RangeError(`domain ${domain} is not 0..255`);
    for (const a of onCards) this.#cardOrFail(a).domainFlags[domain] = 1;
    this.#configDomains[domain] = 1;
    for (const a of this.#cardIds) this.#registerQueue(this.#cards.get(a)!, domain);
    this.#scanned();
  }

  /** Reboot: masks all ones, no mdevs, no overrides, no host load, every queue probed anew. */
  reboot(): void {
    this.mdevs.clear();
    this.#overrides.clear();
    this.#load.clear();
    this.#configTime = DEFAULT_CONFIG_TIME;
    this.#pollTimeout = DEFAULT_POLL_TIMEOUT;
    this.#pollThread = false;
    this.#autoprobe = true;
    this.#apDomain = -1;
    this.#scans = 0;
    for (const card of this.#cards.values()) {
      card.bound = false;
      card.zcOnline = true;
      card.requestCount = 0;
      for (const d of this.#presentDomains(card)) {
        const idx = card.id * 256 + d;
        this.#requestCount[idx] = 0;
        if (this.#driver[idx] !== NONE) {
          this.#driver[idx] = NONE;
          this.#zqOnline[idx] = 0;
          this.#boundCount--;
        }
      }
    }
    this.#boot(Mask.all(), Mask.all());
  }

  // ====================================================================== internals

  #boot(apmask: Mask, aqmask: Mask): void {
    this.#setMask('apmask', apmask);
    this.#setMask('aqmask', aqmask);
    for (const a of this.#cardIds) {
      const card = this.#cards.get(a)!;
      if (isSupportedHwtype(card.hwtype)) card.bound = true;
      for (let d = 0; d < 256; d++) {
        const idx = a * 256 + d;
        if (!this.#present[idx]) this.#registerQueue(card, d);
        else if (this.#driver[idx] === NONE) this.#attach(idx);
      }
    }
    this.#scans = 1;
    this.#scanTimerStart = this.clock.now();
    this.#apDomain = this.#selectDomain();
    this.#touch();
  }

  #storeMask(kind: 'apmask' | 'aqmask', raw: string): void {
    const current = kind === 'apmask' ? this.#apmask : this.#aqmask;
    let next: Mask;
    try {
      next = applyMaskWrite(current, raw); // ap_parse_bitmap_str()
    } catch (err) {
      if (err instanceof KernelParseError) fail('EINVAL', err.message);
      throw err;
    }
    // 6.19: "apmask and aqmask modifications are only allowed when there is no
    // driver_override on any AP device active" (ap_driver_override_ctr).
    if (this.features.driverOverride && this.#overrides.size > 0) fail('EINVAL', 'a driver_override is set');
    if (next.equals(current)) return;
    const added = next.minus(current);
    if (!added.isNone()) {
      // apmask_commit()/aqmask_commit(): vfio_ap's in_use() on the newly reserved bits,
      // crossed with the other mask (6.19: with all bits of it).
      const other = this.features.inUseCheckAllBits ? Mask.all() : kind === 'apmask' ? this.#aqmask : this.#apmask;
      const inUse = kind === 'apmask' ? this.mdevs.resourceInUse(added, other) : this.mdevs.resourceInUse(other, added);
      if (inUse) fail('EBUSY', `an APQN the write would give to the host is assigned to an mdev`);
    }
    const changed = next.minus(current).or(current.minus(next)).bits();
    this.#setMask(kind, next);
    this.#touch();
    // ap_bus_revise_bindings(): reprobe every queue whose owner changed.
    if (kind === 'apmask') {
      for (const a of changed) {
        const card = this.#cards.get(a);
        if (card) for (const d of this.#presentDomains(card)) this.#revise(a * 256 + d);
      }
    } else {
      for (const a of this.#cardIds) {
        for (const d of changed) {
          const idx = a * 256 + d;
          if (this.#present[idx]) this.#revise(idx);
        }
      }
    }
  }

  #setMask(kind: 'apmask' | 'aqmask', mask: Mask): void {
    const flags = kind === 'apmask' ? this.#apmFlags : this.#aqmFlags;
    flags.fill(0);
    for (const b of mask.bits()) flags[b] = 1;
    if (kind === 'apmask') this.#apmask = mask;
    else this.#aqmask = mask;
  }

  /** Which driver ap_device_probe() lets take the queue: none for types no driver knows;
   *  the driver_override when one is set (6.19); else cex4queue exactly when the adapter bit
   *  is set in apmask and the domain bit in aqmask, vfio_ap otherwise. */
  #ownerOf(idx: number): number {
    const card = this.#cards.get(idx >> 8)!;
    if (!isSupportedHwtype(card.hwtype)) return NONE;
    if (this.features.driverOverride) {
      const override = this.#overrides.get(idx);
      if (override !== undefined) return override === 'cex4queue' ? CEX4QUEUE : override === 'vfio_ap' ? VFIO_AP : NONE;
    }
    return this.#apmFlags[idx >> 8] && this.#aqmFlags[idx & 255] ? CEX4QUEUE : VFIO_AP;
  }

  /** __ap_revise_reserved(): a queue on the wrong side is removed from its driver and probed
   *  by the right one. */
  #revise(idx: number): void {
    const want = this.#ownerOf(idx);
    const have = this.#driver[idx]!;
    if (have === want) return;
    if (have !== NONE) this.#release(idx, true);
    if (want !== NONE) this.#bindQueue(idx, want);
  }

  /** device_attach(): the matching driver whose probe accepts the queue. */
  #attach(idx: number): void {
    const want = this.#ownerOf(idx);
    if (want !== NONE) this.#bindQueue(idx, want);
  }

  #bindQueue(idx: number, code: number): void {
    this.#driver[idx] = code;
    this.#boundCount++;
    if (code === CEX4QUEUE) {
      this.#initiated[idx] = 1;
      this.#zqOnline[idx] = 1; // zcrypt_queue_register(): new devices are online
      this.#resets[idx]!++; // ap_queue_init_state(): the AP bus resets a queue it takes
    }
    this.#touch();
  }

  /** ap_device_remove(): cex4queue hands requests back (EAGAIN) and the bus resets and
   *  zeroizes the queue (ap_queue_remove: ZAPQ); vfio_ap resets and zeroizes it
   *  (vfio_ap_mdev_remove_queue). No reset when the hardware is gone. */
  #release(idx: number, hardwarePresent: boolean): void {
    const had = this.#driver[idx];
    this.#driver[idx] = NONE;
    this.#boundCount--;
    this.#initiated[idx] = 0; // ap_queue_remove()
    if (had === CEX4QUEUE) {
      this.#zqOnline[idx] = 0;
      this.#flush(idx);
    }
    if (hardwarePresent) this.#zeroizes[idx]!++;
    this.#touch();
  }

  #bindCard(card: Card): void {
    card.bound = true;
    card.zcOnline = true;
    this.#touch();
  }

  #registerQueue(card: Card, d: number): void {
    const idx = card.id * 256 + d;
    if (this.#present[idx] || !this.#queueShouldExist(card, d)) return;
    this.#present[idx] = 1;
    this.#queueCount++;
    // ap_scan_domains(): a new queue that is configured and not checkstopped is initiated.
    this.#initiated[idx] = card.config && !card.chkstop ? 1 : 0;
    if (this.#autoprobe) this.#attach(idx);
    this.#touch();
  }

  #unregisterQueue(idx: number): void {
    if (!this.#present[idx]) return;
    if (this.#driver[idx] !== NONE) this.#release(idx, false);
    this.#load.take(idx);
    this.#overrides.delete(idx);
    this.#present[idx] = 0;
    this.#queueCount--;
    this.#touch();
  }

  #queueShouldExist(card: Card, d: number): boolean {
    return card.id <= this.maxAdapterId && d <= this.maxDomainId && card.domainFlags[d] === 1 && this.#configDomains[d] === 1;
  }

  #presentDomains(card: Card): number[] {
    const out: number[] = [];
    const base = card.id * 256;
    for (let d = 0; d <= this.maxDomainId; d++) if (this.#present[base + d]) out.push(d);
    return out;
  }

  #cardStateChanged(card: Card, operational: boolean): void {
    for (const d of this.#presentDomains(card)) {
      const idx = card.id * 256 + d;
      if (this.#driver[idx] !== CEX4QUEUE) continue;
      if (operational) this.#resets[idx]!++; // _ap_queue_init_state()
      else this.#flush(idx); // ap_flush_queue(): 'received' with -EAGAIN
    }
    this.#scanned();
  }

  /** ap_flush_queue(): requests in flight go back to zcrypt with EAGAIN, which retries each
   *  on the least busy other online host queue of the same domain and card mode, if any. */
  #flush(idx: number): void {
    const batches = this.#load.take(idx);
    if (batches.length === 0) return;
    const mode = this.#cards.get(idx >> 8)!.mode;
    for (const batch of batches) {
      this.stats.eagainReturned += batch.count;
      const target = this.#retryTarget(idx, mode);
      if (target < 0) continue;
      this.stats.retried += batch.count;
      this.#load.add(target, { ...batch });
      this.#requestCount[target]! += batch.count;
      this.#cards.get(target >> 8)!.requestCount += batch.count;
    }
  }

  #retryTarget(from: number, mode: CardModeLetter): number {
    const d = from & 255;
    let best = -1;
    let bestLoad = Infinity;
    for (const a of this.#cardIds) {
      const idx = a * 256 + d;
      if (idx === from || !this.#present[idx] || this.#cards.get(a)!.mode !== mode || !this.#eligibleForLoad(idx)) continue;
      const load = this.#load.inFlight(idx);
      if (load < bestLoad) {
        best = idx;
        bestLoad = load;
      }
    }
    return best;
  }

  /** Could zcrypt send a request to this queue? */
  #eligibleForLoad(idx: number): boolean {
    const card = this.#cards.get(idx >> 8);
    return (
      card !== undefined &&
      this.#driver[idx] === CEX4QUEUE &&
      this.#zqOnline[idx] === 1 &&
      card.bound &&
      card.zcOnline &&
      card.config &&
      !card.chkstop
    );
  }

  #counts(card: Card, idx: number): { requestq: number; pendingq: number } {
    const inFlight = this.#load.inFlight(idx);
    const pendingq = Math.min(inFlight, card.depth);
    return { requestq: inFlight - pendingq, pendingq };
  }

  /** Completes host requests that are due. */
  #settle(): void {
    this.#load.drain(this.clock.now());
  }

  /** ap_select_domain(): the first usable domain with a usable queue on a host adapter. */
  #selectDomain(): number {
    for (let d = 0; d <= this.maxDomainId; d++) {
      if (!this.#configDomains[d] || !this.#aqmFlags[d]) continue;
      for (const a of this.#cardIds) {
        const card = this.#cards.get(a)!;
        if (this.#apmFlags[a] && this.#present[a * 256 + d] && card.config && !card.chkstop) return d;
      }
    }
    return -1;
  }

  /** mod_timer() at the end of a scan or on a config_time write: periodic scans so far are
   *  counted, the next one is config_time seconds away. */
  #restartScanTimer(): void {
    this.#scans = this.scans;
    this.#scanTimerStart = this.clock.now();
  }

  #scanned(): void {
    this.#restartScanTimer();
    this.#scans++;
    this.#touch();
  }

  #touch(): void {
    this.#generation++;
  }

  #sortCardIds(): void {
    this.#cardIds = [...this.#cards.keys()].sort((a, b) => a - b);
  }

  #validId(adapter: number, domain: number): boolean {
    return Number.isInteger(adapter) && Number.isInteger(domain) && adapter >= 0 && adapter <= 255 && domain >= 0 && domain <= 255;
  }

  #cardOrFail(id: number): Card {
    const card = this.#cards.get(id);
    if (!card) throw new ApBusError('ENODEV', `no card ${Number.isInteger(id) && id >= 0 && id <= 255 ? cardName(id) : id}`);
    return card;
  }

  #queueIndexOrFail(adapter: number, domain: number): number {
    if (!this.queueExists(adapter, domain)) throw new ApBusError('ENODEV', 'no such queue');
    return adapter * 256 + domain;
  }

  #mdevOrFail(uuid: string): MatrixMdev {
    const mdev = this.mdevs.get(uuid.toLowerCase());
    if (!mdev) throw new ApBusError('ENOENT', `no mdev ${uuid}`);
    return mdev;
  }

  /** bus_find_device_by_name(): 'cardXX' or 'XX.YYYY' exactly as the kernel names them. */
  #findDevice(raw: string): { kind: 'card'; card: Card } | { kind: 'queue'; index: number } | null {
    const s = cString(raw);
    const name = s.endsWith('\n') ? s.slice(0, -1) : s; // sysfs_streq()
    let m = /^card([0-9a-f]{2})$/.exec(name);
    if (m) {
      const card = this.#cards.get(parseInt(m[1]!, 16));
      return card ? { kind: 'card', card } : null;
    }
    m = /^([0-9a-f]{2})\.([0-9a-f]{4})$/.exec(name);
    if (!m) return null;
    const a = parseInt(m[1]!, 16);
    const d = parseInt(m[2]!, 16);
    if (d > 255 || !this.queueExists(a, d)) return null;
    return { kind: 'queue', index: a * 256 + d };
  }

  /** ap_bus_match(): cex4card takes CEX4..CEX8 card devices, cex4queue and vfio_ap take
   *  CEX4..CEX8 queue devices. */
  #driverMatches(driver: ApDriverName, dev: { kind: 'card'; card: Card } | { kind: 'queue'; index: number }): boolean {
    if (dev.kind === 'card') return driver === 'cex4card' && isSupportedHwtype(dev.card.hwtype);
    return driver !== 'cex4card' && isSupportedHwtype(this.#cards.get(dev.index >> 8)!.hwtype);
  }

  #vfioHost(): VfioApHost {
    const model = this;
    return {
      get maxAdapterId() {
        return model.maxAdapterId;
      },
      get maxDomainId() {
        return model.maxDomainId;
      },
      get generation() {
        return model.#generation;
      },
      apqnInMatrixOwnedByDefDrv: (apm, aqm) => model.#apqnInMatrixOwnedByDefDrv(apm, aqm),
      boundToVfioAp: (a, d) => model.#present[a * 256 + d] === 1 && model.#driver[a * 256 + d] === VFIO_AP,
      adapterInConfig: (a) => model.#cards.has(a),
      domainInConfig: (d) => model.#configDomains[d] === 1,
      zeroizeVfioQueue: (a, d) => {
        model.#zeroizes[a * 256 + d]!++;
      },
      touch: () => model.#touch(),
    };
  }

  /** ap_apqn_in_matrix_owned_by_def_drv(): any APQN of the product reserved for the host by
   *  the masks. 6.19 (ap_owned_by_def_drv): a queue with a driver_override counts as the
   *  host's only while it is bound to the host driver. */
  #apqnInMatrixOwnedByDefDrv(apm: Mask, aqm: Mask): boolean {
    if (this.#overrides.size === 0) return !apm.and(this.#apmask).isNone() && !aqm.and(this.#aqmask).isNone();
    const adapters = apm.bits();
    const domains = aqm.bits();
    for (const a of adapters) {
      for (const d of domains) {
        const idx = a * 256 + d;
        if (this.features.driverOverride && this.#present[idx] && this.#overrides.has(idx)) {
          if (this.#driver[idx] === CEX4QUEUE) return true;
          continue;
        }
        if (this.#apmFlags[a] && this.#aqmFlags[d]) return true;
      }
    }
    return false;
  }
}

function parseNumber(raw: string): number {
  try {
    return parseKernelNumber(raw);
  } catch (err) {
    if (err instanceof KernelParseError) fail(err.errno, err.message);
    throw err;
  }
}

export function cardName(adapter: number): string {
  return `card${adapter.toString(16).padStart(2, '0')}`;
}

export function queueName(adapter: number, domain: number): string {
  return `${adapter.toString(16).padStart(2, '0')}.${domain.toString(16).padStart(4, '0')}`;
}
