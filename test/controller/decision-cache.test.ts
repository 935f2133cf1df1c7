// The incremental decider (decision-cache.ts) against the whole-cluster oracle (decideCluster):
// randomized clusters — explicit and request-based reservations over overlapping queues,
// driver: host ones, invalid specs, deletions, claims, recorded placements, node specs the
// controller wrote, nodes without inventory or without an APNodeState — then random changes,
// one at a time, each fed to the cache the way an informer event would be. After every change
// every reservation's decision and every node's composition must equal the oracle's on the
// same inputs. A failure names the seed and the step.
import test, { type ExecutionContext } from 'ava';
import type { APNodeState, APQNClaim, APQNReservation, ReservationSpec } from '../../src/api/types.js';
import { reservationKey } from '../../src/api/types.js';
import { formatAdapterId, formatApqn, formatDomainId } from '../../src/apbus/ids.js';
import { DecisionCache } from '../../src/controller/decision-cache.js';
import { decideCluster } from '../../src/controller/placement.js';
import { formatMicroTime } from '../../src/k8s/clock.js';
import type { NodeFixture } from './fixtures.js';
import { randomInt, seededRandom } from './random.js';
import { NOW, claim, minutesAgo, placed, res, state } from './view-fixtures.js';

const CASES = 300;
const STEPS = 12;
const NODE_NAMES = ['n0', 'n1', 'n2', 'n3'];
const CARD_TYPES = ['CEX8C', 'CEX7C', 'CEX8P', 'CEX6A'];

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

function nodeFixture(random: Random): NodeFixture {
  const cards = Array.from({ length: randomInt(random, 1, 3) }, (_, i) => ({
    id: formatAdapterId(5 + i),
    type: pick(random, CARD_TYPES) as 'CEX8C',
    domains: Array.from({ length: randomInt(random, 2, 6) }, (_, d) => d),
  }));
  return { cards };
}

function randomState(random: Random, name: string): APNodeState {
  const s = state(name, nodeFixture(random), { heartbeatAgoMs: randomInt(random, 0, 5000) });
  if (random() < 0.1) delete s.status!.cards; // no inventory reported yet
  return s;
}

function randomSpec(random: Random, nodes: readonly string[]): ReservationSpec {
  const adapters = [5, 6, 7].filter(() => random() < 0.5);
  if (adapters.length === 0) adapters.push(pick(random, [5, 6, 7]));
  const domains = [0, 1, 2, 3].filter(() => random() < 0.4);
  if (domains.length === 0) domains.push(randomInt(random, 0, 3));
  let apqns = adapters.flatMap((a) => domains.map((d) => formatApqn({ adapter: a, domain: d })));
  if (random() < 0.08 && apqns.length > 1) apqns = apqns.slice(1); // not a matrix
  const spec: ReservationSpec = {};
  const kind = random();
  if (kind < 0.55) {
    spec.nodeName = pick(random, [...nodes, 'missing']);
    spec.apqns = apqns;
  } else if (kind < 0.7) {
    spec.apqns = apqns; // any node that has them
  } else {
    spec.request = { adapters: randomInt(random, 1, 2), domains: randomInt(random, 1, 2) };
    if (random() < 0.3) spec.request.mode = pick(random, ['CCA', 'EP11'] as const);
    if (random() < 0.2) spec.nodeName = pick(random, nodes);
  }
  if (random() < 0.15) spec.driver = 'host';
  if (random() < 0.2) spec.inUsePolicy = pick(random, ['Fail', 'Force'] as const);
  if (random() < 0.15 && spec.driver !== 'host') spec.controlDomains = [formatDomainId(randomInt(random, 0, 3))];
  if (random() < 0.15) spec.nodeSelector = { zone: pick(random, ['a', 'b']) };
  return spec;
}

class World {
  readonly cache = new DecisionCache();
  readonly reservations = new Map<string, APQNReservation>();
  readonly claims = new Map<string, APQNClaim>();
  readonly states = new Map<string, APNodeState>();
  private counter = 0;

  constructor(private readonly random: Random) {}

  private nodeNames(): string[] {
    return [...this.states.keys()];
  }

  putReservation(r: APQNReservation): void {
    this.reservations.set(reservationKey(r), r);
    this.cache.setReservation(r);
  }

  putClaim(c: APQNClaim): void {
    this.claims.set(reservationKey(c), c);
    this.cache.setClaim(c);
  }

  putState(s: APNodeState, relevant = true): void {
    this.states.set(s.metadata.name!, s);
    this.cache.setNodeState(s, relevant);
  }

  newReservation(): void {
    const name = `r${this.counter++}`;
    const r = res(name, randomSpec(this.random, NODE_NAMES), { age: randomInt(this.random, 1, 40), uid: `uid-${name}-${this.counter}` });
    this.putReservation(r);
  }

  /** One random change, as an informer event would bring it. Returns what it did. */
  step(): string {
    const random = this.random;
    const keys = [...this.reservations.keys()];
    const anyKey = () => pick(random, keys);
    const oracle = () => decideCluster(this.cache.view(NOW));
    const choice = random();
    if (choice < 0.15 || keys.length === 0) {
      this.newReservation();
      return 'create a reservation';
    }
    if (choice < 0.25) {
      const key = anyKey();
      this.reservations.delete(key);
      this.cache.removeReservation(key);
      return `delete ${key}`;
    }
    if (choice < 0.35) {
      const r = this.reservations.get(anyKey())!;
      const next = { ...r, metadata: { ...r.metadata, generation: (r.metadata.generation ?? 1) + 1 }, spec: randomSpec(random, NODE_NAMES) };
      this.putReservation(next);
      return `edit ${reservationKey(r)}`;
    }
    if (choice < 0.5) {
      // The controller records what the oracle decided (the status write), or someone clears it.
      const key = anyKey();
      const r = this.reservations.get(key)!;
      const d = oracle().reservations.get(key)!;
      const status = d.standing.kind === 'holds' && random() < 0.85 ? placed(d.standing.node, d.standing.apqns.map(formatApqn)) : undefined;
      const next: APQNReservation = { ...r, ...(status ? { status } : {}) };
      if (!status) delete next.status;
      this.putReservation(next);
      return `${status ? 'record' : 'clear'} the status of ${key}`;
    }
    if (choice < 0.57) {
      const r = this.reservations.get(anyKey())!;
      this.putReservation({ ...r, metadata: { ...r.metadata, deletionTimestamp: minutesAgo(0) } });
      return `start deleting ${reservationKey(r)}`;
    }
    if (choice < 0.67) {
      const target = this.reservations.get(anyKey())!;
      const existing = [...this.claims.values()].filter((c) => c.spec?.reservationName === target.metadata.name);
      if (existing.length > 0 && random() < 0.4) {
        const c = pick(random, existing);
        if (random() < 0.5) {
          this.claims.delete(reservationKey(c));
          this.cache.removeClaim(reservationKey(c));
          return `delete claim ${c.metadata.name}`;
        }
        this.putClaim({ ...c, status: { phase: pick(random, ['Pending', 'Bound', 'Lost'] as const) } });
        return `change claim ${c.metadata.name}`;
      }
      const c = claim(`c${this.counter++}`, target.metadata.name!, { age: randomInt(random, 1, 30), phase: random() < 0.6 ? 'Bound' : 'Pending' });
      this.putClaim(c);
      return `claim ${target.metadata.name}`;
    }
    if (choice < 0.8 && this.states.size > 0) {
      // The controller writes a node's spec as the oracle composed it.
      const node = pick(random, this.nodeNames());
      const composition = oracle().nodes.get(node);
      if (!composition) return 'nothing';
      const s = this.states.get(node)!;
      this.putState({ ...s, metadata: { ...s.metadata, generation: (s.metadata.generation ?? 1) + 1 }, spec: composition.spec });
      return `write the spec of ${node}`;
    }
    if (choice < 0.86 && this.states.size > 0) {
      const node = pick(random, this.nodeNames());
      const s = this.states.get(node)!;
      this.putState({ ...s, status: { ...s.status, heartbeatTime: formatMicroTime(NOW + randomInt(random, 1, 9999)) } }, false);
      return `heartbeat of ${node}`;
    }
    if (choice < 0.9) {
      const node = pick(random, NODE_NAMES);
      if (this.states.has(node) && random() < 0.5) {
        this.states.delete(node);
        this.cache.removeNodeState(node);
        return `delete the APNodeState of ${node}`;
      }
      this.putState(randomState(random, node));
      return `new APNodeState for ${node}`;
    }
    if (choice < 0.95 && this.states.size > 0) {
      // The agent moved a queue (its report changes).
      const node = pick(random, this.nodeNames());
      const s = this.states.get(node)!;
      const queues = (s.status?.queues ?? []).map((q) => (random() < 0.2 ? { ...q, driver: q.driver === 'vfio_ap' ? 'cex4queue' : 'vfio_ap' } : q));
      this.putState({ ...s, status: { ...s.status, queues } });
      return `agent report of ${node}`;
    }
    const node = pick(random, NODE_NAMES);
    this.cache.setNodeLabels(node, random() < 0.2 ? undefined : { zone: pick(random, ['a', 'b']) });
    return `labels of ${node}`;
  }
}

function compare(t: ExecutionContext, world: World, where: string): boolean {
  const view = world.cache.view(NOW);
  const oracle = decideCluster(view);
  for (const [key, expected] of oracle.reservations) {
    const got = world.cache.decision(key);
    if (!t.deepEqual(got, expected, `${where}: decision of ${key}`)) return false;
  }
  for (const [node, expected] of oracle.nodes) {
    const got = world.cache.node(node);
    if (!t.deepEqual(got?.composition, expected, `${where}: composition of ${node}`)) return false;
    if (!t.deepEqual(got?.members, oracle.members.get(node), `${where}: members of ${node}`)) return false;
  }
  const extra = world.cache.nodeNames().filter((n) => !oracle.nodes.has(n));
  return t.deepEqual(extra, [], `${where}: nodes the oracle does not compose`);
}

test(`incremental decisions equal decideCluster on ${CASES} randomized clusters, after each of ${STEPS} changes`, (t) => {
  for (let seed = 1; seed <= CASES; seed++) {
    const random = seededRandom(seed);
    const world = new World(random);
    for (const name of NODE_NAMES.slice(0, randomInt(random, 1, 4))) world.putState(randomState(random, name));
    for (const name of NODE_NAMES) if (random() < 0.5) world.cache.setNodeLabels(name, { zone: pick(random, ['a', 'b']) });
    const initial = randomInt(random, 0, 10);
    for (let i = 0; i < initial; i++) world.newReservation();
    if (!compare(t, world, `seed ${seed}, initial cluster`)) return;
    for (let step = 1; step <= STEPS; step++) {
      const what = world.step();
      if (!compare(t, world, `seed ${seed}, step ${step} (${what})`)) return;
    }
  }
});

test('a burst of events costs one recomputation: refresh reports each changed reservation once', (t) => {
  const cache = new DecisionCache();
  cache.setNodeState(state('n', { cards: [{ id: '05', type: 'CEX8C', domains: [0, 1, 2, 3] }] }));
  for (let d = 0; d < 4; d++) cache.setReservation(res(`r${d}`, { nodeName: 'n', apqns: [`05.000${d}`] }));
  const first = cache.refresh();
  t.deepEqual([...first.reservations].sort(), ['ns/r0', 'ns/r1', 'ns/r2', 'ns/r3']);
  t.deepEqual([...first.nodes], ['n']);
  t.deepEqual(cache.refresh(), { nodes: new Set(), reservations: new Set() }, 'nothing dirty: nothing done');
  // A heartbeat (not relevant) changes nothing; an edit changes that reservation only.
  cache.setNodeState({ ...state('n', { cards: [{ id: '05', type: 'CEX8C', domains: [0, 1, 2, 3] }] }), metadata: { name: 'n', generation: 1 } }, false);
  t.deepEqual(cache.refresh().reservations.size, 0);
  const edited = res('r3', { nodeName: 'n', apqns: ['05.0002'] });
  cache.setReservation({ ...edited, metadata: { ...edited.metadata, generation: 2 } });
  const after = cache.refresh();
  t.deepEqual([...after.reservations], ['ns/r3'], 'r3 now wants the queue r2 holds (same age, earlier by name): only r3 changes');
});
