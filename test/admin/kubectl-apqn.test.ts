// The kubectl apqn plugin against the real API server (`npm test -- test/admin/*.test.ts`):
// the settled fixture cluster is written as real objects (reservations, a claim, APNodeStates
// with spec and status), then the plugin's main runs with a kubeconfig — and once through
// kubectl itself, which finds kubectl-apqn on PATH. Outputs must equal what the pure
// renderers make of the same objects, and `plan` must write nothing.
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import * as yaml from 'js-yaml';
import type { APNodeState, APQNClaim, APQNReservation } from '../../src/api/types.js';
import { operatorClients } from '../../src/k8s/client.js';
import { main, type PluginIO } from '../../src/kubectl-apqn/main.js';
import { buildGrid, renderGrid } from '../../src/kubectl-apqn/matrix.js';
import { statusTable } from '../../src/kubectl-apqn/status.js';
import { kubeConfig, kubeconfigPath } from '../support/cluster.js';
import { fixtureObjects, fixtureStatuses, settleNodes, type Names } from './cluster-fixture.js';

const REPO = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), '..', '..');
const suffix = randomBytes(3).toString('hex');
// Cluster-scoped node states get names no other test uses (and that sort last).
const names: Names = { nodeA: `zz-apqn-${suffix}-a`, nodeB: `zz-apqn-${suffix}-b`, payments: `adm-payments-${suffix}`, keys: `adm-keys-${suffix}` };

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

async function plugin(args: string[], opts: { stdin?: string; isTTY?: boolean; now?: number } = {}): Promise<Captured> {
  let stdout = '';
  let stderr = '';
  const io: PluginIO = {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    isTTY: opts.isTTY ?? false,
    env: {},
    readStdin: () => opts.stdin ?? '',
    now: () => opts.now ?? Date.now(),
  };
  const code = await main([...args, '--kubeconfig', kubeconfigPath()], io);
  return { code, stdout, stderr };
}

let nodeStates: APNodeState[] = [];
let reservations: APQNReservation[] = [];
let claims: APQNClaim[] = [];

test.before('write the fixture cluster as real objects', async () => {
  const kc = kubeConfig();
  const clients = operatorClients(kc);
  const api = kc.makeApiClient(k8s.CoreV1Api);
  for (const ns of [names.payments, names.keys]) await api.createNamespace({ body: { metadata: { name: ns } } });

  const now = Date.now();
  const objects = fixtureObjects(names, now);
  // The server gives the uids (which name the mdevs): create, then compute statuses from them.
  reservations = [];
  for (const r of objects.reservations) {
    const { status: _s, ...body } = r;
    const created = await clients.reservations.create({ ...body, metadata: { namespace: r.metadata.namespace, name: r.metadata.name, finalizers: r.metadata.finalizers } });
    reservations.push({ ...r, metadata: created.metadata });
  }
  claims = [];
  for (const c of objects.claims) {
    const created = await clients.claims.create({ ...c, metadata: { namespace: c.metadata.namespace, name: c.metadata.name } });
    claims.push({ ...c, metadata: created.metadata });
  }
  fixtureStatuses(reservations, claims, now);
  for (const r of reservations) await clients.reservations.patchStatus({ namespace: r.metadata.namespace, name: r.metadata.name! }, { status: r.status });
  for (const c of claims) await clients.claims.patchStatus({ namespace: c.metadata.namespace, name: c.metadata.name! }, { status: c.status });

  nodeStates = settleNodes(reservations, claims, names, now);
  for (const s of nodeStates) {
    await clients.nodeStates.create({ apiVersion: s.apiVersion, kind: s.kind, metadata: { name: s.metadata.name }, spec: s.spec });
    await clients.nodeStates.patchStatus(s.metadata.name!, { status: s.status });
  }
});

test.after.always('remove the fixture objects', async () => {
  const kc = kubeConfig();
  const clients = operatorClients(kc);
  for (const s of nodeStates) await clients.nodeStates.delete(s.metadata.name!).catch(() => undefined);
  for (const r of reservations) {
    await clients.reservations.patch({ namespace: r.metadata.namespace, name: r.metadata.name! }, { metadata: { finalizers: null } }).catch(() => undefined);
  }
  const api = kc.makeApiClient(k8s.CoreV1Api);
  for (const ns of [names.payments, names.keys]) await api.deleteNamespace({ name: ns }).catch(() => undefined);
});

test('kubectl apqn matrix NODE prints the grid of the APNodeState as stored', async (t) => {
  const r = await plugin(['matrix', names.nodeA]);
  t.is(r.code, 0, r.stderr);
  const stored = await operatorClients(kubeConfig()).nodeStates.get(names.nodeA);
  t.is(r.stdout, renderGrid(buildGrid(stored)));
  t.regex(r.stdout, /^06 CEX7C {3}H {2}H {2}H {2}H {2}A {2}A {2}H {2}H$/m, 'the guest uses 06.0004-0005');
  t.regex(r.stdout, /^05 CEX8C {3}H {2}\* /m, 'host requests in flight on 05.0001');
  t.regex(r.stdout, new RegExp(`^a ${names.payments}/payments-vm .* \\(a guest uses it\\)$`, 'm'));
});

test('kubectl apqn matrix -o json has one letter string per adapter', async (t) => {
  const r = await plugin(['matrix', names.nodeB, '-o', 'json']);
  t.is(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout) as { node: string; rows: Array<{ adapter: string; letters: string }> };
  t.is(json.node, names.nodeB);
  t.deepEqual(json.rows.map((row) => `${row.adapter} ${row.letters}`), ['0a HaHH', '0b HHHH']);
});

test('kubectl apqn matrix of a node without APNodeState names the ones there are', async (t) => {
  const r = await plugin(['matrix', `zz-apqn-${suffix}-nope`]);
  t.is(r.code, 1);
  t.regex(r.stderr, new RegExp(`no APNodeState zz-apqn-${suffix}-nope \\(nodes with one: .*${names.nodeA}`));
});

test('kubectl apqn status -n NS: the namespace’s reservations and claims', async (t) => {
  const r = await plugin(['status', '-n', names.payments]);
  t.is(r.code, 0, r.stderr);
  const stored = operatorClients(kubeConfig());
  const [rs, cs] = await Promise.all([stored.reservations.list({ namespace: names.payments }), stored.claims.list({ namespace: names.payments })]);
  t.is(r.stdout, statusTable(rs.items, cs.items, { allNamespaces: false }));
  t.regex(r.stdout, new RegExp(`^apqnr/payments-vm +${names.nodeA} +vfio_ap +06\\.0004,06\\.0005 +True +True +False +claimed by vm1-crypto`, 'm'));
  t.regex(r.stdout, new RegExp(`^apqnc/vm1-crypto +${names.nodeA} .* Bound +True`, 'm'));
  t.false(r.stdout.includes('ep11-vm'), 'other namespaces are not listed');
});

test('kubectl apqn status -A lists every namespace with a NAMESPACE column', async (t) => {
  const r = await plugin(['status', '-A']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^NAMESPACE +NAME +NODE/);
  t.regex(r.stdout, new RegExp(`^${names.keys} +apqnr/ep11-vm +${names.nodeB} `, 'm'));
  t.regex(r.stdout, new RegExp(`^${names.payments} +apqnr/payments-vm `, 'm'));
});

test('kubectl apqn plan -f: the decision, the mask bits, the displaced queue and the steps — and nothing written', async (t) => {
  const clients = operatorClients(kubeConfig());
  // This test's own objects: the files beside it change theirs meanwhile (they run in parallel).
  const ours = async () => ({
    reservations: (await clients.reservations.list()).items
      .filter((o) => o.metadata.namespace === names.payments || o.metadata.namespace === names.keys)
      .map((o) => `${o.metadata.namespace}/${o.metadata.name}@${o.metadata.resourceVersion}`)
      .sort(),
    nodes: (await clients.nodeStates.list()).items
      .filter((o) => o.metadata.name === names.nodeA || o.metadata.name === names.nodeB)
      .map((o) => `${o.metadata.name}@${o.metadata.resourceVersion}`)
      .sort(),
  });
  const before = await ours();
  t.true(before.reservations.length > 0 && before.nodes.length === 2, 'the fixture objects are there to compare');
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'apqn-plan-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = nodePath.join(dir, 'r.yaml');
  fs.writeFileSync(file, `apiVersion: ap.s390x.io/v1alpha1\nkind: APQNReservation\nmetadata: { name: cca-vm }\nspec:\n  nodeName: ${names.nodeA}\n  apqns: ["05.0006", "06.0006"]\n`);
  const r = await plugin(['plan', '-f', file, '-n', names.payments]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, new RegExp(`^Plan for APQNReservation ${names.payments}/cca-vm \\(new; nothing was written\\)`));
  t.regex(r.stdout, new RegExp(`^Placed on node ${names.nodeA}: 05\\.0006 and 06\\.0006$`, 'm'));
  t.regex(r.stdout, /^ {2}aqmask clear 0006 \(to vfio_ap\)$/m);
  t.regex(r.stdout, /^ {2}07\.0006$/m, 'the EP11 queue in that column is displaced');
  t.regex(r.stdout, /^ {2}1\. cordon 05\.0006,06\.0006 \(online 0\)\n {5}waits: .*07\.0006 has 2 host requests in flight.*\n {2}2\. cordon 07\.0006 \(online 0\)\n {2}3\. aqmask clear 0006\n {2}4\. create mdev <new mdev>\n {2}5\. set matrix of mdev <new mdev> to 05,06 x 0006$/m);
  // Not asserted: that the stored node is settled. The plan decides the whole cluster, and
  // request-based reservations of tests running beside this one may be placed on these nodes.

  t.deepEqual(await ours(), before, 'plan wrote nothing');
});

test('kubectl apqn plan -f - reads stdin; -o json is the report', async (t) => {
  const stdin = `apiVersion: ap.s390x.io/v1alpha1\nkind: APQNReservation\nmetadata: { name: late, namespace: ${names.keys} }\nspec: { nodeName: ${names.nodeA}, apqns: ["06.0004"] }\n`;
  const r = await plugin(['plan', '-f', '-', '-o', 'json'], { stdin });
  t.is(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { outcome: string; holders: string[] };
  t.is(report.outcome, 'conflict');
  t.deepEqual(report.holders, [`${names.payments}/payments-vm`]);
});

test('`kubectl apqn` runs the plugin when kubectl-apqn is on PATH', (t) => {
  const bin = process.env.APQN_CONTROLPLANE_BIN;
  if (!bin) throw new Error('APQN_CONTROLPLANE_BIN is not set: run the tests through `npm test`');
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'apqn-plugin-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.symlinkSync(nodePath.join(REPO, 'bin/kubectl-apqn.js'), nodePath.join(dir, 'kubectl-apqn'));
  const result = spawnSync(nodePath.join(bin, 'kubectl'), ['apqn', 'status', '-n', names.keys], {
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: kubeconfigPath(), PATH: `${dir}:${nodePath.dirname(process.execPath)}:${process.env.PATH ?? ''}` },
  });
  t.is(result.status, 0, result.stderr);
  t.regex(result.stdout, new RegExp(`^apqnr/ep11-vm +${names.nodeB} +vfio_ap +0a\\.0001 +True `, 'm'));
});

test('kubectl completes `kubectl apqn …` through kubectl_complete-apqn on PATH (the real kubectl)', (t) => {
  const bin = process.env.APQN_CONTROLPLANE_BIN;
  if (!bin) throw new Error('APQN_CONTROLPLANE_BIN is not set: run the tests through `npm test`');
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'apqn-complete-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const name of ['kubectl-apqn', 'kubectl_complete-apqn']) fs.symlinkSync(nodePath.join(REPO, `bin/${name}.js`), nodePath.join(dir, name));
  const kubectlComplete = (...words: string[]) =>
    spawnSync(nodePath.join(bin, 'kubectl'), ['__complete', 'apqn', ...words], {
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: kubeconfigPath(), PATH: `${dir}:${nodePath.dirname(process.execPath)}:${process.env.PATH ?? ''}` },
    });
  const commands = kubectlComplete('');
  t.is(commands.status, 0, commands.stderr);
  t.deepEqual(commands.stdout.trim().split('\n').map((l) => l.split('\t')[0]), ['matrix', 'status', 'plan', 'capacity', ':4']);
  const nodes = kubectlComplete('matrix', 'zz-apqn-' + suffix);
  t.is(nodes.status, 0, nodes.stderr);
  t.deepEqual(nodes.stdout.trim().split('\n'), [names.nodeA, names.nodeB, ':4'], 'the nodes with an APNodeState, from the cluster');
});

test('kubectl apqn capacity [NODE]: per adapter, queues by state and free domains; per card type, the largest free matrix', async (t) => {
  const r = await plugin(['capacity', names.nodeA, '-o', 'json']);
  t.is(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { nodes: Array<{ node: string; adapters: Array<{ adapter: string; queues: Record<string, number>; freeDomains: string[] }>; types: Array<{ type: string; largest: { queues: number }; freeQueues: number }> }> };
  t.deepEqual(report.nodes.map((n) => n.node), [names.nodeA]);
  // Cross-check against the grid of the same APNodeState: every queue counted once, the ones
  // a reservation's mdev names as reserved.
  const grid = buildGrid(await operatorClients(kubeConfig()).nodeStates.get(names.nodeA));
  for (const row of grid.rows) {
    const a = report.nodes[0]!.adapters.find((x) => x.adapter === row.adapter)!;
    const total = Object.values(a.queues).reduce((n, v) => n + v, 0);
    t.is(total, row.cells.filter((c) => c.state !== 'absent').length, `adapter ${row.adapter}: every queue counted once`);
    t.true(a.queues.reserved >= row.cells.filter((c) => c.reservation !== undefined).length, `adapter ${row.adapter}: reserved queues are not free`);
    for (const d of a.freeDomains) t.is(row.cells.find((c) => c.apqn.endsWith(`.${d}`))?.reservation, undefined);
  }
  for (const type of report.nodes[0]!.types) t.true(type.largest.queues <= type.freeQueues);
  const text = await plugin(['capacity']);
  t.is(text.code, 0, text.stderr);
  t.regex(text.stdout, /^NODE +ADAPTER +TYPE +HOST +HOST-BUSY +VFIO-FREE +RESERVED +FOREIGN +FREE DOMAINS/);
  t.regex(text.stdout, new RegExp(`^  ${names.nodeA} CEX\\d[CPA]: \\d+ x \\d+ \\(\\d+ of \\d+ free queues`, 'm'));
  const missing = await plugin(['capacity', `zz-apqn-${suffix}-nope`]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /no APNodeState/);
});

test('every command takes -o json and -o yaml: the same report, as data', async (t) => {
  const status = await plugin(['status', '-n', names.payments, '-o', 'json']);
  t.is(status.code, 0, status.stderr);
  const report = JSON.parse(status.stdout) as { reservations: Array<Record<string, any>>; claims: Array<Record<string, any>> };
  const vm = report.reservations.find((r) => r.name === 'payments-vm')!;
  t.like(vm, { namespace: names.payments, node: names.nodeA, driver: 'vfio_ap', claimedBy: 'vm1-crypto', deleting: false });
  t.deepEqual(vm.apqns, ['06.0004', '06.0005']);
  t.is(vm.ready.status, 'True');
  t.like(report.claims.find((c) => c.name === 'vm1-crypto'), { phase: 'Bound', reservation: 'payments-vm', node: names.nodeA });
  t.false(report.reservations.some((r) => r.namespace !== names.payments), 'only the namespace asked for');
  for (const args of [['status', '-n', names.payments], ['matrix', names.nodeB], ['plan', '-f', '-', '-n', names.payments]]) {
    const stdin = args[0] === 'plan' ? yaml.dump({ apiVersion: 'ap.s390x.io/v1alpha1', kind: 'APQNReservation', metadata: { name: 'yaml-check' }, spec: { nodeName: names.nodeB, apqns: ['0b.0002'] } }) : undefined;
    const now = Date.now();
    const json = await plugin([...args, '-o', 'json'], { stdin, now });
    const asYaml = await plugin([...args, '-o', 'yaml'], { stdin, now });
    t.is(asYaml.code, 0, asYaml.stderr);
    // CORE_SCHEMA: timestamps stay strings, as in the JSON.
    t.deepEqual(yaml.load(asYaml.stdout, { schema: yaml.CORE_SCHEMA }), JSON.parse(json.stdout), `${args[0]}: yaml and json say the same`);
  }
  const wide = await plugin(['status', '-o', 'wide']);
  t.is(wide.code, 2);
  t.regex(wide.stderr, /-o must be json or yaml, not "wide"/);
});

test('usage errors exit 2 and say what is wrong', async (t) => {
  const r = await plugin(['status', '-n', 'x', '-A']);
  t.is(r.code, 2);
  t.regex(r.stderr, /-n and -A exclude each other/);
  const bad = await plugin(['matrix']);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /matrix takes one NODE/);
  const flag = await plugin(['plan', '--bogus']);
  t.is(flag.code, 2);
  t.regex(flag.stderr, /unknown flag --bogus/);
});
