// The controller with the REAL agent (src/commands/agent.ts) on the simulated AP bus model:
// the controller↔agent contract end to end, through the real API server.
import test from 'ava';
import { ApBusModel, SystemClock } from '../../src/apbus/model/index.js';
import { topologyFromObject } from '../../src/apbus/topology.js';
import { startAgent } from '../../src/commands/agent.js';
import { kubeConfig } from '../support/cluster.js';
import { condition, harness, type Harness, waitUntil, watchReservationWrites } from './runtime-support.js';

function model(name: string, kernel: '6.10' | '6.19'): ApBusModel {
  const topology = topologyFromObject({
    nodes: [
      {
        name,
        kernel,
        maxDomainId: 84,
        cards: [
          { id: '05', type: 'CEX8C', domains: '0000-000f' },
          { id: '06', type: 'CEX7C', domains: '0000-000f' },
          { id: '07', type: 'CEX8P', domains: '0000-000f' },
        ],
      },
    ],
  });
  return ApBusModel.fromTopology(topology.nodes[0]!, { clock: new SystemClock() });
}

async function realAgent(t: Parameters<typeof harness>[0], h: Harness, suffix: string, m: ApBusModel) {
  const agent = await startAgent({ kubeConfig: kubeConfig(), nodeName: h.node(suffix), model: m, rescanMs: 300, heartbeatMs: 1_000 });
  t.teardown(async () => {
    await agent.stop();
    await h.clients.nodeStates.delete(h.node(suffix));
  });
  await agent.ready();
  return agent;
}

test('real agent, mask mode: Draining while host requests finish, then Ready; deletion restores the masks', async (t) => {
  const h = await harness(t);
  const m = model(h.node('a'), '6.10');
  await realAgent(t, h, 'a', m);
  await h.controller();
  // Host programs have 3 requests in flight on 05.0004, finishing 6 s from now.
  m.addHostLoad({ adapter: 5, domain: 4 }, 3, 6);
  await h.reserve('vm', { nodeName: h.node('a'), apqns: ['05.0004', '06.0004'], drainTimeoutSeconds: 60 });

  const draining = await h.waitFor('vm', 'Bound', 'False', 'Draining');
  t.regex(condition(draining, 'Bound')!.message, /05\.0004/);
  const r = await h.waitFor('vm', 'Ready', 'True');
  t.deepEqual(r.status?.displacedQueues, ['07.0004']);
  t.false(m.aqmask.has(4), 'domain 0004 left the host');
  t.true(m.apmask.has(5) && m.apmask.has(6));
  t.is(m.queueDriver(5, 4), 'vfio_ap');
  t.is(m.queueDriver(7, 4), 'vfio_ap', 'the displaced queue moved with it');
  const mdev = m.mdevs.get(r.status!.mdevUUID!);
  t.truthy(mdev, 'the agent created the mdev the controller named');

  await h.clients.reservations.delete({ namespace: h.ns, name: 'vm' });
  await waitUntil('the reservation to be gone', async () => ((await h.reservation('vm')) ? undefined : true), 60_000);
  t.true(m.aqmask.has(4), 'domain 0004 is back on the host');
  t.is(m.queueDriver(5, 4), 'cex4queue');
  t.falsy(m.mdevs.get(r.status!.mdevUUID!), 'mdev removed');
});

test('real agent, driver_override (6.19): queues move one by one and come back on release', async (t) => {
  const h = await harness(t);
  const m = model(h.node('b'), '6.19');
  await realAgent(t, h, 'b', m);
  await h.controller();
  await h.reserve('vm', { nodeName: h.node('b'), apqns: ['05.0004', '06.0004'] });

  const r = await h.waitFor('vm', 'Ready', 'True');
  t.is(r.status?.displacedQueues, undefined, 'no mask plan, nothing displaced');
  const state = await h.clients.nodeStates.get(h.node('b'));
  t.is(state.spec.bindingMode, 'DriverOverride');
  t.deepEqual(state.spec.overrides, [
    { apqn: '05.0004', driver: 'vfio_ap' },
    { apqn: '06.0004', driver: 'vfio_ap' },
  ]);
  t.is(m.queueDriver(5, 4), 'vfio_ap');
  t.is(m.queueDriver(7, 4), 'cex4queue', 'its neighbour stays on the host');
  t.true(m.aqmask.has(4) && m.apmask.has(5));

  await h.clients.reservations.delete({ namespace: h.ns, name: 'vm' });
  await waitUntil('the reservation to be gone', async () => ((await h.reservation('vm')) ? undefined : true), 60_000);
  t.is(m.queueDriver(5, 4), 'cex4queue');
  t.is(m.queueDriver(6, 4), 'cex4queue');
});

test('real agent, inUsePolicy Force, nothing displaced: the reservation is written twice in all — its finalizer, then its status once, Ready', async (t) => {
  const h = await harness(t);
  const m = model(h.node('a'), '6.10');
  await realAgent(t, h, 'a', m);
  await h.controller();
  const seen = await watchReservationWrites(t, h);
  // Domain 0004 on every card: clearing its aqmask bit moves exactly these queues.
  await h.reserve('forced', { nodeName: h.node('a'), apqns: ['05.0004', '06.0004', '07.0004'], inUsePolicy: 'Force' });
  await h.waitFor('forced', 'Ready', 'True');
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  t.deepEqual(
    seen.map((s) => s.ready),
    ['no status', 'True'],
    `every write after the create: ${JSON.stringify(seen.map((s) => s.status), null, 1)}`,
  );
});
