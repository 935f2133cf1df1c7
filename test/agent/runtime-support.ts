// Shared pieces of the agent runtime tests: simulated nodes with unique names (APNodeState is
// cluster-scoped and every test file shares one API server), agents that are stopped and
// whose objects are deleted when a test ends, and the controller's part played by hand —
// writing APNodeState.spec directly.
import { randomBytes, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ExecutionContext } from 'ava';
import * as k8s from '@kubernetes/client-node';
import { ApBusModel, SystemClock, type Clock } from '../../src/apbus/model/index.js';
import { topologyFromObject } from '../../src/apbus/topology.js';
import type {
  APNodeState,
  Condition,
  InUsePolicy,
  NodeStateSpec,
  NodeStateStatus,
  ReservationApplyStatus,
} from '../../src/api/types.js';
import { NodeStateType, CustomResourceClient } from '../../src/k8s/client.js';
import { mergePatch } from '../../src/k8s/merge-patch.js';
import { startAgent, type RunningAgent, type StartAgentOptions } from '../../src/commands/agent.js';
import { eventually, kubeConfig } from '../support/cluster.js';

export const nodeStates = () => new CustomResourceClient<APNodeState>(kubeConfig(), NodeStateType);

export function uniqueNode(prefix: string): string {
  return `${prefix}-${randomBytes(3).toString('hex')}`;
}

export interface CardDef {
  id: string;
  type?: string;
  domains: string | string[];
}

/** A booted simulated node; its clock is real time (host requests drain in real seconds)
 *  unless a test passes a ManualClock to drain them exactly when it says (model.tick). */
export function simulatedModel(name: string, cards: CardDef[], extra: Record<string, unknown> = {}, clock: Clock = new SystemClock()): ApBusModel {
  const topology = topologyFromObject({
    nodes: [{ name, kernel: '6.10', maxDomainId: 84, cards: cards.map((c) => ({ type: 'CEX8C', ...c })), ...extra }],
  });
  return ApBusModel.fromTopology(topology.nodes[0]!, { clock });
}

const stateDirs = new Map<string, string>();

/** The node's state directory (the agent's journal): one per node name, the same for every
 *  agent started on that node in a test, removed when the test ends. */
export function stateDirOf(t: ExecutionContext, nodeName: string): string {
  let dir = stateDirs.get(nodeName);
  if (!dir) {
    const made = fs.mkdtempSync(path.join(os.tmpdir(), `apqn-state-${nodeName}-`));
    dir = made;
    stateDirs.set(nodeName, made);
    t.teardown(() => {
      stateDirs.delete(nodeName);
      fs.rmSync(made, { recursive: true, force: true });
    });
  }
  return dir;
}

/** Starts an agent for the test and stops it (and deletes its APNodeState) at the end. */
export async function agentFor(
  t: ExecutionContext,
  model: ApBusModel,
  nodeName: string,
  options: Partial<StartAgentOptions> = {},
): Promise<RunningAgent> {
  const stateDir = stateDirOf(t, nodeName);
  const agent = await startAgent({
    kubeConfig: kubeConfig(),
    nodeName,
    model,
    rescanMs: 300,
    heartbeatMs: 3000,
    driftHoldSeconds: 5,
    stateDir,
    ...options,
  });
  // Teardowns run last-registered first: stop the agent before its object is deleted.
  deleteAtEnd(t, nodeName);
  t.teardown(async () => {
    await agent.stop();
  });
  return agent;
}

const cleaned = new WeakMap<ExecutionContext, Set<string>>();
export function deleteAtEnd(t: ExecutionContext, nodeName: string): void {
  const names = cleaned.get(t) ?? new Set<string>();
  if (names.has(nodeName)) return;
  names.add(nodeName);
  cleaned.set(t, names);
  t.teardown(async () => {
    await nodeStates().delete(nodeName);
  });
}

/** Plays the controller: makes the spec exactly `spec` (a merge patch with nulls for dropped
 *  fields, no resourceVersion precondition: the tests are the only spec writers, and the
 *  agent's status writes must not make this fail). */
export async function writeSpec(nodeName: string, spec: NodeStateSpec): Promise<APNodeState> {
  const client = nodeStates();
  const current = await client.get(nodeName);
  const patch = mergePatch(current.spec ?? {}, spec);
  return patch === undefined ? current : client.patch(nodeName, { spec: patch });
}

export interface VfioReservation {
  reservation: string; // namespace/name
  uuid?: string;
  adapters: string[];
  domains: string[];
  controlDomains?: string[];
  /** Mask bits the controller's plan clears (the rest of the node stays with the host). */
  clearAdapters?: string[];
  clearDomains?: string[];
  inUsePolicy?: InUsePolicy;
  drainTimeoutSeconds?: number;
}

/** The spec the controller would write for one vfio_ap reservation. */
export function vfioSpec(r: VfioReservation): NodeStateSpec & { uuid: string } {
  const uuid = r.uuid ?? randomUUID();
  const queues = r.adapters.flatMap((a) =>
    r.domains.map((d) => ({
      apqn: `${a}.${d}`,
      reservation: r.reservation,
      inUsePolicy: r.inUsePolicy ?? 'Wait',
      drainTimeoutSeconds: r.drainTimeoutSeconds ?? 300,
    })),
  );
  return {
    uuid,
    bindingMode: 'Masks',
    apmask: (r.clearAdapters ?? []).map((id) => ({ id, host: false, original: true })),
    aqmask: (r.clearDomains ?? []).map((id) => ({ id, host: false, original: true })),
    queues,
    mdevs: [{ uuid, reservation: r.reservation, adapters: r.adapters, domains: r.domains, controlDomains: r.controlDomains ?? [] }],
  };
}

/** Spec without the helper's extra `uuid` key. */
export function wire(spec: NodeStateSpec & { uuid?: string }): NodeStateSpec {
  const { uuid: _uuid, ...rest } = spec;
  return rest;
}

export function condition(status: NodeStateStatus | undefined, type: string): Condition | undefined {
  return status?.conditions?.find((c) => c.type === type);
}

export function reservationStatus(status: NodeStateStatus | undefined, reservation: string): ReservationApplyStatus | undefined {
  return status?.reservations?.find((r) => r.reservation === reservation);
}

/** Waits until the stored object satisfies `test`; returns it. */
export async function waitForNodeState(
  nodeName: string,
  what: string,
  test: (obj: APNodeState) => boolean,
  timeoutMs = 30_000,
): Promise<APNodeState> {
  const client = nodeStates();
  let last: APNodeState | undefined;
  try {
    return await eventually(
      what,
      async () => {
        last = await client.get(nodeName);
        return test(last) ? last : undefined;
      },
      timeoutMs,
      100,
    );
  } catch (err) {
    const conditions = last?.status?.conditions?.map((c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`).join('\n  ');
    const reservations = last?.status?.reservations?.map((r) => `${r.reservation} ${r.phase} ${r.reason}: ${r.message}`).join('\n  ');
    throw new Error(`${(err as Error).message}\n  last conditions:\n  ${conditions}\n  reservations:\n  ${reservations}`);
  }
}

/** Synced=True for the object's current generation. */
export function syncedAtGeneration(obj: APNodeState): boolean {
  const synced = condition(obj.status, 'Synced');
  return (
    synced?.status === 'True' &&
    obj.status?.observedGeneration === obj.metadata.generation &&
    synced.observedGeneration === obj.metadata.generation
  );
}

/** Every version of the object the API server reports from now on (watch), until stopped. */
export async function recordVersions(nodeName: string): Promise<{ versions: APNodeState[]; stop(): void }> {
  const versions: APNodeState[] = [];
  const watch = new k8s.Watch(kubeConfig());
  const request = await watch.watch(
    `/apis/${NodeStateType.group}/${NodeStateType.version}/${NodeStateType.plural}`,
    { fieldSelector: `metadata.name=${nodeName}` },
    (type, obj) => {
      if (type === 'ADDED' || type === 'MODIFIED') versions.push(obj as APNodeState);
    },
    () => undefined,
  );
  return { versions, stop: () => request.abort() };
}

/** Events (events.k8s.io/v1) in a namespace, as the API server has them. */
export async function eventsIn(namespace: string): Promise<k8s.EventsV1Event[]> {
  const api = kubeConfig().makeApiClient(k8s.EventsV1Api);
  return (await api.listNamespacedEvent({ namespace })).items;
}
