// `apqn-operator dev`: the whole operator on one machine, no cluster needed — a real local
// control plane (etcd + kube-apiserver, built the first time), the CRDs, a core Node per
// simulated node, the controller and one simulated agent per node of a topology file, all in
// this process. Prints exactly one line on stdout, `ready: KUBECONFIG=<path>`, once users can
// `kubectl apply`; logs and hints go to stderr. Runs until SIGINT/SIGTERM, then stops what it
// started: agents, controller, control plane (and the kubeconfig it wrote).
//
// startDev() is the same session for programs (the README test, the benchmark).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { API_VERSION, RESERVATION_FINALIZER } from '../api/types.js';
import { ApbusInputError } from '../apbus/ids.js';
import { parseTopology, type Topology } from '../apbus/topology.js';
import { isAlreadyExists } from '../k8s/client.js';
import { LocalControlPlane } from '../k8s/controlplane.js';
import { installCrds } from '../k8s/crds.js';
import { logger, logToStderr, type Logger } from '../log.js';
import { serveMetrics, type MetricsServer } from '../metrics/server.js';
import { UsageError, parseFlags } from '../util/args.js';
import { simulatedNode, startAgent, type RunningAgent } from './agent.js';
import { startController, type RunningController } from './controller.js';

export const summary = 'a local real control plane + the controller + simulated nodes, for trying the operator';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DEFAULT_TOPOLOGY = path.join(repoRoot, 'examples/topology.yaml');
/** Signals closer together than this are one Ctrl-C delivered twice (terminal + npm). */
const SAME_SIGNAL_MS = 2000;

const USAGE = `usage: apqn-operator dev [--topology FILE] [--kubeconfig-out PATH] [--scheduler=false] [--metrics-port N]

Starts a local kube-apiserver + etcd (built from pinned sources the first time), installs the
CRDs, registers a Node per simulated node of the topology (default examples/topology.yaml),
and runs the controller and one simulated agent per node in this process. When users can
\`kubectl apply\`, prints one line on stdout:

  ready: KUBECONFIG=<path>

Runs until Ctrl-C (SIGINT) or SIGTERM, then stops everything it started (Ctrl-C again, a
moment later, exits at once; etcd and kube-apiserver are still killed). The cluster lives
only as long as this command: the kubeconfig is written to --kubeconfig-out, or to the control
plane's temporary directory, and removed on exit either way.
A kube-scheduler runs too, so KubeVirt-shaped pods with ResourceClaims get their DRA devices
allocated and a node (--scheduler=false leaves it out). --metrics-port serves /metrics, /healthz and /readyz
for the controller and every simulated agent (0 picks a free port).
`;

export interface DevOptions {
  topology: Topology;
  /** Where to write the kubeconfig (default: inside the control plane's work directory). */
  kubeconfigPath?: string;
  scheduler?: boolean;
  /** Serve /metrics, /healthz, /readyz for the controller and the agents on this port. */
  metricsPort?: number;
  /** Agents' bus rescan interval (default the agent's, 2 s). */
  rescanMs?: number;
  /** Control-plane binaries (default: build or find them). */
  binDir?: string;
  /** Run the controller in this process (default true; the benchmark runs its own). */
  controller?: boolean;
  log?: Logger;
}

export interface DevSession {
  readonly controlPlane: LocalControlPlane;
  readonly kubeconfigPath: string;
  readonly kubeConfig: k8s.KubeConfig;
  readonly controller?: RunningController;
  readonly agents: readonly RunningAgent[];
  readonly metrics?: MetricsServer;
  /** Stops agents, controller, metrics and the control plane; removes the kubeconfig. Idempotent. */
  stop(): Promise<void>;
}

/** A Node as a kubelet would register it: enough for the scheduler and for nodeSelector labels. */
export function simulatedNodeObject(name: string, now = new Date()): k8s.V1Node {
  const time = now.toISOString().replace(/\.\d+Z$/, 'Z');
  const resources = { cpu: '8', memory: '32Gi', pods: '110' };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/arch': 's390x',
        'kubernetes.io/os': 'linux',
        'ap.s390x.io/simulated': 'true',
      },
    },
    spec: {},
    status: {
      capacity: resources,
      allocatable: resources,
      addresses: [{ type: 'Hostname', address: name }],
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'SimulatedNodeReady',
          message: 'simulated by apqn-operator dev (no kubelet runs)',
          lastHeartbeatTime: time as unknown as Date,
          lastTransitionTime: time as unknown as Date,
        },
      ],
      nodeInfo: {
        architecture: 's390x',
        operatingSystem: 'linux',
        osImage: 'simulated IBM Z node',
        kernelVersion: '',
        kubeletVersion: '',
        kubeProxyVersion: '',
        containerRuntimeVersion: '',
        bootID: '',
        machineID: '',
        systemUUID: '',
      },
    },
  };
}

/**
 * Creates a Ready core Node per name. The API server keeps a Node's status on create (kubelets
 * register that way). No node lifecycle controller runs in the local control plane, so nothing
 * turns these NotReady or taints them: the heartbeat need not be renewed.
 */
export async function registerNodes(kc: k8s.KubeConfig, names: readonly string[], log: Logger): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  for (const name of names) {
    try {
      await core.createNode({ body: simulatedNodeObject(name) });
      log.info('node registered', { node: name });
      // The TaintNodesByCondition admission plugin taints every new Node not-ready; the node
      // lifecycle controller that would lift it does not run here, so the scheduler would never
      // place a pod on a simulated node.
      await core.patchNode(
        { name, body: { spec: { taints: null } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
  }
}

export async function startDev(options: DevOptions): Promise<DevSession> {
  const log = options.log ?? logger('dev');
  const controlPlane = await LocalControlPlane.start({
    ...(options.binDir ? { binDir: options.binDir } : {}),
    ...(options.kubeconfigPath ? { kubeconfigPath: options.kubeconfigPath } : {}),
    scheduler: options.scheduler ?? true,
    handleSignals: false,
    log: logger('controlplane'),
  });
  let controller: RunningController | undefined;
  const agents: RunningAgent[] = [];
  let metrics: MetricsServer | undefined;
  // Each simulated node's state dir (the agent's journal), as /var/lib/apqn-operator on a host.
  const stateDirs: string[] = [];
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      await Promise.all(agents.map((a) => a.stop()));
      for (const dir of stateDirs) fs.rmSync(dir, { recursive: true, force: true });
      await metrics?.close();
      await controller?.stop();
      await controlPlane.stop();
      // It names a server that no longer exists.
      if (options.kubeconfigPath) fs.rmSync(options.kubeconfigPath, { force: true });
      log.info('stopped');
    })());
  try {
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromFile(controlPlane.kubeconfigPath);
    await installCrds(kubeConfig, undefined, logger('crds'));
    installClusterExtras(controlPlane, log);
    await finalizerPolicyInEffect(controlPlane);
    const names = options.topology.nodes.map((n) => n.name);
    await registerNodes(kubeConfig, names, log);
    if (options.controller !== false) controller = await startController({ kubeConfig, log: logger('controller') });
    for (const name of names) {
      const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), `apqn-dev-${name}-`));
      stateDirs.push(stateDir);
      agents.push(
        await startAgent({
          kubeConfig,
          nodeName: name,
          model: simulatedNode(options.topology, name),
          stateDir,
          ...(options.rescanMs !== undefined ? { rescanMs: options.rescanMs } : {}),
          log: logger('agent', { node: name, object: `APNodeState/${name}` }),
        }),
      );
    }
    await Promise.all(agents.map((a) => a.ready()));
    if (options.metricsPort !== undefined) {
      metrics = await serveMetrics(options.metricsPort, { ...(controller ? { controller: controller.controller } : {}), agents: agents.map((a) => a.runtime) }, log);
    }
    return { controlPlane, kubeconfigPath: controlPlane.kubeconfigPath, kubeConfig, controller, agents, metrics, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

function readTopology(file: string): Topology {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ApbusInputError(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const topology = parseTopology(text, file);
  if (topology.nodes.length === 0) throw new ApbusInputError(`${file}: no nodes`);
  return topology;
}

export async function run(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseFlags(args, { topology: 'string', 'kubeconfig-out': 'string', scheduler: 'boolean', 'metrics-port': 'number', help: 'boolean' });
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`apqn-operator dev: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (flags._.length > 0) {
    process.stderr.write(`apqn-operator dev: unexpected argument ${flags._[0]}\n\n${USAGE}`);
    return 2;
  }
  const port = flags['metrics-port'];
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    process.stderr.write(`apqn-operator dev: --metrics-port must be 0..65535\n\n${USAGE}`);
    return 2;
  }
  logToStderr(); // stdout carries only the ready line
  const log = logger('dev');
  const topologyFile = path.resolve(flags.topology ?? DEFAULT_TOPOLOGY);
  let topology: Topology;
  try {
    topology = readTopology(topologyFile);
  } catch (err) {
    if (!(err instanceof ApbusInputError)) throw err;
    process.stderr.write(`apqn-operator dev: ${err.message}\n`);
    return 1;
  }

  // Signals: the first stops everything in order (agents, controller, control plane). One that
  // comes later exits at once (the control plane's exit hook still kills etcd and
  // kube-apiserver). Repeats within a moment are the same Ctrl-C: `npm start` forwards the
  // terminal's SIGINT to us, which the terminal sent us already.
  let signalled: NodeJS.Signals | undefined;
  let signalledAt = 0;
  let wake: (() => void) | undefined;
  const kubeconfigOut = flags['kubeconfig-out'] ? path.resolve(flags['kubeconfig-out']) : undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      if (Date.now() - signalledAt < SAME_SIGNAL_MS) return;
      process.stderr.write(`apqn-operator dev: ${signal} again, exiting without a clean stop\n`);
      if (kubeconfigOut) fs.rmSync(kubeconfigOut, { force: true });
      process.exit(130);
    }
    signalled = signal;
    signalledAt = Date.now();
    log.info('stopping', { signal });
    wake?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const session = await startDev({
      topology,
      ...(kubeconfigOut ? { kubeconfigPath: kubeconfigOut } : {}),
      scheduler: flags.scheduler ?? true,
      ...(port !== undefined ? { metricsPort: port } : {}),
      log,
    });
    if (!signalled) {
      const kubectl = path.join(session.controlPlane.binDir, 'kubectl');
      process.stderr.write(
        [
          '',
          `apqn-operator dev: ${topology.nodes.length} simulated node(s) from ${path.relative(process.cwd(), topologyFile) || topologyFile}: ${topology.nodes.map((n) => n.name).join(', ')}`,
          'Use the cluster from another shell:',
          `  export KUBECONFIG=${session.kubeconfigPath}`,
          `  alias kubectl=${kubectl}   # the kubectl built with the control plane, if you have none`,
          ...(session.metrics ? [`Metrics: http://127.0.0.1:${session.metrics.port}/metrics`] : []),
          'Stop with Ctrl-C.',
          '',
        ].join('\n') + '\n',
      );
      process.stdout.write(`ready: KUBECONFIG=${session.kubeconfigPath}\n`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        if (signalled) resolve();
      });
    }
    await session.stop();
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/**
 * What `kubectl apply -k deploy/` installs besides the CRDs and the workloads, so that the
 * playground behaves as a cluster with the operator deployed: the policy that gives each new
 * reservation its finalizer, and the DRA DeviceClass. Not the two ValidatingAdmissionPolicies:
 * they name the deployed ServiceAccounts, and the playground's controller and agents run with
 * the admin's credentials (its agents have no pods whose tokens could name their nodes), so one
 * would never apply and the other would refuse the playground controller's ResourceClaims.
 */
export const DEV_CLUSTER_MANIFESTS = ['deploy/admission/reservation-finalizer.yaml', 'deploy/dra/deviceclass.yaml'];

function installClusterExtras(controlPlane: LocalControlPlane, log: Logger): void {
  for (const file of DEV_CLUSTER_MANIFESTS) {
    controlPlane.kubectl(['apply', '-f', path.join(repoRoot, file)]);
    log.debug('applied', { manifest: file });
  }
}

/**
 * Waits until the API server admits a new reservation with the finalizer policy applied. Until
 * then a create can be refused with 503 (the policy's matcher does not know the fresh CRD yet),
 * and the first thing a new user does is create one. Probes with server-side dry runs, so the
 * cluster holds no probe object. The benchmark waits the same way before it measures.
 */
export async function finalizerPolicyInEffect(controlPlane: LocalControlPlane, timeoutMs = 60_000): Promise<void> {
  const probe = JSON.stringify({
    apiVersion: API_VERSION,
    kind: 'APQNReservation',
    metadata: { name: 'apqn-dev-probe', namespace: 'default' },
    spec: { nodeName: 'none', apqns: ['00.0000'] },
  });
  const deadline = Date.now() + timeoutMs;
  let refused: unknown;
  while (Date.now() <= deadline) {
    try {
      const created = JSON.parse(controlPlane.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], probe)) as {
        metadata?: { finalizers?: string[] };
      };
      if (created.metadata?.finalizers?.includes(RESERVATION_FINALIZER)) return;
      refused = undefined;
    } catch (err) {
      refused = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw refused ?? new Error(`the reservation finalizer policy (deploy/admission/) did not take effect within ${timeoutMs / 1000} s`);
}
