import test from 'ava';
import type { ReservationSpec } from '../../src/api/types.js';
import { formatApqn } from '../../src/apbus/ids.js';
import { PROTECTED, planMaskClears } from '../../src/controller/mask-plan.js';
import { hostQueuesOf, nodeInventory } from '../../src/controller/node-inventory.js';
import { type HeldQueue, type NodeCandidate, type ScheduleReason, type ScheduleResult, schedule } from '../../src/controller/schedule.js';
import { validateSpec } from '../../src/controller/validate.js';
import { type CardFixture, nodeStatus, range } from './fixtures.js';
import { randomInt, sample, seededRandom } from './random.js';

const ALL = range(0, 15);

const z1: NodeCandidate = {
  name: 'z1',
  labels: { zone: 'a' },
  status: nodeStatus({
    cards: [
      { id: '05', type: 'CEX8P', domains: ALL },
      { id: '06', type: 'CEX8P', domains: ALL },
      { id: '07', type: 'CEX7C', domains: ALL },
    ],
  }),
};
// adapter 05 is already off the host here: freeing its queues displaces nothing
const z2: NodeCandidate = {
  name: 'z2',
  labels: { zone: 'b' },
  status: nodeStatus({ cards: [{ id: '05', type: 'CEX8P', domains: ALL }, { id: '08', type: 'CEX8C', domains: ALL }], apmask: [8] }),
};
const z3: NodeCandidate = { name: 'z3', labels: { zone: 'a' } };

type Held = Record<string, Record<string, HeldQueue>>;
const heldMap = (h: Held = {}): Map<string, Map<string, HeldQueue>> =>
  new Map(Object.entries(h).map(([node, m]) => [node, new Map(Object.entries(m))]));

function run(spec: ReservationSpec, nodes: NodeCandidate[], held: Held = {}): ScheduleResult {
  const v = validateSpec(spec);
  if (!v.ok) throw new Error(v.problem.message);
  return schedule({ reservation: 'ns/me', spec: v.spec, nodes, held: heldMap(held) });
}

interface Case {
  why: string;
  spec: ReservationSpec;
  nodes?: NodeCandidate[];
  held?: Held;
  node?: string;
  apqns?: string[];
  displacedWeight?: number;
  displaced?: string[];
  reason?: ScheduleReason;
  message?: string | RegExp;
}

const vfio = (holder: string): HeldQueue => ({ reservation: holder, driver: 'vfio_ap' });
const host = (holder: string): HeldQueue => ({ reservation: holder, driver: 'host' });

const cases: Case[] = [
  {
    why: 'nodeName with explicit queues: that node, with the mask plan and what it displaces',
    spec: { nodeName: 'z1', apqns: ['05.0004'] },
    node: 'z1',
    apqns: ['05.0004'],
    displacedWeight: 2,
    displaced: ['06.0004', '07.0004'],
  },
  { why: 'nodeName of a node without APNodeState', spec: { nodeName: 'z9', apqns: ['05.0004'] }, reason: 'NodeNotFound', message: /z9 has no APNodeState/ },
  {
    why: 'nodeName with a queue the node lacks: the validation reason, naming the node',
    spec: { nodeName: 'z1', apqns: ['09.0004'] },
    reason: 'QueueNotFound',
    message: '09.0004 does not exist on node z1 (no card 09)',
  },
  {
    why: 'nodeName does not check holders (conflicts.ts does)',
    spec: { nodeName: 'z1', apqns: ['05.0004'] },
    held: { z1: { '05.0004': vfio('ns/other') } },
    node: 'z1',
  },
  {
    why: 'explicit queues, no node: the node displacing least wins over name order',
    spec: { apqns: ['05.0004', '05.0005'] },
    node: 'z2',
    displacedWeight: 0,
  },
  {
    why: 'explicit queues held by another reservation rule that node out',
    spec: { apqns: ['05.0004'] },
    held: { z2: { '05.0004': vfio('ns/other') } },
    node: 'z1',
  },
  { why: 'nodeSelector narrows the choice', spec: { apqns: ['05.0004'], nodeSelector: { zone: 'a' } }, node: 'z1' },
  {
    why: 'a request: the cheapest domain column of two EP11 adapters',
    spec: { request: { adapters: 2, domains: 1, minCardType: 'CEX8', mode: 'EP11' } },
    nodes: [z1],
    node: 'z1',
    apqns: ['05.0000', '06.0000'],
    displacedWeight: 1,
    displaced: ['07.0000'],
  },
  {
    why: 'a request skips queues other reservations hold',
    spec: { request: { adapters: 2, domains: 1, mode: 'EP11' } },
    nodes: [z1],
    held: { z1: { '05.0000': vfio('ns/a'), '06.0001': vfio('ns/b') } },
    node: 'z1',
    apqns: ['05.0002', '06.0002'],
  },
  {
    why: 'a request prefers adapters already off the host',
    spec: { request: { adapters: 1, domains: 3 } },
    node: 'z2',
    apqns: ['05.0000', '05.0001', '05.0002'],
    displacedWeight: 0,
  },
  {
    why: 'nothing fits: every node says briefly why',
    spec: { request: { adapters: 3, domains: 1, minCardType: 'CEX8', mode: 'EP11' } },
    nodes: [z3, z2, z1],
    reason: 'NoFittingNode',
    message:
      'no node fits 3 adapters × 1 domain (CEX8 or newer, EP11 mode, online): z1: only 2 of the 3 adapters needed (CEX8 or newer, EP11 mode, online); ' +
      'z2: only 1 of the 3 adapters needed (CEX8 or newer, EP11 mode, online); z3: no AP inventory reported yet (is the agent running?)',
  },
  {
    why: 'nothing fits: not enough shared free domains',
    spec: { request: { adapters: 2, domains: 16, mode: 'EP11' } },
    nodes: [z1],
    held: { z1: { '05.0000': vfio('ns/a') } },
    reason: 'NoFittingNode',
    message: /z1: only 1 of the 2 adapters needed have 16 free domains/,
  },
  {
    why: 'a host reservation in the cheap column steers the plan to the row',
    spec: { nodeName: 'z1', apqns: ['05.0004'] },
    held: { z1: { '07.0004': host('ns/keep') } },
    node: 'z1',
    displacedWeight: 15,
  },
  {
    why: 'host reservations in both the row and the column: a conflict, not a silent move',
    spec: { nodeName: 'z1', apqns: ['05.0004'] },
    held: { z1: { '05.0005': host('ns/keep'), '07.0004': host('ns/keep') } },
    reason: 'Conflict',
    message: 'freeing these queues on node z1 would take 07.0004 from the host, held by driver: host reservation ns/keep',
  },
  {
    why: 'driver: host takes only queues the host has now',
    spec: { driver: 'host', request: { adapters: 1, domains: 1, mode: 'EP11' } },
    nodes: [z2],
    reason: 'NoFittingNode',
    message: /z2: only 0 of the 1 adapter needed have 1 free domain/,
  },
  {
    why: 'a node in DriverOverride mode moves single queues: nothing displaced',
    spec: { apqns: ['06.0004'] },
    nodes: [{ ...z1, spec: { bindingMode: 'DriverOverride' } }],
    node: 'z1',
    displacedWeight: 0,
  },
  {
    why: 'bits the node spec already clears count as cleared',
    spec: { request: { adapters: 1, domains: 1, mode: 'EP11' } },
    nodes: [{ ...z1, spec: { aqmask: [{ id: '0009', host: false, original: true }] } }],
    node: 'z1',
    apqns: ['05.0009'],
    displacedWeight: 0,
  },
];

for (const c of cases) {
  test(`schedule: ${c.why}`, (t) => {
    const result = run(c.spec, c.nodes ?? [z1, z2, z3], c.held);
    if (c.reason) {
      if (result.ok) return t.fail(`expected ${c.reason}, placed on ${result.placement.node}`);
      t.is(result.reason, c.reason);
      if (typeof c.message === 'string') t.is(result.message, c.message);
      else if (c.message) t.regex(result.message, c.message);
      return;
    }
    if (!result.ok) return t.fail(`${result.reason}: ${result.message}`);
    t.is(result.placement.node, c.node!);
    if (c.apqns) t.deepEqual(result.placement.apqns, c.apqns);
    if (c.displacedWeight !== undefined) t.is(result.placement.displacedWeight, c.displacedWeight);
    if (c.displaced) t.deepEqual(result.placement.plan?.displacedQueues, c.displaced);
  });
}

test('schedule: the input order of nodes does not change the choice', (t) => {
  const spec: ReservationSpec = { request: { adapters: 1, domains: 2 } };
  const a = run(spec, [z1, z2, z3]);
  const b = run(spec, [z3, z2, z1]);
  t.deepEqual(a, b);
});

// ---------------------------------------------------------------------------------------------
// The request search against brute force: on small random nodes with no other vfio_ap
// reservations, the placement displaces exactly as little as the best of ALL products.

function* combinations(items: number[], k: number, start = 0, acc: number[] = []): Generator<number[]> {
  if (acc.length === k) return yield [...acc];
  for (let i = start; i < items.length; i++) yield* combinations(items, k, i + 1, [...acc, items[i]!]);
}

test('schedule: a request finds the product that displaces least (200 random nodes, brute force)', (t) => {
  let placed = 0;
  for (let seed = 1; seed <= 200; seed++) {
    const random = seededRandom(seed);
    const adapterIds = sample(random, range(1, 9), randomInt(random, 2, 4));
    const domainIds = range(0, randomInt(random, 2, 4));
    const cards: CardFixture[] = adapterIds.map((a) => ({
      id: a.toString(16).padStart(2, '0'),
      type: random() < 0.2 ? 'CEX8C' : 'CEX8P',
      domains: domainIds.filter(() => random() < 0.85),
    }));
    const status = nodeStatus({ cards, apmask: adapterIds.filter(() => random() < 0.7), aqmask: domainIds.filter(() => random() < 0.7) });
    const held: Record<string, HeldQueue> = {};
    for (const q of status.queues!) if (q.driver === 'cex4queue' && random() < 0.1) held[q.apqn] = host('ns/keep');
    const n = randomInt(random, 1, 2);
    const m = randomInt(random, 1, 2);
    const result = run({ request: { adapters: n, domains: m, mode: 'EP11' } }, [{ name: 'z', labels: {}, status }], { z: held });

    // brute force over every EP11 n-subset x m-subset of free, existing queues
    const inventory = nodeInventory('z', status);
    const hostQueues = hostQueuesOf(inventory).map((hq) => (held[formatApqn(hq.apqn)] ? { ...hq, weight: PROTECTED } : hq));
    const ep11 = cards.filter((c) => c.type === 'CEX8P').map((c) => parseInt(c.id, 16));
    let best = Infinity;
    for (const A of combinations(ep11, n)) {
      for (const D of combinations(domainIds, m)) {
        const product = A.flatMap((adapter) => D.map((domain) => ({ adapter, domain })));
        const usable = product.every((q) => inventory.queues.has(q.adapter * 256 + q.domain) && !held[formatApqn(q)]);
        if (!usable) continue;
        const plan = planMaskClears({ apmask: inventory.apmask, aqmask: inventory.aqmask, reserved: product, hostQueues });
        if (plan.conflicts.length > 0) continue;
        best = Math.min(best, plan.displacedWeight);
      }
    }
    if (best === Infinity) {
      t.false(result.ok, `seed ${seed}: brute force finds no product`);
    } else {
      if (!result.ok) return t.fail(`seed ${seed}: ${result.message}`);
      t.is(result.placement.displacedWeight, best, `seed ${seed}`);
      placed++;
    }
  }
  t.log(`${placed} of 200 random requests placed`);
  t.true(placed > 50);
});

test('schedule without weighing (a pinned reservation\'s step 3): the same verdicts, the mask plans only where a driver: host holder could be displaced', (t) => {
  const pinned = (apqns: string[]) => {
    const v = validateSpec({ nodeName: 'z1', apqns, driver: 'vfio_ap' });
    if (!v.ok) throw new Error(v.problem.message);
    return v.spec;
  };
  const host: Held = { z1: { '07.0004': { reservation: 'ns/host', driver: 'host' } } };
  // 05.0004 can leave the host only with its row (05.0001 held) or its column (07.0004 held).
  const hemmedIn: Held = { z1: { '07.0004': { reservation: 'ns/host', driver: 'host' }, '05.0001': { reservation: 'ns/host2', driver: 'host' } } };
  for (const [apqns, held] of [[['05.0004', '06.0004'], {}], [['05.0004', '06.0004'], host], [['05.0002'], host], [['05.0004'], hemmedIn]] as const) {
    const input = { reservation: 'ns/me', spec: pinned([...apqns]), nodes: [z1], held: heldMap(held) };
    const weighed = schedule(input);
    const unweighed = schedule({ ...input, weigh: false });
    t.is(unweighed.ok, weighed.ok, `${apqns.join(',')}: same verdict`);
    if (!weighed.ok || !unweighed.ok) {
      t.is(!unweighed.ok && unweighed.reason, !weighed.ok && weighed.reason);
      continue;
    }
    t.deepEqual(unweighed.placement.apqns, weighed.placement.apqns);
    const protectedHolder = Object.keys(held).length > 0;
    t.is(unweighed.placement.plan !== undefined, protectedHolder, 'planned only with a driver: host holder on the node');
  }
  // A placement that would take a driver: host holder's queue is refused either way.
  const taking = schedule({ reservation: 'ns/me', spec: pinned(['05.0004']), nodes: [z1], held: heldMap(hemmedIn), weigh: false });
  t.is(!taking.ok && taking.reason, 'Conflict');
});
