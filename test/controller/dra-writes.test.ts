// How the DRA side writes ResourceSlices, against the real API server: a burst of reservations
// becoming Ready on one node is published in a few coalesced writes under one pool generation
// (not one whole-pool rewrite per reservation), and a delete carries a precondition, so a slice
// recreated or changed by someone else meanwhile is not deleted.
import test from 'ava';
import { DRA_DRIVER, RESOURCE_API_VERSION, resourceSliceName, type ResourceSlice } from '../../src/api/dra.js';
import { reconcileNodeSlices, type SlicePublisherContext } from '../../src/controller/dra-publish.js';
import { PublishWindow } from '../../src/controller/dra-window.js';
import { operatorClients } from '../../src/k8s/client.js';
import { logger } from '../../src/log.js';
import { eventually, kubeConfig, testNamespace } from '../support/cluster.js';
import { placedReservation, publishedDevices, readyCondition, sliceClient, slicesOfNode, startDra, windowOver } from './dra-support.js';

const clients = () => operatorClients(kubeConfig());

const WINDOW_MS = 300;

test('a burst of reservations becoming Ready on one node: a few coalesced writes, one generation', async (t) => {
  const ns = await testNamespace(t, 'dra');
  const node = `${ns}-burst`;
  const count = 40;
  const names = Array.from({ length: count }, (_, i) => `vm-${String(i).padStart(2, '0')}`);
  const writes: string[] = [];
  const prefix = resourceSliceName(node, 0).replace(/0$/, '');
  const dra = await startDra(t, ns, {
    publishWindowMs: WINDOW_MS,
    onSliceWrite: (op, name) => {
      if (name.startsWith(prefix)) writes.push(`${op} ${name}`);
    },
  });
  for (let i = 0; i < names.length; i += 10) await Promise.all(names.slice(i, i + 10).map((n) => placedReservation(ns, n, node, 'False')));
  t.deepEqual(writes, [], 'reservations that are not Ready publish nothing');

  // One after another, as the agent gets to them.
  const started = Date.now();
  for (const name of names) await clients().reservations.patchStatus({ namespace: ns, name }, { status: { conditions: [readyCondition('True')] } });
  await eventually(`${count} devices published`, async () => ((await publishedDevices(node)).length === count ? true : undefined), 60_000);
  const elapsed = Date.now() - started;

  // Settled: once the window of the last write is over, another look at the node writes nothing.
  const settled = writes.length;
  await windowOver(WINDOW_MS);
  const syncs = dra.stats.syncs.nodes;
  // (a label on the slice: no device changes, but the node is looked at again)
  await sliceClient().patch(resourceSliceName(node, 0), { metadata: { labels: { touched: 'yes' } } });
  await eventually('another sync of the node', () => (dra.stats.syncs.nodes > syncs ? true : undefined));
  t.is(writes.length, settled, writes.join('\n'));

  t.log(`${count} reservations Ready within ${elapsed} ms: ${writes.length} slice writes (${writes.join(', ')})`);
  // One write per window at most (the leading one at once), and never a delete.
  t.true(writes.length <= 1 + Math.ceil(elapsed / WINDOW_MS), `${writes.length} writes in ${elapsed} ms`);
  t.true(writes.every((w) => !w.startsWith('delete')), writes.join('\n'));
  const slices = await slicesOfNode(node);
  t.is(slices.length, 1);
  t.deepEqual(slices[0]!.spec.pool, { name: node, generation: 1, resourceSliceCount: 1 }, 'devices only came: the generation stays');
});

/** A one-device slice of `node`'s pool, as someone (the controller, or another writer) stores it. */
function oneDeviceSlice(node: string, device: string): ResourceSlice {
  return {
    apiVersion: RESOURCE_API_VERSION,
    kind: 'ResourceSlice',
    metadata: { name: resourceSliceName(node, 0) },
    spec: { driver: DRA_DRIVER, pool: { name: node, generation: 1, resourceSliceCount: 1 }, nodeName: node, devices: [{ name: device }] },
  };
}

/** The publisher of one node with no devices to publish, reading `cached` as its view of the slices. */
function publisherWithCache(ns: string, cached: ResourceSlice[], writes: string[]): SlicePublisherContext {
  return {
    reservationsOf: () => [],
    nodeStates: { get: () => undefined },
    nodes: { get: () => undefined },
    slicesOf: () => cached,
    sliceClient: sliceClient(),
    window: new PublishWindow(0),
    scope: {},
    log: logger('controller-dra', { test: ns }),
    onWrite: (op, name) => writes.push(`${op} ${name}`),
  };
}

test('a slice delete carries a precondition: a slice recreated or changed meanwhile is not deleted', async (t) => {
  const ns = await testNamespace(t, 'dra');
  const node = `${ns}-pre`;
  const name = resourceSliceName(node, 0);
  t.teardown(() => sliceClient().delete(name).then(() => undefined, () => undefined));
  const stale = await sliceClient().create(oneDeviceSlice(node, 'old-device'));
  // Someone else deletes it and creates a slice of the same name, before the cache hears of it.
  await sliceClient().delete(name);
  const recreated = await sliceClient().create(oneDeviceSlice(node, 'new-device'));
  t.not(recreated.metadata?.uid, stale.metadata?.uid);

  const writes: string[] = [];
  const result = await reconcileNodeSlices(node, publisherWithCache(ns, [stale], writes));
  t.truthy(result && result.requeueAfterMs > 0, 'the lost race is retried from the cache');
  t.deepEqual(writes, []);
  t.is((await sliceClient().get(name)).metadata?.uid, recreated.metadata?.uid, 'the recreated slice is still there');

  // Same uid, but changed since the cached copy (another resourceVersion): not deleted either.
  const changed = await sliceClient().patch(name, { metadata: { labels: { changed: 'yes' } } });
  t.truthy(await reconcileNodeSlices(node, publisherWithCache(ns, [recreated], writes)));
  t.deepEqual(writes, []);
  t.is((await sliceClient().get(name)).metadata?.resourceVersion, changed.metadata?.resourceVersion);

  // With a cache that is current, the slice the pool no longer has is deleted.
  t.is(await reconcileNodeSlices(node, publisherWithCache(ns, [changed], writes)), undefined);
  t.deepEqual(writes, [`delete ${name}`]);
  t.is(await sliceClient().find(name), undefined);
});
