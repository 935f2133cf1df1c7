// The typed clients on the project's real CRDs, error classification, retryOnConflict and
// KubeConfig loading.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import type { Clock } from '../../src/k8s/clock.js';
import {
  describeError,
  isAlreadyExists,
  isConflict,
  isInvalid,
  isNotFound,
  loadKubeConfig,
  operatorClients,
  retryOnConflict,
} from '../../src/k8s/client.js';
import { kubeConfig, kubeconfigPath, testNamespace } from '../support/cluster.js';

const unique = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;

test('reservations: create, get, list, patch spec and status, delete', async (t) => {
  const ns = await testNamespace(t);
  const { reservations } = operatorClients(kubeConfig());
  const created = await reservations.create({
    apiVersion: 'ap.s390x.io/v1alpha1',
    kind: 'APQNReservation',
    metadata: { name: 'r1', namespace: ns },
    spec: { nodeName: 'z1', apqns: ['05.0004'] },
  });
  t.truthy(created.metadata.uid);
  t.deepEqual((await reservations.get(`${ns}/r1`)).spec.apqns, ['05.0004']);
  t.is(await reservations.find({ namespace: ns, name: 'missing' }), undefined);
  t.deepEqual(
    (await reservations.list({ namespace: ns })).items.map((r) => r.metadata.name),
    ['r1'],
  );

  const patched = await reservations.patch({ namespace: ns, name: 'r1' }, { spec: { inUsePolicy: 'Fail' } });
  t.is(patched.spec.inUsePolicy, 'Fail');
  t.deepEqual(patched.spec.apqns, ['05.0004'], 'a merge patch keeps the other fields');
  const withStatus = await reservations.patchStatus({ namespace: ns, name: 'r1' }, { status: { nodeName: 'z1' } });
  t.is(withStatus.status?.nodeName, 'z1');
  const ignored = await reservations.patch({ namespace: ns, name: 'r1' }, { status: { nodeName: 'other' } });
  t.is(ignored.status?.nodeName, 'z1', 'the main resource ignores status');

  t.true(await reservations.delete({ namespace: ns, name: 'r1' }));
  t.false(await reservations.delete({ namespace: ns, name: 'r1' }), 'already gone');
});

test('node states are cluster-scoped: keyed by name, selectable by field', async (t) => {
  const { nodeStates } = operatorClients(kubeConfig());
  const name = unique('node');
  t.teardown(() => nodeStates.delete(name).then(() => undefined));
  await nodeStates.create({ apiVersion: 'ap.s390x.io/v1alpha1', kind: 'APNodeState', metadata: { name }, spec: {} });
  const list = await nodeStates.list({ fieldSelector: `metadata.name=${name}` });
  t.deepEqual(
    list.items.map((n) => n.metadata.name),
    [name],
  );
  t.truthy(list.metadata?.resourceVersion);
  const status = await nodeStates.patchStatus(name, { status: { maxAdapterId: 255, maxDomainId: 255 } });
  t.is(status.status?.maxDomainId, 255);
  t.is(nodeStates.path(), '/apis/ap.s390x.io/v1alpha1/apnodestates');
});

test('scope mistakes are caught before any request', async (t) => {
  const { reservations, nodeStates } = operatorClients(kubeConfig());
  await t.throwsAsync(reservations.get('no-namespace'), { message: /namespace is required/ });
  await t.throwsAsync(nodeStates.get('ns/name'), { message: /cluster-scoped/ });
});

test('API errors are told apart: not found, already exists, conflict, invalid', async (t) => {
  const ns = await testNamespace(t);
  const { reservations } = operatorClients(kubeConfig());
  const notFound = await t.throwsAsync(reservations.get({ namespace: ns, name: 'nope' }));
  t.true(isNotFound(notFound));
  t.false(isConflict(notFound));
  t.regex(describeError(notFound), /^404 NotFound: .*"nope" not found/);

  const body = {
    apiVersion: 'ap.s390x.io/v1alpha1' as const,
    kind: 'APQNReservation' as const,
    metadata: { name: 'r', namespace: ns },
    spec: { nodeName: 'z1', apqns: ['05.0004'] },
  };
  const first = await reservations.create(body);
  const exists = await t.throwsAsync(reservations.create(body));
  t.true(isConflict(exists));
  t.true(isAlreadyExists(exists));

  await reservations.patch({ namespace: ns, name: 'r' }, { metadata: { labels: { a: 'b' } } });
  const stale = await t.throwsAsync(reservations.replace(first));
  t.true(isConflict(stale));
  t.false(isAlreadyExists(stale));

  const invalid = await t.throwsAsync(
    reservations.create({ ...body, metadata: { name: 'no-spec', namespace: ns }, spec: undefined as never }),
  );
  t.true(isInvalid(invalid), describeError(invalid));
});

/** A clock whose timers fire on the next turn of the event loop: retries without waiting. */
const instantClock: Clock = {
  now: () => Date.now(),
  setTimer(fn) {
    const handle = setImmediate(fn);
    return { cancel: () => clearImmediate(handle) };
  },
};
const conflict = () => new k8s.ApiException(409, 'Conflict', '{"reason":"Conflict"}', {});

const retryCases = [
  { failures: [conflict, conflict], attempts: 5, calls: 3, succeeds: true, why: 'conflicts are retried until success' },
  { failures: [conflict, conflict, conflict], attempts: 3, calls: 3, succeeds: false, why: 'attempts are bounded' },
  {
    failures: [() => new k8s.ApiException(500, 'Internal', '{}', {})],
    attempts: 5,
    calls: 1,
    succeeds: false,
    why: 'other errors are not retried',
  },
];
for (const c of retryCases) {
  test(`retryOnConflict: ${c.why}`, async (t) => {
    let calls = 0;
    const run = retryOnConflict(
      async () => {
        const failure = c.failures[calls++];
        if (failure) throw failure();
        return 'ok';
      },
      { attempts: c.attempts, clock: instantClock },
    );
    if (c.succeeds) t.is(await run, 'ok');
    else await t.throwsAsync(run);
    t.is(calls, c.calls);
  });
}

test.serial('loadKubeConfig: an explicit path wins', (t) => {
  const kc = loadKubeConfig(kubeconfigPath());
  t.is(kc.getCurrentCluster()?.server, kubeConfig().getCurrentCluster()?.server);
});

test.serial('loadKubeConfig: $KUBECONFIG, then ~/.kube/config, then a clear error', (t) => {
  const saved = { KUBECONFIG: process.env.KUBECONFIG, HOME: process.env.HOME, HOST: process.env.KUBERNETES_SERVICE_HOST };
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'apqn-home-'));
  t.teardown(() => {
    for (const [k, v] of Object.entries({ KUBECONFIG: saved.KUBECONFIG, HOME: saved.HOME, KUBERNETES_SERVICE_HOST: saved.HOST })) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    fs.rmSync(home, { recursive: true, force: true });
  });
  delete process.env.KUBERNETES_SERVICE_HOST;
  process.env.HOME = home;

  process.env.KUBECONFIG = kubeconfigPath();
  t.is(loadKubeConfig().getCurrentCluster()?.server, kubeConfig().getCurrentCluster()?.server);

  delete process.env.KUBECONFIG;
  t.throws(() => loadKubeConfig(), { message: /no Kubernetes configuration/ });

  fs.mkdirSync(path.join(home, '.kube'));
  fs.copyFileSync(kubeconfigPath(), path.join(home, '.kube', 'config'));
  t.is(loadKubeConfig().getCurrentCluster()?.server, kubeConfig().getCurrentCluster()?.server);
});
