// Finalizer add/remove on the real API server (the tests' own Widget resource).
import test from 'ava';
import { ObjectDeletingError, addFinalizer, removeFinalizer } from '../../src/k8s/finalizers.js';
import { testNamespace } from '../support/cluster.js';
import { widgets } from './testcrds.js';

const OURS = 'test.ap.s390x.io/ours';
const THEIRS = 'example.com/theirs';

test('adding a finalizer is idempotent: the second add sends nothing', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const created = await client.create({ metadata: { name: 'w', namespace: ns } });
  const added = await addFinalizer(client, created, OURS);
  t.deepEqual(added.metadata.finalizers, [OURS]);
  const again = await addFinalizer(client, added, OURS);
  t.is(again.metadata.resourceVersion, added.metadata.resourceVersion);
  t.is((await client.get({ namespace: ns, name: 'w' })).metadata.resourceVersion, added.metadata.resourceVersion);
});

test('a stale copy is re-read: another controller’s finalizer added meanwhile is kept', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const stale = await client.create({ metadata: { name: 'w', namespace: ns } });
  await client.patch({ namespace: ns, name: 'w' }, { metadata: { finalizers: [THEIRS] } });
  const added = await addFinalizer(client, stale, OURS);
  t.deepEqual(added.metadata.finalizers, [THEIRS, OURS]);

  await client.patch({ namespace: ns, name: 'w' }, { metadata: { labels: { touched: 'yes' } } });
  const removed = await removeFinalizer(client, added, OURS); // `added` is stale again
  t.deepEqual(removed?.metadata.finalizers, [THEIRS]);
  t.deepEqual((await client.get({ namespace: ns, name: 'w' })).metadata.finalizers, [THEIRS]);
  await removeFinalizer(client, removed!, THEIRS);
});

test('removing the last finalizer of a deleted object lets it go', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const created = await client.create({ metadata: { name: 'w', namespace: ns } });
  const held = await addFinalizer(client, created, OURS);
  await client.delete({ namespace: ns, name: 'w' });
  const deleting = await client.get({ namespace: ns, name: 'w' });
  t.truthy(deleting.metadata.deletionTimestamp, 'the finalizer holds the object');
  await t.throwsAsync(addFinalizer(client, deleting, THEIRS), { instanceOf: ObjectDeletingError });
  await removeFinalizer(client, held, OURS); // stale: re-read after the guard fails
  t.is(await client.find({ namespace: ns, name: 'w' }), undefined);
  t.is(await removeFinalizer(client, deleting, OURS), undefined, 'gone: nothing to do');
});
