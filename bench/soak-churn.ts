// The soak's writers: several concurrent actors, each with its own seeded stream, creating,
// deleting, editing and claiming reservations from one shared pool of names, so they collide:
//   create          explicit queues (1-2 adapters x 1-2 domains of one node, mostly in the
//                   crowded domains 0002-0005; sometimes without nodeName, sometimes not a full
//                   matrix), driver vfio_ap or host, inUsePolicy Wait/Fail/Force, a short
//                   drainTimeoutSeconds now and then, a control domain now and then
//   create-request  adapters x domains with a mode and a minimum card type, pinned or not
//   delete          a reservation of the pool (it may not exist)
//   edit            read, change one thing (other queues, policy, driver, drain timeout, size),
//                   write back with its resourceVersion (409 when another writer was faster)
//   claim/unclaim   an APQNClaim of a pool name naming a pool reservation, or its deletion
//   flash           create a one-queue Force reservation and delete it within 0-300 ms: the
//                   create → delete race of issue 12
// The API refusing an operation (404, 409, 422) is part of the churn and counted as such;
// failures (the API server unreachable, 5xx) are counted apart.
import type { APQNClaim, APQNReservation, CardGeneration, CardMode, InUsePolicy, ReservationSpec } from '../src/api/types.js';
import { API_VERSION } from '../src/api/types.js';
import { statusCode, type OperatorClients } from '../src/k8s/client.js';
import type { Random } from './soak-random.js';
import { SOAK_CARDS, type SoakNode } from './soak-topology.js';

export const OPERATIONS = ['create', 'create-request', 'delete', 'edit', 'claim', 'unclaim', 'flash'] as const;
export type Operation = (typeof OPERATIONS)[number];
export type Outcome = 'accepted' | 'refused' | 'failed';

const WEIGHTS: Record<Operation, number> = { create: 26, 'create-request': 12, delete: 20, edit: 16, claim: 8, unclaim: 6, flash: 8 };
const POLICIES: readonly InUsePolicy[] = ['Wait', 'Fail', 'Force'];
const MODES: readonly CardMode[] = ['CCA', 'EP11', 'Accel'];
const CROWDED = ['0002', '0003', '0004', '0005'];

export interface OperationRecord {
  op: Operation;
  outcome: Outcome;
  /** ms since the churn started. */
  at: number;
  error?: string;
}

export interface ChurnOptions {
  clients: OperatorClients;
  namespace: string;
  nodes: readonly SoakNode[];
  /** Reservation names the writers share. */
  names: readonly string[];
  /** Claim names the writers share. */
  claimNames: readonly string[];
  /** Between one writer's operations, ms. */
  thinkMs: [number, number];
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function outcomeOf(err: unknown): { outcome: Outcome; error: string } {
  const code = statusCode(err);
  const error = code !== undefined ? `HTTP ${code}` : err instanceof Error ? err.message.split('\n')[0]!.slice(0, 120) : String(err);
  if (code === 404 || code === 409 || code === 422) return { outcome: 'refused', error };
  return { outcome: 'failed', error };
}

/** 1-2 adapters and 1-2 domains of one node that all exist there (a full matrix). */
function explicitQueues(rng: Random): { adapters: string[]; domains: string[] } {
  const cards = rng.sample(SOAK_CARDS, rng.chance(0.6) ? 1 : 2);
  let domains = cards[0]!.domains.filter((d) => cards.every((c) => c.domains.includes(d)));
  if (rng.chance(0.7)) {
    const crowded = domains.filter((d) => CROWDED.includes(d));
    if (crowded.length) domains = crowded;
  }
  return { adapters: cards.map((c) => c.id).sort(), domains: rng.sample(domains, rng.chance(0.65) ? 1 : 2).sort() };
}

function explicitSpec(rng: Random, nodes: readonly SoakNode[]): ReservationSpec {
  const { adapters, domains } = explicitQueues(rng);
  let apqns = adapters.flatMap((a) => domains.map((d) => `${a}.${d}`));
  if (apqns.length > 1 && rng.chance(0.05)) apqns = apqns.slice(0, -1); // not a full matrix: NotAMatrix
  const spec: ReservationSpec = { apqns };
  if (rng.chance(0.85)) spec.nodeName = rng.pick(nodes).name;
  spec.driver = rng.chance(0.2) ? 'host' : 'vfio_ap';
  spec.inUsePolicy = rng.pick(POLICIES);
  if (rng.chance(0.3)) spec.drainTimeoutSeconds = rng.int(2, 8);
  if (spec.driver === 'vfio_ap' && rng.chance(0.1)) spec.controlDomains = [rng.pick(CROWDED)];
  return spec;
}

function requestSpec(rng: Random, nodes: readonly SoakNode[]): ReservationSpec {
  const spec: ReservationSpec = { request: { adapters: rng.chance(0.6) ? 1 : 2, domains: rng.chance(0.6) ? 1 : 2 } };
  if (rng.chance(0.7)) spec.request!.mode = rng.pick(MODES);
  if (rng.chance(0.3)) spec.request!.minCardType = rng.pick<CardGeneration>(['CEX6', 'CEX7', 'CEX8']);
  if (rng.chance(0.3)) spec.nodeName = rng.pick(nodes).name;
  else if (rng.chance(0.3)) spec.nodeSelector = { 'kubernetes.io/hostname': rng.pick(nodes).name };
  spec.inUsePolicy = rng.pick(POLICIES);
  if (rng.chance(0.2)) spec.drainTimeoutSeconds = rng.int(2, 8);
  return spec;
}

/** One change to a reservation's spec. */
function edited(rng: Random, spec: ReservationSpec, nodes: readonly SoakNode[]): ReservationSpec {
  const next: ReservationSpec = structuredClone(spec);
  const change = rng.weighted({ queues: 4, policy: 2, driver: 1, timeout: 1, size: 2 });
  switch (change) {
    case 'queues':
      if (next.request) break;
      next.apqns = (() => {
        const { adapters, domains } = explicitQueues(rng);
        return adapters.flatMap((a) => domains.map((d) => `${a}.${d}`));
      })();
      return next;
    case 'policy':
      next.inUsePolicy = rng.pick(POLICIES.filter((p) => p !== (next.inUsePolicy ?? 'Wait')));
      return next;
    case 'driver':
      if (next.request) break;
      next.driver = next.driver === 'host' ? 'vfio_ap' : 'host';
      if (next.driver === 'host') delete next.controlDomains;
      return next;
    case 'timeout':
      next.drainTimeoutSeconds = rng.int(2, 20);
      return next;
    case 'size':
      if (next.request) {
        next.request.domains = next.request.domains === 1 ? 2 : 1;
        return next;
      }
      break;
  }
  // The change does not apply to this kind of reservation: turn it into the other kind.
  if (next.request) {
    delete next.request;
    delete next.nodeSelector;
    return { ...next, ...explicitSpec(rng, nodes) };
  }
  delete next.apqns;
  delete next.driver;
  delete next.controlDomains;
  return { ...next, ...requestSpec(rng, nodes) };
}

function reservationObject(namespace: string, name: string, spec: ReservationSpec): APQNReservation {
  return { apiVersion: API_VERSION, kind: 'APQNReservation', metadata: { name, namespace }, spec };
}

export class Churn {
  readonly records: OperationRecord[] = [];
  #started = 0;
  /** Names the writers last saw existing: creates mostly pick others, deletes and edits mostly these
   *  (a fifth of the time any name, so writers still collide). */
  readonly #existing = new Set<string>();

  constructor(private readonly options: ChurnOptions) {}

  /** Runs `writers` concurrent writers until `until` (performance.now() ms). */
  async run(rngs: readonly Random[], until: number): Promise<void> {
    this.#started = performance.now();
    await Promise.all(rngs.map((rng) => this.#writer(rng, until)));
  }

  async #writer(rng: Random, until: number): Promise<void> {
    const { thinkMs } = this.options;
    while (performance.now() < until) {
      const op = rng.weighted(WEIGHTS);
      try {
        await this.#do(op, rng);
        this.#record(op, 'accepted');
      } catch (err) {
        const { outcome, error } = outcomeOf(err);
        this.#record(op, outcome, error);
      }
      await sleep(rng.int(thinkMs[0], thinkMs[1]));
    }
  }

  #record(op: Operation, outcome: Outcome, error?: string): void {
    this.records.push({ op, outcome, at: performance.now() - this.#started, ...(error ? { error } : {}) });
  }

  #name(rng: Random, existing: boolean): string {
    const { names } = this.options;
    const wanted = names.filter((n) => this.#existing.has(n) === existing);
    return wanted.length && rng.chance(0.8) ? rng.pick(wanted) : rng.pick(names);
  }

  async #do(op: Operation, rng: Random): Promise<void> {
    const { clients, namespace, nodes, claimNames } = this.options;
    const creates = op === 'create' || op === 'create-request' || op === 'flash';
    const name = this.#name(rng, !creates);
    const seen = (exists: boolean) => (exists ? this.#existing.add(name) : this.#existing.delete(name));
    try {
      await this.#apply(op, rng, name, clients, namespace, nodes, claimNames, seen);
    } catch (err) {
      const code = statusCode(err);
      if (code === 404) seen(false);
      if (code === 409 && creates) seen(true);
      throw err;
    }
  }

  async #apply(
    op: Operation,
    rng: Random,
    name: string,
    clients: OperatorClients,
    namespace: string,
    nodes: readonly SoakNode[],
    claimNames: readonly string[],
    seen: (exists: boolean) => void,
  ): Promise<void> {
    switch (op) {
      case 'create':
        await clients.reservations.create(reservationObject(namespace, name, explicitSpec(rng, nodes)));
        seen(true);
        return;
      case 'create-request':
        await clients.reservations.create(reservationObject(namespace, name, requestSpec(rng, nodes)));
        seen(true);
        return;
      case 'delete':
        if (!(await clients.reservations.delete({ namespace, name }))) throw Object.assign(new Error('not found'), { code: 404 });
        seen(false);
        return;
      case 'edit': {
        const r = await clients.reservations.get({ namespace, name });
        if (r.metadata.deletionTimestamp) throw Object.assign(new Error('being deleted'), { code: 409 });
        await clients.reservations.replace({ ...r, spec: edited(rng, r.spec, nodes) });
        return;
      }
      case 'claim': {
        const claim: APQNClaim = {
          apiVersion: API_VERSION,
          kind: 'APQNClaim',
          metadata: { name: rng.pick(claimNames), namespace },
          spec: { reservationName: name, guest: { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: `vm-${name}` } },
        };
        await clients.claims.create(claim);
        return;
      }
      case 'unclaim':
        if (!(await clients.claims.delete({ namespace, name: rng.pick(claimNames) }))) throw Object.assign(new Error('not found'), { code: 404 });
        return;
      case 'flash': {
        const node = rng.pick(nodes).name;
        const { adapters, domains } = explicitQueues(rng);
        const spec: ReservationSpec = { nodeName: node, apqns: [`${adapters[0]}.${domains[0]}`], inUsePolicy: 'Force' };
        await clients.reservations.create(reservationObject(namespace, name, spec));
        await sleep(rng.int(0, 300));
        await clients.reservations.delete({ namespace, name });
        seen(false);
        return;
      }
    }
  }
}
