// deploy/ against the real API server: the kustomization applies (server-side dry run, every
// object admitted), its RBAC has no wildcards, the ServiceAccounts may do exactly what the
// table says (kubectl auth can-i by impersonation), and the controller and an agent running
// with those accounts' own tokens take a reservation to Ready and hand it back.
import test from 'ava';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import * as yaml from 'js-yaml';
import { API_VERSION, type APQNReservation } from '../src/api/types.js';
import { ApBusModel, SystemClock } from '../src/apbus/model/index.js';
import { topologyFromObject } from '../src/apbus/topology.js';
import { startAgent } from '../src/commands/agent.js';
import { startController } from '../src/commands/controller.js';
import { operatorClients } from '../src/k8s/client.js';
import { logger } from '../src/log.js';
import { eventually, kubeConfig, kubeConfigForToken, kubectl, testNamespace } from './support/cluster.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEPLOY = path.join(repo, 'deploy');
const NS = 'apqn-system'; // the agents'
const CONTROLLER_NS = 'apqn-controller';
const CONTROLLER = `system:serviceaccount:${CONTROLLER_NS}:apqn-controller`;
const AGENT = `system:serviceaccount:${NS}:apqn-agent`;

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: Array<Record<string, string[] | undefined>>;
}

function must(result: { status: number; stdout: string; stderr: string }, what: string): string {
  if (result.status !== 0) throw new Error(`${what} failed (${result.status}): ${result.stderr.trim()}`);
  return result.stdout;
}

/** The objects `kubectl apply -k deploy/` would send, as kustomize renders them. */
function rendered(): K8sObject[] {
  return yaml.loadAll(must(kubectl(['kustomize', DEPLOY]), 'kubectl kustomize deploy/')).filter(Boolean) as K8sObject[];
}

const rbacKinds = new Set(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding']);

// The namespace and the accounts with their RBAC exist for real (the workloads only in the
// dry run): what can-i and the token-authenticated run below need.
test.before(() => {
  const objects = rendered();
  const real = objects.filter((o) => o.kind === 'Namespace' || rbacKinds.has(o.kind));
  must(kubectl(['apply', '-f', '-'], real.map((o) => yaml.dump(o)).join('---\n')), 'kubectl apply (namespace, accounts, RBAC)');
});

test.after.always(() => {
  const objects = rendered().filter((o) => rbacKinds.has(o.kind) && !o.metadata.namespace);
  for (const o of objects) kubectl(['delete', o.kind.toLowerCase(), o.metadata.name, '--ignore-not-found', '--wait=false']);
  for (const namespace of [NS, CONTROLLER_NS]) kubectl(['delete', 'namespace', namespace, '--ignore-not-found', '--wait=false']);
});

test('kubectl apply --dry-run=server -k deploy/ admits every object', (t) => {
  const objects = rendered();
  const result = kubectl(['apply', '--dry-run=server', '-k', DEPLOY]);
  t.is(result.status, 0, result.stderr);
  const lines = result.stdout.trim().split('\n');
  for (const o of objects) {
    const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';
    const resource = `${o.kind.toLowerCase()}${group ? '.' + group : ''}/${o.metadata.name}`;
    t.true(
      lines.some((l) => l.startsWith(resource + ' ') && l.endsWith('(server dry run)')),
      `${resource} in the dry run's output:\n${result.stdout}`,
    );
  }
  // What the issue asks deploy/ to hold.
  const kinds = objects.map((o) => `${o.kind}/${o.metadata.name}`);
  for (const want of [
    'Namespace/apqn-system',
    'Namespace/apqn-controller',
    'CustomResourceDefinition/apqnreservations.ap.s390x.io',
    'CustomResourceDefinition/apqnclaims.ap.s390x.io',
    'CustomResourceDefinition/apnodestates.ap.s390x.io',
    'ServiceAccount/apqn-controller',
    'ServiceAccount/apqn-agent',
    'Deployment/apqn-controller',
    'DaemonSet/apqn-agent',
    'MutatingAdmissionPolicy/apqn-reservation-finalizer',
    'MutatingAdmissionPolicyBinding/apqn-reservation-finalizer',
    'ValidatingAdmissionPolicy/apqn-agent-node-restriction',
    'ValidatingAdmissionPolicyBinding/apqn-agent-node-restriction',
    'ValidatingAdmissionPolicy/apqn-claims-by-controller',
    'ValidatingAdmissionPolicyBinding/apqn-claims-by-controller',
  ]) {
    t.true(kinds.includes(want), `${want} in deploy/`);
  }
});

test('the workloads: 2 controller replicas with leader election, agents on s390x only, non-root controller, read-only roots', (t) => {
  const objects = rendered() as unknown as Array<K8sObject & { spec: any }>;
  const deployment = objects.find((o) => o.kind === 'Deployment')!;
  const daemonSet = objects.find((o) => o.kind === 'DaemonSet')!;
  t.is(deployment.spec.replicas, 2);
  const controller = deployment.spec.template.spec.containers[0];
  t.true(controller.args.includes('--leader-elect'));
  t.truthy(controller.livenessProbe?.httpGet && controller.readinessProbe?.httpGet, 'probes');
  t.truthy(controller.resources?.limits?.memory && controller.resources?.limits?.cpu, 'limits');
  t.true(deployment.spec.template.spec.securityContext.runAsNonRoot);
  t.true(controller.securityContext.readOnlyRootFilesystem);
  t.is(deployment.spec.template.spec.serviceAccountName, 'apqn-controller');
  t.is(daemonSet.spec.template.spec.nodeSelector['kubernetes.io/arch'], 's390x');
  t.is(daemonSet.spec.template.spec.serviceAccountName, 'apqn-agent');
  const agent = daemonSet.spec.template.spec.containers[0];
  t.true(agent.securityContext.readOnlyRootFilesystem);
  t.not(agent.securityContext.privileged, true, 'the agent is not privileged (see the DaemonSet comment)');
  // No mount of the whole /sys: only the AP bus parts.
  const hostPaths: string[] = daemonSet.spec.template.spec.volumes.filter((v: any) => v.hostPath).map((v: any) => v.hostPath.path);
  t.false(hostPaths.includes('/sys'), hostPaths.join(', '));
  t.true(hostPaths.filter((p) => p.startsWith('/sys/')).every((p) => /^\/sys\/(bus\/ap|devices\/ap|devices\/vfio_ap|kernel\/iommu_groups)$/.test(p)), hostPaths.join(', '));
});

test('Pod Security: the controller\'s pod is admitted in its restricted namespace; the agent\'s only in the privileged one', (t) => {
  const objects = rendered() as unknown as Array<K8sObject & { spec: any }>;
  const namespaces = objects.filter((o) => o.kind === 'Namespace') as unknown as Array<{ metadata: { name: string; labels: Record<string, string> } }>;
  const level = (name: string) => namespaces.find((n) => n.metadata.name === name)?.metadata.labels['pod-security.kubernetes.io/enforce'];
  t.is(level(CONTROLLER_NS), 'restricted');
  t.is(level(NS), 'privileged');
  const podOf = (kind: string, namespace: string) => {
    const workload = objects.find((o) => o.kind === kind)!;
    t.is(workload.metadata.namespace, namespace, `${kind} in ${namespace}`);
    return { apiVersion: 'v1', kind: 'Pod', metadata: { name: `psa-${kind.toLowerCase()}`, namespace }, spec: workload.spec.template.spec };
  };
  // A server dry run creates the pod as the workload controller would: Pod Security admission
  // enforces the namespace's level on it.
  const create = (pod: unknown) => kubectl(['create', '--dry-run=server', '-f', '-'], JSON.stringify(pod));
  const controllerPod = create(podOf('Deployment', CONTROLLER_NS));
  t.is(controllerPod.status, 0, controllerPod.stderr);
  t.is(controllerPod.stderr.trim(), '', 'not even a warning');
  const agentThere = create({ ...podOf('DaemonSet', NS), metadata: { name: 'psa-agent', namespace: CONTROLLER_NS } });
  t.not(agentThere.status, 0, 'the agent is not admitted in the controller\'s namespace');
  t.regex(agentThere.stderr, /violates PodSecurity "restricted/);
});

test('no RBAC rule uses a wildcard', (t) => {
  const roles = rendered().filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
  t.true(roles.length >= 3, 'controller, agent and leader-election roles');
  for (const role of roles) {
    for (const [i, rule] of (role.rules ?? []).entries()) {
      for (const field of ['apiGroups', 'resources', 'verbs', 'resourceNames', 'nonResourceURLs']) {
        const values = rule[field] ?? [];
        t.false(
          values.some((v) => v.includes('*')),
          `${role.kind}/${role.metadata.name} rule ${i} ${field}: ${JSON.stringify(values)}`,
        );
      }
    }
  }
});

// [who, verb, resource, namespace, allowed, why]
const canI: Array<[string, string, string, string | undefined, boolean, string]> = [
  [CONTROLLER, 'patch', 'apqnreservations.ap.s390x.io/status', 'default', true, 'the controller writes reservation status'],
  [CONTROLLER, 'patch', 'apqnclaims.ap.s390x.io/status', 'default', true, 'the controller writes claim status'],
  [CONTROLLER, 'patch', 'apqnreservations.ap.s390x.io', 'default', true, 'the controller adds and removes its finalizer'],
  [CONTROLLER, 'watch', 'apqnreservations.ap.s390x.io', undefined, true, 'the controller watches reservations cluster-wide'],
  [CONTROLLER, 'create', 'apqnreservations.ap.s390x.io', 'default', false, 'the controller creates no reservation'],
  [CONTROLLER, 'delete', 'apqnreservations.ap.s390x.io', 'default', false, 'the controller deletes no reservation'],
  [CONTROLLER, 'create', 'apqnclaims.ap.s390x.io', 'default', false, 'the controller creates no claim'],
  [CONTROLLER, 'patch', 'apnodestates.ap.s390x.io', undefined, true, 'the controller writes node specs'],
  [CONTROLLER, 'create', 'apnodestates.ap.s390x.io', undefined, true, 'the controller may create a node state'],
  [CONTROLLER, 'patch', 'apnodestates.ap.s390x.io/status', undefined, false, 'node state status is the agent’s'],
  [CONTROLLER, 'delete', 'apnodestates.ap.s390x.io', undefined, false, 'the controller deletes no node state'],
  [CONTROLLER, 'list', 'nodes', undefined, true, 'the controller reads Node labels (nodeSelector)'],
  [CONTROLLER, 'delete', 'nodes', undefined, false, 'the controller never deletes nodes'],
  [CONTROLLER, 'patch', 'nodes', undefined, false, 'the controller never changes nodes'],
  [CONTROLLER, 'create', 'leases.coordination.k8s.io', CONTROLLER_NS, true, 'leader election in its own namespace'],
  [CONTROLLER, 'update', 'leases.coordination.k8s.io', CONTROLLER_NS, true, 'renewing the lease'],
  [CONTROLLER, 'create', 'leases.coordination.k8s.io', NS, false, 'not in the agents\' namespace'],
  [CONTROLLER, 'create', 'leases.coordination.k8s.io', 'default', false, 'no leases elsewhere'],
  [CONTROLLER, 'create', 'events.events.k8s.io', 'default', true, 'events on reservations'],
  [CONTROLLER, 'create', 'resourceslices.resource.k8s.io', undefined, true, 'DRA devices of Ready reservations'],
  [CONTROLLER, 'create', 'resourceclaims.resource.k8s.io', 'default', true, 'DRA claims of bound APQNClaims'],
  [CONTROLLER, 'get', 'secrets', 'default', false, 'no secrets'],
  [CONTROLLER, 'create', 'pods', 'default', false, 'no pods'],
  [AGENT, 'patch', 'apnodestates.ap.s390x.io/status', undefined, true, 'the agent writes its node’s status'],
  [AGENT, 'create', 'apnodestates.ap.s390x.io', undefined, true, 'the agent creates its node state when missing'],
  [AGENT, 'watch', 'apnodestates.ap.s390x.io', undefined, true, 'the agent watches its spec'],
  [AGENT, 'patch', 'apnodestates.ap.s390x.io', undefined, false, 'the spec is the controller’s'],
  [AGENT, 'update', 'apnodestates.ap.s390x.io', undefined, false, 'the spec is the controller’s'],
  [AGENT, 'delete', 'apnodestates.ap.s390x.io', undefined, false, 'the agent deletes no node state'],
  [AGENT, 'get', 'apqnreservations.ap.s390x.io', 'default', true, 'events name the reservation (uid)'],
  [AGENT, 'patch', 'apqnreservations.ap.s390x.io', 'default', false, 'no reservation spec'],
  [AGENT, 'patch', 'apqnreservations.ap.s390x.io/status', 'default', false, 'no reservation status'],
  [AGENT, 'update', 'apqnclaims.ap.s390x.io', 'default', false, 'no claim spec'],
  [AGENT, 'patch', 'apqnclaims.ap.s390x.io/status', 'default', false, 'no claim status'],
  [AGENT, 'get', 'resourceclaims.resource.k8s.io', 'default', true, 'the DRA plugin checks a claim’s namespace'],
  [AGENT, 'patch', 'resourceclaims.resource.k8s.io', 'default', false, 'the DRA plugin writes no claim'],
  [AGENT, 'list', 'resourceclaims.resource.k8s.io', undefined, false, 'the DRA plugin gets the claim it is asked about, nothing more'],
  [AGENT, 'watch', 'resourceclaims.resource.k8s.io', 'default', false, 'the DRA plugin gets the claim it is asked about, nothing more'],
  [AGENT, 'list', 'apqnreservations.ap.s390x.io', undefined, false, 'reservations are got by name only'],
  [AGENT, 'get', 'apqnclaims.ap.s390x.io', 'default', false, 'the agent has no use for APQNClaims'],
  [AGENT, 'create', 'events.events.k8s.io', 'default', true, 'events on reservations'],
  [AGENT, 'create', 'leases.coordination.k8s.io', NS, false, 'agents do not elect leaders'],
  [AGENT, 'get', 'secrets', NS, false, 'no secrets'],
  [AGENT, 'delete', 'nodes', undefined, false, 'no nodes'],
];

for (const [who, verb, resource, namespace, allowed, why] of canI) {
  const account = who.split(':').pop();
  test(`${account} ${allowed ? 'may' : 'may not'} ${verb} ${resource}${namespace ? ` in ${namespace}` : ''}: ${why}`, (t) => {
    const [res, sub] = resource.split('/');
    const args = ['auth', 'can-i', verb, res!, `--as=${who}`, ...(sub ? [`--subresource=${sub}`] : [])];
    args.push(...(namespace ? ['-n', namespace] : ['--all-namespaces']));
    const result = kubectl(args);
    // can-i exits 0 for yes and 1 for no; anything else is an error.
    t.true(result.status === 0 || result.status === 1, result.stderr);
    t.is(result.stdout.trim(), allowed ? 'yes' : 'no', result.stderr);
  });
}

/** A KubeConfig that authenticates as the ServiceAccount with a fresh token of its own. */
function serviceAccountConfig(account: string, namespace: string): k8s.KubeConfig {
  return kubeConfigForToken(must(kubectl(['create', 'token', account, '-n', namespace, '--duration=1h']), `kubectl create token ${account}`).trim());
}

test('the controller and an agent with their ServiceAccounts’ tokens take a reservation to Ready and release it', async (t) => {
  const ns = await testNamespace(t, 'deploy');
  const node = `${ns}-node`;
  const admin = operatorClients(kubeConfig());
  const controllerConfig = serviceAccountConfig('apqn-controller', CONTROLLER_NS);
  const agentConfig = serviceAccountConfig('apqn-agent', NS);
  const log = logger('deploy-test', { test: ns });

  const controller = await startController({
    kubeConfig: controllerConfig,
    leaderElect: true,
    lease: { namespace: CONTROLLER_NS, name: `apqn-${ns}` },
    scope: { namespace: ns, nodes: (n) => n === node },
    log,
  });
  t.teardown(() => controller.stop());
  const topology = topologyFromObject({
    nodes: [{ name: node, cards: [{ id: '05', type: 'CEX8C', domains: '0000-0003' }, { id: '06', type: 'CEX8C', domains: '0000-0003' }] }],
  });
  const agent = await startAgent({
    kubeConfig: agentConfig,
    nodeName: node,
    model: ApBusModel.fromTopology(topology.nodes[0]!, { clock: new SystemClock() }),
    rescanMs: 500,
    log,
  });
  t.teardown(async () => {
    await agent.stop();
    await admin.nodeStates.delete(node).catch(() => undefined);
  });
  await agent.ready();

  await admin.reservations.create({
    apiVersion: API_VERSION,
    kind: 'APQNReservation',
    metadata: { name: 'vm', namespace: ns },
    spec: { nodeName: node, apqns: ['05.0001', '06.0001'] },
  });
  const ready = (r: APQNReservation | undefined) => r?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
  const r = await eventually('reservation Ready under least-privilege accounts', async () => {
    const found = await admin.reservations.find({ namespace: ns, name: 'vm' });
    return ready(found) ? found : undefined;
  });
  t.is(r.status?.nodeName, node);
  t.true(controller.isLeading());

  await admin.reservations.delete({ namespace: ns, name: 'vm' });
  await eventually('reservation released and gone', async () =>
    (await admin.reservations.find({ namespace: ns, name: 'vm' })) ? undefined : true,
  );
  const state = await admin.nodeStates.get(node);
  t.deepEqual(
    state.status?.queues?.filter((q) => q.apqn.endsWith('.0001')).map((q) => q.driver),
    ['cex4queue', 'cex4queue'],
    'the queues are back on the host',
  );
  t.deepEqual(state.status?.mdevs ?? [], []);
  // Nothing was refused along the way.
  t.is(agent.stats().status.failures, 0, agent.stats().status.lastError ?? '');
  t.is(controller.controller.stats.failures.reservations + controller.controller.stats.failures.nodes, 0);
});
