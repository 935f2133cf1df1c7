// `kubectl apqn`: the admin's views of APQN reservations (a kubectl plugin: the executable
// kubectl-apqn on PATH makes `kubectl apqn …` work).
//   kubectl apqn matrix NODE                  the node's adapter × domain grid
//   kubectl apqn status [-n NS | -A]          reservations and claims, one line each
//   kubectl apqn plan -f FILE [-n NS]         a dry run of applying reservations
//   kubectl apqn capacity [NODE]              what is left to reserve, per node and adapter
// Each takes -o json|yaml for machine-readable output.
// Only reads from the API server. Kubeconfig: --kubeconfig, $KUBECONFIG, ~/.kube/config.
import * as fs from 'node:fs';
import type { ClusterConfig } from '../k8s/kubeconfig.js';
import * as yaml from 'js-yaml';
import { API_VERSION, type APQNReservation, reservationKey } from '../api/types.js';
import { describeError, loadKubeConfig } from '../k8s/client.js';
import { type ParsedArgs, UsageError, boolFlag, parseArgs, stringFlag } from './args.js';
import { COMMANDS, COMMON_FLAGS, type CommandName } from './commands.js';
import { clusterView, listNodeStateNames, readCluster, readNodeState, readReservationsAndClaims } from './cluster.js';
import { buildGrid, gridJson, renderGrid } from './matrix.js';
import { planJson, planReservation, plannedObject, renderPlan, withNamespace } from './plan.js';
import { statusJson, statusTable } from './status.js';
import { nodeCapacity, renderCapacity } from './capacity.js';
import { clusterSource, complete, kubeconfigIn, renderCompletion } from './complete.js';
import { choosePaint, type Paint } from './text.js';

export interface PluginIO {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stdout is a terminal (colour). */
  isTTY: boolean;
  env: NodeJS.ProcessEnv;
  /** Standard input, for `-f -`. */
  readStdin(): string;
  now(): number;
}

export const processIO: PluginIO = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  isTTY: process.stdout.isTTY === true,
  env: process.env,
  readStdin: () => fs.readFileSync(0, 'utf8'),
  now: () => Date.now(),
};

const USAGE = `kubectl apqn: views of IBM Z crypto queue (APQN) reservations

usage:
  kubectl apqn matrix NODE                adapter x domain grid of a node (from its APNodeState)
  kubectl apqn status [-n NS | -A]        reservations and claims, one line each
  kubectl apqn plan -f FILE [-n NS]       what applying the reservations in FILE (- for stdin)
                                          would do: node, mask bits, displaced host queues,
                                          conflicts and the node's steps. Writes nothing.
  kubectl apqn capacity [NODE]            what is left to reserve: queues by state and free
                                          domains per adapter, the largest free matrix per
                                          card type, and how fragmented the free queues are

flags:
  --kubeconfig PATH      the cluster (default: $KUBECONFIG, then ~/.kube/config)
  -n, --namespace NS     namespace (default: the kubeconfig context's, else "default")
  -A, --all-namespaces   status: every namespace
  -o, --output json|yaml machine-readable output (every command)
  --color auto|always|never   colour (auto: on a terminal, unless NO_COLOR is set)
`;


type Output = 'json' | 'yaml';

/** -o's value, if given. */
function outputOf(parsed: ParsedArgs): Output | undefined {
  return stringFlag(parsed, 'output') as Output | undefined;
}

/** A report as -o asked for it: indented JSON, or YAML (one document). */
function emit(io: PluginIO, output: Output, value: unknown): void {
  io.stdout(output === 'json' ? JSON.stringify(value, null, 2) + '\n' : yaml.dump(value, { noRefs: true, lineWidth: -1 }));
}

export async function main(argv: readonly string[], io: PluginIO = processIO): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '__complete') {
    // kubectl's plugin completion (bin/kubectl_complete-apqn.js): never an error on the prompt.
    io.stdout(renderCompletion(await complete(rest, clusterSource(kubeconfigIn(rest)))));
    return 0;
  }
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    io.stdout(USAGE);
    return command ? 0 : 2;
  }
  try {
    switch (command) {
      case 'matrix':
        return await matrixCommand(rest, io);
      case 'status':
        return await statusCommand(rest, io);
      case 'plan':
        return await planCommand(rest, io);
      case 'capacity':
        return await capacityCommand(rest, io);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`kubectl apqn: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    io.stderr(`kubectl apqn ${command}: ${describeError(err)}\n`);
    return 1;
  }
}

function parse(args: readonly string[], command: CommandName, io: PluginIO): ParsedArgs | null {
  const parsed = parseArgs(args, [...COMMON_FLAGS, ...COMMANDS[command].flags]);
  if (boolFlag(parsed, 'help')) {
    io.stdout(USAGE);
    return null;
  }
  const color = stringFlag(parsed, 'color');
  if (color !== undefined && !['auto', 'always', 'never'].includes(color)) throw new UsageError(`--color must be auto, always or never, not "${color}"`);
  const output = stringFlag(parsed, 'output');
  if (output !== undefined && output !== 'json' && output !== 'yaml') throw new UsageError(`-o must be json or yaml, not "${output}"`);
  return parsed;
}

function paintFor(parsed: ParsedArgs, io: PluginIO): Paint {
  return choosePaint(io.isTTY, io.env, stringFlag(parsed, 'color'));
}

function kubeConfig(parsed: ParsedArgs): ClusterConfig {
  return loadKubeConfig(stringFlag(parsed, 'kubeconfig'));
}

function namespaceOf(parsed: ParsedArgs, kc: ClusterConfig): string {
  const explicit = stringFlag(parsed, 'namespace');
  if (explicit) return explicit;
  return kc.getContextObject(kc.getCurrentContext())?.namespace || 'default';
}

async function matrixCommand(args: readonly string[], io: PluginIO): Promise<number> {
  const parsed = parse(args, 'matrix', io);
  if (!parsed) return 0;
  if (parsed.positional.length !== 1) throw new UsageError('matrix takes one NODE');
  const node = parsed.positional[0]!;
  const kc = kubeConfig(parsed);
  const state = await readNodeState(kc, node);
  if (!state) {
    const names = await listNodeStateNames(kc);
    io.stderr(`kubectl apqn matrix: no APNodeState ${node}${names.length ? ` (nodes with one: ${names.join(', ')})` : ' (no node has one: is the agent running?)'}\n`);
    return 1;
  }
  const grid = buildGrid(state);
  const output = outputOf(parsed);
  if (output) emit(io, output, gridJson(grid));
  else io.stdout(renderGrid(grid, paintFor(parsed, io)));
  return 0;
}

async function statusCommand(args: readonly string[], io: PluginIO): Promise<number> {
  const parsed = parse(args, 'status', io);
  if (!parsed) return 0;
  if (parsed.positional.length > 0) throw new UsageError(`status takes no arguments, got "${parsed.positional[0]}"`);
  const all = boolFlag(parsed, 'all-namespaces');
  if (all && stringFlag(parsed, 'namespace')) throw new UsageError('-n and -A exclude each other');
  const kc = kubeConfig(parsed);
  const namespace = all ? undefined : namespaceOf(parsed, kc);
  const { reservations, claims } = await readReservationsAndClaims(kc, namespace);
  const output = outputOf(parsed);
  if (output) {
    emit(io, output, statusJson(reservations, claims));
    return 0;
  }
  if (!all && reservations.length === 0 && claims.length === 0) {
    io.stdout(`No APQN reservations or claims found in namespace ${namespace}.\n`);
    return 0;
  }
  io.stdout(statusTable(reservations, claims, { allNamespaces: all, paint: paintFor(parsed, io) }));
  return 0;
}

async function capacityCommand(args: readonly string[], io: PluginIO): Promise<number> {
  const parsed = parse(args, 'capacity', io);
  if (!parsed) return 0;
  if (parsed.positional.length > 1) throw new UsageError('capacity takes at most one NODE');
  const kc = kubeConfig(parsed);
  const wanted = parsed.positional[0];
  const snapshot = await readCluster(kc);
  const states = snapshot.nodeStates.filter((s) => wanted === undefined || s.metadata.name === wanted);
  if (wanted !== undefined && states.length === 0) {
    const names = snapshot.nodeStates.map((s) => s.metadata.name ?? '').sort();
    io.stderr(`kubectl apqn capacity: no APNodeState ${wanted}${names.length ? ` (nodes with one: ${names.join(', ')})` : ' (no node has one: is the agent running?)'}\n`);
    return 1;
  }
  const report = states
    .sort((a, b) => ((a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1))
    .map((s) => nodeCapacity(s, snapshot.reservations));
  const output = outputOf(parsed);
  if (output) emit(io, output, { nodes: report });
  else io.stdout(renderCapacity(report));
  return 0;
}

/** The APQNReservation documents of a manifest (other kinds are left out, and said so). */
export function reservationsIn(text: string, source: string): { reservations: APQNReservation[]; skipped: string[] } {
  let docs: unknown[];
  try {
    docs = yaml.loadAll(text);
  } catch (err) {
    throw new UsageError(`${source}: not valid YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  const reservations: APQNReservation[] = [];
  const skipped: string[] = [];
  for (const doc of docs) {
    if (doc === null || doc === undefined) continue;
    const obj = doc as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown } };
    if (obj.kind === 'APQNReservation' && obj.apiVersion === API_VERSION) {
      if (typeof obj.metadata?.name !== 'string' || obj.metadata.name === '') throw new UsageError(`${source}: an APQNReservation without metadata.name`);
      reservations.push(doc as APQNReservation);
    } else {
      skipped.push(`${String(obj.kind ?? 'a document without kind')}${typeof obj.metadata?.name === 'string' ? ` ${obj.metadata.name}` : ''}`);
    }
  }
  if (reservations.length === 0) throw new UsageError(`${source}: no APQNReservation (apiVersion ${API_VERSION}) in it`);
  return { reservations, skipped };
}

async function planCommand(args: readonly string[], io: PluginIO): Promise<number> {
  const parsed = parse(args, 'plan', io);
  if (!parsed) return 0;
  const file = stringFlag(parsed, 'filename');
  if (!file) throw new UsageError('plan needs -f FILE (or -f - for stdin)');
  if (parsed.positional.length > 0) throw new UsageError(`plan takes no arguments, got "${parsed.positional[0]}"`);
  let text: string;
  try {
    text = file === '-' ? io.readStdin() : fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const { reservations, skipped } = reservationsIn(text, file);
  const kc = kubeConfig(parsed);
  const namespace = namespaceOf(parsed, kc);
  const snapshot = await readCluster(kc);
  const now = io.now();
  const paint = paintFor(parsed, io);
  const output = outputOf(parsed);
  const reports = [];
  // In file order, each planned as if the ones before it had been applied.
  let view = clusterView(snapshot, now);
  for (const raw of reservations) {
    const r = withNamespace(raw, namespace);
    const existing = view.reservations.find((x) => reservationKey(x) === reservationKey(r));
    const planned = plannedObject(r, existing, now);
    reports.push(planReservation(view, planned, !existing));
    view = { ...view, reservations: [...view.reservations.filter((x) => reservationKey(x) !== reservationKey(r)), planned] };
  }
  if (output) {
    emit(io, output, reports.length === 1 ? planJson(reports[0]!) : reports.map(planJson));
  } else {
    io.stdout(reports.map((rep) => renderPlan(rep, paint)).join('\n'));
    if (skipped.length > 0) io.stdout(`\nnot planned (not an APQNReservation): ${skipped.join(', ')}\n`);
  }
  return 0;
}
