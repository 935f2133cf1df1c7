// What one write costs the API server, by kind: the kube-apiserver's own CPU (utime + stime
// from /proc) over N writes of one kind, on an otherwise idle local control plane. The floor of
// `npm run bench` is made of the first two rows; the operator adds the APNodeState writes (the
// controller's spec patch, the agent's status patch and heartbeat) whose cost grows with the
// node's queue inventory, which every one of them carries whole.
// Run: npm run bench:writes [-- --ops 200]
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import type { APNodeState, APQNReservation, NodeStateSpec, NodeStateStatus } from '../src/api/types.js';
import { API_VERSION } from '../src/api/types.js';
import { formatDomainId } from '../src/apbus/ids.js';
import { PatchStrategy, operatorClients } from '../src/k8s/client.js';
import { LocalControlPlane } from '../src/k8s/controlplane.js';
import { installCrds } from '../src/k8s/crds.js';
import { logger } from '../src/log.js';
import { nodeStatus, range } from '../test/controller/fixtures.js';
import { procCpuSeconds } from './proc.js';

const flag = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const OPS = flag('ops', 200);
const CONCURRENCY = 8;
const NAMESPACE = 'write-cost';

const cp = await LocalControlPlane.start({ scheduler: false, log: logger('controlplane') });
try {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  await installCrds(kc, undefined, logger('crds'));
  await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: NAMESPACE } } });
  const clients = operatorClients(kc);
  const apiserver = apiserverPid(cp);
  const rows: Array<{ what: string; bytes: number; ms: number }> = [];

  /**
   * Mean API server CPU per write over OPS writes (CONCURRENCY in flight), after a quiet second.
   * Each in-flight writer has its own object (`worker`), as each node has one writer at a time:
   * writers racing on one object would make the server retry its update loop.
   */
  async function measure(what: string, bytes: number, write: (i: number, worker: number) => Promise<unknown>): Promise<void> {
    await sleep(1000);
    const before = procCpuSeconds(apiserver);
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, worker) => {
        for (let i = next++; i < OPS; i = next++) await write(i, worker);
      }),
    );
    await sleep(300); // the watch cache's decode of the last events
    rows.push({ what, bytes, ms: ((procCpuSeconds(apiserver) - before) * 1000) / OPS });
  }

  const reservation = (i: number): APQNReservation => ({
    apiVersion: API_VERSION,
    kind: 'APQNReservation',
    metadata: { name: `r${i}`, namespace: NAMESPACE },
    spec: { nodeName: 'n', apqns: [`01.${formatDomainId(i % 85)}`], driver: 'vfio_ap', inUsePolicy: 'Wait' },
  });
  await measure('APQNReservation create', JSON.stringify(reservation(0)).length, (i) => clients.reservations.create(reservation(i)));
  const ready = {
    status: {
      nodeName: 'n',
      apqns: ['01.0000'],
      conditions: [{ type: 'Ready', status: 'True' as const, reason: 'Ready', message: 'the guest can use 01.0000', lastTransitionTime: '2026-12-06T00:00:00Z' }],
    },
  };
  const someReservation = await clients.reservations.get(`${NAMESPACE}/r0`);
  await measure('APQNReservation status patch (Ready)', storedBytes(someReservation), (i) => clients.reservations.patchStatus(`${NAMESPACE}/r${i}`, ready));

  // One CEX8C card per node, as in `npm run bench`; then a second card (170 queues).
  for (const [cards, queues] of [[0, 0], [1, 20], [1, 85], [2, 170]] as const) {
    const status: NodeStateStatus = nodeStatus({
      cards: Array.from({ length: cards }, (_, c) => ({ id: `0${c + 1}`, type: 'CEX8C', domains: range(0, queues / Math.max(1, cards) - 1) })),
    });
    const name = (worker: number) => `n-${queues}-${worker}`;
    for (let w = 0; w < CONCURRENCY; w++) {
      await clients.nodeStates.create({ apiVersion: API_VERSION, kind: 'APNodeState', metadata: { name: name(w) }, spec: {} } as APNodeState);
      await clients.nodeStates.patchStatus(name(w), { status: { ...status, observedGeneration: 1, heartbeatTime: new Date().toISOString() } });
    }
    const stored = await clients.nodeStates.get(name(0));
    await measure(`APNodeState status patch, heartbeat only (${queues} queues)`, storedBytes(stored), (i, w) =>
      clients.nodeStates.patchStatus(name(w), { status: { heartbeatTime: new Date(Date.now() + i * 1000).toISOString() } }),
    );
  }
  // The controller's spec patch of the 85-queue node: the spec of 1..20 one-queue reservations.
  const spec = (k: number): NodeStateSpec => ({
    bindingMode: 'Masks',
    apmask: [],
    aqmask: range(0, k - 1).map((d) => ({ id: formatDomainId(d), host: false, original: true })),
    overrides: [],
    queues: range(0, k - 1).map((d) => ({ apqn: `01.${formatDomainId(d)}`, reservation: `ns/r${d}`, inUsePolicy: 'Wait' as const, drainTimeoutSeconds: 300 })),
    mdevs: range(0, k - 1).map((d) => ({
      uuid: `00000000-0000-4000-8000-${String(d).padStart(12, '0')}`,
      reservation: `ns/r${d}`,
      adapters: ['01'],
      domains: [formatDomainId(d)],
      controlDomains: [],
    })),
  });
  for (let w = 0; w < CONCURRENCY; w++) {
    await clients.nodeStates.patch(`n-85-${w}`, [{ op: 'replace', path: '/spec', value: spec(20) }], { strategy: PatchStrategy.JsonPatch });
  }
  const withSpec = await clients.nodeStates.get('n-85-0');
  await measure('APNodeState spec patch (85 queues, 1-20 reservations)', storedBytes(withSpec), (i, w) =>
    clients.nodeStates.patch(`n-85-${w}`, [{ op: 'replace', path: '/spec', value: spec(1 + (i % 20)) }], { strategy: PatchStrategy.JsonPatch }),
  );

  const base = rows[1]!.ms;
  const lines = [
    `API server CPU per write, ${OPS} writes of each kind (${CONCURRENCY} in flight), idle local control plane (Kubernetes ${path.basename(path.dirname(cp.binDir))}):`,
    '',
    '| write | object as the API returns it | API server CPU per write | × a reservation status patch |',
    '| --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.what} | ${(r.bytes / 1024).toFixed(1)} KB | ${r.ms.toFixed(2)} ms | ${(r.ms / base).toFixed(1)}× |`),
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
} finally {
  await cp.stop();
}

function apiserverPid(plane: LocalControlPlane): number {
  const record = JSON.parse(fs.readFileSync(path.join(plane.workDir, 'pids.json'), 'utf8')) as { processes: Array<{ pid: number; binary: string }> };
  const found = record.processes.find((p) => path.basename(p.binary) === 'kube-apiserver');
  if (!found) throw new Error('no kube-apiserver in the control plane pids.json');
  return found.pid;
}

/** The object's size as the API server stores it (managedFields included). */
function storedBytes(o: unknown): number {
  return JSON.stringify(o).length;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
