// The soak's small pure parts: seeded streams (the same seed makes the same choices, an
// actor's stream does not depend on the others), the topology (every kernel profile, boot
// masks with bits already off the host), and the operation rates of the report.
import test from 'ava';
import { Random } from '../../bench/soak-random.js';
import { operationRates } from '../../bench/soak-run.js';
import { snapshotBus } from '../../bench/soak-bus.js';
import { soakNodes, soakTopology } from '../../bench/soak-topology.js';
import { ApBusModel } from '../../src/apbus/model/index.js';

const draws = (r: Random, n = 20) => Array.from({ length: n }, () => r.int(0, 1000));

test('a seed fixes the stream; forks are independent of each other and of the parent', (t) => {
  t.deepEqual(draws(new Random(7)), draws(new Random(7)));
  t.notDeepEqual(draws(new Random(7)), draws(new Random(8)));
  const a = new Random(7);
  const forkFirst = draws(a.fork('writer-0'));
  const b = new Random(7);
  draws(b); // the parent drawing first changes nothing for the fork
  draws(b.fork('writer-1'));
  t.deepEqual(draws(b.fork('writer-0')), forkFirst);
  t.notDeepEqual(draws(new Random(7).fork('writer-1')), forkFirst);
});

test('int, pick, weighted and sample stay in range', (t) => {
  const r = new Random(1);
  for (let i = 0; i < 1000; i++) {
    const x = r.int(3, 5);
    t.true(x >= 3 && x <= 5);
  }
  const seen = new Set(Array.from({ length: 200 }, () => r.weighted({ a: 1, b: 1, never: 0 })));
  t.deepEqual([...seen].sort(), ['a', 'b']);
  const sample = r.sample([1, 2, 3, 4], 3);
  t.is(new Set(sample).size, 3);
});

test('the soak topology has every kernel profile, and boot masks with queues already off the host', (t) => {
  const nodes = soakNodes('n', 3);
  t.deepEqual(nodes.map((n) => n.kernel), ['5.15', '6.10', '6.19']);
  const buses = soakTopology(nodes).nodes.map((n) => snapshotBus(ApBusModel.fromTopology(n)));
  t.deepEqual(buses.map((b) => b.queues.length), [28, 28, 28]);
  t.deepEqual(buses[0]!.queues.filter((q) => q.driver === 'vfio_ap').map((q) => q.apqn), ['03.0007', '04.0007'], '5.15: domain 0007 off the host');
  t.deepEqual(buses[1]!.queues.filter((q) => q.driver === 'vfio_ap').map((q) => q.apqn), ['05.0000', '05.0001', '05.0002', '05.0003'], '6.10: adapter 05 off the host');
  t.deepEqual(buses[2]!.queues.filter((q) => q.driver !== 'cex4queue'), [], '6.19: all on the host (driver_override mode)');
});

test('operation rates: answered operations per second, and the slowest 5 s window', (t) => {
  const at = (s: number, outcome: 'accepted' | 'refused' | 'failed' = 'accepted') => ({ op: 'create' as const, outcome, at: s * 1000 });
  const records = [at(0.5), at(1), at(2, 'refused'), at(6), at(7, 'failed'), at(9)];
  const rates = operationRates(records, 10);
  t.is(rates.overall, 0.5, '5 answered (failed ones are not) in 10 s');
  t.is(rates.lowestWindow, 0.4, 'the second window: 2 in 5 s');
});
