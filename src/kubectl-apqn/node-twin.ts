// A dry run of a node's agent: an in-memory copy of the node's AP bus, rebuilt from what its
// APNodeState.status reports (cards, queues and their drivers, masks, mdevs, guests, host
// requests in flight), on which the agent's own reconcile pass (src/agent/core.ts) runs a
// spec. The steps it takes there, in order, are the steps the real agent would take — nothing
// outside this process is touched.
//
// The copy is as faithful as the status is detailed: control domains and how long host
// requests take are not reported, so host requests in flight are assumed to drain (the
// preview says where the agent would wait for them).
import type { APNodeState, NodeStateSpec, NodeStateStatus } from '../api/types.js';
import { SysfsBackend } from '../apbus/backend.js';
import { type Apqn, apqnIndex, formatApqn, parseAdapterId, parseApqn, parseDomainId } from '../apbus/ids.js';
import { Mask } from '../apbus/mask.js';
import { ApBusModel } from '../apbus/model/ap-bus-model.js';
import { parseCardType } from '../apbus/model/hardware.js';
import { isKernelProfile, type KernelProfile } from '../apbus/model/profile.js';
import type { CardTopology, NodeTopology } from '../apbus/topology.js';
import { VirtualSysfs } from '../apbus/virtual-sysfs.js';
import { reconcileNode } from '../agent/core.js';
import { newAgentMemory, type AgentMemory } from '../agent/memory.js';

export interface NodeTwin {
  readonly model: ApBusModel;
  readonly backend: SysfsBackend;
  readonly memory: AgentMemory;
  /** What the copy could not reproduce (it then differs from the node there). */
  readonly notes: string[];
  /** The agent's clock (ms), moved on by runAgent. */
  nowMs: number;
}

export type StepEntry =
  | { kind: 'step'; text: string }
  /** The agent stops here until something outside it changes (host requests drain …). */
  | { kind: 'wait'; text: string }
  /** Worth knowing about a step (forced moves cut host requests off …). */
  | { kind: 'note'; text: string };

export interface TwinRun {
  entries: StepEntry[];
  /** The copy reached the spec. */
  synced: boolean;
  /** Why not, when it did not (the agent's Synced message and blocked reservations). */
  blocked: string[];
}

function profileOf(status: NodeStateStatus): KernelProfile {
  const p = status.kernel?.profile;
  if (isKernelProfile(p)) return p;
  if (status.kernel?.driverOverride) return '6.19';
  if (status.kernel?.apConfig) return '6.10';
  return '5.15';
}

function mask(text: string | undefined): Mask {
  if (text === undefined) return Mask.all();
  try {
    return Mask.parseKernel(text);
  } catch {
    return Mask.all();
  }
}

function tryParse<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** Builds the copy of a node from its reported status. */
export function buildNodeTwin(state: APNodeState): NodeTwin {
  const status = state.status ?? {};
  const name = state.metadata.name ?? 'node';
  const notes: string[] = [];
  const maxAdapterId = status.maxAdapterId ?? 255;
  const maxDomainId = status.maxDomainId ?? 255;

  const queues = new Map<number, NonNullable<NodeStateStatus['queues']>[number]>();
  const domainsOf = new Map<number, number[]>();
  for (const q of status.queues ?? []) {
    const apqn = tryParse(() => parseApqn(q.apqn));
    if (!apqn) continue;
    queues.set(apqnIndex(apqn.adapter, apqn.domain), q);
    domainsOf.set(apqn.adapter, [...(domainsOf.get(apqn.adapter) ?? []), apqn.domain]);
  }
  const cards: CardTopology[] = [];
  for (const c of status.cards ?? []) {
    const id = tryParse(() => parseAdapterId(c.id));
    const kind = parseCardType(c.type);
    if (id === undefined || !kind) {
      notes.push(`card ${c.id} (type ${JSON.stringify(c.type)}) is left out of the copy`);
      continue;
    }
    cards.push({ id, type: c.type, hwtype: kind.hwtype, mode: kind.mode, domains: [...new Set(domainsOf.get(id) ?? [])].sort((a, b) => a - b) });
  }
  const usage = [...new Set(cards.flatMap((c) => c.domains))].sort((a, b) => a - b);
  const topology: NodeTopology = {
    name,
    kernel: profileOf(status),
    maxAdapterId,
    maxDomainId,
    controlDomains: usage,
    cards,
    apmask: mask(status.apmask),
    aqmask: mask(status.aqmask),
    hostLoad: [],
  };
  const model = ApBusModel.fromTopology(topology);
  const backend = new SysfsBackend(new VirtualSysfs(model));
  const attempt = (what: string, f: () => void) => {
    try {
      f();
    } catch (err) {
      notes.push(`${what}: ${errText(err)}`);
    }
  };

  // Drivers that differ from the masks' rule: driver_override (6.19) or a hand-made unbind.
  for (const [i, q] of queues) {
    const apqn: Apqn = { adapter: i >> 8, domain: i & 0xff };
    const now = model.queueDriver(apqn.adapter, apqn.domain);
    if (!model.queueExists(apqn.adapter, apqn.domain) || now === q.driver) continue;
    const name = formatApqn(apqn);
    attempt(`${name} on ${q.driver || 'no driver'}`, () => {
      if (q.driver === '') {
        backend.unbind(now as 'cex4queue' | 'vfio_ap', apqn);
        return;
      }
      backend.setDriverOverride(apqn, q.driver as 'cex4queue' | 'vfio_ap');
      if (now !== '') backend.unbind(now, apqn);
      backend.bind(q.driver as 'cex4queue' | 'vfio_ap', apqn);
    });
  }

  for (const m of status.mdevs ?? []) {
    const adapters = new Set<number>();
    const domains = new Set<number>();
    for (const line of m.matrix) {
      const [a, d] = line.split('.');
      const aid = a ? tryParse(() => parseAdapterId(a)) : undefined;
      const did = d ? tryParse(() => parseDomainId(d)) : undefined;
      if (aid !== undefined) adapters.add(aid);
      if (did !== undefined) domains.add(did);
    }
    const controlDomains = m.controlDomains.map((d) => tryParse(() => parseDomainId(d))).filter((n): n is number => n !== undefined);
    attempt(`mdev ${m.uuid}`, () => {
      backend.createMdev(m.uuid);
      backend.setMatrix(m.uuid, {
        adapters: [...adapters].sort((x, y) => x - y),
        domains: [...domains].sort((x, y) => x - y),
        controlDomains: [...new Set(controlDomains)].sort((x, y) => x - y),
      });
      if (m.inUse) model.attachGuest(m.uuid);
    });
  }

  // Host requests: the ones done (so request_count reads as reported), then the ones in
  // flight, which drain one second (model time) later.
  for (const [i, q] of queues) {
    if (q.driver !== 'cex4queue') continue;
    const apqn = { adapter: i >> 8, domain: i & 0xff };
    const done = q.requestCount - q.requestsInFlight;
    if (done > 0) attempt(`request_count of ${q.apqn}`, () => model.addHostLoad(apqn, done, 0));
    if (q.requestsInFlight > 0) attempt(`host requests on ${q.apqn}`, () => model.addHostLoad(apqn, q.requestsInFlight, 1));
  }
  model.tick(0);
  for (const [i, q] of queues) {
    if (q.driver === 'cex4queue' && !q.online) attempt(`${q.apqn} offline`, () => model.storeQueueOnline(i >> 8, i & 0xff, '0'));
  }
  for (const c of status.cards ?? []) {
    const id = tryParse(() => parseAdapterId(c.id));
    if (id === undefined || !model.hasCard(id)) continue;
    if (!c.online && c.config && !c.chkstop) attempt(`card ${c.id} offline`, () => model.storeCardOnline(id, '0'));
    if (!c.config) model.setCardConfig(id, false);
    if (c.chkstop) model.setCheckstop(id, true);
  }
  return { model, backend, memory: newAgentMemory(status), notes, nowMs: 0 };
}

export interface RunOptions {
  /** Passes at most (each runs every step that may run now). */
  maxPasses?: number;
}

/** Runs the agent on the copy until it reaches `spec` or can go no further; the steps in order. */
export function runAgent(twin: NodeTwin, spec: NodeStateSpec, opts: RunOptions = {}): TwinRun {
  const entries: StepEntry[] = [];
  const seenWaits = new Set<string>();
  const maxPasses = opts.maxPasses ?? 12;
  let blocked: string[] = [];
  for (let pass = 0; pass < maxPasses; pass++) {
    const result = reconcileNode(twin.backend, spec, twin.memory, { nowMs: twin.nowMs, drainLookIntervalMs: 1000 });
    for (const step of result.stepsExecuted) entries.push({ kind: 'step', text: step });
    for (const e of result.events) if (e.reason === 'ForcedMove') entries.push({ kind: 'note', text: e.message });
    twin.nowMs += 1000;
    if (result.synced) return { entries, synced: true, blocked: [] };
    const waiting = (result.status.reservations ?? []).filter((r) => ['Draining', 'InUse', 'Stuck'].includes(r.phase));
    for (const r of waiting) {
      const text = `${r.reservation}: ${r.message}`;
      if (!seenWaits.has(text)) entries.push({ kind: 'wait', text });
      seenWaits.add(text);
    }
    const synced = result.status.conditions?.find((c) => c.type === 'Synced');
    blocked = [
      ...(synced && synced.status !== 'True' ? [synced.message] : []),
      ...(result.status.reservations ?? [])
        .filter((r) => r.phase === 'Failed' || r.phase === 'Pending' || r.phase === 'Releasing')
        .map((r) => `${r.reservation}: ${r.phase}: ${r.message}`),
    ];
    if (result.stepsExecuted.length === 0 && waiting.length === 0) break;
    // Let time pass on the copy: host requests complete, drain looks come due.
    twin.model.tick(2);
    twin.nowMs += 2000;
  }
  return { entries, synced: false, blocked };
}
