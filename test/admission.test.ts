// deploy/admission/: the API server gives every new APQNReservation the release finalizer
// (a MutatingAdmissionPolicy, Kubernetes ≥ 1.36), so the controller need not write it before it
// may place the reservation. The control plane is shared with the other test files, whose
// reservations must stay as their tests make them: this test applies deploy/'s policy under its
// own name and binds it to its own namespace only.
import test from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as yaml from 'js-yaml';
import { API_VERSION, RESERVATION_FINALIZER } from '../src/api/types.js';
import { eventually, kubectl, testNamespace } from './support/cluster.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const POLICY_FILE = path.join(repo, 'deploy/admission/reservation-finalizer.yaml');

interface Doc {
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}

function must(result: { status: number; stdout: string; stderr: string }, what: string): string {
  if (result.status !== 0) throw new Error(`${what} failed (${result.status}): ${result.stderr.trim()}`);
  return result.stdout;
}

/** Creates a reservation with kubectl and returns the finalizers the API server stored. */
function create(ns: string, name: string, finalizers?: string[]): string[] {
  const body = {
    apiVersion: API_VERSION,
    kind: 'APQNReservation',
    metadata: { name, namespace: ns, ...(finalizers ? { finalizers } : {}) },
    spec: { nodeName: 'nowhere', apqns: ['05.0001'] },
  };
  const created = JSON.parse(must(kubectl(['create', '-o', 'json', '-f', '-'], JSON.stringify(body)), `create ${name}`)) as {
    metadata: { finalizers?: string[] };
  };
  return created.metadata.finalizers ?? [];
}

/** Drops every finalizer so the namespace can go (no controller runs here to release them). */
function unblock(ns: string, name: string): void {
  kubectl(['patch', 'apqnreservation', name, '-n', ns, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
}

test('the API server sets the release finalizer on create and keeps finalizers the user set; other namespaces are untouched by this binding', async (t) => {
  const ns = await testNamespace(t, 'adm');
  const other = await testNamespace(t, 'adm-other');
  const docs = yaml.loadAll(fs.readFileSync(POLICY_FILE, 'utf8')) as Doc[];
  const policy = docs.find((d) => d.kind === 'MutatingAdmissionPolicy')!;
  const binding = docs.find((d) => d.kind === 'MutatingAdmissionPolicyBinding')!;
  t.truthy(policy && binding, 'deploy/ holds the policy and its binding');
  t.is((binding.spec as { policyName?: string }).policyName, policy.metadata.name, 'the binding names the policy');
  const name = `apqn-finalizer-${ns}`;
  const testPolicy = { ...policy, metadata: { name } };
  const testBinding = {
    ...binding,
    metadata: { name },
    spec: {
      ...binding.spec,
      policyName: name,
      matchResources: { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } } },
    },
  };
  must(kubectl(['apply', '-f', '-'], [testPolicy, testBinding].map((d) => yaml.dump(d)).join('---\n')), 'apply the policy');
  t.teardown(() => {
    kubectl(['delete', 'mutatingadmissionpolicybinding', name, '--ignore-not-found']);
    kubectl(['delete', 'mutatingadmissionpolicy', name, '--ignore-not-found']);
  });
  const made: Array<[string, string]> = [];
  t.teardown(() => {
    for (const [n, r] of made) unblock(n, r);
  });

  // The API server loads a new policy from its informer: probe until it applies.
  let probes = 0;
  await eventually('the policy in effect', () => {
    const probe = `probe-${probes++}`;
    made.push([ns, probe]);
    return create(ns, probe).includes(RESERVATION_FINALIZER) ? true : undefined;
  });

  made.push([ns, 'plain']);
  t.deepEqual(create(ns, 'plain'), [RESERVATION_FINALIZER]);
  made.push([ns, 'keeps']);
  t.deepEqual(create(ns, 'keeps', ['example.com/keep']).sort(), ['example.com/keep', RESERVATION_FINALIZER].sort());
  made.push([ns, 'already']);
  t.deepEqual(create(ns, 'already', [RESERVATION_FINALIZER]), [RESERVATION_FINALIZER], 'not listed twice');
  made.push([other, 'unbound']);
  t.deepEqual(create(other, 'unbound'), [], 'a namespace the test binding does not select gets nothing from it');
});
