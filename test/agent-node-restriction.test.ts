// deploy/admission/agent-node-restriction.yaml on the real API server, with real tokens: a
// ServiceAccount token bound to a pod on node A (a TokenRequest with a bound object, as the
// kubelet makes for the agent's pod) may write node A's APNodeState status and create node A's
// object with an empty spec — and nothing else. The policy is applied as deploy/ has it, with
// only the ServiceAccount it matches (and the object names) changed to this test's own, so
// nothing else on the shared test control plane is affected.
import test from 'ava';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import type { APNodeState } from '../src/api/types.js';
import { API_VERSION } from '../src/api/types.js';
import { PatchStrategy, operatorClients } from '../src/k8s/client.js';
import { applyPolicyCopy, eventually, kubeConfig, kubeConfigForToken, kubectl, testNamespace } from './support/cluster.js';

const POLICY_FILE = path.join(import.meta.dirname, '..', 'deploy', 'admission', 'agent-node-restriction.yaml');
const DEPLOYED_AGENT = 'system:serviceaccount:apqn-system:apqn-agent';

async function refusal(op: () => Promise<unknown>): Promise<string> {
  try {
    await op();
  } catch (err) {
    return String((err as Error).message ?? err);
  }
  return 'admitted';
}

test('an agent token bound to a pod on node A writes node A\'s status and creates node A\'s object with an empty spec — nothing else', async (t) => {
  const ns = await testNamespace(t, 'nr');
  const suffix = randomBytes(3).toString('hex');
  const [nodeA, nodeB, account] = [`nr-a-${suffix}`, `nr-b-${suffix}`, `agent-${suffix}`];
  const admin = kubeConfig();
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const rbac = admin.makeApiClient(k8s.RbacAuthorizationV1Api);
  const adminStates = operatorClients(admin).nodeStates;

  // The policy as deployed, matching this test's account; object names made unique.
  applyPolicyCopy(t, POLICY_FILE, [[DEPLOYED_AGENT, `system:serviceaccount:${ns}:${account}`]], suffix);

  // Wider RBAC than deploy/ gives the agent, so that every refusal below is the policy's.
  await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: account } } });
  await rbac.createClusterRole({
    body: {
      metadata: { name: account },
      rules: [
        { apiGroups: ['ap.s390x.io'], resources: ['apnodestates'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
        { apiGroups: ['ap.s390x.io'], resources: ['apnodestates/status'], verbs: ['get', 'update', 'patch'] },
      ],
    },
  });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: account },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: account },
      subjects: [{ kind: 'ServiceAccount', name: account, namespace: ns }],
    },
  });
  t.teardown(async () => {
    await rbac.deleteClusterRoleBinding({ name: account }).catch(() => undefined);
    await rbac.deleteClusterRole({ name: account }).catch(() => undefined);
    for (const n of [nodeA, nodeB]) {
      await core.deleteNode({ name: n }).catch(() => undefined);
      await adminStates.delete(n).catch(() => undefined);
    }
  });

  // Node A with the agent's pod on it, and a token bound to that pod (what the kubelet asks for).
  for (const n of [nodeA, nodeB]) await core.createNode({ body: { metadata: { name: n } } });
  const pod = await core.createNamespacedPod({
    namespace: ns,
    body: { metadata: { name: 'agent' }, spec: { nodeName: nodeA, serviceAccountName: account, automountServiceAccountToken: false, containers: [{ name: 'agent', image: 'agent' }] } },
  });
  const request = await core.createNamespacedServiceAccountToken({
    namespace: ns,
    name: account,
    body: { spec: { audiences: [], expirationSeconds: 600, boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: 'agent', uid: pod.metadata!.uid! } } },
  });
  const agent = operatorClients(kubeConfigForToken(request.status!.token)).nodeStates;
  const unbound = must(kubectl(['create', 'token', account, '-n', ns, '--duration=10m']));
  const unboundAgent = operatorClients(kubeConfigForToken(unbound.trim())).nodeStates;

  const empty = (name: string): APNodeState => ({ apiVersion: API_VERSION, kind: 'APNodeState', metadata: { name }, spec: {} });
  await adminStates.create(empty(nodeB));
  const heartbeat = { status: { heartbeatTime: new Date().toISOString() } };

  // The policy takes a moment to be in force: until node B's status is refused (the probes
  // before that were admitted; what node B's status is from then on is checked at the end).
  const refusedB = await eventually('the policy in force', async () => {
    const why = await refusal(() => agent.patchStatus(nodeB, { status: { heartbeatTime: new Date().toISOString() } }));
    return why === 'admitted' ? undefined : why;
  });
  t.regex(refusedB, new RegExp(`the agent of node ${nodeA} may write only APNodeState ${nodeA}, not ${nodeB}`));
  const statusB = (await adminStates.get(nodeB)).status;

  // Creating node A's object: not with a spec of its own making; with an empty one, yes.
  const forged: APNodeState = { ...empty(nodeA), spec: { mdevs: [{ uuid: '00000000-0000-4000-8000-000000000001', reservation: 'ns/x', adapters: ['05'], domains: ['0004'], controlDomains: [] }] } };
  t.regex(await refusal(() => agent.create(forged)), /only with an empty spec/);
  t.regex(await refusal(() => agent.create(empty(`nr-c-${suffix}`))), /may write only APNodeState/);
  t.is(await refusal(() => agent.create(empty(nodeA))), 'admitted');

  // Its own status: yes. Its own spec, a delete, or any write with a token bound to no pod: no.
  t.is(await refusal(() => agent.patchStatus(nodeA, heartbeat)), 'admitted');
  t.regex(await refusal(() => agent.patch(nodeA, [{ op: 'add', path: '/spec/apmask', value: [{ id: '05', host: false }] }], { strategy: PatchStrategy.JsonPatch })), /the spec is the controller's/);
  t.regex(await refusal(() => agent.delete(nodeA)), /deletes no APNodeState/);
  t.regex(await refusal(() => unboundAgent.patchStatus(nodeA, heartbeat)), /token names no node/);

  // Nothing of it reached node A's spec or node B's status.
  t.regex(await refusal(() => agent.patchStatus(nodeB, heartbeat)), /may write only APNodeState/, 'still refused');
  t.deepEqual((await adminStates.get(nodeA)).spec ?? {}, {});
  t.deepEqual((await adminStates.get(nodeB)).status, statusB);
});

function must(result: { status: number; stdout: string; stderr: string }): string {
  if (result.status !== 0) throw new Error(result.stderr);
  return result.stdout;
}
