// A simulated node for agent tests: the model, its virtual sysfs, the backend the agent
// uses, a manual clock, the agent's journal (kept across restarts, as the node keeps the file),
// and a driver that runs passes the way the runtime would (clock in ms from the model's clock,
// status carried over, passes until Synced with a deadline).
import { SysfsBackend } from '../../src/apbus/backend.js';
import { ApBusModel, ManualClock, type KernelProfile } from '../../src/apbus/model/index.js';
import { topologyFromObject } from '../../src/apbus/topology.js';
import { VirtualSysfs } from '../../src/apbus/virtual-sysfs.js';
import type { SysfsIO } from '../../src/apbus/sysfs-io.js';
import { SysfsError, type Errno } from '../../src/apbus/errno.js';
import type { Condition, MdevIntent, NodeStateSpec, NodeStateStatus, QueueIntent } from '../../src/api/types.js';
import { newAgentMemory, reconcileNode, type AgentMemory, type PassOptions, type PassResult } from '../../src/agent/core.js';
import { AgentJournal, MemoryJournalStore, parseJournal } from '../../src/agent/journal.js';

export const UUID_A = '6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab';
export const UUID_B = '11111111-2222-4333-8444-555555555555';
export const UUID_FOREIGN = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee';
export const MATRIX = 'devices/vfio_ap/matrix';
export const CREATE = `${MATRIX}/mdev_supported_types/vfio_ap-passthrough/create`;

export interface NodeOptions {
  kernel?: KernelProfile;
  cards?: Array<{ id: string; type: string; domains: string | string[] }>;
  hostLoad?: Array<{ apqn: string; pendingRequests: number; drainsAfterSeconds?: number }>;
  maxDomainId?: number;
}

/** Three cards: 05 and 06 (EP11, domains 0..f), 07 (CCA, domains 4 and 5). */
export const STANDARD_CARDS = [
  { id: '05', type: 'CEX8P', domains: '0000-000f' },
  { id: '06', type: 'CEX8P', domains: '0000-000f' },
  { id: '07', type: 'CEX7C', domains: ['0004', '0005'] },
];

/** The virtual sysfs with a log of every write the agent makes (path, value). */
export class RecordingIO implements SysfsIO {
  readonly writes: Array<{ path: string; value: string }> = [];
  /** Injected faults: the next `times` reads/writes of a matching path fail with `errno`. */
  readonly faults: Array<{ op: 'read' | 'write'; path: RegExp; errno: Errno; times: number }> = [];
  constructor(readonly inner: SysfsIO) {}
  #fault(op: 'read' | 'write', path: string): void {
    const f = this.faults.find((x) => x.op === op && x.times > 0 && x.path.test(path));
    if (!f) return;
    f.times--;
    throw new SysfsError(f.errno, path);
  }
  read(path: string): string {
    this.#fault('read', path);
    return this.inner.read(path);
  }
  write(path: string, value: string): void {
    this.#fault('write', path);
    this.writes.push({ path, value });
    this.inner.write(path, value);
  }
  list(path: string): string[] {
    return this.inner.list(path);
  }
  readlink(path: string): string {
    return this.inner.readlink(path);
  }
  exists(path: string): boolean {
    return this.inner.exists(path);
  }
}

export class SimNode {
  readonly model: ApBusModel;
  readonly sys: VirtualSysfs;
  /** What the agent's backend talks to: `sys` with a write log. */
  readonly io: RecordingIO;
  readonly backend: SysfsBackend;
  readonly clock: ManualClock;
  /** The journal's text, on the node: it outlives the agent (restart() keeps it). */
  readonly journalStore = new MemoryJournalStore('node-a:/var/lib/apqn-operator/journal.json');
  memory: AgentMemory;
  /** What the runtime would have written last. */
  lastStatus: NodeStateStatus | undefined;

  constructor(opts: NodeOptions = {}) {
    const node: Record<string, unknown> = {
      name: 'node-a',
      kernel: opts.kernel ?? '6.10',
      maxDomainId: opts.maxDomainId ?? 84,
      cards: opts.cards ?? STANDARD_CARDS,
    };
    if (opts.hostLoad) node['hostLoad'] = opts.hostLoad;
    this.clock = new ManualClock(1000);
    this.model = ApBusModel.fromTopology(topologyFromObject({ nodes: [node] }).nodes[0]!, { clock: this.clock });
    this.sys = new VirtualSysfs(this.model);
    this.io = new RecordingIO(this.sys);
    this.backend = new SysfsBackend(this.io);
    this.memory = newAgentMemory(undefined, new AgentJournal(this.journalStore));
  }

  nowMs(): number {
    return Math.round(this.clock.now() * 1000);
  }

  pass(spec: NodeStateSpec, opts: Partial<PassOptions> = {}): PassResult {
    const result = reconcileNode(this.backend, spec, this.memory, { nowMs: this.nowMs(), ...opts });
    this.lastStatus = result.status;
    return result;
  }

  /** Passes (advancing the model's clock by the requeue, at least `stepSeconds`) until Synced,
   *  or throws after `maxPasses`. Returns every pass's result. */
  converge(spec: NodeStateSpec, opts: { maxPasses?: number; stepSeconds?: number; pass?: Partial<PassOptions> } = {}): PassResult[] {
    const results: PassResult[] = [];
    for (let i = 0; i < (opts.maxPasses ?? 50); i++) {
      const r = this.pass(spec, opts.pass);
      results.push(r);
      if (r.synced && r.requeueAfterMs === undefined) return results;
      this.model.tick(Math.max(opts.stepSeconds ?? 1, (r.requeueAfterMs ?? 0) / 1000));
    }
    const last = results[results.length - 1]!;
    throw new Error(`did not converge: ${JSON.stringify(condition(last.status, 'Synced'))} ${JSON.stringify(last.status.reservations)}`);
  }

  /** Restart: a fresh memory over the node's journal, with the last status the runtime wrote
   *  (or, null, none) for the conditions' times. */
  restart(status: NodeStateStatus | null | undefined = this.lastStatus): void {
    this.memory = newAgentMemory(status ?? undefined, new AgentJournal(this.journalStore));
  }

  /** The journal as stored: `aqmask:0004=set` per changed mask bit, `override:05.0004=''`,
   *  `cordon:05.0005`, `mdev:<uuid>`; empty when the agent owes the bus nothing. */
  journal(): string[] {
    if (this.journalStore.text === null) return [];
    const { entries } = parseJournal(this.journalStore.text, this.journalStore.location);
    return [
      ...[...entries.maskBits.values()].map((b) => `${b.mask}:${b.mask === 'apmask' ? b.bit.toString(16).padStart(2, '0') : b.bit.toString(16).padStart(4, '0')}=${b.original ? 'set' : 'cleared'}`),
      ...[...entries.overrides.values()].map((o) => `override:${o.apqn.adapter.toString(16).padStart(2, '0')}.${o.apqn.domain.toString(16).padStart(4, '0')}=${JSON.stringify(o.original)}`),
      ...[...entries.cordons.values()].map((c) => `cordon:${c.apqn.adapter.toString(16).padStart(2, '0')}.${c.apqn.domain.toString(16).padStart(4, '0')}`),
      ...[...entries.mdevs.keys()].map((u) => `mdev:${u}`),
    ].sort();
  }

  driver(apqn: string): string {
    const dir = `devices/ap/card${apqn.slice(0, 2)}/${apqn}`;
    if (!this.sys.list(dir).includes('driver')) return '';
    const target = this.sys.readlink(`${dir}/driver`);
    return target.slice(target.lastIndexOf('/') + 1);
  }

  read(path: string): string {
    return this.sys.read(path).trim();
  }

  lines(path: string): string[] {
    return this.sys.read(path).split('\n').filter((l) => l !== '');
  }

  mdevs(): string[] {
    return this.backend.listMdevs();
  }
}

export function condition(status: NodeStateStatus, type: string): Condition | undefined {
  return status.conditions?.find((c) => c.type === type);
}

export function reservationOf(status: NodeStateStatus, name: string) {
  return status.reservations?.find((r) => r.reservation === name);
}

export function intent(apqn: string, reservation: string, inUsePolicy: QueueIntent['inUsePolicy'] = 'Wait', drainTimeoutSeconds = 300): QueueIntent {
  return { apqn, reservation, inUsePolicy, drainTimeoutSeconds };
}

export function mdevIntent(uuid: string, reservation: string, adapters: string[], domains: string[], controlDomains: string[] = []): MdevIntent {
  return { uuid, reservation, adapters, domains, controlDomains };
}

/** Queues of a row (adapter) or column (domain) that exist on the standard node. */
export function standardQueues(): string[] {
  const out: string[] = [];
  for (const a of ['05', '06']) for (let d = 0; d < 16; d++) out.push(`${a}.${d.toString(16).padStart(4, '0')}`);
  out.push('07.0004', '07.0005');
  return out;
}

/** Reads the bus straight from sysfs (not through the agent's code) and lists every way it
 *  differs from the spec: the independent check behind "Synced is never True while the bus
 *  differs". `released` are mdevs that must be gone. */
export function busDiffers(node: SimNode, spec: NodeStateSpec, released: readonly string[] = []): string[] {
  const out: string[] = [];
  const mask = (kind: 'apmask' | 'aqmask') => {
    const hex = node.read(`bus/ap/${kind}`).slice(2);
    return (bit: number) => (parseInt(hex[bit >> 2]!, 16) & (8 >> (bit & 3))) !== 0;
  };
  for (const kind of ['apmask', 'aqmask'] as const) {
    const has = mask(kind);
    for (const b of spec[kind] ?? []) if (has(parseInt(b.id, 16)) !== b.host) out.push(`${kind} bit ${b.id}`);
  }
  for (const o of spec.overrides ?? []) {
    const dir = `devices/ap/card${o.apqn.slice(0, 2)}/${o.apqn}`;
    if (!node.sys.exists(dir)) continue;
    const override = node.read(`${dir}/driver_override`);
    const want = o.driver === 'vfio_ap' ? 'vfio_ap' : '';
    if ((override === '(null)' ? '' : override) !== want) out.push(`driver_override ${o.apqn} = ${override}`);
    if (node.driver(o.apqn) !== o.driver) out.push(`driver ${o.apqn} = ${node.driver(o.apqn)}`);
  }
  for (const m of spec.mdevs ?? []) {
    const dir = `${MATRIX}/${m.uuid}`;
    if (!node.sys.exists(dir)) {
      out.push(`mdev ${m.uuid} missing`);
      continue;
    }
    const want = m.adapters.length && m.domains.length ? m.adapters.flatMap((a) => m.domains.map((d) => `${a}.${d}`)) : [];
    const got = node.lines(`${dir}/matrix`);
    if (JSON.stringify(got) !== JSON.stringify(want)) out.push(`mdev ${m.uuid} matrix ${got.join(' ')}`);
    const ctrl = node.lines(`${dir}/control_domains`);
    if (JSON.stringify(ctrl) !== JSON.stringify(m.controlDomains)) out.push(`mdev ${m.uuid} control domains ${ctrl.join(' ')}`);
  }
  for (const uuid of released) if (node.sys.exists(`${MATRIX}/${uuid}`)) out.push(`mdev ${uuid} still exists`);
  return out;
}

/** Everything the spec does not own: mask bits it does not name, and mdevs it neither names
 *  nor releases (with their matrices). Equal before and after = nothing foreign was touched. */
export function foreignSnapshot(node: SimNode, specs: readonly NodeStateSpec[]): string {
  const named = new Set(specs.flatMap((s) => [...(s.apmask ?? []).map((b) => `apmask:${b.id}`), ...(s.aqmask ?? []).map((b) => `aqmask:${b.id}`)]));
  const ours = new Set(specs.flatMap((s) => (s.mdevs ?? []).map((m) => m.uuid)));
  const parts: string[] = [];
  for (const kind of ['apmask', 'aqmask'] as const) {
    const hex = node.read(`bus/ap/${kind}`).slice(2);
    for (let bit = 0; bit < 256; bit++) {
      const id = kind === 'apmask' ? bit.toString(16).padStart(2, '0') : bit.toString(16).padStart(4, '0');
      if (named.has(`${kind}:${id}`)) continue;
      parts.push(`${kind}:${id}=${(parseInt(hex[bit >> 2]!, 16) & (8 >> (bit & 3))) !== 0 ? 1 : 0}`);
    }
  }
  for (const uuid of node.mdevs()) {
    if (ours.has(uuid)) continue;
    parts.push(`mdev:${uuid}=${node.lines(`${MATRIX}/${uuid}/matrix`).join(',')}`);
  }
  const overridden = new Set(specs.flatMap((s) => (s.overrides ?? []).map((o) => o.apqn)));
  for (const card of node.sys.list('devices/ap')) {
    if (!/^card[0-9a-f]{2}$/.test(card)) continue;
    for (const entry of node.sys.list(`devices/ap/${card}`)) {
      if (!/^[0-9a-f]{2}\.[0-9a-f]{4}$/.test(entry) || overridden.has(entry)) continue;
      const path = `devices/ap/${card}/${entry}/driver_override`;
      if (node.sys.exists(path)) parts.push(`override:${entry}=${node.read(path)}`);
    }
  }
  return parts.join(' ');
}

/** Queue devices without a driver. */
export function driverless(node: SimNode): string[] {
  const out: string[] = [];
  for (const card of node.sys.list('devices/ap')) {
    if (!/^card[0-9a-f]{2}$/.test(card)) continue;
    for (const entry of node.sys.list(`devices/ap/${card}`)) {
      if (/^[0-9a-f]{2}\.[0-9a-f]{4}$/.test(entry) && node.driver(entry) === '') out.push(entry);
    }
  }
  return out;
}

/** APQNs that appear in the matrix of more than one mdev. */
export function sharedApqns(node: SimNode): string[] {
  const seen = new Map<string, string>();
  const shared: string[] = [];
  for (const uuid of node.mdevs()) {
    for (const line of node.lines(`${MATRIX}/${uuid}/matrix`)) {
      if (!/^[0-9a-f]{2}\.[0-9a-f]{4}$/.test(line)) continue;
      if (seen.has(line)) shared.push(line);
      else seen.set(line, uuid);
    }
  }
  return shared;
}

export interface BusSnapshot {
  apmask: string;
  aqmask: string;
  /** `05.0004=cex4queue` per queue device. */
  drivers: string[];
  /** `05.0004=` per queue with a driver_override attribute (6.19). */
  overrides: string[];
  /** `05.0004=1` per queue with an `online` attribute (cex4queue). */
  online: string[];
  mdevs: string[];
}

/** The whole bus as sysfs shows it: equal snapshots = the node is as it was. */
export function busSnapshot(node: SimNode): BusSnapshot {
  const queues = node.sys
    .list('devices/ap')
    .filter((c) => /^card[0-9a-f]{2}$/.test(c))
    .flatMap((c) => node.sys.list(`devices/ap/${c}`).filter((e) => /^[0-9a-f]{2}\.[0-9a-f]{4}$/.test(e)).map((e) => [c, e] as const));
  return {
    apmask: node.read('bus/ap/apmask'),
    aqmask: node.read('bus/ap/aqmask'),
    drivers: queues.map(([, q]) => `${q}=${node.driver(q)}`),
    overrides: queues
      .filter(([c, q]) => node.sys.exists(`devices/ap/${c}/${q}/driver_override`))
      .map(([c, q]) => `${q}=${node.read(`devices/ap/${c}/${q}/driver_override`)}`),
    // A host queue left offline (a cordon never undone) is lost to the host as surely as a bit.
    online: queues
      .filter(([c, q]) => node.sys.exists(`devices/ap/${c}/${q}/online`))
      .map(([c, q]) => `${q}=${node.read(`devices/ap/${c}/${q}/online`)}`),
    mdevs: node.mdevs(),
  };
}
