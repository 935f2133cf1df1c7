// Shared set-up for the DRA integration tests: the DeviceClass as deploy/ ships it, schedulable
// fake Nodes (no kubelet runs here: a Node object with a Ready condition and allocatable
// resources is all the scheduler looks at), clients for ResourceSlices and ResourceClaims, and
// the DRA side of the controller scoped to one test.
import * as k8s from '@kubernetes/client-node';
import type { ExecutionContext } from 'ava';
import * as yaml from 'js-yaml';
import { DEVICE_CLASS, DRA_DRIVER, ResourceClaimType, ResourceSliceType, type ResourceClaim, type ResourceSlice } from '../../src/api/dra.js';
import { startDraController, type DraController, type DraControllerOptions } from '../../src/controller/dra.js';
import { DEFAULT_PUBLISH_WINDOW_MS } from '../../src/controller/dra-window.js';
import type { APQNReservation, Condition } from '../../src/api/types.js';
import { API_VERSION } from '../../src/api/types.js';
import { mdevUuidFor } from '../../src/controller/mdev-uuid.js';
import { CustomResourceClient, operatorClients } from '../../src/k8s/client.js';
import { logger } from '../../src/log.js';
import { eventually, kubeConfig, kubectl } from '../support/cluster.js';

export const sliceClient = () => new CustomResourceClient<ResourceSlice>(kubeConfig(), ResourceSliceType);
export const resourceClaimClient = () => new CustomResourceClient<ResourceClaim>(kubeConfig(), ResourceClaimType);

/** Applies the DeviceClass exactly as `kubectl kustomize deploy/` renders it; returns the stored object. */
export function applyDeviceClassFromDeploy(): { name: string; selectors: unknown } {
  const rendered = kubectl(['kustomize', 'deploy/']);
  if (rendered.status !== 0) throw new Error(`kubectl kustomize deploy/ failed: ${rendered.stderr}`);
  const docs = yaml.loadAll(rendered.stdout) as Array<{ kind?: string; apiVersion?: string }>;
  const classes = docs.filter((d) => d?.kind === 'DeviceClass');
  if (classes.length !== 1) throw new Error(`expected one DeviceClass in deploy/, found ${classes.length}`);
  const applied = kubectl(['apply', '-f', '-'], yaml.dump(classes[0]));
  if (applied.status !== 0) throw new Error(`kubectl apply of the DeviceClass failed: ${applied.stderr}`);
  const got = kubectl(['get', 'deviceclass', DEVICE_CLASS, '-o', 'json']);
  if (got.status !== 0) throw new Error(got.stderr);
  const stored = JSON.parse(got.stdout) as { metadata: { name: string }; spec: { selectors: unknown } };
  return { name: stored.metadata.name, selectors: stored.spec.selectors };
}

/** A Node the scheduler can place pods on (Ready, 4 CPUs, 8 GiB, 110 pods), deleted at the end. */
export async function schedulableNode(t: ExecutionContext, name: string, labels: Record<string, string> = {}): Promise<void> {
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.createNode({
    body: {
      metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/arch': 's390x', 'kubernetes.io/os': 'linux', ...labels } },
    },
  });
  t.teardown(() => core.deleteNode({ name }).then(() => undefined, () => undefined));
  // The TaintNodesByCondition admission plugin taints every new Node not-ready; the node
  // lifecycle controller (kube-controller-manager, not running here) would lift it.
  await core.patchNode({ name, body: { spec: { taints: null } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  const resources = { cpu: '4', memory: '8Gi', pods: '110' };
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await core.patchNodeStatus(
    {
      name,
      body: {
        status: {
          capacity: resources,
          allocatable: resources,
          conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'fake node for tests', lastHeartbeatTime: now, lastTransitionTime: now }],
        },
      },
    },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
}

export async function cordon(name: string, unschedulable: boolean): Promise<void> {
  const core = kubeConfig().makeApiClient(k8s.CoreV1Api);
  await core.patchNode({ name, body: { spec: { unschedulable } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
}

/** This driver's slices of one node, as stored. */
export async function slicesOfNode(node: string): Promise<ResourceSlice[]> {
  const list = await sliceClient().list({ fieldSelector: `spec.nodeName=${node},spec.driver=${DRA_DRIVER}` });
  return list.items;
}

/** The devices a node publishes, as the scheduler reads them: the highest complete generation only. */
export async function publishedDevices(node: string): Promise<Array<{ name: string; attributes: Record<string, { string?: string; int?: number }> }>> {
  const slices = await slicesOfNode(node);
  if (slices.length === 0) return [];
  const top = Math.max(...slices.map((s) => s.spec.pool.generation));
  const current = slices.filter((s) => s.spec.pool.generation === top);
  if (current.some((s) => s.spec.pool.resourceSliceCount !== current.length)) throw new Error(`pool ${node} incomplete`);
  return current.flatMap((s) => s.spec.devices.map((d) => ({ name: d.name, attributes: (d.attributes ?? {}) as Record<string, { string?: string; int?: number }> })));
}

export async function startDra(t: ExecutionContext, ns: string, options: Partial<DraControllerOptions> = {}): Promise<Pick<DraController, 'stats' | 'stop'>> {
  const dra = await startDraController({
    kubeConfig: kubeConfig(),
    scope: { namespace: ns, nodes: (n) => n.startsWith(`${ns}-`) },
    log: logger('controller-dra', { test: ns }),
    leaderPollMs: 100,
    ...options,
  });
  t.teardown(() => dra.stop());
  return dra;
}

/**
 * Resolves once a publish window (DEFAULT_PUBLISH_WINDOW_MS, or `ms`) has passed since the call:
 * a node written before the call is then looked at again at once, not at the window's end.
 */
export async function windowOver(ms = DEFAULT_PUBLISH_WINDOW_MS): Promise<void> {
  const from = Date.now();
  await eventually(`${ms} ms publish window over`, () => (Date.now() - from > ms ? true : undefined));
}

export function readyCondition(status: Condition['status']): Condition {
  return { type: 'Ready', status, reason: status === 'True' ? 'Ready' : 'NotReady', message: 'set by the test', lastTransitionTime: '2026-01-01T00:00:00Z' };
}

/** Creates a reservation placed on `node` (05.0004) and gives it the status the controller would write. */
export async function placedReservation(ns: string, name: string, node: string, ready: Condition['status'] = 'True'): Promise<APQNReservation> {
  const c = operatorClients(kubeConfig());
  const r = await c.reservations.create({
    apiVersion: API_VERSION,
    kind: 'APQNReservation',
    metadata: { name, namespace: ns },
    spec: { nodeName: node, apqns: ['05.0004'] },
  });
  return c.reservations.patchStatus(
    { namespace: ns, name },
    {
      status: {
        nodeName: node,
        apqns: ['05.0004'],
        matrix: { adapters: ['05'], domains: ['0004'], controlDomains: [] },
        mdevUUID: mdevUuidFor(r.metadata.uid!),
        conditions: [readyCondition(ready)],
      },
    },
  );
}
