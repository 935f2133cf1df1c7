// One soak run (issue 12): start the operator on simulated nodes (bench/soak-world.ts), churn
// with seeded writers (bench/soak-churn.ts) and, with faults, break things meanwhile
// (bench/soak-faults.ts); then settle, check the invariants (bench/soak-invariants.ts), delete
// everything, wait for the finalizers, and check that nothing was lost. `npm run soak` runs it
// on a private control plane; test/soak/soak.test.ts runs short ones on the shared one.
import * as k8s from '@kubernetes/client-node';
import type { APNodeState, APQNClaim, APQNReservation, Condition } from '../src/api/types.js';
import { API_VERSION } from '../src/api/types.js';
import { isAlreadyExists, operatorClients, type OperatorClients } from '../src/k8s/client.js';
import type { LocalControlPlane } from '../src/k8s/controlplane.js';
import { ApiServerRestarter } from './soak-apiserver.js';
import { snapshotBus } from './soak-bus.js';
import { Churn, OPERATIONS, type Operation, type OperationRecord } from './soak-churn.js';
import { Faults, type FaultKind, type FaultRecord } from './soak-faults.js';
import { INVARIANTS, checkReleased, checkSettled, settleProblems, type BusSnapshot, type ClusterState, type Violation } from './soak-invariants.js';
import { Random } from './soak-random.js';
import { soakNodes, type SoakNode } from './soak-topology.js';
import { World } from './soak-world.js';

export interface SoakOptions {
  seed: number;
  /** Seconds of churn. */
  seconds: number;
  faults: boolean;
  /** Simulated nodes (kernels 5.15, 6.10, 6.19 in turn). */
  nodes: number;
  /** Concurrent writers. */
  writers: number;
  /** Bounds of the settle and release waits, seconds. */
  settleSeconds: number;
  releaseSeconds: number;
  /** Admin access to the API server. */
  kubeConfig: k8s.KubeConfig;
  /** The soak's namespace (created when missing); its nodes are `<nodePrefix>-<i>`. */
  namespace: string;
  nodePrefix: string;
  /** The soak's own control plane: only then is the API server restarted as a fault. */
  controlPlane?: LocalControlPlane;
  /** Progress lines (stderr for the command, t.log for a test). */
  say?: (line: string) => void;
}

export type Phase = 'settled' | 'released';

export interface PhasedViolation extends Violation {
  phase: Phase;
}

export interface SoakReport {
  options: Omit<SoakOptions, 'kubeConfig' | 'controlPlane' | 'say'> & { apiserverRestarts: boolean };
  nodes: SoakNode[];
  churnSeconds: number;
  /** How long the last fault's recovery ran on after the writers stopped. */
  faultTailSeconds: number;
  operations: OperationRecord[];
  faults: FaultRecord[];
  settle: { seconds: number; settled: boolean; left: string[] };
  atSettle: { reservations: number; ready: number; notReady: Record<string, number>; claimsBound: number };
  release: { seconds: number; released: boolean };
  violations: PhasedViolation[];
  totalSeconds: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const CANARY = 'soak-canary';

async function ensureNamespace(kc: k8s.KubeConfig, name: string): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  try {
    await core.createNamespace({ body: { metadata: { name } } });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
}

async function readState(clients: OperatorClients, namespace: string, world: World): Promise<ClusterState & { claims: APQNClaim[] }> {
  const names = new Set(world.agents.map((a) => a.name));
  const [reservations, claims, nodeStates] = await Promise.all([
    clients.reservations.list({ namespace }),
    clients.claims.list({ namespace }),
    clients.nodeStates.list(),
  ]);
  return {
    reservations: reservations.items,
    claims: claims.items,
    nodeStates: nodeStates.items.filter((s: APNodeState) => names.has(s.metadata.name ?? '')),
    buses: world.agents.map((a) => snapshotBus(a.model)),
  };
}

/** What must stay still for the cluster to count as settled. */
function fingerprint(state: ClusterState): string {
  const conds = (cs: readonly Condition[] | undefined) => (cs ?? []).map((c) => `${c.type}=${c.status}/${c.reason}@${c.observedGeneration ?? ''}`).join(',');
  return JSON.stringify([
    state.reservations.map((r) => [r.metadata.name, r.metadata.generation, r.status?.observedGeneration, conds(r.status?.conditions), r.metadata.deletionTimestamp ?? '']),
    state.nodeStates.map((s) => [s.metadata.name, s.metadata.generation, s.status?.observedGeneration, conds(s.status?.conditions)]),
    state.buses,
  ]);
}

/**
 * Polls until nothing is on its way (settleProblems) and nothing moved between two reads
 * 1 s apart, or until `seconds`. Returns how long it took and what was still moving.
 */
async function settle(read: () => Promise<ClusterState>, seconds: number, extra: (s: ClusterState) => string[] = () => []): Promise<{ seconds: number; settled: boolean; left: string[]; state: ClusterState }> {
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  let previous = '';
  let state: ClusterState | undefined;
  let left: string[] = ['not read yet'];
  while (true) {
    try {
      state = await read();
      const fp = fingerprint(state);
      left = [...settleProblems(state), ...extra(state)];
      if (left.length === 0 && fp === previous) return { seconds: (performance.now() - t0) / 1000, settled: true, left, state };
      if (left.length === 0) left = ['still changing'];
      previous = fp;
    } catch (err) {
      left = [`could not read the cluster: ${err instanceof Error ? err.message : String(err)}`];
    }
    if (performance.now() >= deadline) break;
    await sleep(1000);
  }
  if (!state) state = await read();
  return { seconds: (performance.now() - t0) / 1000, settled: false, left, state };
}

async function deleteAll(clients: OperatorClients, namespace: string): Promise<void> {
  const claims = await clients.claims.list({ namespace });
  await Promise.all(claims.items.map((c) => clients.claims.delete({ namespace, name: c.metadata.name! }).catch(() => undefined)));
  const reservations = await clients.reservations.list({ namespace });
  await Promise.all(reservations.items.map((r) => clients.reservations.delete({ namespace, name: r.metadata.name! }).catch(() => undefined)));
}

function summarizeAtSettle(state: ClusterState & { claims?: APQNClaim[] }): SoakReport['atSettle'] {
  const notReady: Record<string, number> = {};
  let ready = 0;
  for (const r of state.reservations) {
    const c = r.status?.conditions?.find((x) => x.type === 'Ready');
    if (c?.status === 'True') ready++;
    else {
      const reason = c ? `${c.status === 'Unknown' ? 'Unknown/' : ''}${c.reason || '(none)'}` : '(no Ready)';
      notReady[reason] = (notReady[reason] ?? 0) + 1;
    }
  }
  return { reservations: state.reservations.length, ready, notReady, claimsBound: (state.claims ?? []).filter((c) => c.status?.phase === 'Bound').length };
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const say = options.say ?? (() => undefined);
  const started = performance.now();
  const { namespace } = options;
  const rng = new Random(options.seed);
  const clients = operatorClients(options.kubeConfig);
  const nodes = soakNodes(options.nodePrefix, options.nodes);
  await ensureNamespace(options.kubeConfig, namespace);

  say(`starting ${nodes.length} simulated nodes (${nodes.map((n) => `${n.name} ${n.kernel}`).join(', ')}), their agents and 2 controller replicas`);
  const world = await World.start({ kubeConfig: options.kubeConfig, namespace, nodes });
  const restarter = options.faults && options.controlPlane ? new ApiServerRestarter(options.controlPlane) : undefined;
  const violations: PhasedViolation[] = [];
  const report: SoakReport = {
    options: {
      seed: options.seed,
      seconds: options.seconds,
      faults: options.faults,
      nodes: options.nodes,
      writers: options.writers,
      settleSeconds: options.settleSeconds,
      releaseSeconds: options.releaseSeconds,
      namespace,
      nodePrefix: options.nodePrefix,
      apiserverRestarts: restarter !== undefined,
    },
    nodes,
    churnSeconds: 0,
    faultTailSeconds: 0,
    operations: [],
    faults: [],
    settle: { seconds: 0, settled: false, left: [] },
    atSettle: { reservations: 0, ready: 0, notReady: {}, claimsBound: 0 },
    release: { seconds: 0, released: false },
    violations,
    totalSeconds: 0,
  };
  try {
    // Every bus as it was before the operator touched it: what "nothing lost" compares with.
    const before: BusSnapshot[] = world.agents.map((a) => snapshotBus(a.model));
    // The canary (the faults' "the controller reconciles" probe): a host reservation the churn never names.
    await clients.reservations.create({
      apiVersion: API_VERSION,
      kind: 'APQNReservation',
      metadata: { name: CANARY, namespace },
      spec: { nodeName: nodes[0]!.name, apqns: ['02.0000'], driver: 'host' },
    });

    const names = Array.from({ length: 6 * nodes.length }, (_, i) => `r-${String(i).padStart(2, '0')}`);
    const claimNames = Array.from({ length: 2 * nodes.length }, (_, i) => `c-${i}`);
    const churn = new Churn({ clients, namespace, nodes, names, claimNames, thinkMs: [30, 400] });
    const faults = new Faults(world, clients, { namespace, name: CANARY }, restarter, (line) => say(`fault ${line}`));
    say(`churn: ${options.writers} writers for ${options.seconds} s over ${names.length} reservation names${options.faults ? `, with faults (${faults.kinds.join(', ')})` : ''}`);
    const churnStart = performance.now();
    const until = churnStart + options.seconds * 1000;
    const faulting = options.faults ? faults.run(rng.fork('faults'), until) : Promise.resolve();
    await churn.run(Array.from({ length: options.writers }, (_, i) => rng.fork(`writer-${i}`)), until);
    report.churnSeconds = (performance.now() - churnStart) / 1000;
    await faulting; // the fault in progress ends with its recovery
    report.faultTailSeconds = (performance.now() - churnStart) / 1000 - report.churnSeconds;
    report.operations = churn.records;
    report.faults = faults.records;
    say(`churn over after ${report.churnSeconds.toFixed(1)} s: ${churn.records.length} operations, ${faults.records.length} faults; settling (at most ${options.settleSeconds} s)`);

    const read = () => readState(clients, namespace, world);
    const settled = await settle(read, options.settleSeconds);
    report.settle = { seconds: settled.seconds, settled: settled.settled, left: settled.left };
    report.atSettle = summarizeAtSettle(settled.state);
    if (!settled.settled) {
      violations.push({ phase: 'settled', invariant: 'settles', message: `not settled after ${options.settleSeconds} s: ${settled.left.slice(0, 8).join('; ')}${settled.left.length > 8 ? ` (and ${settled.left.length - 8} more)` : ''}` });
    }
    say(`${settled.settled ? `settled in ${settled.seconds.toFixed(1)} s` : 'NOT settled'}: ${report.atSettle.reservations} reservations, ${report.atSettle.ready} Ready; checking the invariants`);
    violations.push(...checkSettled(settled.state, before).map((v) => ({ ...v, phase: 'settled' as const })));

    say('deleting every claim and reservation; waiting for the finalizers');
    const releaseStart = performance.now();
    const releaseDeadline = releaseStart + options.releaseSeconds * 1000;
    let left: string[] = [];
    while (true) {
      await deleteAll(clients, namespace).catch(() => undefined);
      const state = await read().catch(() => undefined);
      left = state
        ? [
            ...state.claims.map((c) => `APQNClaim ${namespace}/${c.metadata.name}`),
            ...state.reservations.map((r: APQNReservation) => {
              const ready = r.status?.conditions?.find((c) => c.type === 'Ready');
              return `APQNReservation ${namespace}/${r.metadata.name} (finalizers: ${(r.metadata.finalizers ?? []).join(', ') || 'none'}; Ready=${ready?.status ?? '-'} ${ready?.reason ?? ''})`;
            }),
          ]
        : ['(could not read the cluster)'];
      if (left.length === 0 || performance.now() >= releaseDeadline) break;
      await sleep(500);
    }
    // Then the nodes: every agent has seen its last spec and the bus stands still.
    const quiet = await settle(read, Math.max(5, (releaseDeadline - performance.now()) / 1000), (s) =>
      s.nodeStates.filter((n) => n.status?.conditions?.find((c) => c.type === 'Synced')?.status !== 'True').map((n) => `node ${n.metadata.name}: not Synced`),
    );
    report.release = { seconds: (performance.now() - releaseStart) / 1000, released: left.length === 0 && quiet.settled };
    say(`${left.length === 0 ? `released in ${report.release.seconds.toFixed(1)} s` : `NOT released: ${left.length} objects left`}${quiet.settled ? '' : ` (nodes not quiet: ${quiet.left.slice(0, 3).join('; ')})`}; checking that nothing was lost`);
    violations.push(...checkReleased(quiet.state, before, left).map((v) => ({ ...v, phase: 'released' as const })));
  } finally {
    await world.stop();
    await world.unregister().catch(() => undefined);
    await restarter?.stop(); // the replacement API server, if any (the caller stops the control plane)
  }
  report.totalSeconds = (performance.now() - started) / 1000;
  return report;
}

// ------------------------------------------------------------------------------------ report

/** Operations per second: over the churn, and the lowest of its 5 s windows. */
export function operationRates(records: readonly OperationRecord[], seconds: number): { overall: number; lowestWindow: number } {
  const answered = records.filter((r) => r.outcome !== 'failed');
  const windows = Math.max(1, Math.floor(seconds / 5));
  const counts = new Array<number>(windows).fill(0);
  for (const r of answered) {
    const w = Math.floor(r.at / 5000);
    if (w < windows) counts[w]!++;
  }
  return { overall: seconds > 0 ? answered.length / seconds : 0, lowestWindow: Math.min(...counts) / 5 };
}

export function formatReport(r: SoakReport): string {
  const o = r.options;
  const lines: string[] = [];
  const repro = `npm run soak -- --seed ${o.seed} --seconds ${o.seconds}${o.faults ? ' --faults' : ''} --nodes ${o.nodes}${o.writers !== 4 ? ` --writers ${o.writers}` : ''}`;
  lines.push(
    `soak seed ${o.seed}: ${r.churnSeconds.toFixed(1)} s of churn${o.faults ? ' with faults' : ''} on ${r.nodes.length} nodes (${r.nodes.map((n) => `${n.name} ${n.kernel}`).join(', ')}), ${o.writers} writers; ${r.totalSeconds.toFixed(0)} s in all`,
  );
  const ops = r.operations;
  const by = (op: Operation) => ops.filter((x) => x.op === op);
  const count = (list: readonly OperationRecord[], outcome: string) => list.filter((x) => x.outcome === outcome).length;
  const rates = operationRates(ops, r.churnSeconds);
  lines.push(
    `  operations: ${ops.length}, ${rates.overall.toFixed(1)}/s answered (lowest 5 s window ${rates.lowestWindow.toFixed(1)}/s): ` +
      `${count(ops, 'accepted')} accepted, ${count(ops, 'refused')} refused by the API server (exists, not found, conflict, invalid), ${count(ops, 'failed')} failed (API server unreachable or 5xx)`,
  );
  lines.push(`    ${OPERATIONS.map((op) => `${op} ${by(op).length} (${count(by(op), 'accepted')} accepted)`).join(', ')}`);
  if (o.faults) {
    const kinds = [...new Set(r.faults.map((f) => f.kind))] as FaultKind[];
    const recovered = r.faults.filter((f) => f.recovered !== false).length;
    const per = kinds.map((k) => {
      const fs = r.faults.filter((f) => f.kind === k);
      const timed = fs.filter((f) => f.recovered && f.recoveryMs !== undefined).map((f) => f.recoveryMs!);
      const worst = timed.length ? `, recovered within ${(Math.max(...timed) / 1000).toFixed(1)} s` : '';
      const failed = fs.filter((f) => f.recovered === false).length;
      return `${k} ${fs.length}${failed ? ` (${failed} NOT recovered)` : worst}`;
    });
    lines.push(`  faults: ${r.faults.length} injected, ${recovered} survived (the component came back and the controller reconciles): ${per.join('; ') || 'none'}`);
    for (const f of r.faults) {
      const recovery = f.recovered === undefined ? '' : f.recovered ? `; recovered in ${((f.recoveryMs ?? 0) / 1000).toFixed(1)} s` : '; NOT recovered';
      lines.push(`    ${f.at.toFixed(1).padStart(5)} s ${f.kind}: ${f.detail}${recovery}`);
    }
    if (r.faultTailSeconds >= 0.5) lines.push(`    (the last fault recovered ${r.faultTailSeconds.toFixed(1)} s after the writers stopped)`);
    if (!o.apiserverRestarts) lines.push('    (no API server restart: it runs only on the soak\'s own control plane, `npm run soak`)');
  }
  const reasons = Object.entries(r.atSettle.notReady).sort(([, a], [, b]) => b - a).map(([k, v]) => `${k} ${v}`).join(', ');
  lines.push(
    `  settle: ${r.settle.settled ? `${r.settle.seconds.toFixed(1)} s` : `NOT settled within ${o.settleSeconds} s`}; then ${r.atSettle.reservations} reservations: ${r.atSettle.ready} Ready` +
      `${reasons ? `, not Ready: ${reasons}` : ''}; ${r.atSettle.claimsBound} claims Bound`,
  );
  lines.push(`  release of everything: ${r.release.released ? `${r.release.seconds.toFixed(1)} s` : `NOT complete within ${o.releaseSeconds} s`}`);
  const v = r.violations;
  lines.push(`  violations: ${v.length}${v.length ? '' : ' (every invariant held)'}`);
  const LIMIT = 25;
  for (const id of Object.keys(INVARIANTS) as Array<keyof typeof INVARIANTS>) {
    const mine = v.filter((x) => x.invariant === id);
    if (!mine.length) continue;
    lines.push(`    ${id} (${INVARIANTS[id]}): ${mine.length}`);
    for (const x of mine.slice(0, LIMIT)) lines.push(`      seed=${o.seed} ${x.phase}${x.object ? ` ${x.object}` : ''}: ${x.message}`);
    if (mine.length > LIMIT) lines.push(`      … and ${mine.length - LIMIT} more`);
  }
  lines.push(`  reproduce: ${repro}`);
  if (v.length) lines.push('  (a rerun of the seed makes the same choices; the interleaving is real time, so not always the same races)');
  return lines.join('\n');
}
