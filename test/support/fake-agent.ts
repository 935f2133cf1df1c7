// A TEST DOUBLE of the node agent (issue 4), for the controller's integration tests until the
// real agent lands. It plays only the agent's part of the API contract
// (/work/notes/agent-contract.md): it reads APNodeState.spec over the real API server, applies
// it to a tiny in-memory AP bus, and writes APNodeState.status (heartbeat, inventory, mdevs
// with guestMatrix, reservations[] phases). The bus here is deliberately simple — the kernel's
// rules that matter to the controller are kept: a queue is host-owned iff its adapter bit is
// in apmask and its domain bit in aqmask (or, in override mode, by driver_override); a mask
// bit cannot go back to the host while an mdev still holds a queue on it; an mdev a guest has
// open is never removed; host requests in flight make a move wait (Wait), refuse (Fail) or cut
// them off (Force).
import * as k8s from '@kubernetes/client-node';
import type {
  APNodeState,
  CardMode,
  Condition,
  MdevIntent,
  MdevStatus,
  NodeStateSpec,
  NodeStateStatus,
  QueueStatus,
  ReservationApplyStatus,
  ReservationPhase,
} from '../../src/api/types.js';
import { apqnFromIndex, apqnIndex, formatApqn, formatDomainId, parseAdapterId, parseApqn, parseDomainId } from '../../src/apbus/ids.js';
import { Mask } from '../../src/apbus/mask.js';
import { isAlreadyExists, operatorClients, type OperatorClients } from '../../src/k8s/client.js';
import { formatMicroTime } from '../../src/k8s/clock.js';
import { writeStatus } from '../../src/k8s/status.js';

export interface FakeCard {
  id: string; // '05'
  type: string; // CEX8C, CEX7P, CEX6A …: the letter says the mode (C CCA, P EP11, A Accel)
  /** Usage domains: a list, or a range '0000-000f'. */
  domains: string[] | string;
}

export interface FakeAgentOptions {
  kubeConfig: k8s.KubeConfig;
  node: string;
  cards: FakeCard[];
  /** Initial host ownership: 'all' (default), 'none', or the ids whose bit is set. */
  apmask?: 'all' | 'none' | string[];
  aqmask?: 'all' | 'none' | string[];
  /** Report kernel.driverOverride (profile 6.19): queues move by driver_override. */
  driverOverride?: boolean;
  /** Heartbeat period (default 1 s); the status is also written whenever it changes. */
  heartbeatMs?: number;
  /** How often the spec is read (default 100 ms). */
  pollMs?: number;
  /** Also create a core Node of this name with these labels (deleted on stop). */
  nodeLabels?: Record<string, string>;
  /** Called with each spec generation the agent sees for the first time, before it applies it. */
  onNewSpec?: (spec: NodeStateSpec, generation: number) => Promise<void> | void;
}

interface FakeMdev {
  uuid: string;
  adapters: Set<number>;
  domains: Set<number>;
  controlDomains: Set<number>;
  owned: boolean;
  reservation?: string;
  inUse: boolean;
}

const DEFAULT_POLICY = { inUsePolicy: 'Wait' as const, drainTimeoutSeconds: 300 };

function modeOf(type: string): CardMode {
  const letter = type.slice(-1).toUpperCase();
  return letter === 'P' ? 'EP11' : letter === 'A' ? 'Accel' : 'CCA';
}

function domainList(spec: string[] | string): number[] {
  if (Array.isArray(spec)) return spec.map(parseDomainId);
  const [from, to] = spec.split('-');
  const first = parseDomainId(from!);
  const last = parseDomainId(to ?? from!);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

function initialMask(spec: 'all' | 'none' | string[] | undefined, parse: (s: string) => number): Set<number> {
  if (spec === undefined || spec === 'all') return new Set(Array.from({ length: 256 }, (_, i) => i));
  if (spec === 'none') return new Set();
  return new Set(spec.map(parse));
}

function condition(type: string, status: boolean, reason: string, message: string, previous?: Condition[]): Condition {
  const s = status ? 'True' : 'False';
  const old = previous?.find((c) => c.type === type);
  const lastTransitionTime = old && old.status === s ? old.lastTransitionTime : new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return { type, status: s, reason, message, lastTransitionTime };
}

export class FakeAgent {
  readonly node: string;
  /** Passes that found the bus equal to the spec (for tests that want to see it settle). */
  syncedPasses = 0;
  private readonly clients: OperatorClients;
  private readonly core: k8s.CoreV1Api;
  private readonly cards = new Map<number, { type: string; mode: CardMode; domains: number[] }>();
  readonly apmask: Set<number>;
  readonly aqmask: Set<number>;
  readonly overrides = new Map<number, 'vfio_ap' | 'cex4queue'>();
  readonly mdevs = new Map<string, FakeMdev>();
  private readonly hostLoad = new Map<number, number>();
  private readonly requestCount = new Map<number, number>();
  /** When each blocked queue started waiting (for drainTimeoutSeconds → Stuck). */
  private readonly waitingSince = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private paused = false;
  private lastHeartbeat = 0;
  private pass: Promise<void> = Promise.resolve();
  private lastError: string | undefined;
  private lastGeneration = -1;

  private constructor(private readonly options: FakeAgentOptions) {
    this.node = options.node;
    this.clients = operatorClients(options.kubeConfig);
    this.core = options.kubeConfig.makeApiClient(k8s.CoreV1Api);
    for (const card of options.cards) {
      this.cards.set(parseAdapterId(card.id), { type: card.type, mode: modeOf(card.type), domains: domainList(card.domains) });
    }
    this.apmask = initialMask(options.apmask, parseAdapterId);
    this.aqmask = initialMask(options.aqmask, parseDomainId);
  }

  /** Creates the Node (if asked), the APNodeState (if missing) and starts the agent loop. */
  static async start(options: FakeAgentOptions): Promise<FakeAgent> {
    const agent = new FakeAgent(options);
    if (options.nodeLabels) {
      await agent.core.createNode({ body: { metadata: { name: options.node, labels: options.nodeLabels } } });
    }
    agent.running = true;
    await agent.runPass();
    agent.schedule();
    return agent;
  }

  /** Stops the loop; deletes the Node it created and (unless keepState) the APNodeState. */
  async stop(options: { keepState?: boolean } = {}): Promise<void> {
    this.running = false;
    if (this.timer) clearTimeout(this.timer);
    await this.pass;
    if (this.options.nodeLabels) await this.core.deleteNode({ name: this.node }).catch(() => undefined);
    if (!options.keepState) await this.clients.nodeStates.delete(this.node).catch(() => undefined);
  }

  /** Stops heartbeats and applying (a dead agent); resume() brings it back. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /** Host programs with `inFlight` requests on a queue (0 = idle). */
  setHostLoad(apqn: string, inFlight: number): void {
    const q = parseApqn(apqn);
    this.hostLoad.set(apqnIndex(q.adapter, q.domain), inFlight);
  }

  /** A guest opens (true) or closes (false) the mdev. */
  setGuestAttached(uuid: string, attached: boolean): void {
    const mdev = this.mdevs.get(uuid);
    if (!mdev) throw new Error(`no mdev ${uuid} on ${this.node}`);
    mdev.inUse = attached;
  }

  /** The queue's driver as the kernel would report it. */
  driverOf(index: number): 'cex4queue' | 'vfio_ap' {
    if (this.options.driverOverride) return this.overrides.get(index) ?? 'cex4queue';
    const { adapter, domain } = apqnFromIndex(index);
    return this.apmask.has(adapter) && this.aqmask.has(domain) ? 'cex4queue' : 'vfio_ap';
  }

  /** Every queue of the bus, as APQN indices, ascending. */
  queueIndices(): number[] {
    const out: number[] = [];
    for (const [a, card] of [...this.cards].sort((x, y) => x[0] - y[0])) for (const d of card.domains) out.push(apqnIndex(a, d));
    return out;
  }

  private schedule(): void {
    if (!this.running) return;
    this.timer = setTimeout(() => {
      this.pass = this.runPass().finally(() => this.schedule());
    }, this.options.pollMs ?? 100);
  }

  private async runPass(): Promise<void> {
    if (this.paused || !this.running) return;
    try {
      const state = await this.readOrCreateState();
      const generation = state.metadata.generation ?? 0;
      if (generation !== this.lastGeneration) {
        await this.options.onNewSpec?.(state.spec ?? {}, generation);
        this.lastGeneration = generation;
      }
      const reservations = this.apply(state.spec ?? {});
      await this.report(state, reservations);
      this.lastError = undefined;
    } catch (err) {
      // A test double: keep going, the next pass re-reads everything.
      const message = err instanceof Error ? err.message : String(err);
      if (message !== this.lastError) process.stderr.write(`[fake-agent ${this.node}] ${message}\n`);
      this.lastError = message;
    }
  }

  private async readOrCreateState(): Promise<APNodeState> {
    const found = await this.clients.nodeStates.find(this.node);
    if (found) return found;
    try {
      return await this.clients.nodeStates.create({
        apiVersion: 'ap.s390x.io/v1alpha1',
        kind: 'APNodeState',
        metadata: { name: this.node },
        spec: {},
      });
    } catch (err) {
      if (isAlreadyExists(err)) return this.clients.nodeStates.get(this.node);
      throw err;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Applying the spec: one idempotent pass, returning each named reservation's phase.

  private apply(spec: NodeStateSpec): Map<string, ReservationApplyStatus> {
    const phases = new Map<string, ReservationApplyStatus>();
    const set = (reservation: string, phase: ReservationPhase, reason: string, message: string) => {
      const prev = phases.get(reservation);
      // The worst phase wins: anything not Applied beats Applied.
      if (!prev || prev.phase === 'Applied') phases.set(reservation, { reservation, phase, reason, message });
    };
    const wantedMdevs = new Map((spec.mdevs ?? []).map((m) => [m.uuid, m]));

    // vfio_ap → host (1): remove owned mdevs no longer wanted, unless a guest has them open.
    for (const mdev of [...this.mdevs.values()]) {
      if (!mdev.owned || wantedMdevs.has(mdev.uuid)) continue;
      if (mdev.inUse) {
        if (mdev.reservation) set(mdev.reservation, 'Releasing', 'GuestAttached', `a guest still has mdev ${mdev.uuid} open`);
        continue;
      }
      this.mdevs.delete(mdev.uuid);
    }

    // Mask bits / overrides. Bits going back to the host first (only when no mdev holds a queue
    // on them); then bits leaving the host, after the in-use check of the queues they move.
    const before = new Map(this.queueIndices().map((i) => [i, this.driverOf(i)]));
    if (this.options.driverOverride) {
      for (const o of spec.overrides ?? []) {
        const q = parseApqn(o.apqn);
        const i = apqnIndex(q.adapter, q.domain);
        if (o.driver === 'cex4queue' && !this.heldByMdev(i)) this.overrides.set(i, 'cex4queue');
      }
    } else {
      for (const [bits, mask, axis] of [
        [spec.apmask, this.apmask, 'adapter'],
        [spec.aqmask, this.aqmask, 'domain'],
      ] as const) {
        for (const bit of bits ?? []) {
          const id = axis === 'adapter' ? parseAdapterId(bit.id) : parseDomainId(bit.id);
          if (bit.host && !mask.has(id) && !this.lineHeldByMdev(axis, id)) mask.add(id);
        }
      }
    }
    const leaving = this.planLeaving(spec);
    const blocked = this.inUseCheck(spec, leaving, set);
    if (!blocked) {
      if (this.options.driverOverride) {
        for (const o of spec.overrides ?? []) {
          const q = parseApqn(o.apqn);
          if (o.driver === 'vfio_ap') this.overrides.set(apqnIndex(q.adapter, q.domain), 'vfio_ap');
        }
      } else {
        for (const bit of spec.apmask ?? []) if (!bit.host) this.apmask.delete(parseAdapterId(bit.id));
        for (const bit of spec.aqmask ?? []) if (!bit.host) this.aqmask.delete(parseDomainId(bit.id));
      }
      for (const i of leaving) {
        this.hostLoad.delete(i); // Force cut them off; Wait/Fail queues were idle
        this.waitingSince.delete(i);
      }
    }
    for (const [i, driver] of before) {
      if (driver !== this.driverOf(i)) this.requestCount.set(i, 0); // reset/zeroize on a move
    }

    // host → vfio_ap (3)-(5): create the wanted mdevs and give them their matrix.
    for (const want of wantedMdevs.values()) {
      let mdev = this.mdevs.get(want.uuid);
      if (!mdev) {
        mdev = { uuid: want.uuid, adapters: new Set(), domains: new Set(), controlDomains: new Set(), owned: true, inUse: false };
        this.mdevs.set(want.uuid, mdev);
      }
      mdev.owned = true;
      mdev.reservation = want.reservation;
      mdev.adapters = new Set(want.adapters.map(parseAdapterId));
      mdev.domains = new Set(want.domains.map(parseDomainId));
      mdev.controlDomains = new Set(want.controlDomains.map(parseDomainId));
      if (blocked && !phases.has(want.reservation)) set(want.reservation, 'Pending', 'Waiting', 'waiting for other queues to move');
      else if (!this.matrixComplete(mdev, want)) {
        set(want.reservation, 'Failed', 'QueuesNotOnVfioAp', `mdev ${want.uuid}: not every queue of its matrix is bound to vfio_ap`);
      } else set(want.reservation, 'Applied', 'Applied', `mdev ${want.uuid} has its matrix`);
    }
    // Reservations named only through queue intents (no mdev) are applied when their queues left the host.
    for (const intent of spec.queues ?? []) {
      if (!phases.has(intent.reservation)) set(intent.reservation, 'Applied', 'Applied', 'queues moved');
    }
    return phases;
  }

  /** Host queues the spec's mask bits / overrides would move to vfio_ap. */
  private planLeaving(spec: NodeStateSpec): number[] {
    const leaving: number[] = [];
    if (this.options.driverOverride) {
      for (const o of spec.overrides ?? []) {
        const q = parseApqn(o.apqn);
        const i = apqnIndex(q.adapter, q.domain);
        if (o.driver === 'vfio_ap' && this.driverOf(i) === 'cex4queue' && this.exists(i)) leaving.push(i);
      }
      return leaving;
    }
    const clearA = new Set((spec.apmask ?? []).filter((b) => !b.host).map((b) => parseAdapterId(b.id)));
    const clearD = new Set((spec.aqmask ?? []).filter((b) => !b.host).map((b) => parseDomainId(b.id)));
    for (const i of this.queueIndices()) {
      const { adapter, domain } = apqnFromIndex(i);
      if (this.driverOf(i) === 'cex4queue' && (clearA.has(adapter) || clearD.has(domain))) leaving.push(i);
    }
    return leaving;
  }

  /** The in-use policy of every leaving queue with host requests in flight; true = do not move yet. */
  private inUseCheck(
    spec: NodeStateSpec,
    leaving: number[],
    set: (r: string, p: ReservationPhase, reason: string, m: string) => void,
  ): boolean {
    let blocked = false;
    const intents = new Map((spec.queues ?? []).map((q) => [q.apqn, q]));
    for (const i of leaving) {
      const inFlight = this.hostLoad.get(i) ?? 0;
      const apqn = formatApqn(apqnFromIndex(i));
      if (inFlight === 0) {
        this.waitingSince.delete(i);
        continue;
      }
      const intent = intents.get(apqn);
      const policy = intent?.inUsePolicy ?? DEFAULT_POLICY.inUsePolicy;
      const timeout = intent?.drainTimeoutSeconds ?? DEFAULT_POLICY.drainTimeoutSeconds;
      const owner = intent?.reservation ?? '';
      if (policy === 'Force') continue;
      blocked = true;
      if (policy === 'Fail') {
        set(owner, 'InUse', 'HostRequestsInFlight', `${apqn} has ${inFlight} host requests in flight (inUsePolicy Fail)`);
        continue;
      }
      const since = this.waitingSince.get(i) ?? Date.now();
      this.waitingSince.set(i, since);
      const waited = (Date.now() - since) / 1000;
      if (waited > timeout) {
        set(owner, 'Stuck', 'DrainTimeout', `${apqn} still has ${inFlight} host requests in flight after ${timeout} s`);
      } else {
        set(owner, 'Draining', 'HostRequestsInFlight', `${apqn} has ${inFlight} host requests in flight; waiting up to ${timeout} s`);
      }
    }
    return blocked;
  }

  private exists(i: number): boolean {
    const { adapter, domain } = apqnFromIndex(i);
    return this.cards.get(adapter)?.domains.includes(domain) ?? false;
  }

  private heldByMdev(i: number): boolean {
    const { adapter, domain } = apqnFromIndex(i);
    return [...this.mdevs.values()].some((m) => m.adapters.has(adapter) && m.domains.has(domain));
  }

  private lineHeldByMdev(axis: 'adapter' | 'domain', id: number): boolean {
    return [...this.mdevs.values()].some((m) => (axis === 'adapter' ? m.adapters.has(id) : m.domains.has(id)));
  }

  private guestMatrix(mdev: FakeMdev): string[] {
    const out: string[] = [];
    for (const a of [...mdev.adapters].sort((x, y) => x - y)) {
      for (const d of [...mdev.domains].sort((x, y) => x - y)) {
        const i = apqnIndex(a, d);
        if (this.exists(i) && this.driverOf(i) === 'vfio_ap') out.push(formatApqn({ adapter: a, domain: d }));
      }
    }
    return out;
  }

  private matrixComplete(mdev: FakeMdev, want: MdevIntent): boolean {
    return this.guestMatrix(mdev).length === want.adapters.length * want.domains.length;
  }

  // ---------------------------------------------------------------------------------------------
  // Reporting

  private async report(state: APNodeState, reservations: Map<string, ReservationApplyStatus>): Promise<void> {
    const now = Date.now();
    const heartbeatDue = now - this.lastHeartbeat >= (this.options.heartbeatMs ?? 1000);
    const desired = (fresh: APNodeState): NodeStateStatus => {
      const body = this.statusBody(fresh, reservations);
      const keepBeat = !heartbeatDue && fresh.status?.heartbeatTime;
      return { ...body, heartbeatTime: keepBeat ? fresh.status!.heartbeatTime : formatMicroTime(now) };
    };
    // Write when something other than the heartbeat changed, or the heartbeat is due.
    await writeStatus(this.clients.nodeStates, state, desired, { attempts: 5 });
    if (heartbeatDue) this.lastHeartbeat = now;
    if (reservations.size > 0 && [...reservations.values()].every((r) => r.phase === 'Applied')) this.syncedPasses++;
  }

  private statusBody(state: APNodeState, reservations: Map<string, ReservationApplyStatus>): NodeStateStatus {
    const queues: QueueStatus[] = this.queueIndices().map((i) => ({
      apqn: formatApqn(apqnFromIndex(i)),
      driver: this.driverOf(i),
      online: true,
      requestsInFlight: this.hostLoad.get(i) ?? 0,
      requestCount: this.requestCount.get(i) ?? 0,
    }));
    const mdevs: MdevStatus[] = [...this.mdevs.values()]
      .sort((a, b) => a.uuid.localeCompare(b.uuid))
      .map((m) => {
        const matrix: string[] = [];
        for (const a of [...m.adapters].sort((x, y) => x - y)) {
          for (const d of [...m.domains].sort((x, y) => x - y)) matrix.push(formatApqn({ adapter: a, domain: d }));
        }
        const status: MdevStatus = {
          uuid: m.uuid,
          matrix,
          guestMatrix: this.guestMatrix(m),
          controlDomains: [...m.controlDomains].sort((x, y) => x - y).map(formatDomainId),
          owned: m.owned,
          inUse: m.inUse,
        };
        if (m.reservation) status.reservation = m.reservation;
        return status;
      });
    const applied = [...reservations.values()].sort((a, b) => a.reservation.localeCompare(b.reservation));
    const synced = applied.every((r) => r.phase === 'Applied');
    return {
      observedGeneration: state.metadata.generation ?? 0,
      kernel: { apConfig: true, driverOverride: this.options.driverOverride ?? false },
      maxAdapterId: 255,
      maxDomainId: 255,
      apmask: Mask.of(this.apmask).toKernelString(),
      aqmask: Mask.of(this.aqmask).toKernelString(),
      queueCount: queues.length,
      cards: [...this.cards]
        .sort((x, y) => x[0] - y[0])
        .map(([a, c]) => ({
          id: a.toString(16).padStart(2, '0'),
          type: c.type,
          mode: c.mode,
          online: true,
          config: true,
          chkstop: false,
        })),
      queues,
      mdevs,
      reservations: applied,
      conditions: [
        condition(
          'Synced',
          synced,
          synced ? 'Synced' : 'Applying',
          synced ? 'the bus matches the spec' : 'applying the spec',
          state.status?.conditions,
        ),
      ],
    };
  }
}

/** Starts a fake agent; the test's teardown stops it. */
export async function startFakeAgent(
  t: { teardown(fn: () => Promise<void> | void): void },
  options: FakeAgentOptions,
): Promise<FakeAgent> {
  const agent = await FakeAgent.start(options);
  t.teardown(() => agent.stop());
  return agent;
}

