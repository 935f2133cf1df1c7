// `npm run bench`: the operator end to end against the real local control plane.
//
//   node --import=tsx bench/operator.ts [--sizes 1x1,100x10,1000x50] [--repeat 20] [--concurrency 32]
//
// For each size NxM: N vfio_ap reservations (one queue each, pinned to a node) over M simulated
// nodes (one CEX8C card per node with enough domains, no host load), created by a client with
// `--concurrency` requests in flight, timed from the first create to the last Ready seen on a
// watch. In the same run, the floor: the same client doing the same number of creates plus one
// status patch each (the least any operator could write), and the ratio of the two.
// The controller runs as a child process (`apqn-operator controller`, as in a pod) so its
// memory is its own: peak RSS is its VmHWM from /proc. The agents run in this process, one per
// node. Both use their ServiceAccounts' tokens (deploy/rbac), so the API server's audit log
// attributes every request: writes per reservation come from there, heartbeats apart.
// Also: a single reservation apply → Ready, repeated (p50/p90), on an otherwise idle cluster.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import * as yaml from 'js-yaml';
import { API_VERSION, type APQNReservation, type InUsePolicy } from '../src/api/types.js';
import { formatDomainId } from '../src/apbus/ids.js';
import { ApBusModel, SystemClock } from '../src/apbus/model/index.js';
import { topologyFromObject } from '../src/apbus/topology.js';
import { startAgent, type RunningAgent } from '../src/commands/agent.js';
import { registerNodes } from '../src/commands/dev.js';
import { operatorClients, type OperatorClients } from '../src/k8s/client.js';
import { LocalControlPlane, freePort, waitFor } from '../src/k8s/controlplane.js';
import { installCrds } from '../src/k8s/crds.js';
import { logger, setLogLevel } from '../src/log.js';
import { parseFlags } from '../src/util/args.js';
import { auditPolicy, countWrites, readAudit, type WriteCounts } from './operator-audit.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAX_DOMAINS_PER_NODE = 85; // ap_max_domain_id 84: one card, one domain per reservation

setLogLevel(process.env.APQN_LOG_LEVEL ?? 'warn');
const log = logger('bench');
const say = (line: string) => process.stderr.write(`[bench] ${line}\n`);

interface Size {
  reservations: number;
  nodes: number;
}

function parseSizes(text: string): Size[] {
  return text.split(',').map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s.trim());
    if (!m) throw new Error(`--sizes: "${s}" is not NxM (reservations x nodes)`);
    const size = { reservations: Number(m[1]), nodes: Number(m[2]) };
    if (size.nodes < 1 || size.reservations < 1) throw new Error(`--sizes: ${s}: both must be at least 1`);
    if (Math.ceil(size.reservations / size.nodes) > MAX_DOMAINS_PER_NODE) {
      throw new Error(`--sizes: ${s}: at most ${MAX_DOMAINS_PER_NODE} reservations per node`);
    }
    return size;
  });
}

/** Runs fn over items with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

const quantile = (sorted: readonly number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const ms = (x: number) => `${Math.round(x)} ms`;
const s = (x: number) => `${(x / 1000).toFixed(2)} s`;

// ---------------------------------------------------------------------------------------------
// The cluster: control plane with an audit log, CRDs, deploy/'s namespace, accounts and RBAC.

interface Cluster {
  cp: LocalControlPlane;
  admin: k8s.KubeConfig;
  clients: OperatorClients;
  auditLog: string;
  controllerKubeconfig: string;
  agentConfig: k8s.KubeConfig;
  dir: string;
}

function tokenConfig(cp: LocalControlPlane, account: string, dir: string): { kc: k8s.KubeConfig; file: string } {
  const token = cp.kubectl(['create', 'token', account, '-n', 'apqn-system', '--duration=24h']).trim();
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: cp.server, skipTLSVerify: true }],
    users: [{ name: account, token }],
    contexts: [{ name: account, cluster: 'local', user: account }],
    currentContext: account,
  });
  const file = path.join(dir, `${account}.kubeconfig`);
  fs.writeFileSync(file, kc.exportConfig(), { mode: 0o600 });
  return { kc, file };
}

async function startCluster(): Promise<Cluster> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apqn-bench-'));
  const policy = path.join(dir, 'audit-policy.yaml');
  const auditLog = path.join(dir, 'audit.log');
  fs.writeFileSync(policy, auditPolicy());
  const cp = await LocalControlPlane.start({
    apiserverFlags: [`--audit-policy-file=${policy}`, `--audit-log-path=${auditLog}`, '--audit-log-format=json'],
    log: logger('controlplane'),
  });
  const admin = new k8s.KubeConfig();
  admin.loadFromFile(cp.kubeconfigPath);
  await installCrds(admin, undefined, logger('crds'));
  // deploy/'s namespace, ServiceAccounts and RBAC, as a cluster admin would apply them.
  const docs = yaml.loadAll(cp.kubectl(['kustomize', path.join(repo, 'deploy')])) as Array<{ kind: string }>;
  const wanted = docs.filter((d) => d && ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding'].includes(d.kind));
  cp.kubectl(['apply', '-f', '-'], wanted.map((d) => yaml.dump(d)).join('---\n'));
  const controller = tokenConfig(cp, 'apqn-controller', dir);
  const agent = tokenConfig(cp, 'apqn-agent', dir);
  return { cp, admin, clients: operatorClients(admin), auditLog, controllerKubeconfig: controller.file, agentConfig: agent.kc, dir };
}

// ---------------------------------------------------------------------------------------------
// The operator's parts: simulated nodes with agents (here), the controller (a child process).

interface Nodes {
  names: string[];
  agents: RunningAgent[];
  stop(): Promise<void>;
}

async function startNodes(cluster: Cluster, prefix: string, count: number, domainsPerNode: number): Promise<Nodes> {
  const names = Array.from({ length: count }, (_, j) => `${prefix}-${j}`);
  const lastDomain = formatDomainId(Math.max(0, domainsPerNode - 1));
  const topology = topologyFromObject({
    nodes: names.map((name) => ({ name, maxDomainId: MAX_DOMAINS_PER_NODE - 1, cards: [{ id: '01', type: 'CEX8C', domains: `0000-${lastDomain}` }] })),
  });
  await registerNodes(cluster.admin, names, log);
  const agents: RunningAgent[] = [];
  for (const node of topology.nodes) {
    agents.push(
      await startAgent({
        kubeConfig: cluster.agentConfig,
        nodeName: node.name,
        model: ApBusModel.fromTopology(node, { clock: new SystemClock() }),
        log: logger('agent', { node: node.name }),
      }),
    );
  }
  await Promise.all(agents.map((a) => a.ready()));
  const core = cluster.admin.makeApiClient(k8s.CoreV1Api);
  return {
    names,
    agents,
    async stop() {
      await Promise.all(agents.map((a) => a.stop()));
      for (const name of names) {
        await cluster.clients.nodeStates.delete(name).catch(() => undefined);
        await core.deleteNode({ name }).catch(() => undefined);
      }
    },
  };
}

interface ControllerProcess {
  child: ChildProcess;
  /** Its /metrics, parsed: series → value. */
  scrape(): Promise<Map<string, number>>;
  /** Peak and current resident set size (bytes), from /proc. */
  memory(): { peak: number; current: number };
  stop(): Promise<void>;
}

function procStatusBytes(pid: number, field: string): number {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

/** How the controller runs: through tsx, as bin/apqn-operator.js and the image do, or compiled by tsc. */
type ControllerRuntime = { kind: 'tsx' } | { kind: 'compiled'; cli: string };

/** Compiles the sources with tsc into the bench's directory; returns the compiled cli.js. */
function compileSources(dir: string): string {
  const out = path.join(dir, 'dist');
  say('compiling the sources with tsc (for --controller compiled)');
  const result = spawnSync(process.execPath, [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', path.join(repo, 'tsconfig.json'), '--outDir', out], {
    encoding: 'utf8',
  });
  const cli = path.join(out, 'src/cli.js');
  if (!fs.existsSync(cli)) throw new Error(`tsc emitted no ${cli}: ${result.stdout}${result.stderr}`);
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(out, 'node_modules')); // packages resolve from there
  fs.copyFileSync(path.join(repo, 'package.json'), path.join(out, 'package.json')); // "type": "module"
  return cli;
}

async function startControllerProcess(cluster: Cluster, logFile: string, runtime: ControllerRuntime): Promise<ControllerProcess> {
  const port = await freePort();
  const out = fs.openSync(logFile, 'w');
  const child = spawn(
    process.execPath,
    [
      // e.g. APQN_BENCH_CONTROLLER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it
      ...(process.env.APQN_BENCH_CONTROLLER_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      ...(runtime.kind === 'tsx' ? ['--import=tsx', path.join(repo, 'src/cli.ts')] : [runtime.cli]),
      'controller', '--kubeconfig', cluster.controllerKubeconfig, '--metrics-port', String(port)],
    { cwd: repo, stdio: ['ignore', out, out], env: { ...process.env, APQN_LOG_LEVEL: 'info', APQN_LOG_FORMAT: 'json' } },
  );
  fs.closeSync(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(
    'the controller process /readyz',
    async () => {
      if (child.exitCode !== null) throw new Error(`the controller exited (${child.exitCode}); see ${logFile}`);
      const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    },
    60_000,
  );
  return {
    child,
    async scrape() {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const values = new Map<string, number>();
      for (const line of text.split('\n')) {
        const m = /^(\S+) (\S+)$/.exec(line);
        if (m && !line.startsWith('#')) values.set(m[1]!, Number(m[2]));
      }
      return values;
    },
    memory: () => ({ peak: procStatusBytes(child.pid!, 'VmHWM'), current: procStatusBytes(child.pid!, 'VmRSS') }),
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Watching reservations become Ready.

const isReady = (r: APQNReservation) => r.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

class ReadyWatch {
  readonly readyAt = new Map<string, number>();
  readonly gone = new Set<string>();
  private waiters: Array<() => void> = [];
  private abort: AbortController | undefined;

  static async start(kc: k8s.KubeConfig, clients: OperatorClients, namespace: string): Promise<ReadyWatch> {
    const w = new ReadyWatch();
    w.abort = await new k8s.Watch(kc).watch(
      clients.reservations.path(namespace),
      {},
      (type: string, r: APQNReservation) => {
        const name = r.metadata?.name ?? '';
        if (type === 'DELETED') w.gone.add(name);
        else if (!w.readyAt.has(name) && isReady(r)) w.readyAt.set(name, performance.now());
        for (const wake of w.waiters.splice(0)) wake();
      },
      (err: unknown) => {
        // Ended by stop() (an abort) is the normal end; anything else would skew the timings.
        if (err && (err as Error).name !== 'AbortError') log.warn('reservation watch ended', { error: String(err) });
      },
    );
    return w;
  }

  /** Waits until done(); past the deadline throws, or (lenient) returns false. */
  async until(what: string, done: () => boolean, timeoutMs: number, lenient = false): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) {
        if (lenient) return false;
        throw new Error(`timed out waiting for ${what}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return true;
  }

  stop(): void {
    this.abort?.abort();
  }
}

function reservation(namespace: string, name: string, node: string, domain: number, inUsePolicy: InUsePolicy = 'Wait'): APQNReservation {
  return {
    apiVersion: API_VERSION,
    kind: 'APQNReservation',
    metadata: { name, namespace },
    spec: { nodeName: node, apqns: [`01.${formatDomainId(domain)}`], driver: 'vfio_ap', inUsePolicy },
  };
}

async function ensureNamespace(kc: k8s.KubeConfig, name: string): Promise<void> {
  await kc
    .makeApiClient(k8s.CoreV1Api)
    .createNamespace({ body: { metadata: { name } } })
    .catch(() => undefined);
}

/** Deletes every reservation of the namespace and waits until they are gone. */
async function deleteAll(cluster: Cluster, namespace: string, timeoutMs = 600_000): Promise<void> {
  const { group, version, plural } = { group: 'ap.s390x.io', version: 'v1alpha1', plural: 'apqnreservations' };
  await cluster.clients.reservations.api.deleteCollectionNamespacedCustomObject({ group, version, plural, namespace });
  await waitFor(
    `reservations of ${namespace} gone`,
    async () => ((await cluster.clients.reservations.list({ namespace })).items.length === 0 ? true : undefined),
    timeoutMs,
    250,
  );
}

// ---------------------------------------------------------------------------------------------
// The measurements.

interface FloorResult {
  ms: number;
  requests: number;
}

/** A bare client: N creates and N status patches (each right after its create), same concurrency. */
async function measureFloor(cluster: Cluster, size: Size, concurrency: number): Promise<FloorResult> {
  const ns = `floor-${size.reservations}x${size.nodes}`;
  await ensureNamespace(cluster.admin, ns);
  const items = Array.from({ length: size.reservations }, (_, i) => i);
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const started = performance.now();
  await pool(items, concurrency, async (i) => {
    const name = `r${i}`;
    await cluster.clients.reservations.create(reservation(ns, name, 'floor-node', i % MAX_DOMAINS_PER_NODE));
    await cluster.clients.reservations.patchStatus(
      { namespace: ns, name },
      { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'Ready', message: 'floor', lastTransitionTime: now }] } },
    );
  });
  const elapsed = performance.now() - started;
  await deleteAll(cluster, ns);
  return { ms: elapsed, requests: 2 * size.reservations };
}

interface SizeResult {
  size: Size;
  operatorMs: number;
  /** Reservations Ready when the run ended (all of them, unless it hit --timeout). */
  ready: number;
  floor: FloorResult;
  latency: { p50: number; p99: number };
  writes: WriteCounts;
  releaseMs: number;
  memory: { peak: number; current: number };
  /** The controller's own account of the run: reconciles, time in them, CPU. */
  controller: { reconciles: number; reconcileSeconds: number; cpuSeconds: number };
}

async function measureSize(cluster: Cluster, size: Size, concurrency: number, timeoutMs: number, runtime: ControllerRuntime): Promise<SizeResult> {
  const tag = `${size.reservations}x${size.nodes}`;
  say(`${tag}: floor (${size.reservations} creates + ${size.reservations} status patches by a bare client)`);
  const floor = await measureFloor(cluster, size, concurrency);
  say(`${tag}: floor ${s(floor.ms)}; starting ${size.nodes} simulated node(s) and the controller`);
  const perNode = Math.ceil(size.reservations / size.nodes);
  const nodes = await startNodes(cluster, `n${tag}`, size.nodes, perNode);
  const controller = await startControllerProcess(cluster, path.join(cluster.dir, `controller-${tag}.log`), runtime);
  const ns = `bench-${tag}`;
  await ensureNamespace(cluster.admin, ns);
  const watch = await ReadyWatch.start(cluster.admin, cluster.clients, ns);
  let abandoned: string | undefined;
  try {
    let audit = readAudit(cluster.auditLog, 0);
    const items = Array.from({ length: size.reservations }, (_, i) => i);
    const createdAt = new Map<string, number>();
    say(`${tag}: creating ${size.reservations} reservations (${concurrency} in flight) and waiting for all Ready`);
    const started = performance.now();
    await pool(items, concurrency, async (i) => {
      const name = `r${i}`;
      createdAt.set(name, performance.now());
      await cluster.clients.reservations.create(reservation(ns, name, nodes.names[i % size.nodes]!, Math.floor(i / size.nodes)));
    });
    const all = await watch.until(`${size.reservations} reservations Ready`, () => watch.readyAt.size >= size.reservations, timeoutMs, true);
    const operatorMs = all ? Math.max(...watch.readyAt.values()) - started : performance.now() - started;
    const ready = watch.readyAt.size;
    if (!all) say(`${tag}: only ${ready} of ${size.reservations} Ready after ${s(operatorMs)} (--timeout); measuring what there is`);
    const memory = controller.memory();
    const metrics = await controller.scrape();
    const sum = (prefix: string) => [...metrics].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);
    const controllerStats = {
      reconciles: sum('apqn_controller_reconcile_total'),
      reconcileSeconds: sum('apqn_controller_reconcile_duration_seconds_sum'),
      cpuSeconds: metrics.get('apqn_process_cpu_seconds_total') ?? 0,
    };
    const latencies = [...watch.readyAt].map(([name, at]) => at - createdAt.get(name)!).sort((a, b) => a - b);
    if (latencies.length === 0) latencies.push(NaN);
    // Trailing writes of the happy path (events, the agents' last status) land within a moment.
    await new Promise((r) => setTimeout(r, 3000));
    audit = readAudit(cluster.auditLog, audit.next);
    const writes = countWrites(audit.events, ns, new Set(nodes.names));
    if (all) say(`${tag}: all Ready in ${s(operatorMs)}; releasing`);
    let releaseMs = NaN;
    if (all) {
      const releaseStarted = performance.now();
      await deleteAll(cluster, ns);
      releaseMs = performance.now() - releaseStarted;
    } else {
      abandoned = ns;
    }
    return { size, operatorMs, ready, floor, latency: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) }, writes, releaseMs, memory, controller: controllerStats };
  } finally {
    watch.stop();
    await controller.stop();
    await nodes.stop();
    // A size that ran out of time: its reservations go without a release (no controller runs
    // now), so the next size's controller does not inherit them.
    if (abandoned) await dropWithoutRelease(cluster, abandoned);
  }
}

async function dropWithoutRelease(cluster: Cluster, namespace: string): Promise<void> {
  const { items } = await cluster.clients.reservations.list({ namespace });
  await pool(items, 16, async (r) => {
    await cluster.clients.reservations.patch({ namespace, name: r.metadata.name! }, { metadata: { finalizers: null } }).catch(() => undefined);
  });
  await deleteAll(cluster, namespace);
}

interface SingleResult {
  policy: InUsePolicy;
  samples: number[];
  p50: number;
  p90: number;
  max: number;
}

/** One reservation at a time on an idle one-node cluster: apply → Ready, `repeat` times. */
async function measureSingle(cluster: Cluster, repeat: number, policy: InUsePolicy, runtime: ControllerRuntime): Promise<SingleResult> {
  say(`single (inUsePolicy ${policy}): apply → Ready, ${repeat} times`);
  const tag = `single-${policy.toLowerCase()}`;
  const nodes = await startNodes(cluster, tag, 1, 4);
  const controller = await startControllerProcess(cluster, path.join(cluster.dir, `controller-${tag}.log`), runtime);
  const ns = `bench-${tag}`;
  await ensureNamespace(cluster.admin, ns);
  const watch = await ReadyWatch.start(cluster.admin, cluster.clients, ns);
  try {
    const samples: number[] = [];
    for (let i = 0; i < repeat; i++) {
      const name = `single-${i}`;
      const started = performance.now();
      await cluster.clients.reservations.create(reservation(ns, name, nodes.names[0]!, i % 4, policy));
      await watch.until(`${name} Ready`, () => watch.readyAt.has(name), 60_000);
      samples.push(watch.readyAt.get(name)! - started);
      await cluster.clients.reservations.delete({ namespace: ns, name });
      await watch.until(`${name} released`, () => watch.gone.has(name), 60_000);
    }
    const sorted = [...samples].sort((a, b) => a - b);
    return { policy, samples, p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), max: sorted[sorted.length - 1]! };
  } finally {
    watch.stop();
    await controller.stop();
    await nodes.stop();
  }
}

// ---------------------------------------------------------------------------------------------

function report(singles: SingleResult[], results: SizeResult[], concurrency: number, runtime: ControllerRuntime): string {
  const lines: string[] = [`Controller: ${runtime.kind === 'tsx' ? 'through tsx, as shipped' : 'compiled by tsc'}.`, ''];
  for (const single of singles) {
    lines.push(
      `Single reservation apply → Ready (inUsePolicy ${single.policy}; idle cluster, 1 node, ${single.samples.length} runs): ` +
        `p50 ${ms(single.p50)}, p90 ${ms(single.p90)}, max ${ms(single.max)} (target p50 ≤ 500 ms)`,
    );
  }
  if (singles.length) lines.push('');
  lines.push(
    `| reservations × nodes | operator: all Ready | floor (create + status patch, ${concurrency} in flight) | ratio | apply → Ready p50 / p99 | API writes / reservation | of which: reservation, status, node spec, node status, events, DRA slices | heartbeats | refused | requests / reservation | controller RSS peak | release all |`,
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const r of results) {
    const w = r.writes;
    const n = r.size.reservations;
    const total = w.reservation + w.reservationStatus + w.nodeSpec + w.nodeStatus + w.events + w.slices;
    // Per Ready reservation; a size that ran out of time shows its totals instead.
    const complete = r.ready === n;
    const per = (x: number) => (complete ? (x / n).toFixed(2) : `${x}`);
    const latency = (x: number) => (Number.isNaN(x) ? '—' : ms(x));
    const done = r.ready === n ? s(r.operatorMs) : `**${r.ready} of ${n}** Ready after ${s(r.operatorMs)}`;
    const release = Number.isNaN(r.releaseMs) ? '—' : s(r.releaseMs);
    lines.push(
      `| ${n} × ${r.size.nodes} | ${done} | ${s(r.floor.ms)} | ${(r.operatorMs / r.floor.ms).toFixed(2)}×${r.ready === n ? '' : ' (at least)'} | ${latency(r.latency.p50)} / ${latency(r.latency.p99)} | ${per(total)}${complete ? '' : ' in total'} | ${per(w.reservation)}, ${per(w.reservationStatus)}, ${per(w.nodeSpec)}, ${per(w.nodeStatus)}, ${per(w.events)}, ${per(w.slices)} | ${w.heartbeats} | ${w.refused} | ${per(w.requests)} | ${(r.memory.peak / 2 ** 20).toFixed(0)} MB | ${release} |`,
    );
  }
  lines.push('', '| reservations × nodes | controller reconciles | time in reconciles | controller CPU |', '| --- | --- | --- | --- |');
  for (const r of results) {
    lines.push(
      `| ${r.size.reservations} × ${r.size.nodes} | ${r.controller.reconciles} | ${r.controller.reconcileSeconds.toFixed(1)} s | ${r.controller.cpuSeconds.toFixed(1)} s |`,
    );
  }
  return lines.join('\n');
}

const USAGE = `usage: node --import=tsx bench/operator.ts [--sizes 1x1,100x10,1000x50] [--repeat 20] [--concurrency 32]
                                          [--timeout 900] [--controller tsx|compiled]
  --sizes        reservations x nodes, comma-separated
  --repeat       single apply → Ready runs per in-use policy (Wait, the default, and Force); 0 skips them
  --concurrency  creates (and floor requests) in flight
  --timeout      seconds one size may take to become Ready; past it the size reports how many were
  --controller   run the controller through tsx (as bin/apqn-operator.js and the image do) or compiled by tsc
  APQN_BENCH_KEEP=1 keeps the logs (controller, audit); APQN_BENCH_CONTROLLER_NODE_ARGS adds node flags (e.g. --cpu-prof)
`;

async function main(): Promise<number> {
  const flags = parseFlags(process.argv.slice(2), {
    sizes: 'string',
    repeat: 'number',
    concurrency: 'number',
    timeout: 'number',
    controller: 'string',
    help: 'boolean',
  });
  if (flags.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const sizes = parseSizes(flags.sizes ?? '1x1,100x10,1000x50');
  const repeat = flags.repeat ?? 20;
  const concurrency = flags.concurrency ?? 32;
  const timeoutMs = (flags.timeout ?? 900) * 1000;
  if (flags.controller && flags.controller !== 'tsx' && flags.controller !== 'compiled') throw new Error('--controller takes tsx or compiled');
  say(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
  const loadAtStart = os.loadavg().map((x) => x.toFixed(1)).join(' ');
  const cluster = await startCluster();
  let ok = false;
  try {
    const runtime: ControllerRuntime = flags.controller === 'compiled' ? { kind: 'compiled', cli: compileSources(cluster.dir) } : { kind: 'tsx' };
    const singles: SingleResult[] = [];
    if (repeat > 0) for (const policy of ['Wait', 'Force'] as const) singles.push(await measureSingle(cluster, repeat, policy, runtime));
    const results: SizeResult[] = [];
    for (const size of sizes) results.push(await measureSize(cluster, size, concurrency, timeoutMs, runtime));
    const load = os.loadavg().map((x) => x.toFixed(1)).join(' ');
    process.stdout.write(report(singles, results, concurrency, runtime) + '\n');
    process.stdout.write(
      `\n${os.cpus().length} CPUs; load average at start ${loadAtStart}, at end ${load} (other work on the machine skews absolute times; the floor runs in the same conditions)\n`,
    );
    ok = true;
    return 0;
  } finally {
    await cluster.cp.stop();
    // Kept when something failed: the controller's logs and the audit log are there.
    if (ok && !process.env.APQN_BENCH_KEEP) fs.rmSync(cluster.dir, { recursive: true, force: true });
    else say(`logs kept in ${cluster.dir}`);
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
