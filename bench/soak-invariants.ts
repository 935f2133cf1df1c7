// The soak's invariants (issue 12, "never lose a queue"), as pure functions of what the soak
// reads after the churn: each simulated node's bus (read from the model itself, never from the
// operator's status), the reservations and the APNodeStates from the API server, and the
// buses as they were before the run. No I/O here: test/soak/invariants.test.ts breaks each
// invariant on a hand-made state and sees it fire.
//
// After the churn has settled (checkSettled):
//   one-mdev-per-apqn   no APQN in the matrix of two mdevs of a node
//   queue-has-driver    every queue device is bound to a driver
//   ready-once          no APQN of a node Ready in two reservations
//   ready-matches-bus   a Ready reservation: its mdev exists on its node with exactly its matrix
//                       (adapters, domains, control domains), its queues on vfio_ap — or, for
//                       `driver: host`, on the host driver; explicit queues and control domains
//                       as its spec names them, unless a claim holds it (then a spec change waits
//                       by design, and its matrix is the one recorded in its status)
//   not-ready-says-why  a reservation that is not Ready has Ready=False (or Unknown) with a
//                       reason and a message
//   synced-matches-bus  a node whose status says Synced=True (for its current spec generation)
//                       has exactly what the spec asks for, and everything the spec does not own
//                       as it was before the run (mask bits, driver_override, mdevs), every queue
//                       on the driver those masks and overrides give it, and no host queue left
//                       offline (a cordon the spec no longer needs) that was online before
// After everything was deleted (checkReleased): the bus invariants and synced-matches-bus again,
//   nothing-lost        no mdev the run made; every queue on its driver of before the run, and
//                       online if it was; apmask, aqmask and every driver_override exactly as
//                       before the run
//   all-released        no reservation or claim is left (a finalizer that never finished)
// The runner adds `settles` when the cluster did not settle within its bound.
import { formatApqn, parseAdapterId, parseApqn, parseDomainId, formatAdapterId, formatDomainId } from '../src/apbus/ids.js';
import type { APNodeState, APQNReservation, Condition } from '../src/api/types.js';

export type QueueDriver = '' | 'cex4queue' | 'vfio_ap';

export interface QueueSnapshot {
  /** `05.0004` */
  apqn: string;
  driver: QueueDriver;
  /** driver_override (6.19), null when none. */
  override: string | null;
  /** zcrypt `online` while on cex4queue (false: cordoned, or its card is not serving); null
   *  on another driver; absent when not recorded. */
  online?: boolean | null;
}

export interface MdevSnapshot {
  uuid: string;
  /** Ids as the API writes them (`05`, `0004`), ascending. */
  adapters: string[];
  domains: string[];
  controlDomains: string[];
}

/** One node's AP bus, read from the simulation. */
export interface BusSnapshot {
  node: string;
  kernel: string;
  /** Adapters whose apmask bit is set (the host driver owns them), 0..maxAdapterId. */
  apmask: string[];
  /** Domains whose aqmask bit is set, 0..maxDomainId. */
  aqmask: string[];
  /** Every queue device, APQN order. */
  queues: QueueSnapshot[];
  mdevs: MdevSnapshot[];
}

export const INVARIANTS = {
  'one-mdev-per-apqn': 'no APQN in two mdevs',
  'queue-has-driver': 'no queue without a driver',
  'ready-once': 'no APQN Ready in two reservations',
  'ready-matches-bus': 'a Ready reservation has its mdev on its node with exactly its matrix, its queues on its driver',
  'not-ready-says-why': 'a reservation that is not Ready says why in a condition',
  'synced-matches-bus': 'a node that says Synced matches its spec plus everything it must restore',
  'nothing-lost': 'after deleting everything: no mdevs, queues, masks and overrides as before the run',
  'all-released': 'every reservation and claim is gone after deletion',
  settles: 'the cluster settles within the bound',
} as const;

export type InvariantId = keyof typeof INVARIANTS;

export interface Violation {
  invariant: InvariantId;
  node?: string;
  /** `namespace/name` of the reservation it is about, if any. */
  object?: string;
  message: string;
}

export interface ClusterState {
  buses: readonly BusSnapshot[];
  reservations: readonly APQNReservation[];
  nodeStates: readonly APNodeState[];
}

// ------------------------------------------------------------------------------------ helpers

const key = (r: APQNReservation) => `${r.metadata.namespace ?? ''}/${r.metadata.name ?? ''}`;
const conditionOf = (conditions: readonly Condition[] | undefined, type: string) => conditions?.find((c) => c.type === type);

/** Canonical spelling of an APQN, or the text as given when it does not parse. */
function canonicalApqn(text: string): string {
  try {
    return formatApqn(parseApqn(text));
  } catch {
    return text;
  }
}

function canonicalDomain(text: string): string {
  try {
    return formatDomainId(parseDomainId(text));
  } catch {
    return text;
  }
}

function canonicalAdapter(text: string): string {
  try {
    return formatAdapterId(parseAdapterId(text));
  } catch {
    return text;
  }
}

const sortedUnique = (items: Iterable<string>) => [...new Set(items)].sort();
const sameList = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
const list = (items: readonly string[]) => (items.length ? items.join(',') : '-');
const matrixText = (m: { adapters: readonly string[]; domains: readonly string[]; controlDomains: readonly string[] }) =>
  `${list(m.adapters)} x ${list(m.domains)}${m.controlDomains.length ? ` control ${list(m.controlDomains)}` : ''}`;

/** The APQNs of an adapters × domains product. */
function product(adapters: readonly string[], domains: readonly string[]): string[] {
  return adapters.flatMap((a) => domains.map((d) => `${a}.${d}`));
}

function busOf(buses: readonly BusSnapshot[], node: string | undefined): BusSnapshot | undefined {
  return node === undefined ? undefined : buses.find((b) => b.node === node);
}

/** The driver a queue gets from masks and override (ap_bus.c: override first, then both bits set → host). */
export function driverFor(apqn: string, apmask: ReadonlySet<string>, aqmask: ReadonlySet<string>, override: string | null): QueueDriver {
  if (override === 'vfio_ap' || override === 'cex4queue') return override;
  const [adapter, domain] = apqn.split('.') as [string, string];
  return apmask.has(adapter) && aqmask.has(domain) ? 'cex4queue' : 'vfio_ap';
}

// ------------------------------------------------------------------------------- the bus alone

/** one-mdev-per-apqn and queue-has-driver, on every node. */
export function busViolations(buses: readonly BusSnapshot[]): Violation[] {
  const out: Violation[] = [];
  for (const bus of buses) {
    const holders = new Map<string, string[]>();
    for (const m of bus.mdevs) {
      for (const apqn of product(m.adapters, m.domains)) {
        const h = holders.get(apqn) ?? [];
        h.push(m.uuid);
        holders.set(apqn, h);
      }
    }
    for (const [apqn, uuids] of [...holders].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (uuids.length > 1) {
        out.push({ invariant: 'one-mdev-per-apqn', node: bus.node, message: `${apqn} is in the matrix of ${uuids.length} mdevs: ${uuids.join(', ')}` });
      }
    }
    for (const q of bus.queues) {
      if (q.driver === '') {
        out.push({ invariant: 'queue-has-driver', node: bus.node, message: `${q.apqn} is bound to no driver${q.override ? ` (driver_override ${q.override})` : ''}` });
      }
    }
  }
  return out;
}

// ------------------------------------------------------------------------------- reservations

/** ready-once, ready-matches-bus, not-ready-says-why. */
export function reservationViolations(reservations: readonly APQNReservation[], buses: readonly BusSnapshot[]): Violation[] {
  const out: Violation[] = [];
  const readyHolders = new Map<string, string[]>(); // node/apqn → reservations
  for (const r of reservations) {
    const object = key(r);
    const ready = conditionOf(r.status?.conditions, 'Ready');
    if (ready?.status !== 'True') {
      const why = notReadyProblem(r, ready);
      if (why) out.push({ invariant: 'not-ready-says-why', object, message: why });
      continue;
    }
    const node = r.status?.nodeName;
    const apqns = sortedUnique((r.status?.apqns ?? []).map(canonicalApqn));
    const fail = (message: string) => out.push({ invariant: 'ready-matches-bus', object, ...(node ? { node } : {}), message });
    for (const apqn of apqns) {
      const h = readyHolders.get(`${node}/${apqn}`) ?? [];
      h.push(object);
      readyHolders.set(`${node}/${apqn}`, h);
    }
    if (!node || apqns.length === 0) {
      fail(`Ready=True but its status names ${node ? 'no queues' : 'no node'}`);
      continue;
    }
    const bus = busOf(buses, node);
    if (!bus) {
      fail(`Ready=True on node ${node}, which the soak does not simulate`);
      continue;
    }
    const current = ready.observedGeneration === undefined || ready.observedGeneration === r.metadata.generation;
    // A claim holds the queues as placed: a spec change waits for the claim to go (api.md), the
    // reservation stays Ready with what it has — so then "its matrix" is the recorded one.
    const claimed = Boolean(r.status?.claimedBy) || (r.status?.conditions ?? []).some((c) => c.reason === 'ClaimedByGuest');
    if (current && r.spec.apqns && !claimed) {
      const wanted = sortedUnique(r.spec.apqns.map(canonicalApqn));
      if (!sameList(wanted, apqns)) fail(`Ready=True for ${list(apqns)} but its spec (generation ${r.metadata.generation}) asks for ${list(wanted)}`);
    }
    const driver = r.spec.driver ?? 'vfio_ap';
    const wantedDriver: QueueDriver = driver === 'host' ? 'cex4queue' : 'vfio_ap';
    const queues = new Map(bus.queues.map((q) => [q.apqn, q]));
    const wrong = apqns
      .map((apqn) => ({ apqn, driver: queues.get(apqn)?.driver }))
      .filter((q) => q.driver !== wantedDriver)
      .map((q) => `${q.apqn} ${q.driver === undefined ? 'does not exist' : `is on ${q.driver || 'no driver'}`}`);
    if (wrong.length) fail(`Ready=True (driver ${driver}) but on the bus ${wrong.join('; ')}`);
    if (driver === 'host') continue;

    const adapters = sortedUnique(apqns.map((q) => q.split('.')[0]!));
    const domains = sortedUnique(apqns.map((q) => q.split('.')[1]!));
    if (!sameList(sortedUnique(product(adapters, domains)), apqns)) {
      fail(`Ready=True for ${list(apqns)}, which is not a full adapters x domains matrix`);
    }
    const controlDomains = sortedUnique(((claimed ? r.status?.matrix?.controlDomains : r.spec.controlDomains) ?? []).map(canonicalDomain));
    const uuid = r.status?.mdevUUID;
    const mdev = uuid ? bus.mdevs.find((m) => m.uuid === uuid) : undefined;
    const wantedMatrix = { adapters, domains, controlDomains };
    if (!uuid) fail('Ready=True (driver vfio_ap) but its status names no mdev');
    else if (!mdev) fail(`Ready=True but mdev ${uuid} does not exist on node ${node} (wanted ${matrixText(wantedMatrix)})`);
    else if (!sameList(mdev.adapters, adapters) || !sameList(mdev.domains, domains) || !sameList(mdev.controlDomains, controlDomains)) {
      fail(`Ready=True but mdev ${uuid} on node ${node} has matrix ${matrixText(mdev)}, not ${matrixText(wantedMatrix)}`);
    }
  }
  for (const [where, holders] of [...readyHolders].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (holders.length > 1) {
      const [node, apqn] = where.split('/') as [string, string];
      out.push({ invariant: 'ready-once', node, message: `${apqn} on node ${node} is Ready in ${holders.length} reservations: ${holders.join(', ')}` });
    }
  }
  return out;
}

/** Why a reservation that is not Ready fails to say why, or undefined when it does say. */
function notReadyProblem(r: APQNReservation, ready: Condition | undefined): string | undefined {
  if (!r.status) return 'has no status at all';
  if (!ready) return `has no Ready condition (conditions: ${(r.status.conditions ?? []).map((c) => `${c.type}=${c.status}`).join(', ') || 'none'})`;
  if (ready.status !== 'False' && ready.status !== 'Unknown') return `Ready=${String(ready.status)} is neither True, False nor Unknown`;
  const missing = [!ready.reason?.trim() && 'a reason', !ready.message?.trim() && 'a message'].filter(Boolean);
  if (missing.length) return `Ready=${ready.status} without ${missing.join(' or ')}`;
  return undefined;
}

// ------------------------------------------------------------------------- Synced node states

/** What a node must look like for its spec: owned bits and overrides as the spec says, the rest as before the run. */
interface ExpectedBus {
  apmask: Set<string>;
  aqmask: Set<string>;
  /** Bits the spec owns: axis:id → wanted value. */
  owned: Map<string, boolean>;
  overrides: Map<string, string | null>;
  ownedOverrides: Set<string>;
  mdevs: Map<string, MdevSnapshot & { fromSpec: boolean }>;
}

function expectedBus(state: APNodeState, before: BusSnapshot): ExpectedBus {
  const spec = state.spec ?? {};
  const apmask = new Set(before.apmask);
  const aqmask = new Set(before.aqmask);
  const owned = new Map<string, boolean>();
  for (const [axis, set, bits, canon] of [
    ['apmask', apmask, spec.apmask ?? [], canonicalAdapter],
    ['aqmask', aqmask, spec.aqmask ?? [], canonicalDomain],
  ] as const) {
    for (const bit of bits) {
      const id = canon(bit.id);
      owned.set(`${axis}:${id}`, bit.host);
      if (bit.host) set.add(id);
      else set.delete(id);
    }
  }
  const overrides = new Map<string, string | null>(before.queues.map((q) => [q.apqn, q.override]));
  const ownedOverrides = new Set<string>();
  for (const o of spec.overrides ?? []) {
    const apqn = canonicalApqn(o.apqn);
    ownedOverrides.add(apqn);
    // `cex4queue` in the spec means "back to the host": the override cleared.
    overrides.set(apqn, o.driver === 'vfio_ap' ? 'vfio_ap' : null);
  }
  const mdevs = new Map<string, MdevSnapshot & { fromSpec: boolean }>();
  const specUuids = new Set((spec.mdevs ?? []).map((m) => m.uuid.toLowerCase()));
  for (const m of before.mdevs) if (!specUuids.has(m.uuid)) mdevs.set(m.uuid, { ...m, fromSpec: false });
  for (const m of spec.mdevs ?? []) {
    mdevs.set(m.uuid.toLowerCase(), {
      uuid: m.uuid.toLowerCase(),
      adapters: sortedUnique(m.adapters.map(canonicalAdapter)),
      domains: sortedUnique(m.domains.map(canonicalDomain)),
      controlDomains: sortedUnique(m.controlDomains.map(canonicalDomain)),
      fromSpec: true,
    });
  }
  return { apmask, aqmask, owned, overrides, ownedOverrides, mdevs };
}

/** synced-matches-bus: every node state that says Synced=True for its current generation. */
export function syncedViolations(nodeStates: readonly APNodeState[], buses: readonly BusSnapshot[], before: readonly BusSnapshot[]): Violation[] {
  const out: Violation[] = [];
  for (const state of nodeStates) {
    const node = state.metadata.name ?? '';
    const synced = conditionOf(state.status?.conditions, 'Synced');
    if (synced?.status !== 'True') continue;
    const generation = state.metadata.generation;
    const observed = synced.observedGeneration ?? state.status?.observedGeneration;
    if (observed !== undefined && generation !== undefined && observed !== generation) continue; // a claim about an older spec
    const bus = busOf(buses, node);
    const initial = busOf(before, node);
    if (!bus || !initial) continue;
    const fail = (message: string) =>
      out.push({ invariant: 'synced-matches-bus', node, message: `node ${node} (${bus.kernel}) says Synced=True at generation ${generation ?? '?'} but ${message}` });
    const want = expectedBus(state, initial);

    for (const [axis, wanted, have] of [
      ['apmask', want.apmask, new Set(bus.apmask)],
      ['aqmask', want.aqmask, new Set(bus.aqmask)],
    ] as const) {
      for (const id of sortedUnique([...wanted, ...have])) {
        if (wanted.has(id) === have.has(id)) continue;
        const spec = want.owned.has(`${axis}:${id}`);
        const word = (set: boolean) => (set ? 'set' : 'clear');
        fail(
          `${axis} bit ${id} is ${word(have.has(id))}; ${spec ? `the spec wants it ${word(wanted.has(id))}` : `the spec does not own it, so it must be restored to ${word(wanted.has(id))} (as before the run)`}`,
        );
      }
    }
    for (const q of bus.queues) {
      const wanted = want.overrides.get(q.apqn) ?? null;
      if (wanted !== q.override) {
        fail(`driver_override of ${q.apqn} is ${q.override ?? 'unset'}; ${want.ownedOverrides.has(q.apqn) ? 'the spec wants' : 'before the run it was'} ${wanted ?? 'unset'}`);
      }
    }
    for (const m of bus.mdevs) {
      const w = want.mdevs.get(m.uuid);
      if (!w) fail(`mdev ${m.uuid} (${matrixText(m)}) exists; neither the spec nor the bus before the run has it`);
      else if (!sameList(w.adapters, m.adapters) || !sameList(w.domains, m.domains) || !sameList(w.controlDomains, m.controlDomains)) {
        fail(`mdev ${m.uuid} has matrix ${matrixText(m)}; ${w.fromSpec ? 'the spec wants' : 'before the run it had'} ${matrixText(w)}`);
      }
    }
    for (const w of want.mdevs.values()) {
      if (!bus.mdevs.some((m) => m.uuid === w.uuid)) fail(`mdev ${w.uuid} (${matrixText(w)}) does not exist; ${w.fromSpec ? 'the spec wants it' : 'it existed before the run'}`);
    }
    // Mask and override differences are reported above; here, a queue bound against the bus's
    // own masks and overrides (a rebind that never happened).
    const apmask = new Set(bus.apmask);
    const aqmask = new Set(bus.aqmask);
    for (const q of bus.queues) {
      const wanted = driverFor(q.apqn, apmask, aqmask, q.override);
      if (q.driver !== '' && q.driver !== wanted) fail(`${q.apqn} is on ${q.driver}; its masks and driver_override put it on ${wanted}`);
      const was = initial.queues.find((i) => i.apqn === q.apqn);
      if (q.driver === 'cex4queue' && q.online === false && was?.online !== false) fail(`${q.apqn} is offline on the host driver (cordoned) though nothing takes it; before the run it was online`);
    }
  }
  return out;
}

// ------------------------------------------------------------------------------ after release

/** nothing-lost: the bus after everything was released, against the bus before the run. */
export function releasedViolations(buses: readonly BusSnapshot[], before: readonly BusSnapshot[]): Violation[] {
  const out: Violation[] = [];
  for (const initial of before) {
    const node = initial.node;
    const bus = busOf(buses, node);
    const fail = (message: string) => out.push({ invariant: 'nothing-lost', node, message: `node ${node} (${initial.kernel}): ${message}` });
    if (!bus) {
      fail('its bus was not read after the release');
      continue;
    }
    for (const [axis, was, now] of [
      ['apmask', new Set(initial.apmask), new Set(bus.apmask)],
      ['aqmask', new Set(initial.aqmask), new Set(bus.aqmask)],
    ] as const) {
      for (const id of sortedUnique([...was, ...now])) {
        if (was.has(id) === now.has(id)) continue;
        const stranded = bus.queues
          .filter((q) => (axis === 'apmask' ? q.apqn.startsWith(`${id}.`) : q.apqn.endsWith(`.${id}`)))
          .filter((q) => q.driver !== initial.queues.find((i) => i.apqn === q.apqn)?.driver)
          .map((q) => q.apqn);
        fail(
          `${axis} bit ${id} is ${now.has(id) ? 'set' : 'clear'}; before the run it was ${was.has(id) ? 'set' : 'clear'}` +
            (stranded.length ? ` (${stranded.length} queue${stranded.length === 1 ? '' : 's'} moved by it: ${stranded.join(', ')})` : ''),
        );
      }
    }
    const beforeQueues = new Map(initial.queues.map((q) => [q.apqn, q]));
    const nowQueues = new Map(bus.queues.map((q) => [q.apqn, q]));
    for (const [apqn, was] of beforeQueues) {
      const now = nowQueues.get(apqn);
      if (!now) {
        fail(`queue ${apqn} is gone`);
        continue;
      }
      const [adapter, domain] = apqn.split('.') as [string, string];
      const byMask = initial.apmask.includes(adapter) !== bus.apmask.includes(adapter) || initial.aqmask.includes(domain) !== bus.aqmask.includes(domain);
      // A queue moved by a mask bit not restored is named with that bit above.
      if (now.driver !== was.driver && !byMask) fail(`${apqn} is on ${now.driver || 'no driver'}; before the run it was on ${was.driver || 'no driver'}`);
      if (now.override !== was.override) fail(`driver_override of ${apqn} is ${now.override ?? 'unset'}; before the run it was ${was.override ?? 'unset'}`);
      if (now.driver === 'cex4queue' && now.online === false && was.online !== false) fail(`${apqn} is offline to the host (a cordon never undone); before the run it was online`);
    }
    for (const apqn of nowQueues.keys()) if (!beforeQueues.has(apqn)) fail(`queue ${apqn} exists; it did not before the run`);
    const initialMdevs = new Map(initial.mdevs.map((m) => [m.uuid, m]));
    for (const m of bus.mdevs) {
      const was = initialMdevs.get(m.uuid);
      if (!was) fail(`mdev ${m.uuid} (${matrixText(m)}) is left`);
      else if (matrixText(was) !== matrixText(m)) fail(`mdev ${m.uuid} has matrix ${matrixText(m)}; before the run ${matrixText(was)}`);
    }
    for (const m of initial.mdevs) if (!bus.mdevs.some((x) => x.uuid === m.uuid)) fail(`mdev ${m.uuid}, there before the run, is gone`);
  }
  return out;
}

// ------------------------------------------------------------------------------- entry points

/** Every invariant that must hold once the churn has settled. */
export function checkSettled(state: ClusterState, before: readonly BusSnapshot[]): Violation[] {
  return [
    ...busViolations(state.buses),
    ...reservationViolations(state.reservations, state.buses),
    ...syncedViolations(state.nodeStates, state.buses, before),
  ];
}

/** Every invariant that must hold once everything was deleted; `left` are objects still there (`kind namespace/name: why`). */
export function checkReleased(state: ClusterState, before: readonly BusSnapshot[], left: readonly string[] = []): Violation[] {
  return [
    ...left.map((what) => ({ invariant: 'all-released' as const, message: `${what} still exists after deletion` })),
    ...busViolations(state.buses),
    ...syncedViolations(state.nodeStates, state.buses, before),
    ...releasedViolations(state.buses, before),
  ];
}

// --------------------------------------------------------------------------------- settling

/** Ready reasons that say the operator is still working on it (it will change by itself). */
export const TRANSIENT_READY_REASONS: ReadonlySet<string> = new Set(['Pending', 'Draining', 'Stuck', 'MdevPending', 'AgentUnavailable', 'Releasing']);
/** Synced reasons of a node whose agent is still working. */
export const TRANSIENT_SYNCED_REASONS: ReadonlySet<string> = new Set(['Applying', 'Draining', 'Stuck', 'AgentError']);

/**
 * What is not settled yet, one line each ([] when settled): a reservation or node whose status
 * lags its spec, or says it is still on its way. A reservation being deleted is settled only
 * while a claim holds it (ClaimedByGuest); otherwise its finalizer has work left.
 */
export function settleProblems(state: Pick<ClusterState, 'reservations' | 'nodeStates'>): string[] {
  const out: string[] = [];
  for (const r of state.reservations) {
    const ready = conditionOf(r.status?.conditions, 'Ready');
    const gen = r.metadata.generation;
    if (r.metadata.deletionTimestamp) {
      if (ready?.reason !== 'ClaimedByGuest') out.push(`${key(r)}: being deleted (${ready ? `Ready=${ready.status} ${ready.reason}` : 'no Ready'})`);
      continue;
    }
    if (!ready) out.push(`${key(r)}: no Ready condition yet`);
    else if (r.status?.observedGeneration !== gen || (ready.observedGeneration !== undefined && ready.observedGeneration !== gen)) {
      out.push(`${key(r)}: status is for generation ${r.status?.observedGeneration ?? '-'}, spec is ${gen}`);
    } else if (ready.status !== 'True' && TRANSIENT_READY_REASONS.has(ready.reason)) out.push(`${key(r)}: Ready=${ready.status} ${ready.reason}${said(ready)}`);
  }
  for (const s of state.nodeStates) {
    const synced = conditionOf(s.status?.conditions, 'Synced');
    const name = s.metadata.name ?? '';
    if (!synced) out.push(`node ${name}: no Synced condition yet`);
    else if (s.status?.observedGeneration !== s.metadata.generation) {
      out.push(`node ${name}: status is for generation ${s.status?.observedGeneration ?? '-'}, spec is ${s.metadata.generation}`);
    } else if (synced.status !== 'True' && TRANSIENT_SYNCED_REASONS.has(synced.reason)) out.push(`node ${name}: Synced=${synced.status} ${synced.reason}${said(synced)}`);
  }
  return out;
}

/** A condition's message, shortened: what a person needs to see why it did not settle. */
function said(c: Condition): string {
  const m = c.message ?? '';
  return m ? ` (${m.length > 400 ? `${m.slice(0, 400)}…` : m})` : '';
}
