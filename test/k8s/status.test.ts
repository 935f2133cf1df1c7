// writeStatus against the real API server, on the tests' own Widget (namespaced) and Gadget
// (cluster-scoped) resources.
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { isNotFound } from '../../src/k8s/client.js';
import { writeStatus } from '../../src/k8s/status.js';
import { testNamespace } from '../support/cluster.js';
import { gadgets, widgets, type TestObject } from './testcrds.js';

const unique = (prefix: string) => `${prefix}-${randomBytes(3).toString('hex')}`;

test('status is written only when it differs from the cached status', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const created = await client.create({ metadata: { name: 'w', namespace: ns }, spec: { size: 1 } });

  const first = await writeStatus(client, created, { phase: 'Ready', size: 1 });
  t.true(first.written);
  t.is(first.writes, 1);
  t.not(first.object.metadata.resourceVersion, created.metadata.resourceVersion);
  t.deepEqual(first.object.status, { phase: 'Ready', size: 1 });

  const again = await writeStatus(client, first.object, { size: 1, phase: 'Ready' });
  t.false(again.written, 'same status (other key order): no write');
  t.is(again.writes, 0);
  const stored = await client.get({ namespace: ns, name: 'w' });
  t.is(stored.metadata.resourceVersion, first.object.metadata.resourceVersion, 'the server saw no write');

  const changed = await writeStatus(client, stored, { phase: 'Ready' });
  t.true(changed.written);
  t.deepEqual((await client.get({ namespace: ns, name: 'w' })).status, { phase: 'Ready' }, 'dropped field removed');
});

test('status writes leave the spec alone (status subresource)', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const created = await client.create({ metadata: { name: 'w', namespace: ns }, spec: { size: 3 } });
  await writeStatus(client, created, { phase: 'Ready' });
  const stored = await client.get({ namespace: ns, name: 'w' });
  t.deepEqual(stored.spec, { size: 3 });
  t.is(stored.metadata.generation, created.metadata.generation, 'a status write does not bump generation');
});

test('a stale cached copy conflicts (409), is re-read, and the result is exactly the desired status', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const created = await client.create({ metadata: { name: 'w', namespace: ns }, spec: {} });
  const stale = (await writeStatus(client, created, { phase: 'Pending' })).object;
  // Another writer changes the status after our copy was cached.
  await client.patchStatus({ namespace: ns, name: 'w' }, { status: { phase: 'Pending', foreign: 'x' } });

  const result = await writeStatus(client, stale, { phase: 'Ready' });
  t.true(result.written);
  t.is(result.writes, 2, 'the first patch conflicted, the second went through');
  t.deepEqual((await client.get({ namespace: ns, name: 'w' })).status, { phase: 'Ready' }, 'foreign field removed');
});

test('after a conflict a desired-status function is recomputed from the fresh object', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const stale = await client.create({ metadata: { name: 'w', namespace: ns }, spec: { size: 1 } });
  await client.patch({ namespace: ns, name: 'w' }, { spec: { size: 7 } });
  const seen: unknown[] = [];
  const result = await writeStatus(client, stale, (fresh) => {
    seen.push(fresh.spec?.size);
    return { observedSize: fresh.spec?.size };
  });
  t.deepEqual(seen, [1, 7]);
  t.deepEqual(result.object.status, { observedSize: 7 });
});

test('concurrent writers each adding their own field lose no update', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const stale = await client.create({ metadata: { name: 'w', namespace: ns }, spec: {} });
  const writers = ['a', 'b', 'c', 'd'];
  const results = await Promise.all(
    writers.map((w) =>
      writeStatus(client, stale, (fresh) => ({ ...(fresh.status ?? {}), [w]: true }), { attempts: 12 }),
    ),
  );
  t.deepEqual((await client.get({ namespace: ns, name: 'w' })).status, { a: true, b: true, c: true, d: true });
  t.true(
    results.reduce((n, r) => n + r.writes, 0) > writers.length,
    'at least one writer conflicted and retried',
  );
});

test('cluster-scoped objects: written once, then left alone', async (t) => {
  const client = await gadgets();
  const name = unique('g');
  t.teardown(() => client.delete(name).then(() => undefined));
  const created = await client.create({ metadata: { name }, spec: {} });
  const first = await writeStatus(client, created, { heartbeat: 1 });
  t.true(first.written);
  const second = await writeStatus(client, first.object, { heartbeat: 1 });
  t.false(second.written);
  t.deepEqual((await client.get(name)).status, { heartbeat: 1 });
});

test('a missing object is reported as not found', async (t) => {
  const ns = await testNamespace(t);
  const client = await widgets();
  const ghost: TestObject = { metadata: { name: 'ghost', namespace: ns, resourceVersion: '1' } };
  const err = await t.throwsAsync(writeStatus(client, ghost, { phase: 'Ready' }));
  t.true(isNotFound(err));
});
