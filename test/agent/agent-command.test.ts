// `apqn-operator agent` argument handling and the simulated-node lookup — the parts that need
// no API server.
import test from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run, simulatedNodeFromFile } from '../../src/commands/agent.js';

const topology = `nodes:
  - name: node-a
    cards: [ { id: "05", type: CEX8C, domains: "0004-0005" } ]
  - name: node-b
    cards: [ { id: "06", type: CEX8P, domains: ["0001"] } ]
`;

function topologyFile(t: import('ava').ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-cmd-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'topology.yaml');
  fs.writeFileSync(file, topology);
  return file;
}

test('--simulate builds the named node of the topology, its clock running in real time', (t) => {
  const model = simulatedNodeFromFile(topologyFile(t), 'node-b');
  t.is(model.name, 'node-b');
  t.deepEqual(model.cardIds(), [6]);
  const before = model.clock.now();
  const spin = Date.now() + 5;
  while (Date.now() < spin) {
    /* a few real milliseconds */
  }
  t.true(model.clock.now() > before, 'model time moves with real time');
});

test('--simulate with a node the topology lacks names the nodes it has', (t) => {
  const err = t.throws(() => simulatedNodeFromFile(topologyFile(t), 'node-z'));
  t.regex(err!.message, /no node "node-z" \(nodes: node-a, node-b\)/);
});

const usageCases: Array<{ args: string[]; code: number; why: string }> = [
  { args: ['--help'], code: 0, why: '--help prints usage' },
  { args: [], code: 2, why: 'no --node and no NODE_NAME' },
  { args: ['--node', 'a', '--simulate', 'x.yaml', '--sysfs-root', '/sys'], code: 2, why: '--simulate and --sysfs-root exclude each other' },
  { args: ['--node', 'a', '--rescan-seconds', '0'], code: 2, why: 'rescan interval must be positive' },
  { args: ['--node', 'a', '--metrics-port', '70000'], code: 2, why: 'port out of range' },
  { args: ['--node', 'a', '--bogus'], code: 2, why: 'unknown flag' },
  { args: ['--node', 'a', '--state-dir'], code: 2, why: '--state-dir needs a directory' },
  { args: ['--node', 'node-z', '--simulate', '/nonexistent/topology.yaml'], code: 1, why: 'unreadable topology file' },
];

for (const c of usageCases) {
  test.serial(`agent ${c.args.join(' ') || '(no args)'}: exit ${c.code} — ${c.why}`, async (t) => {
    const saved = process.env.NODE_NAME;
    delete process.env.NODE_NAME;
    const write = { out: process.stdout.write, err: process.stderr.write };
    process.stdout.write = (() => true) as typeof process.stdout.write;
    process.stderr.write = (() => true) as typeof process.stderr.write;
    try {
      t.is(await run(c.args), c.code);
    } finally {
      process.stdout.write = write.out;
      process.stderr.write = write.err;
      if (saved !== undefined) process.env.NODE_NAME = saved;
    }
  });
}
