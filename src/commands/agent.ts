// `apqn-operator agent`: the node agent (one per node; a DaemonSet in a cluster). It obeys
// APNodeState/<node>.spec on this node's AP bus — the real /sys, or with --simulate a node of a
// topology file, modelled in memory — and reports the bus in its status.
//
// startAgent() is the same agent for in-process use: `dev` runs one per simulated node, tests
// run several in one process against the real API server.
import * as fs from 'node:fs';
import type { ApiConfig } from '../k8s/kubeconfig.js';
import { SysfsBackend } from '../apbus/backend.js';
import { ApbusInputError } from '../apbus/ids.js';
import { ApBusModel, SystemClock } from '../apbus/model/index.js';
import { RealSysfs } from '../apbus/real-sysfs.js';
import { parseTopology, type Topology } from '../apbus/topology.js';
import { VirtualSysfs } from '../apbus/virtual-sysfs.js';
import type { Clock } from '../k8s/clock.js';
import { loadKubeConfig } from '../k8s/client.js';
import { logger, type Logger } from '../log.js';
import { UsageError, parseFlags } from '../util/args.js';
import { serveMetrics, type MetricsServer } from '../metrics/server.js';
import { AgentJournal, FileJournalStore, readBootId } from '../agent/journal.js';
import { AgentRuntime, DEFAULT_RESCAN_MS, type AgentRuntimeOptions, type AgentStats } from '../agent/runtime.js';
import { DEFAULT_HEARTBEAT_MS } from '../agent/status-writer.js';
import { kubernetesEventSink } from '../agent/k8s-event-sink.js';
import { DRA_FLAGS, DRA_USAGE, draSettingsFromFlags, type DraSettings } from '../agent/dra/flags.js';
import { startDraPlugin, type DraPlugin } from '../agent/dra/plugin.js';

export const summary = "the node agent: applies APNodeState.spec to the node's AP bus and reports it";

const DEFAULT_STATE_DIR = '/var/lib/apqn-operator';

const USAGE = `usage: apqn-operator agent --node NAME [--sysfs-root /sys | --simulate TOPOLOGY.yaml]
                           [--state-dir ${DEFAULT_STATE_DIR}] [--kubeconfig PATH]
                           [--rescan-seconds 2] [--heartbeat-seconds 10]
                           [--metrics-port N] [--dra-plugin [DRA DIRECTORIES]]

Obeys APNodeState/NAME.spec on this node's AP bus and writes its status. --node defaults to
$NODE_NAME. --simulate runs node NAME of a topology file on the in-memory model instead of the
real sysfs. --state-dir is where the agent keeps its journal (journal.json: the mdevs it owns,
and the mask bits and driver_overrides it changed with their values before, written before
each change) — on the node, so it survives restarts; default ${DEFAULT_STATE_DIR}, or in memory
with --simulate. --metrics-port serves /metrics (Prometheus), /healthz and /readyz.
${DRA_USAGE}`;

export interface StartAgentOptions
  extends Pick<
    AgentRuntimeOptions,
    'driftHoldSeconds' | 'resyncSeconds' | 'drainLookIntervalMs' | 'events' | 'nodeStates' | 'onStep' | 'onJournal' | 'apiBackoff'
  > {
  kubeConfig: ApiConfig;
  nodeName: string;
  /** The bus to work on; or `model` (a simulated node), for which a backend is made. */
  backend?: SysfsBackend;
  model?: ApBusModel;
  /** Bus rescan interval (default 2000). */
  rescanMs?: number;
  /** Status heartbeat interval (default 10000). */
  heartbeatMs?: number;
  log?: Logger;
  clock?: Clock;
  /** Record events through the API server (default true). */
  recordEvents?: boolean;
  /** Also serve the kubelet DRA plugin (KubeVirt guests, issue 7). */
  dra?: DraSettings;
  /** Directory of the agent's journal on the node (see journal.ts); without it the journal is
   *  kept in memory and lost with the process. */
  stateDir?: string;
}

export interface RunningAgent {
  readonly nodeName: string;
  readonly backend: SysfsBackend;
  /** The simulated node, when started with one. */
  readonly model?: ApBusModel;
  /** The model's virtual sysfs, when simulated: write it to change the bus behind the agent's back. */
  readonly io?: VirtualSysfs;
  readonly runtime: AgentRuntime;
  /** The kubelet DRA plugin, when started with `dra`. */
  readonly dra?: DraPlugin;
  /** Resolves once the APNodeState was read (or created) and a first status written. */
  ready(): Promise<void>;
  stats(): AgentStats;
  stop(): Promise<void>;
}

/** Starts an agent in this process; it runs until stop(). API trouble never rejects this. */
export async function startAgent(options: StartAgentOptions): Promise<RunningAgent> {
  if (!options.backend === !options.model) throw new Error('startAgent: pass exactly one of backend or model');
  const io = options.model ? new VirtualSysfs(options.model) : undefined;
  const backend = options.backend ?? new SysfsBackend(io!);
  const log = options.log ?? logger('agent', { node: options.nodeName, object: `APNodeState/${options.nodeName}` });
  // A simulated node has no boot_id of its own (the model's reboot keeps the process's).
  const journal = options.stateDir ? new AgentJournal(new FileJournalStore(options.stateDir), options.model ? {} : { bootId: readBootId() }) : undefined;
  const runtime = new AgentRuntime({
    ...options,
    ...(journal ? { journal } : {}),
    backend,
    log,
    rescanMs: options.rescanMs ?? DEFAULT_RESCAN_MS,
    heartbeatMs: options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
    events: options.events ?? (options.recordEvents === false ? undefined : kubernetesEventSink(options.kubeConfig, options.nodeName, log)),
  });
  const { kubeConfig, nodeName } = options;
  const dra = options.dra ? await startDraPlugin({ ...options.dra, kubeConfig, nodeName, io: backend.io, log }) : undefined;
  runtime.start();
  return {
    nodeName: options.nodeName,
    backend,
    ...(options.model ? { model: options.model, io } : {}),
    runtime,
    ...(dra ? { dra } : {}),
    ready: () => runtime.ready(),
    stats: () => runtime.stats(),
    stop: () => runtime.stop().then(() => dra?.stop()),
  };
}

/**
 * The simulated node `nodeName` of a topology, booted, its clock running in real time (host
 * requests drain in real seconds). Throws ApbusInputError listing the node names if absent.
 */
export function simulatedNode(topology: Topology, nodeName: string, source = 'topology'): ApBusModel {
  const node = topology.nodes.find((n) => n.name === nodeName);
  if (!node) {
    const names = topology.nodes.map((n) => n.name);
    throw new ApbusInputError(`${source}: no node ${JSON.stringify(nodeName)} (nodes: ${names.join(', ') || 'none'})`);
  }
  return ApBusModel.fromTopology(node, { clock: new SystemClock() });
}

/** simulatedNode() from a topology file. */
export function simulatedNodeFromFile(file: string, nodeName: string): ApBusModel {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ApbusInputError(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  return simulatedNode(parseTopology(text, file), nodeName, file);
}

function seconds(flag: string, value: number | undefined, fallbackMs: number): number {
  if (value === undefined) return fallbackMs;
  if (!(value > 0)) throw new UsageError(`--${flag} must be a positive number of seconds`);
  return Math.round(value * 1000);
}

export async function run(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseFlags(args, {
      node: 'string',
      'sysfs-root': 'string',
      simulate: 'string',
      kubeconfig: 'string',
      'state-dir': 'string',
      'rescan-seconds': 'number',
      'heartbeat-seconds': 'number',
      'metrics-port': 'number',
      help: 'boolean',
      ...DRA_FLAGS,
    });
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`apqn-operator agent: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const usage = (message: string) => {
    process.stderr.write(`apqn-operator agent: ${message}\n\n${USAGE}`);
    return 2;
  };
  const nodeName = flags.node ?? process.env.NODE_NAME;
  if (!nodeName) return usage('--node is required (or set NODE_NAME)');
  if (flags._.length) return usage(`unexpected argument ${flags._[0]}`);
  if (flags.simulate && flags['sysfs-root']) return usage('--sysfs-root and --simulate exclude each other');
  let rescanMs: number;
  let heartbeatMs: number;
  try {
    rescanMs = seconds('rescan-seconds', flags['rescan-seconds'], DEFAULT_RESCAN_MS);
    heartbeatMs = seconds('heartbeat-seconds', flags['heartbeat-seconds'], DEFAULT_HEARTBEAT_MS);
  } catch (err) {
    return usage((err as Error).message);
  }
  const port = flags['metrics-port'];
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) return usage('--metrics-port must be 0..65535');

  const log = logger('agent', { node: nodeName, object: `APNodeState/${nodeName}` });
  let model: ApBusModel | undefined;
  let backend: SysfsBackend | undefined;
  try {
    if (flags.simulate) model = simulatedNodeFromFile(flags.simulate, nodeName);
    else backend = new SysfsBackend(new RealSysfs(flags['sysfs-root'] ?? '/sys'));
  } catch (err) {
    if (err instanceof ApbusInputError) {
      process.stderr.write(`apqn-operator agent: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const kubeConfig = loadKubeConfig(flags.kubeconfig);
  const dra = draSettingsFromFlags(flags);
  const stateDir = flags['state-dir'] ?? (flags.simulate ? undefined : DEFAULT_STATE_DIR);
  const agent = await startAgent({ kubeConfig, nodeName, ...(model ? { model } : { backend: backend! }), rescanMs, heartbeatMs, log, dra, ...(stateDir ? { stateDir } : {}) });
  log.info(flags.simulate ? 'agent running on a simulated node' : 'agent running', {
    sysfs: flags.simulate ? `simulated from ${flags.simulate}` : (flags['sysfs-root'] ?? '/sys'),
    journal: stateDir ?? '(in memory)',
  });
  let health: MetricsServer | undefined;
  if (port !== undefined) {
    health = await serveMetrics(port, { agents: [agent.runtime] }, log);
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log.info('stopping', {});
  await health?.close();
  await agent.stop();
  return 0;
}
