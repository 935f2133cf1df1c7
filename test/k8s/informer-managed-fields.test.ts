// Informer caches hold no metadata.managedFields (controller memory), whether an object came
// from the initial list or from a watch event, while the server still records them.
import { randomBytes } from 'node:crypto';
import test from 'ava';
import * as k8s from '@kubernetes/client-node';
import { Informer, customResourceSource, nodeSource, withoutManagedFields } from '../../src/k8s/informer.js';
import { eventually, kubeConfig, testNamespace } from '../support/cluster.js';
import { widgets } from './testcrds.js';

const managedFieldsOf = (obj: unknown) => (obj as { metadata?: { managedFields?: unknown } } | undefined)?.metadata?.managedFields;

test('withoutManagedFields drops only managedFields and tolerates objects without metadata', (t) => {
  const obj = { metadata: { name: 'a', labels: { x: 'y' }, managedFields: [{ manager: 'm' }] }, spec: { size: 1 } };
  t.is(withoutManagedFields(obj), obj);
  t.deepEqual(obj, { metadata: { name: 'a', labels: { x: 'y' } }, spec: { size: 1 } });
  t.deepEqual(withoutManagedFields({ kind: 'Status' }), { kind: 'Status' });
  t.is(withoutManagedFields(null), null);
});

test('listed and watched custom objects are cached without managedFields; the server keeps them', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  await client.create({ metadata: { name: 'listed', namespace: ns }, spec: { size: 1 } });
  t.truthy(managedFieldsOf(await client.get({ namespace: ns, name: 'listed' })), 'the server records managedFields');

  const informer = new Informer(kubeConfig(), customResourceSource(client, { namespace: ns }));
  const handed: unknown[] = [];
  informer.on({ add: (o) => handed.push(o), update: (old, o) => handed.push(old, o), delete: (o) => handed.push(o) });
  informer.start();
  t.teardown(() => informer.stop());
  await informer.waitForSync(30_000);
  t.truthy(informer.get(`${ns}/listed`));
  t.is(managedFieldsOf(informer.get(`${ns}/listed`)), undefined, 'from the list');

  await client.create({ metadata: { name: 'watched', namespace: ns }, spec: { size: 2 } });
  await client.patch({ namespace: ns, name: 'listed' }, { spec: { size: 3 } });
  await client.patchStatus({ namespace: ns, name: 'listed' }, { status: { phase: 'Seen' } });
  await eventually('the watch events in the cache', () =>
    informer.get(`${ns}/watched`) && informer.get(`${ns}/listed`)?.status?.phase === 'Seen' ? true : undefined,
  );
  await client.delete({ namespace: ns, name: 'watched' });
  await eventually('the deletion in the cache', () => (informer.get(`${ns}/watched`) ? undefined : true));

  for (const obj of informer.list()) t.is(managedFieldsOf(obj), undefined, `cached ${obj.metadata.name}`);
  t.true(handed.length >= 5, 'handlers saw the add, updates and delete');
  for (const obj of handed) t.is(managedFieldsOf(obj), undefined, 'handed to a handler');
});

test('core Nodes listed as raw JSON are cached without managedFields too', async (t) => {
  const kc = kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const label = `mf-${randomBytes(3).toString('hex')}`;
  const name = `${label}-node`;
  await core.createNode({ body: { metadata: { name, labels: { pool: label } } } });
  t.teardown(() => core.deleteNode({ name }).then(() => undefined, () => undefined));
  t.truthy((await core.readNode({ name })).metadata?.managedFields?.length, 'the server records managedFields');

  const informer = new Informer(kc, nodeSource(kc, { labelSelector: `pool=${label}` }));
  informer.start();
  t.teardown(() => informer.stop());
  await informer.waitForSync(30_000);
  t.truthy(informer.get(name));
  t.is(managedFieldsOf(informer.get(name)), undefined, 'from the list');

  await core.patchNode({ name, body: [{ op: 'add', path: '/metadata/labels/seen', value: 'yes' }] });
  await eventually('the label in the cache', () => (informer.get(name)?.metadata?.labels?.seen === 'yes' ? true : undefined));
  t.is(managedFieldsOf(informer.get(name)), undefined, 'from a watch event');
});
