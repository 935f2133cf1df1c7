// The shared control plane the harness started is a real kube-apiserver backed by etcd.
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { kubeConfig, kubectl, testNamespace } from './support/cluster.js';

test('the API server reports its pinned version and serves core objects', async (t) => {
  const kc = kubeConfig();
  const version = await kc.makeApiClient(k8s.VersionApi).getCode();
  t.is(version.gitVersion, 'v1.37.2');
  const ns = await testNamespace(t);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: 'probe' }, data: { a: '1' } } });
  const read = await core.readNamespacedConfigMap({ namespace: ns, name: 'probe' });
  t.deepEqual(read.data, { a: '1' });
});

test('kubectl from the same build talks to it', (t) => {
  const out = kubectl(['get', 'namespace', 'default', '-o', 'jsonpath={.metadata.name}']);
  t.is(out.status, 0, out.stderr);
  t.is(out.stdout, 'default');
});

test('RBAC is enforced for identities outside system:masters', (t) => {
  const out = kubectl(['auth', 'can-i', 'create', 'pods', '--as=system:serviceaccount:default:nobody']);
  t.is(out.stdout.trim(), 'no');
});
