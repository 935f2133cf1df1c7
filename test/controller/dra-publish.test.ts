// The DRA side of the controller against the real API server: the DeviceClass from deploy/ and
// the published ResourceSlices are accepted, and slices follow reservations (Ready → device;
// not Ready or deleted → gone; more than 128 → several slices of one pool generation; a
// kubelet-style wipe is healed). Reservation statuses are written by the test here, standing
// in for the main controller, so that each case controls exactly when a reservation is Ready.
import test from 'ava';
import { DEVICE_CLASS, DRA_DRIVER, draDeviceName } from '../../src/api/dra.js';
import type { Condition } from '../../src/api/types.js';
import { operatorClients } from '../../src/k8s/client.js';
import { eventually, kubeConfig, testNamespace } from '../support/cluster.js';
import { applyDeviceClassFromDeploy, placedReservation, publishedDevices, readyCondition, sliceClient, slicesOfNode, startDra, windowOver } from './dra-support.js';

const clients = () => operatorClients(kubeConfig());

async function setReady(ns: string, name: string, status: Condition['status']): Promise<void> {
  await clients().reservations.patchStatus({ namespace: ns, name }, { status: { conditions: [readyCondition(status)] } });
}

const deviceNames = async (node: string) => (await publishedDevices(node)).map((d) => d.name).sort();

test('the DeviceClass rendered from deploy/ is accepted by the API server', (t) => {
  const stored = applyDeviceClassFromDeploy();
  t.is(stored.name, DEVICE_CLASS);
  t.deepEqual(stored.selectors, [{ cel: { expression: `device.driver == "${DRA_DRIVER}"` } }]);
});

test('slices follow a reservation: Ready → device; not Ready → gone; Ready again → back; deleted → gone', async (t) => {
  const ns = await testNamespace(t, 'dra');
  const node = `${ns}-a`;
  const writes: string[] = [];
  const dra = await startDra(t, ns, { onSliceWrite: (op, name) => writes.push(`${op} ${name}`) });
  const r = await placedReservation(ns, 'vm1', node);
  const device = draDeviceName(`${ns}/vm1`, r.status!.mdevUUID!);

  await eventually('the device is published', async () => ((await deviceNames(node)).includes(device) ? true : undefined));
  const [slice] = await slicesOfNode(node);
  t.is(slice!.spec.driver, DRA_DRIVER);
  t.is(slice!.spec.nodeName, node);
  t.deepEqual(slice!.spec.pool, { name: node, generation: 1, resourceSliceCount: 1 });
  const attrs = slice!.spec.devices[0]!.attributes!;
  t.is(attrs.reservation?.string, `${ns}/vm1`);
  t.is(attrs.mdevUUID?.string, r.status!.mdevUUID);
  t.is(attrs.node?.string, node);
  t.is(attrs.adapters?.int, 1);

  // Stable: an unrelated annotation writes nothing (it does not even reach the node queue), and
  // neither does another look at the node (a label on its slice, which the publisher ignores).
  const writesBefore = writes.length;
  await windowOver(); // a look within the window of the last write would only be deferred
  const syncsBefore = dra.stats.syncs.nodes;
  await clients().reservations.patch({ namespace: ns, name: 'vm1' }, { metadata: { annotations: { touched: 'yes' } } });
  await sliceClient().patch(slice!.metadata!.name!, { metadata: { labels: { touched: 'yes' } } });
  await eventually('another sync of the node', () => (dra.stats.syncs.nodes > syncsBefore ? true : undefined));
  t.is(writes.length, writesBefore, writes.join('\n'));

  await setReady(ns, 'vm1', 'False');
  await eventually('the device is withdrawn', async () => ((await slicesOfNode(node)).length === 0 ? true : undefined));

  await setReady(ns, 'vm1', 'True');
  await eventually('the device is back', async () => ((await deviceNames(node)).includes(device) ? true : undefined));

  await clients().reservations.delete({ namespace: ns, name: 'vm1' });
  await eventually('the device is gone with the reservation', async () => ((await slicesOfNode(node)).length === 0 ? true : undefined));
});

test('a kubelet-style wipe of the node slices is healed', async (t) => {
  const ns = await testNamespace(t, 'dra');
  const node = `${ns}-a`;
  await startDra(t, ns);
  const r = await placedReservation(ns, 'vm1', node);
  const device = draDeviceName(`${ns}/vm1`, r.status!.mdevUUID!);
  await eventually('the device is published', async () => ((await deviceNames(node)).includes(device) ? true : undefined));
  // What kubelet does at start-up: delete every slice of the node (DeleteCollection by field selector).
  for (const s of await slicesOfNode(node)) await sliceClient().delete(s.metadata!.name!);
  await eventually('the device is published again', async () => ((await deviceNames(node)).includes(device) ? true : undefined));
  t.deepEqual(await deviceNames(node), [device]);
});

test('more than 128 devices: one pool in several slices of one generation; shrinking deletes the extra slice', async (t) => {
  const ns = await testNamespace(t, 'dra');
  const node = `${ns}-big`;
  const other = `${ns}-other`;
  const count = 131;
  // Created while the DRA side is not running, so the first publication has them all.
  const names = Array.from({ length: count }, (_, i) => `vm-${String(i).padStart(3, '0')}`);
  for (let i = 0; i < names.length; i += 16) {
    await Promise.all(names.slice(i, i + 16).map((n) => placedReservation(ns, n, node)));
  }
  await placedReservation(ns, 'elsewhere', other);
  await startDra(t, ns);

  const full = await eventually(
    `${count} devices published`,
    async () => {
      const slices = await slicesOfNode(node);
      const devices = slices.reduce((n, s) => n + s.spec.devices.length, 0);
      return devices === count && slices.length === 2 ? slices : undefined;
    },
    60_000,
  );
  t.deepEqual(
    full.map((s) => s.spec.devices.length).sort((a, b) => b - a),
    [128, 3],
  );
  const generation = full[0]!.spec.pool.generation;
  for (const s of full) t.deepEqual(s.spec.pool, { name: node, generation, resourceSliceCount: 2 });
  t.is(new Set(full.flatMap((s) => s.spec.devices.map((d) => d.name))).size, count);
  t.deepEqual(await deviceNames(other), [draDeviceName(`${ns}/elsewhere`, (await clients().reservations.get({ namespace: ns, name: 'elsewhere' })).status!.mdevUUID!)]);

  for (const n of names.slice(0, 4)) await clients().reservations.delete({ namespace: ns, name: n });
  const shrunk = await eventually('127 devices in one slice', async () => {
    const slices = await slicesOfNode(node);
    return slices.length === 1 && slices[0]!.spec.devices.length === count - 4 ? slices : undefined;
  });
  t.true(shrunk[0]!.spec.pool.generation > generation);
  t.is(shrunk[0]!.spec.pool.resourceSliceCount, 1);
});
