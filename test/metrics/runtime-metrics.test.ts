// The metrics of a real controller and a real agent (against the real API server), scraped
// over HTTP while a reservation waits for host requests to drain, becomes Ready and is released.
import test from 'ava';
import { API_VERSION } from '../../src/api/types.js';
import { parseApqn } from '../../src/apbus/ids.js';
import { ApBusModel, ManualClock } from '../../src/apbus/model/index.js';
import { topologyFromObject } from '../../src/apbus/topology.js';
import { startAgent } from '../../src/commands/agent.js';
import { startController } from '../../src/commands/controller.js';
import { operatorClients } from '../../src/k8s/client.js';
import { logger } from '../../src/log.js';
import { serveMetrics } from '../../src/metrics/server.js';
import { eventually, kubeConfig, testNamespace } from '../support/cluster.js';

/** One sample's value from a scrape (the exact series), or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

test('drains waiting, queues by driver, reconciles and reservations by condition follow a reservation', async (t) => {
  const ns = await testNamespace(t, 'metrics');
  const node = `${ns}-n`;
  const kc = kubeConfig();
  const clients = operatorClients(kc);
  const log = logger('metrics-test', { test: ns });
  const controller = await startController({ kubeConfig: kc, scope: { namespace: ns, nodes: (n) => n === node }, log });
  t.teardown(() => controller.stop());
  const clock = new ManualClock();
  const topology = topologyFromObject({
    nodes: [{ name: node, cards: [{ id: '05', type: 'CEX8C', domains: '0000-0003' }, { id: '06', type: 'CEX8C', domains: '0000-0003' }] }],
  });
  const model = ApBusModel.fromTopology(topology.nodes[0]!, { clock });
  model.addHostLoad(parseApqn('05.0001'), 2, 60); // drains when the test moves the clock
  const agent = await startAgent({ kubeConfig: kc, nodeName: node, model, rescanMs: 200, log });
  t.teardown(async () => {
    await agent.stop();
    await clients.nodeStates.delete(node).catch(() => undefined);
  });
  const server = await serveMetrics(0, { controller: controller.controller, agents: [agent.runtime] }, undefined, '127.0.0.1');
  t.teardown(() => server.close());
  const scrape = async () => (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  const until = (what: string, ok: (text: string) => boolean) =>
    eventually(what, async () => {
      const text = await scrape();
      return ok(text) ? text : undefined;
    });
  await agent.ready();
  await until('readyz', () => true);
  t.is((await fetch(`http://127.0.0.1:${server.port}/readyz`)).status, 200);

  await clients.reservations.create({
    apiVersion: API_VERSION,
    kind: 'APQNReservation',
    metadata: { name: 'vm', namespace: ns },
    spec: { nodeName: node, apqns: ['05.0001', '06.0001'] },
  });
  const waiting = await until('a drain waiting', (text) => sample(text, `apqn_agent_drains_waiting{node="${node}"}`) === 1);
  t.is(sample(waiting, `apqn_agent_queues{node="${node}",driver="cex4queue",state="busy"}`), 1, '05.0001 still has host requests');
  t.is(sample(waiting, `apqn_reservations{condition="Ready",status="True"}`), 0);

  model.tick(60); // the host's requests complete
  const ready = await until('Ready', (text) => sample(text, `apqn_reservations{condition="Ready",status="True"}`) === 1);
  t.is(sample(ready, `apqn_agent_drains_waiting{node="${node}"}`), 0);
  t.is(sample(ready, `apqn_agent_queues{node="${node}",driver="vfio_ap",state="assigned"}`), 2);
  t.is(sample(ready, `apqn_agent_mdevs{node="${node}",owned="true"}`), 1);
  t.true(sample(ready, 'apqn_controller_reconcile_total{controller="reservations"}')! >= 2);
  t.true(sample(ready, 'apqn_controller_reconcile_duration_seconds_count{controller="reservations"}')! >= 2, 'the histogram is fed');
  t.is(sample(ready, 'apqn_controller_reconcile_errors_total{controller="reservations"}'), 0);
  t.true(sample(ready, `apqn_agent_sysfs_steps_total{node="${node}"}`)! > 0);

  await clients.reservations.delete({ namespace: ns, name: 'vm' });
  const released = await until('released', (text) => sample(text, `apqn_agent_mdevs{node="${node}",owned="true"}`) === 0);
  t.is(sample(released, `apqn_agent_queues{node="${node}",driver="vfio_ap",state="assigned"}`), undefined);
});
