import test from 'ava';
import { type CutSide, FlowNetwork } from '../../src/controller/maxflow.js';
import { randomInt, seededRandom } from './random.js';

test('maxFlow on the textbook network (CLRS fig. 26.1) is 23', (t) => {
  const net = new FlowNetwork(6);
  const edges: Array<[number, number, number]> = [
    [0, 1, 16], [0, 2, 13], [2, 1, 4], [1, 3, 12], [3, 2, 9], [2, 4, 14], [4, 3, 7], [3, 5, 20], [4, 5, 4],
  ];
  for (const [u, v, c] of edges) net.addEdge(u, v, c);
  t.is(net.maxFlow(0, 5), 23);
});

test('an infinite path means no finite cut', (t) => {
  const net = new FlowNetwork(3);
  net.addEdge(0, 1, Infinity);
  net.addEdge(1, 2, Infinity);
  t.is(net.maxFlow(0, 2), Infinity);
  t.throws(() => net.preferredMinCut(0, 2, []));
});

const preferenceCases: Array<{ why: string; side: CutSide; expected: CutSide }> = [
  { why: 'a node free to go either way goes to the source side when asked', side: 'source', expected: 'source' },
  { why: 'a node free to go either way goes to the sink side when asked', side: 'sink', expected: 'sink' },
];
for (const c of preferenceCases) {
  test(`preferredMinCut: ${c.why}`, (t) => {
    const net = new FlowNetwork(3);
    net.addEdge(0, 1, 1);
    net.addEdge(1, 2, 1);
    t.is(net.maxFlow(0, 2), 1);
    t.is(net.preferredMinCut(0, 2, [{ node: 1, side: c.side }])[1], c.expected);
  });
}

test('preferredMinCut never breaks minimality: a forced node ignores the preference', (t) => {
  const net = new FlowNetwork(3);
  net.addEdge(0, 1, 5); // cutting here costs 5, cutting 1->2 costs 1: node 1 must be on the source side
  net.addEdge(1, 2, 1);
  net.maxFlow(0, 2);
  t.is(net.preferredMinCut(0, 2, [{ node: 1, side: 'sink' }])[1], 'source');
});

test('maxFlow equals the brute-force minimum cut, and preferredMinCut returns a minimum cut (200 random networks)', (t) => {
  for (let seed = 1; seed <= 200; seed++) {
    const random = seededRandom(seed);
    const n = randomInt(random, 3, 7);
    const edges: Array<[number, number, number]> = [];
    for (let u = 0; u < n; u++) {
      for (let v = 0; v < n; v++) {
        if (u !== v && random() < 0.4) edges.push([u, v, random() < 0.1 ? Infinity : randomInt(random, 0, 9)]);
      }
    }
    const net = new FlowNetwork(n);
    for (const [u, v, c] of edges) net.addEdge(u, v, c);
    const flow = net.maxFlow(0, n - 1);
    const cutValue = (sourceSide: (v: number) => boolean): number =>
      edges.reduce((s, [u, v, c]) => s + (sourceSide(u) && !sourceSide(v) ? c : 0), 0);
    let best = Infinity;
    for (let mask = 0; mask < 1 << n; mask++) {
      if (!(mask & 1) || mask & (1 << (n - 1))) continue; // source in, sink out
      best = Math.min(best, cutValue((v) => (mask & (1 << v)) !== 0));
    }
    t.is(flow, best, `seed ${seed}`);
    if (flow === Infinity) continue;
    const prefs = Array.from({ length: n }, (_, v) => ({ node: v, side: (random() < 0.5 ? 'source' : 'sink') as CutSide }));
    const sides = net.preferredMinCut(0, n - 1, prefs);
    t.is(cutValue((v) => sides[v] === 'source'), flow, `seed ${seed}: the chosen cut is minimum`);
  }
});
