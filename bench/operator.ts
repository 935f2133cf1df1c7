// `npm run bench`: the operator end to end against the real local control plane.
//
//   node --import=tsx bench/operator.ts [--sizes 100x10,1000x50,3000x100] [--repeat 20] [--idle-seconds 30] …
//
// It ends with issue 11's "Figures to reach" (bench/figures.ts), each PASS/MISS, and a CPU
// profile summary of the controller (bench/cpuprofile.ts) at the largest size not measured idle
// (`node --cpu-prof`, which writes the profile as the child exits).
//
// For each size NxM: N vfio_ap reservations (one queue each, pinned to a node) over M simulated
// nodes (one CEX8C card per node with enough domains, no host load), created by a client with
// `--concurrency` requests in flight, timed from the first create to the last Ready seen on a
// watch. In the same run, the floor: the same client doing the same number of creates plus one
// status patch each (the least any operator could write), and the ratio of the two.
// The controller runs as a child process (`apqn-operator controller`, as in a pod), compiled by
// tsc into the bench's own directory (or through tsx with --controller tsx), so its memory and
// CPU are its own: peak RSS is its VmHWM, CPU its utime + stime, from /proc. After the idle size
// is all Ready, its CPU is measured over an idle window while the agents keep heartbeating.
// The agents run in this process, one per node. Both use their ServiceAccounts' tokens
// (deploy/rbac), so the API server's audit log attributes every request: writes per reservation
// come from there, heartbeats apart, split by actor (the controller's account, the agents').
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
import { finalizerPolicyInEffect, registerNodes } from '../src/commands/dev.js';
import { describeError, operatorClients, type OperatorClients } from '../src/k8s/client.js';
import { LocalControlPlane, freePort, waitFor } from '../src/k8s/controlplane.js';
import { installCrds } from '../src/k8s/crds.js';
import { Informer, customResourceSource } from '../src/k8s/informer.js';
import { logger, setLogLevel } from '../src/log.js';
import { parseFlags } from '../src/util/args.js';
import { formatTopFunctions, sourceMapLocator, summarizeProfile, type CpuProfile, type ProfileSummary } from './cpuprofile.js';
import { figures, formatFigures, type SizeFigures } from './figures.js';
import { procCpuSeconds, procStatusBytes } from './proc.js';
import { apiserverProfileSeconds, profileApiserver } from './apiserver-profile.js';
import { auditEnd, auditPolicy, countWritesByActor, readAudit, totalWrites, type WritesByActor } from './operator-audit.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHILD_ENTRY = path.join(repo, 'bench/controller-child.mjs');
const DEFAULT_SIZES = '100x10,1000x50,3000x100';
const DEFAULT_IDLE_AT = '1000x50';
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

const sleep = (msec: number) => new Promise<void>((resolve) => setTimeout(resolve, msec));
const sizeTag = (size: Size) => `${size.reservations}x${size.nodes}`;
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

function tokenConfig(cp: LocalControlPlane, account: string, namespace: string, dir: string): { kc: k8s.KubeConfig; file: string } {
  const token = cp.kubectl(['create', 'token', account, '-n', namespace, '--duration=24h']).trim();
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
    apiserverFlags: [
      `--audit-policy-file=${policy}`,
      `--audit-log-path=${auditLog}`,
      '--audit-log-format=json',
      // The local control plane runs without /debug/pprof; the API server profile needs it.
      ...(apiserverProfileSeconds() ? ['--profiling=true'] : []),
      ...(process.env.APQN_BENCH_APISERVER_FLAGS?.split(' ').filter(Boolean) ?? []),
    ],
    log: logger('controlplane'),
  });
  const admin = new k8s.KubeConfig();
  admin.loadFromFile(cp.kubeconfigPath);
  await installCrds(admin, undefined, logger('crds'));
  // deploy/'s namespace, ServiceAccounts and RBAC, as a cluster admin would apply them.
  const docs = yaml.loadAll(cp.kubectl(['kustomize', path.join(repo, 'deploy')])) as Array<{ kind: string }>;
  // And the policy that gives each new reservation its finalizer (deploy/admission/).
  const kinds = ['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'MutatingAdmissionPolicy', 'MutatingAdmissionPolicyBinding'];
  const wanted = docs.filter((d) => d && kinds.includes(d.kind));
  cp.kubectl(['apply', '-f', '-'], wanted.map((d) => yaml.dump(d)).join('---\n'));
  await finalizerPolicyInEffect(cp);
  const controller = tokenConfig(cp, 'apqn-controller', 'apqn-controller', dir);
  const agent = tokenConfig(cp, 'apqn-agent', 'apqn-system', dir);
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
  /** CPU time it has used (user + system, all its threads), seconds, from /proc. */
  cpuSeconds(): number;
  /** SIGTERM, then waits for it to exit (SIGKILL after `graceMs`); whether it had to be killed. */
  stop(graceMs?: number): Promise<{ killed: boolean }>;
}



/** How the controller runs: compiled by tsc (the default: what the image ships) or through tsx. */
type ControllerRuntime = { kind: 'tsx' } | { kind: 'compiled'; cli: string; out: string };

/**
 * Compiles src/ with tsc into the bench's directory (its own tsconfig extending the repository's,
 * so it depends on no other build and on no dist/); returns the compiled cli.js. The output
 * mirrors the repository (dist/src/…), with source maps for the profile summary.
 */
function compileSources(dir: string): { cli: string; out: string } {
  const out = path.join(dir, 'dist');
  const config = path.join(dir, 'tsconfig.bench.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      extends: path.join(repo, 'tsconfig.json'),
      // typeRoots: types resolve from the repository's node_modules, not from this directory's
      compilerOptions: { rootDir: repo, outDir: out, sourceMap: true, declaration: false, noEmitOnError: false, incremental: false, typeRoots: [path.join(repo, 'node_modules/@types')] },
      include: [path.join(repo, 'src/**/*.ts')],
    }),
  );
  say('compiling src/ with tsc (the controller runs compiled; --controller tsx to run it through tsx)');
  const started = performance.now();
  const result = spawnSync(process.execPath, [path.join(repo, 'node_modules/typescript/bin/tsc'), '-p', config], { encoding: 'utf8' });
  const cli = path.join(out, 'src/cli.js');
  if (!fs.existsSync(cli)) throw new Error(`tsc emitted no ${cli}: ${result.stdout}${result.stderr}`);
  const errors = (result.stdout.match(/error TS\d+/g) ?? []).length;
  if (errors) say(`tsc reported ${errors} type error(s) (emitted anyway; the tree may be mid-edit):\n${result.stdout.split('\n').slice(0, 10).join('\n')}`);
  say(`compiled in ${s(performance.now() - started)}`);
  fs.symlinkSync(path.join(repo, 'node_modules'), path.join(out, 'node_modules')); // packages resolve from there
  fs.symlinkSync(path.join(repo, 'crds'), path.join(out, 'crds')); // src/k8s/crds.ts reads ../../crds
  fs.copyFileSync(path.join(repo, 'package.json'), path.join(out, 'package.json')); // "type": "module"
  return { cli, out };
}

/**
 * NODE_OPTIONS of the controller container in deploy/ (its V8 heap settings): the child runs
 * with them, so the memory measured is the memory of the controller as shipped.
 */
export function shippedNodeOptions(): string | undefined {
  const docs = yaml.loadAll(fs.readFileSync(path.join(repo, 'deploy/controller/deployment.yaml'), 'utf8')) as Array<{
    kind?: string;
    spec?: { template?: { spec?: { containers?: Array<{ name?: string; env?: Array<{ name: string; value?: string }> }> } } };
  }>;
  const deployment = docs.find((d) => d?.kind === 'Deployment');
  const container = deployment?.spec?.template?.spec?.containers?.find((c) => c.name === 'controller');
  return container?.env?.find((e) => e.name === 'NODE_OPTIONS')?.value;
}

async function startControllerProcess(cluster: Cluster, logFile: string, runtime: ControllerRuntime, nodeArgs: string[] = []): Promise<ControllerProcess> {
  const port = await freePort();
  const out = fs.openSync(logFile, 'w');
  const child = spawn(
    process.execPath,
    [
      // e.g. APQN_BENCH_CONTROLLER_NODE_ARGS="--max-old-space-size=128" for every controller of the run
      ...(process.env.APQN_BENCH_CONTROLLER_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      ...nodeArgs,
      // bench/controller-child.mjs runs the entry and exits when it returns (so --cpu-prof writes its file)
      ...(runtime.kind === 'tsx' ? ['--import=tsx', CHILD_ENTRY, path.join(repo, 'src/cli.ts')] : [CHILD_ENTRY, runtime.cli]),
      'controller', '--kubeconfig', cluster.controllerKubeconfig, '--metrics-port', String(port)],
    {
      cwd: repo,
      stdio: ['ignore', out, out],
      env: { ...process.env, APQN_LOG_LEVEL: 'info', APQN_LOG_FORMAT: 'json', ...(shippedNodeOptions() ? { NODE_OPTIONS: shippedNodeOptions() } : {}) },
    },
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
    cpuSeconds: () => procCpuSeconds(child.pid!),
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return { killed: false };
      child.kill('SIGTERM');
      let killed = false;
      const timer = setTimeout(() => {
        killed = true;
        say(`the controller did not exit within ${s(graceMs)} of SIGTERM: killing it (see ${logFile})`);
        child.kill('SIGKILL');
      }, graceMs);
      await exited;
      clearTimeout(timer);
      return { killed };
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

  private constructor(private readonly informer: Informer<APQNReservation>) {}

  /**
   * Follows the namespace's reservations with the project's informer, which watches on from the
   * last resourceVersion when the API server ends a watch (it ends one whose reader falls
   * behind, and this process also runs every agent) and lists again after 410 Gone.
   */
  static async start(kc: k8s.KubeConfig, clients: OperatorClients, namespace: string): Promise<ReadyWatch> {
    const informer = new Informer<APQNReservation>(kc, customResourceSource(clients.reservations, { namespace }), { name: `bench ${namespace}` });
    const w = new ReadyWatch(informer);
    const wake = () => {
      for (const fn of w.waiters.splice(0)) fn();
    };
    const seen = (r: APQNReservation) => {
      const name = r.metadata?.name ?? '';
      if (!w.readyAt.has(name) && isReady(r)) w.readyAt.set(name, performance.now());
      wake();
    };
    informer.on({
      add: seen,
      update: (_old, r) => seen(r),
      delete: (r) => {
        w.gone.add(r.metadata?.name ?? '');
        wake();
      },
    });
    informer.start();
    await informer.waitForSync();
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
    void this.informer.stop();
  }
}

/**
 * The sizes' inUsePolicy: Wait (the default, what a user gets: idle queues are cordoned and
 * moved in the same pass), or APQN_BENCH_POLICY=Force to take the cordon writes out of the run.
 */
const SIZE_POLICY: InUsePolicy = (() => {
  const p = process.env.APQN_BENCH_POLICY ?? 'Wait';
  if (p !== 'Wait' && p !== 'Force' && p !== 'Fail') throw new Error(`APQN_BENCH_POLICY: Wait, Force or Fail, not ${p}`);
  return p;
})();

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
  // A collection delete marks every object; with finalizers and watchers that can outlast the
  // API server's request timeout (504, which also ends the marking) or meet a server too busy to
  // answer: ask again (it is idempotent) until it is done.
  for (let attempt = 1; ; attempt++) {
    try {
      await cluster.clients.reservations.deleteCollection({ namespace });
      break;
    } catch (err) {
      // 504: the request outlasted the API server's timeout; a hang-up: the server was too busy.
      if (attempt >= 10) throw err;
      say(`delete of ${namespace}'s reservations did not complete (${describeError(err)}); asking again`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
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
async function measureFloor(cluster: Cluster, size: Size, concurrency: number, ns = `floor-${sizeTag(size)}`): Promise<FloorResult> {
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
  // deploy/'s policy gave each its finalizer, and no controller runs to take it off: do it here.
  await pool(items, concurrency, async (i) => {
    await cluster.clients.reservations.patch({ namespace: ns, name: `r${i}` }, { metadata: { finalizers: null } });
  });
  await deleteAll(cluster, ns);
  return { ms: elapsed, requests: 2 * size.reservations };
}

interface IdleResult {
  seconds: number;
  cpuSeconds: number;
  /** The agents' heartbeats in the window (status patches of heartbeatTime only), from the audit log. */
  heartbeats: number;
  /** Writes in the window, heartbeats apart, and the controller's requests (reads too) to the run's objects. */
  controllerWrites: number;
  agentWrites: number;
  controllerRequests: number;
}

interface ProfileResult {
  file: string;
  summary?: ProfileSummary;
  /** Why there is no summary. */
  missing?: string;
}

interface SizeResult {
  size: Size;
  operatorMs: number;
  /** Reservations Ready when the run ended (all of them, unless it hit --timeout). */
  ready: number;
  floor: FloorResult;
  latency: { p50: number; p99: number };
  writes: WritesByActor;
  releaseMs: number;
  /** Peak RSS over the controller's whole life at this size (start, creates, idle window, release). */
  memory: { peak: number; current: number };
  /** The controller's own account of the run to all Ready: reconciles, time in them; its CPU (/proc) to all Ready. */
  controller: { reconciles: number; reconcileSeconds: number; cpuSeconds: number; byQueue: Array<{ queue: string; reconciles: number; seconds: number }> };
  idle?: IdleResult;
  profile?: ProfileResult;
}

interface SizeOptions {
  concurrency: number;
  timeoutMs: number;
  runtime: ControllerRuntime;
  /** Measure the idle controller this long after all are Ready (0: not at this size). */
  idleSeconds: number;
  /** Run the controller under --cpu-prof and summarise the profile. */
  profile: boolean;
}

/** The controller's CPU over `seconds` of an all-Ready cluster, the agents heartbeating; the audit log tells what was written meanwhile. */
async function measureIdle(cluster: Cluster, controller: ControllerProcess, ns: string, nodes: ReadonlySet<string>, seconds: number): Promise<IdleResult> {
  const from = auditEnd(cluster.auditLog);
  const cpu0 = controller.cpuSeconds();
  const t0 = performance.now();
  await sleep(seconds * 1000);
  const cpu1 = controller.cpuSeconds();
  const t1 = performance.now();
  const by = countWritesByActor(readAudit(cluster.auditLog, from).events, ns, nodes);
  return {
    seconds: (t1 - t0) / 1000,
    cpuSeconds: cpu1 - cpu0,
    heartbeats: by.agents.heartbeats,
    controllerWrites: totalWrites(by.controller) + by.controller.elsewhere,
    agentWrites: totalWrites(by.agents) + by.agents.elsewhere,
    controllerRequests: by.controller.requests,
  };
}

function readProfile(file: string, runtime: ControllerRuntime): ProfileSummary {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as CpuProfile;
  const root = runtime.kind === 'compiled' ? runtime.out : repo;
  const shorten = (p: string) => {
    const nm = p.lastIndexOf('/node_modules/');
    if (nm >= 0) return p.slice(nm + 1);
    for (const base of [root, repo]) if (p.startsWith(base + path.sep)) return path.relative(base, p);
    return p;
  };
  return summarizeProfile(profile, sourceMapLocator(shorten));
}

async function measureSize(cluster: Cluster, size: Size, opts: SizeOptions): Promise<SizeResult> {
  const { concurrency, timeoutMs, runtime } = opts;
  const tag = sizeTag(size);
  say(`${tag}: floor (${size.reservations} creates + ${size.reservations} status patches by a bare client)`);
  const floor = await measureFloor(cluster, size, concurrency);
  say(`${tag}: floor ${s(floor.ms)}; starting ${size.nodes} simulated node(s) and the controller${opts.profile ? ' (under --cpu-prof)' : ''}`);
  const perNode = Math.ceil(size.reservations / size.nodes);
  const nodes = await startNodes(cluster, `n${tag}`, size.nodes, perNode);
  const profileName = `controller-${tag}.cpuprofile`;
  const profileArgs = opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${cluster.dir}`, `--cpu-prof-name=${profileName}`] : [];
  const controller = await startControllerProcess(cluster, path.join(cluster.dir, `controller-${tag}.log`), runtime, profileArgs);
  const ns = `bench-${tag}`;
  await ensureNamespace(cluster.admin, ns);
  const watch = await ReadyWatch.start(cluster.admin, cluster.clients, ns);
  let abandoned: string | undefined;
  let result: SizeResult;
  let stopped = { killed: false };
  try {
    const auditFrom = auditEnd(cluster.auditLog);
    const items = Array.from({ length: size.reservations }, (_, i) => i);
    const createdAt = new Map<string, number>();
    say(`${tag}: creating ${size.reservations} reservations (${concurrency} in flight) and waiting for all Ready`);
    const started = performance.now();
    const apiserverSeconds = apiserverProfileSeconds();
    const apiserverProfile = apiserverSeconds ? profileApiserver(cluster.cp, apiserverSeconds, path.join(cluster.dir, `apiserver-${tag}.pprof`)) : undefined;
    await pool(items, concurrency, async (i) => {
      const name = `r${i}`;
      createdAt.set(name, performance.now());
      await cluster.clients.reservations.create(reservation(ns, name, nodes.names[i % size.nodes]!, Math.floor(i / size.nodes), SIZE_POLICY));
    });
    const all = await watch.until(`${size.reservations} reservations Ready`, () => watch.readyAt.size >= size.reservations, timeoutMs, true);
    const operatorMs = all ? Math.max(...watch.readyAt.values()) - started : performance.now() - started;
    const ready = watch.readyAt.size;
    const cpuToReady = controller.cpuSeconds();
    if (!all) say(`${tag}: only ${ready} of ${size.reservations} Ready after ${s(operatorMs)} (--timeout); measuring what there is`);
    const metrics = await controller.scrape().catch(() => new Map<string, number>());
    const sum = (prefix: string) => [...metrics].filter(([k]) => k.startsWith(prefix)).reduce((a, [, v]) => a + v, 0);
    const controllerStats = {
      reconciles: sum('apqn_controller_reconcile_total'),
      byQueue: ['reservations', 'nodes', 'claims'].map((queue) => ({
        queue,
        reconciles: sum(`apqn_controller_reconcile_total{controller="${queue}"}`),
        seconds: sum(`apqn_controller_reconcile_duration_seconds_sum{controller="${queue}"}`),
      })),
      reconcileSeconds: sum('apqn_controller_reconcile_duration_seconds_sum'),
      cpuSeconds: cpuToReady,
    };
    const latencies = [...watch.readyAt].map(([name, at]) => at - createdAt.get(name)!).sort((a, b) => a - b);
    if (latencies.length === 0) latencies.push(NaN);
    // Trailing writes of the happy path (events, the agents' last status) land within a moment.
    await sleep(3000);
    const writes = countWritesByActor(readAudit(cluster.auditLog, auditFrom).events, ns, new Set(nodes.names));
    if (all) say(`${tag}: all Ready in ${s(operatorMs)} (${(operatorMs / floor.ms).toFixed(2)}× the floor)`);
    if (apiserverProfile) say(`${tag}: the API server's CPU profile, the first ${apiserverSeconds} s from the first create:\n${await apiserverProfile}`);
    let idle: IdleResult | undefined;
    if (all && opts.idleSeconds > 0) {
      say(`${tag}: idle: the controller's CPU over ${opts.idleSeconds} s, the agents heartbeating`);
      idle = await measureIdle(cluster, controller, ns, new Set(nodes.names), opts.idleSeconds);
      say(`${tag}: idle: ${idle.cpuSeconds.toFixed(2)} s CPU in ${idle.seconds.toFixed(1)} s (${((100 * idle.cpuSeconds) / idle.seconds).toFixed(2)} % of a core)`);
    }
    let releaseMs = NaN;
    if (all) {
      say(`${tag}: releasing`);
      const releaseStarted = performance.now();
      await deleteAll(cluster, ns);
      releaseMs = performance.now() - releaseStarted;
    } else {
      abandoned = ns;
    }
    const memory = controller.memory();
    result = { size, operatorMs, ready, floor, latency: { p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) }, writes, releaseMs, memory, controller: controllerStats, ...(idle ? { idle } : {}) };
  } finally {
    watch.stop();
    // Under the profiler the controller writes its profile as it exits: give it time.
    stopped = await controller.stop(opts.profile ? 120_000 : 10_000);
    await nodes.stop();
    // A size that ran out of time: its reservations go without a release (no controller runs
    // now), so the next size's controller does not inherit them.
    if (abandoned) await dropWithoutRelease(cluster, abandoned);
  }
  if (opts.profile) {
    const file = path.join(cluster.dir, profileName);
    result.profile = { file };
    if (stopped.killed) result.profile.missing = 'the controller did not exit after SIGTERM and was killed: no profile written';
    else if (!fs.existsSync(file)) result.profile.missing = `no ${file} after the controller exited`;
    else {
      try {
        result.profile.summary = readProfile(file, runtime);
      } catch (err) {
        result.profile.missing = `${file}: ${String(err)}`;
      }
    }
  }
  return result;
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

function report(singles: SingleResult[], results: SizeResult[], opts: { concurrency: number; runtime: ControllerRuntime; top: number; profileNote?: string }): string {
  const { concurrency, runtime } = opts;
  const lines: string[] = [
    `Sizes' reservations: inUsePolicy ${SIZE_POLICY}${SIZE_POLICY === 'Wait' ? '' : ' (APQN_BENCH_POLICY)'}. ` +
    `Controller: ${runtime.kind === 'tsx' ? 'through tsx' : 'compiled by tsc (the bench compiles src/ itself)'}, a child process with deploy/'s NODE_OPTIONS (${shippedNodeOptions() ?? 'none'}); agents in the bench's process.`,
    '',
  ];
  const singleTarget: Record<InUsePolicy, string> = { Force: 'must ≤ 200 ms, goal ≤ 100 ms', Wait: 'target p50 ≤ 500 ms' } as Record<InUsePolicy, string>;
  for (const single of singles) {
    lines.push(
      `Single reservation apply → Ready (inUsePolicy ${single.policy}; idle cluster, 1 node, ${single.samples.length} runs): ` +
        `p50 ${ms(single.p50)}, p90 ${ms(single.p90)}, max ${ms(single.max)} (${singleTarget[single.policy] ?? 'no target'})`,
    );
  }
  if (singles.length) lines.push('');
  lines.push(
    `| reservations × nodes | operator: all Ready | per reservation | floor (create + status patch, ${concurrency} in flight) | ratio | apply → Ready p50 / p99 | API writes / reservation: all (controller + agents) | of which: finalizer, status, node spec, node status, events, DRA slices, other | heartbeats | refused | requests / reservation | controller RSS peak | release all |`,
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const r of results) {
    const w = r.writes.all;
    const n = r.size.reservations;
    // Per Ready reservation; a size that ran out of time shows its totals instead.
    const complete = r.ready === n;
    const per = (x: number) => (complete ? (x / n).toFixed(2) : `${x}`);
    const latency = (x: number) => (Number.isNaN(x) ? '—' : ms(x));
    const done = complete ? s(r.operatorMs) : `**${r.ready} of ${n}** Ready after ${s(r.operatorMs)}`;
    const release = Number.isNaN(r.releaseMs) ? '—' : s(r.releaseMs);
    const split = `${per(totalWrites(w))}${complete ? '' : ' in total'} (${per(totalWrites(r.writes.controller))} + ${per(totalWrites(r.writes.agents))})`;
    const elsewhere = w.elsewhere ? `; ${w.elsewhere} writes elsewhere` : '';
    lines.push(
      `| ${n} × ${r.size.nodes} | ${done} | ${(r.operatorMs / n).toFixed(2)} ms | ${s(r.floor.ms)} | ${(r.operatorMs / r.floor.ms).toFixed(2)}×${complete ? '' : ' (at least)'} | ${latency(r.latency.p50)} / ${latency(r.latency.p99)} | ${split} | ${per(w.reservation)}, ${per(w.reservationStatus)}, ${per(w.nodeSpec)}, ${per(w.nodeStatus)}, ${per(w.events)}, ${per(w.slices)}, ${per(w.other)}${elsewhere} | ${w.heartbeats} | ${w.refused} | ${per(w.requests)} | ${(r.memory.peak / 2 ** 20).toFixed(0)} MB | ${release} |`,
    );
  }
  lines.push(
    '',
    '| reservations × nodes | controller reconciles | time in reconciles | controller CPU to all Ready | idle: controller CPU | idle: heartbeats, writes by controller / agents, controller requests |',
    '| --- | --- | --- | --- | --- | --- |',
  );
  for (const r of results) {
    const idle = r.idle
      ? [
          `${((100 * r.idle.cpuSeconds) / r.idle.seconds).toFixed(2)} % of a core (${r.idle.cpuSeconds.toFixed(2)} s in ${r.idle.seconds.toFixed(1)} s)`,
          `${r.idle.heartbeats}, ${r.idle.controllerWrites} / ${r.idle.agentWrites}, ${r.idle.controllerRequests}`,
        ]
      : ['—', '—'];
    lines.push(
      `| ${r.size.reservations} × ${r.size.nodes} | ${r.controller.reconciles} (${r.controller.byQueue.map((q) => `${q.queue} ${q.reconciles}`).join(', ')}) | ${r.controller.reconcileSeconds.toFixed(1)} s (${r.controller.byQueue.map((q) => `${q.queue} ${q.seconds.toFixed(1)} s`).join(', ')}) | ${r.controller.cpuSeconds.toFixed(1)} s | ${idle[0]} | ${idle[1]} |`,
    );
  }

  const sizeFigures: SizeFigures[] = results.map((r) => {
    const n = r.size.reservations;
    return {
      reservations: n,
      nodes: r.size.nodes,
      ready: r.ready,
      operatorMs: r.operatorMs,
      floorMs: r.floor.ms,
      writesPerReservation: { all: totalWrites(r.writes.all) / n, controller: totalWrites(r.writes.controller) / n, agents: totalWrites(r.writes.agents) / n },
      peakRssBytes: r.memory.peak,
      ...(r.idle ? { idle: { seconds: r.idle.seconds, cpuSeconds: r.idle.cpuSeconds, heartbeats: r.idle.heartbeats, controllerWrites: r.idle.controllerWrites } } : {}),
    };
  });
  const p50 = (policy: InUsePolicy) => singles.find((x) => x.policy === policy)?.p50;
  const force = p50('Force');
  const wait = p50('Wait');
  const rows = figures({ sizes: sizeFigures, singleP50Ms: { ...(force !== undefined ? { Force: force } : {}), ...(wait !== undefined ? { Wait: wait } : {}) } });
  const profiled = results.find((r) => r.profile);
  lines.push('', 'Figures to reach (issue 11, 2.1 Controller at scale):', '', formatFigures(rows));
  const notes: string[] = [];
  if (rows.some((r) => r.standIn)) notes.push('a stand-in size is the nearest size this run had, not the figure itself: run the default sizes for that');
  if (runtime.kind === 'tsx') notes.push('the controller ran through tsx, not compiled: the RSS figure is not the compiled one');
  const quiet = results.find((r) => r.idle && r.idle.heartbeats === 0);
  if (quiet) notes.push(`no agent heartbeat fell in the ${quiet.idle!.seconds.toFixed(0)} s idle window (an agent heartbeats every 10 s when it has nothing else to write): a longer --idle-seconds measures the idle cluster with heartbeats`);
  if (profiled) notes.push(`${profiled.size.reservations} × ${profiled.size.nodes} ran under the CPU profiler, which costs the controller some CPU and memory (--profile none to measure without it)`);
  if (opts.profileNote) notes.push(opts.profileNote);
  if (notes.length) lines.push('', ...notes.map((n) => `Note: ${n}.`));
  const passed = rows.filter((r) => r.pass === true).length;
  const goals = rows.filter((r) => r.goalMet === true && r.goal !== '—').length;
  lines.push('', `${passed} of ${rows.length} figures PASS; ${goals} of ${rows.filter((r) => r.goal !== '—').length} goals met; ${rows.filter((r) => r.pass === undefined).length} not measured.`);

  if (profiled?.profile) {
    const p = profiled.profile;
    lines.push('', `CPU profile of the controller at ${profiled.size.reservations} × ${profiled.size.nodes} (its whole life: start, creates, ${profiled.idle ? 'idle window, ' : ''}release):`, '');
    lines.push(p.summary ? formatTopFunctions(p.summary, opts.top) : `no profile: ${p.missing}`);
  }
  return lines.join('\n');
}

const USAGE = `usage: node --import=tsx bench/operator.ts [--sizes ${DEFAULT_SIZES}] [--repeat 20] [--idle-seconds 30]
                                          [--idle-at ${DEFAULT_IDLE_AT}] [--profile largest|NxM|none] [--top 15]
                                          [--concurrency 32] [--timeout 900] [--controller compiled|tsx]
  --sizes         reservations x nodes, comma-separated (at most ${MAX_DOMAINS_PER_NODE} per node)
  --repeat        single apply → Ready runs per in-use policy (Wait, the default, and Force); 0 skips them
  --idle-seconds  after the --idle-at size is all Ready, the controller's CPU over this long an idle
                  window, the agents heartbeating (0 skips it)
  --idle-at       the size measured idle; when --sizes lacks it, the largest size run stands in
  --profile       run the controller under node --cpu-prof at this size (default: the largest one
                  not measured idle) and print its top functions by self time; none skips it
  --top           functions in the profile summary
  --concurrency   creates (and floor requests) in flight
  --timeout       seconds one size may take to become Ready; past it the size reports how many were
  --controller    compiled (default: src/ compiled by tsc into the bench's directory) or tsx
  Quick subset:   --sizes 100x10 --repeat 3 --idle-seconds 5
  APQN_BENCH_KEEP=1 keeps the bench's directory (controller logs, audit log, the .cpuprofile);
  APQN_BENCH_APISERVER_PROFILE=SECONDS prints the API server's CPU profile (go tool pprof -top)
  of that many seconds from each size's first create;
  APQN_BENCH_CONTROLLER_NODE_ARGS adds node flags to every controller child.
  Ends with the "Figures to reach" of issue 11, each PASS/MISS against "must reach" and the goal.
`;

const largestOf = (sizes: readonly Size[]) => [...sizes].sort((a, b) => b.reservations - a.reservations || b.nodes - a.nodes)[0];

/** The size named NxM, or the largest run when --sizes lacks it. */
function chooseSize(sizes: readonly Size[], wanted: string, flag: string): Size | undefined {
  const largest = largestOf(sizes);
  const [size] = parseSizes(wanted);
  const found = sizes.find((x) => x.reservations === size!.reservations && x.nodes === size!.nodes);
  if (!found) say(`${flag} ${wanted}: not among --sizes; ${largest ? sizeTag(largest) : 'no size'} stands in`);
  return found ?? largest;
}

/**
 * The size the controller is profiled at: --profile's, by default the largest. Never the size
 * measured idle: the sampling profiler itself costs the controller about 2 % of a core, as much
 * as the idle target, so by default the largest other size is profiled (in the default sizes,
 * 3,000 × 100 is profiled and 1,000 × 50 measured idle).
 */
function chooseProfileSize(sizes: readonly Size[], wanted: string, idleAt: Size | undefined): { size?: Size; note?: string } {
  if (wanted === 'none') return {};
  if (wanted !== 'largest') {
    const size = chooseSize(sizes, wanted, '--profile');
    if (size && size === idleAt) throw new Error(`--profile ${sizeTag(size)} is the size measured idle, and the profiler itself costs CPU: profile another size, or pass --idle-seconds 0`);
    return { size };
  }
  const largest = largestOf(sizes);
  const size = largestOf(sizes.filter((x) => x !== idleAt));
  if (!size) return { note: `no CPU profile: the only size, ${largest ? `${largest.reservations} × ${largest.nodes}` : '—'}, is measured idle, and the profiler itself costs CPU (--idle-seconds 0 to profile it)` };
  if (size !== largest) return { size, note: `profiled at ${size.reservations} × ${size.nodes}, not at the largest size, ${largest!.reservations} × ${largest!.nodes}: that one is measured idle, and the profiler itself costs CPU` };
  return { size };
}

async function main(): Promise<number> {
  const flags = parseFlags(process.argv.slice(2), {
    sizes: 'string',
    repeat: 'number',
    concurrency: 'number',
    timeout: 'number',
    controller: 'string',
    'idle-seconds': 'number',
    'idle-at': 'string',
    profile: 'string',
    top: 'number',
    help: 'boolean',
  });
  if (flags.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (flags._.length) throw new Error(`unexpected arguments: ${flags._.join(' ')}\n${USAGE}`);
  const sizes = parseSizes(flags.sizes ?? DEFAULT_SIZES);
  const repeat = flags.repeat ?? 20;
  const concurrency = flags.concurrency ?? 32;
  const timeoutMs = (flags.timeout ?? 900) * 1000;
  const idleSeconds = flags['idle-seconds'] ?? 30;
  if (idleSeconds < 0) throw new Error('--idle-seconds: at least 0');
  const top = flags.top ?? 15;
  const controllerKind = flags.controller ?? 'compiled';
  if (controllerKind !== 'tsx' && controllerKind !== 'compiled') throw new Error('--controller takes compiled or tsx');
  const idleAt = idleSeconds > 0 ? chooseSize(sizes, flags['idle-at'] ?? DEFAULT_IDLE_AT, '--idle-at') : undefined;
  const profiling = chooseProfileSize(sizes, flags.profile ?? 'largest', idleAt);
  const profileAt = profiling.size;
  if (profiling.note) say(profiling.note);
  say(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
  const loadAtStart = os.loadavg().map((x) => x.toFixed(1)).join(' ');
  const cluster = await startCluster();
  let ok = false;
  try {
    const runtime: ControllerRuntime = controllerKind === 'compiled' ? { kind: 'compiled', ...compileSources(cluster.dir) } : { kind: 'tsx' };
    // The first requests of a fresh API server and client are slow (connections, caches): an
    // untimed round first, so that no floor is measured cold.
    const warmup = await measureFloor(cluster, { reservations: 2 * concurrency, nodes: 1 }, concurrency, 'floor-warmup');
    say(`warm-up: ${2 * concurrency} creates + status patches in ${s(warmup.ms)} (not counted)`);
    const singles: SingleResult[] = [];
    if (repeat > 0) for (const policy of ['Wait', 'Force'] as const) singles.push(await measureSingle(cluster, repeat, policy, runtime));
    const results: SizeResult[] = [];
    for (const size of sizes) {
      results.push(
        await measureSize(cluster, size, { concurrency, timeoutMs, runtime, idleSeconds: size === idleAt ? idleSeconds : 0, profile: size === profileAt }),
      );
    }
    const load = os.loadavg().map((x) => x.toFixed(1)).join(' ');
    process.stdout.write(report(singles, results, { concurrency, runtime, top, ...(profiling.note ? { profileNote: profiling.note } : {}) }) + '\n');
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
