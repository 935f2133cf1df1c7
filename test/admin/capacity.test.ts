// kubectl apqn capacity: what is left to reserve. Pure: node states in, a report out.
import test from 'ava';
import type { APQNReservation } from '../../src/api/types.js';
import { largestCommon, nodeCapacity } from '../../src/kubectl-apqn/capacity.js';
import { range } from '../controller/fixtures.js';
import { randomInt, seededRandom } from '../controller/random.js';
import { state } from '../controller/view-fixtures.js';

/** The most elements common to some k of the sets, by trying every k-subset. */
function bruteForce(sets: ReadonlyArray<ReadonlySet<number>>): number[] {
  const best = new Array<number>(sets.length + 1).fill(0);
  for (let mask = 1; mask < 1 << sets.length; mask++) {
    const members = sets.filter((_, i) => mask & (1 << i));
    const common = [...members[0]!].filter((d) => members.every((s) => s.has(d)));
    best[members.length] = Math.max(best[members.length]!, common.length);
  }
  return best.slice(1);
}

test('largestCommon: for k adapters, the most domains free on all k (300 random cases against brute force)', (t) => {
  const random = seededRandom(11);
  for (let c = 0; c < 300; c++) {
    const n = randomInt(random, 1, 8);
    const sets = Array.from({ length: n }, () => new Set(range(0, 84).filter(() => random() < 0.6)));
    t.deepEqual(largestCommon(sets).map((x) => x.domains), bruteForce(sets), `case ${c}`);
  }
  t.deepEqual(largestCommon([]), []);
});

test('largestCommon beyond the exact limit (greedy): never more than is there, exact for one adapter and for all', (t) => {
  const random = seededRandom(5);
  const sets = Array.from({ length: 20 }, () => new Set(range(0, 84).filter(() => random() < 0.8)));
  const got = largestCommon(sets);
  t.is(got.length, 20);
  t.is(got[0]!.domains, Math.max(...sets.map((s) => s.size)));
  t.is(got[19]!.domains, range(0, 84).filter((d) => sets.every((s) => s.has(d))).length);
  for (let k = 1; k < 20; k++) t.true(got[k]!.domains <= got[k - 1]!.domains, 'more adapters never share more domains');
});

test('nodeCapacity: reserved, foreign-free and host-held queues are not free; the largest free matrix and what it leaves out', (t) => {
  // Two CEX8C cards 05 and 06 with domains 0-3; a CEX7C card 07 with domains 0-1.
  const fixture = {
    cards: [
      { id: '05', type: 'CEX8C', domains: range(0, 3) },
      { id: '06', type: 'CEX8C', domains: range(0, 3) },
      { id: '07', type: 'CEX7C', domains: range(0, 1) },
    ],
  };
  // ns/vm holds 05.0000 (an mdev of the node spec); ns/hostres keeps 06.0003 on the host.
  const node = state('n', fixture, { spec: { mdevs: [{ uuid: 'u1', reservation: 'ns/vm', adapters: ['05'], domains: ['0000'], controlDomains: [] }] } });
  const hostReservation = {
    metadata: { namespace: 'ns', name: 'hostres' },
    spec: { driver: 'host', apqns: ['06.0003'] },
    status: { nodeName: 'n', apqns: ['06.0003'] },
  } as unknown as APQNReservation;
  const c = nodeCapacity(node, [hostReservation]);
  t.is(c.node, 'n');
  const a05 = c.adapters.find((a) => a.adapter === '05')!;
  t.deepEqual(a05.freeDomains, ['0001', '0002', '0003']);
  t.is(a05.queues.reserved, 1);
  t.deepEqual(c.adapters.find((a) => a.adapter === '06')!.freeDomains, ['0000', '0001', '0002']);
  const cex8 = c.types.find((x) => x.type === 'CEX8C')!;
  t.is(cex8.freeQueues, 6);
  t.deepEqual(cex8.byAdapterCount, [{ adapters: 1, domains: 3 }, { adapters: 2, domains: 2 }]);
  t.deepEqual(cex8.largest, { adapters: 2, domains: 2, queues: 4 }, '05,06 x 0001,0002');
  t.is(Math.round(cex8.fragmentation * 100), 33, '05.0003 and 06.0000 fit in no matrix with it');
  const cex7 = c.types.find((x) => x.type === 'CEX7C')!;
  t.deepEqual(cex7.largest, { adapters: 1, domains: 2, queues: 2 });
  t.is(cex7.fragmentation, 0);
});

test('nodeCapacity: a card that cannot serve offers nothing', (t) => {
  const node = state('n', { cards: [{ id: '05', type: 'CEX8C', domains: range(0, 3), online: false }, { id: '06', type: 'CEX8C', domains: range(0, 3) }] });
  const c = nodeCapacity(node, []);
  t.deepEqual(c.adapters.find((a) => a.adapter === '05')!.freeDomains, []);
  t.is(c.adapters.find((a) => a.adapter === '05')!.trouble, 'offline');
  t.deepEqual(c.types[0]!.largest, { adapters: 1, domains: 4, queues: 4 });
});
