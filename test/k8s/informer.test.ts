// Informers against the real API server: the cache follows the server, handlers enqueue keys,
// and a watch that dies with an error is restarted.
import { randomBytes } from 'node:crypto';
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { FakeClock } from '../../src/k8s/clock.js';
import { CustomResourceClient } from '../../src/k8s/client.js';
import { Informer, customResourceSource, nodeSource } from '../../src/k8s/informer.js';
import { WorkQueue } from '../../src/k8s/workqueue.js';
import { eventually, kubeConfig, testNamespace } from '../support/cluster.js';
import { CuttableProxy, apiServerAddress } from './proxy.js';
import { GadgetType, gadgets, installTestCrds, widgets, type TestObject } from './testcrds.js';

const unique = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;

/** Collects every key the informer enqueues, in order (duplicates kept, unlike a WorkQueue). */
function recorder() {
  const keys: string[] = [];
  return { keys, add: (key: string) => keys.push(key) };
}

test('a namespace-scoped informer caches existing objects, then follows create, update and delete', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  await client.create({ metadata: { name: 'before', namespace: ns }, spec: { size: 1 } });

  const informer = new Informer(kubeConfig(), customResourceSource(client, { namespace: ns }));
  const seen = recorder();
  informer.enqueueTo(seen);
  informer.start();
  t.teardown(() => informer.stop());
  await informer.waitForSync(30_000);
  t.true(informer.hasSynced());
  t.deepEqual(informer.keys(), [`${ns}/before`]);
  t.deepEqual(seen.keys, [`${ns}/before`], 'the initial list enqueues every object');

  await client.create({ metadata: { name: 'later', namespace: ns }, spec: { size: 2 } });
  await eventually('the new object in the cache', () => informer.get(`${ns}/later`));

  await client.patch({ namespace: ns, name: 'before' }, { spec: { size: 5 } });
  await eventually('the update in the cache', () => (informer.get(`${ns}/before`)?.spec?.size === 5 ? true : undefined));

  await client.delete({ namespace: ns, name: 'later' });
  await eventually('the deletion in the cache', () => (informer.get(`${ns}/later`) ? undefined : true));

  t.deepEqual(seen.keys, [`${ns}/before`, `${ns}/later`, `${ns}/before`, `${ns}/later`]);
  t.deepEqual(
    informer.list().map((o) => o.metadata.name),
    ['before'],
  );
});

test('handlers get the old and the new object on update, and the final object on delete', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const informer = new Informer(kubeConfig(), customResourceSource(client, { namespace: ns }));
  const log: string[] = [];
  informer.on({
    add: (o) => log.push(`add ${o.metadata.name} ${o.spec?.size}`),
    update: (old, o) => log.push(`update ${o.metadata.name} ${old.spec?.size}->${o.spec?.size}`),
    delete: (o) => log.push(`delete ${o.metadata.name}`),
  });
  informer.start();
  t.teardown(() => informer.stop());
  await informer.waitForSync(30_000);
  await client.create({ metadata: { name: 'w', namespace: ns }, spec: { size: 1 } });
  await eventually('add', () => (log.length >= 1 ? true : undefined));
  await client.patch({ namespace: ns, name: 'w' }, { spec: { size: 2 } });
  await eventually('update', () => (log.length >= 2 ? true : undefined));
  await client.delete({ namespace: ns, name: 'w' });
  await eventually('delete', () => (log.length >= 3 ? true : undefined));
  t.deepEqual(log, ['add w 1', 'update w 1->2', 'delete w']);
});

test('an all-namespaces informer with a label selector sees matching objects of every namespace', async (t) => {
  const [ns1, ns2] = [await testNamespace(t, 'a'), await testNamespace(t, 'b')];
  const client = await widgets();
  const label = unique('run');
  for (const [ns, name, labelled] of [
    [ns1, 'x', true],
    [ns2, 'y', true],
    [ns2, 'z', false],
  ] as const) {
    await client.create({ metadata: { name, namespace: ns, labels: labelled ? { run: label } : {} } });
  }
  const informer = new Informer(kubeConfig(), customResourceSource(client, { labelSelector: `run=${label}` }));
  const queue = new WorkQueue({ name: 'widgets' });
  informer.enqueueTo(queue);
  informer.start();
  t.teardown(() => informer.stop());
  await informer.waitForSync(30_000);
  t.deepEqual(informer.keys().sort(), [`${ns1}/x`, `${ns2}/y`].sort());
  t.is(queue.len(), 2);
  t.deepEqual(
    informer.list(ns2).map((o) => o.metadata.name),
    ['y'],
  );
});

test('a cluster-scoped informer keys objects by name', async (t) => {
  const client = await gadgets();
  const label = unique('run');
  const name = unique('g');
  t.teardown(() => client.delete(name).then(() => undefined));
  const informer = new Informer(kubeConfig(), customResourceSource(client, { labelSelector: `run=${label}` }));
  informer.start();
  t.teardown(() => informer.stop());
  await informer.waitForSync(30_000);
  await client.create({ metadata: { name, labels: { run: label } } });
  const cached = await eventually('the gadget in the cache', () => informer.get(name));
  t.is(cached.kind, GadgetType.kind);
});

test('a Node informer lists raw Node objects (with kind) and follows label changes', async (t) => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const label = unique('pool');
  const name = unique('node');
  await core.createNode({ body: { metadata: { name, labels: { pool: label } } } });
  t.teardown(() => core.deleteNode({ name }).then(() => undefined, () => undefined));
  const informer = new Informer(kc, nodeSource(kc, { labelSelector: `pool=${label}` }));
  informer.start();
  t.teardown(() => informer.stop());
  await informer.waitForSync(30_000);
  const node = informer.get(name);
  t.is(node?.kind, 'Node');
  t.is(typeof node?.metadata?.creationTimestamp, 'string', 'wire JSON, not decoded Dates');
  await core.patchNode(
    { name, body: { metadata: { labels: { pool: label, zone: 'z1' } } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  await eventually('the label in the cache', () => (informer.get(name)?.metadata?.labels?.zone === 'z1' ? true : undefined));
});

test('a watch cut by the server going away is restarted and catches up on what it missed', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const proxy = await CuttableProxy.start(apiServerAddress());
  t.teardown(() => proxy.close());
  const viaProxy = new CustomResourceClient<TestObject>(proxy.kubeConfig(), client.type);
  const informer = new Informer(proxy.kubeConfig(), customResourceSource(viaProxy, { namespace: ns }), {
    restartBackoff: { initialMs: 50, maxMs: 400 },
  });
  const seen = recorder();
  informer.enqueueTo(seen);
  informer.start();
  t.teardown(() => informer.stop());
  await informer.waitForSync(30_000);

  await proxy.cut();
  await eventually('a failed restart while the server is away', () => (informer.restarts() >= 2 ? true : undefined));
  await client.create({ metadata: { name: 'missed', namespace: ns } }); // written while the informer is blind
  t.is(informer.get(`${ns}/missed`), undefined);
  await proxy.restore();

  await eventually('the missed object after the restart', () => informer.get(`${ns}/missed`), 30_000);
  t.deepEqual(seen.keys, [`${ns}/missed`]);
  await client.create({ metadata: { name: 'after', namespace: ns } });
  await eventually('events flow again', () => informer.get(`${ns}/after`));
});

test('restarts back off exponentially up to the cap (fake clock)', async (t) => {
  await installTestCrds();
  // A KubeConfig pointing at a closed port: every list fails at once.
  const proxy = await CuttableProxy.start(apiServerAddress());
  await proxy.cut();
  const clock = new FakeClock(0);
  const client = new CustomResourceClient<TestObject>(proxy.kubeConfig(), GadgetType);
  const informer = new Informer(proxy.kubeConfig(), customResourceSource(client), {
    restartBackoff: { initialMs: 100, maxMs: 800 },
    clock,
  });
  informer.start();
  t.teardown(() => informer.stop());
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    await eventually('the next restart to be scheduled', () => (clock.pending() === 1 ? true : undefined), 10_000, 5);
    const before = clock.now();
    let waited = 0;
    while (informer.restarts() === i) {
      clock.advance(50);
      waited += 50;
    }
    delays.push(clock.now() - before);
    t.true(waited > 0);
  }
  t.deepEqual(delays, [100, 200, 400, 800, 800, 800]);
  t.false(informer.hasSynced());
  const err = await t.throwsAsync(
    (async () => {
      const waiting = informer.waitForSync(1000);
      clock.advance(1000);
      await waiting;
    })(),
  );
  t.regex(err!.message, /did not sync within 1000 ms \(last error: .*ECONNREFUSED/);
});
