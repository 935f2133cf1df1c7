// The metric modules over stand-in sources: what a scrape shows, and the probes' answers.
import test from 'ava';
import { Registry } from 'prom-client';
import type { APQNReservation, NodeStateStatus, QueueStatus } from '../../src/api/types.js';
import { queueState, queuesByDriverAndState, registerAgentMetrics, type AgentMetricsSource } from '../../src/metrics/agent.js';
import { registerControllerMetrics, reservationsByCondition, type ControllerMetricsSource } from '../../src/metrics/controller.js';
import { serveMetrics, type ProbedAgent, type ProbedController } from '../../src/metrics/server.js';
import { range } from '../controller/fixtures.js';
import { state } from '../controller/view-fixtures.js';

const q = (over: Partial<QueueStatus>): QueueStatus => ({ apqn: '05.0004', driver: 'cex4queue', online: true, requestsInFlight: 0, requestCount: 0, ...over });

const queueStates: Array<[string, QueueStatus, string]> = [
  ['an idle host queue', q({}), 'idle'],
  ['a host queue with requests in flight', q({ requestsInFlight: 3 }), 'busy'],
  ['a vfio_ap queue in an mdev', q({ driver: 'vfio_ap', vfioStatus: 'assigned' }), 'assigned'],
  ['a vfio_ap queue a guest uses ("in use" has a space in sysfs)', q({ driver: 'vfio_ap', vfioStatus: 'in use' }), 'in_use'],
  ['a vfio_ap queue in no mdev', q({ driver: 'vfio_ap', vfioStatus: 'unassigned' }), 'unassigned'],
  ['an offline queue', q({ online: false }), 'offline'],
  ['a deconfigured queue', q({ config: false }), 'offline'],
  ['a checkstopped queue (even if online)', q({ chkstop: true }), 'checkstop'],
];
for (const [why, queue, state] of queueStates) {
  test(`queue state: ${why} is ${state}`, (t) => t.is(queueState(queue), state));
}

test('queues are counted per driver and state; an unbound queue has driver none', (t) => {
  const status: NodeStateStatus = {
    queues: [q({}), q({ requestsInFlight: 1 }), q({}), q({ driver: 'vfio_ap', vfioStatus: 'assigned' }), q({ driver: '' })],
  };
  t.deepEqual(Object.fromEntries(queuesByDriverAndState(status)), {
    'cex4queue/idle': 2,
    'cex4queue/busy': 1,
    'vfio_ap/assigned': 1,
    'none/idle': 1,
  });
});

const reservation = (conditions: Array<[string, 'True' | 'False' | 'Unknown']>): APQNReservation => ({
  apiVersion: 'ap.s390x.io/v1alpha1',
  kind: 'APQNReservation',
  metadata: { name: 'r', namespace: 'n' },
  spec: {},
  status: { conditions: conditions.map(([type, status]) => ({ type, status, reason: 'R', message: '', lastTransitionTime: '' })) },
});

test('reservations by condition: each reservation once per condition type, a missing condition as Unknown', (t) => {
  const counts = reservationsByCondition([
    reservation([['Accepted', 'True'], ['Ready', 'True']]),
    reservation([['Accepted', 'False']]),
    reservation([]),
  ]);
  t.is(counts.get('Accepted/True'), 1);
  t.is(counts.get('Accepted/False'), 1);
  t.is(counts.get('Accepted/Unknown'), 1);
  t.is(counts.get('Ready/True'), 1);
  t.is(counts.get('Ready/Unknown'), 2);
  t.is(counts.get('Conflict/True'), 0, 'every pair is present, zeros too');
  for (const type of ['Accepted', 'Scheduled', 'Conflict', 'Bound', 'Ready']) {
    t.is(['True', 'False', 'Unknown'].reduce((n, s) => n + counts.get(`${type}/${s}`)!, 0), 3, type);
  }
});

function fakeAgent(node: string, status: NodeStateStatus, over: Partial<ProbedAgent> = {}): ProbedAgent {
  return {
    nodeName: node,
    lastStatus: () => status,
    stats: () => ({ passes: 7, steps: 3, passErrors: 1, synced: true, status: { writes: 5, heartbeats: 2, conflicts: 1, failures: 0 } }),
    isHealthy: () => true,
    isReady: () => true,
    ...over,
  };
}

const drainingStatus: NodeStateStatus = {
  queues: [q({ apqn: '05.0004', requestsInFlight: 2 }), q({ apqn: '06.0004', driver: 'vfio_ap', vfioStatus: 'assigned' })],
  mdevs: [{ uuid: 'u', matrix: [], guestMatrix: [], controlDomains: [], owned: true }],
  reservations: [
    {
      reservation: 'ns/a',
      phase: 'Draining',
      reason: 'Draining',
      message: '',
      queues: [
        { apqn: '05.0004', requestsInFlight: 2, requestCount: 9, state: 'Draining' },
        { apqn: '06.0004', requestsInFlight: 0, requestCount: 0, state: 'Assigned' },
      ],
    },
  ],
};

test('agent metrics: queues by driver and state, reservation queues, drains waiting, counters per node', async (t) => {
  const registry = new Registry();
  const agents: AgentMetricsSource[] = [fakeAgent('node-a', drainingStatus), fakeAgent('node-b', { queues: [q({})] })];
  registerAgentMetrics(registry, () => agents);
  const text = await registry.metrics();
  for (const line of [
    'apqn_agent_queues{node="node-a",driver="cex4queue",state="busy"} 1',
    'apqn_agent_queues{node="node-a",driver="vfio_ap",state="assigned"} 1',
    'apqn_agent_queues{node="node-b",driver="cex4queue",state="idle"} 1',
    'apqn_agent_reservation_queues{node="node-a",state="Draining"} 1',
    'apqn_agent_drains_waiting{node="node-a"} 1',
    'apqn_agent_drains_waiting{node="node-b"} 0',
    'apqn_agent_mdevs{node="node-a",owned="true"} 1',
    '# TYPE apqn_agent_passes_total counter',
    'apqn_agent_passes_total{node="node-a"} 7',
    'apqn_agent_pass_errors_total{node="node-b"} 1',
    'apqn_agent_status_writes_total{node="node-a",kind="change"} 3',
    'apqn_agent_status_writes_total{node="node-a",kind="heartbeat"} 2',
    'apqn_agent_status_write_failures_total{node="node-a",kind="conflict"} 1',
    'apqn_agent_synced{node="node-a"} 1',
  ]) {
    t.true(text.split('\n').includes(line), `${line}\n--- in ---\n${text}`);
  }
  // A queue that left a state leaves no stale series behind.
  agents[0] = fakeAgent('node-a', { queues: [q({})] });
  const after = await registry.metrics();
  t.false(after.includes('state="busy"'), after);
});

function fakeController(over: Partial<ControllerMetricsSource> = {}): ProbedController {
  const synced = { hasSynced: () => true };
  return {
    stats: { syncs: { reservations: 4, nodes: 2, claims: 0 }, failures: { reservations: 1, nodes: 0, claims: 0 } },
    isLeading: () => true,
    queueDepths: () => ({ reservations: { depth: 3, delayed: 1 }, nodes: { depth: 0, delayed: 0 }, claims: { depth: 0, delayed: 2 } }),
    onSync: undefined,
    caches: {
      reservations: { list: () => [reservation([['Ready', 'True']])], ...synced },
      claims: { list: () => [], ...synced },
      nodeStates: { list: () => [{}, {}], ...synced },
      nodes: synced,
    },
    ...over,
  } as ProbedController;
}

test('controller metrics: reconciles, errors and durations per controller, queue depth, reservations by condition', async (t) => {
  const registry = new Registry();
  const controller = fakeController();
  registerControllerMetrics(registry, controller);
  controller.onSync!('reservations', 0.003, false);
  controller.onSync!('reservations', 0.2, true);
  const text = await registry.metrics();
  for (const line of [
    '# TYPE apqn_controller_reconcile_total counter',
    'apqn_controller_reconcile_total{controller="reservations"} 4',
    'apqn_controller_reconcile_total{controller="claims"} 0',
    'apqn_controller_reconcile_errors_total{controller="reservations"} 1',
    'apqn_controller_reconcile_duration_seconds_count{controller="reservations"} 2',
    'apqn_controller_reconcile_duration_seconds_bucket{le="0.005",controller="reservations"} 1',
    'apqn_controller_workqueue_depth{queue="reservations"} 3',
    'apqn_controller_workqueue_delayed{queue="claims"} 2',
    'apqn_controller_leading 1',
    'apqn_controller_cached_objects{resource="apnodestates"} 2',
    'apqn_reservations{condition="Ready",status="True"} 1',
    'apqn_reservations{condition="Bound",status="Unknown"} 1',
  ]) {
    t.true(text.split('\n').includes(line), `${line}\n--- in ---\n${text}`);
  }
});

test('controller metrics: capacity per node, adapter and card type, as kubectl apqn capacity computes it; a node gone is gone from the scrape', async (t) => {
  const fixture = { cards: [{ id: '05', type: 'CEX8C', domains: range(0, 3) }, { id: '06', type: 'CEX8C', domains: range(0, 3) }] };
  const node = state('n1', fixture, { spec: { mdevs: [{ uuid: 'u1', reservation: 'ns/vm', adapters: ['05'], domains: ['0000'], controlDomains: [] }] } });
  let states = [node];
  const registry = new Registry();
  const base = fakeController();
  registerControllerMetrics(registry, { ...base, caches: { ...base.caches, nodeStates: { list: () => states } } } as ProbedController);
  const lines = (await registry.metrics()).split('\n');
  for (const line of [
    'apqn_capacity_free_queues{node="n1",adapter="05",type="CEX8C"} 3',
    'apqn_capacity_free_queues{node="n1",adapter="06",type="CEX8C"} 4',
    'apqn_capacity_largest_free_matrix_queues{node="n1",type="CEX8C"} 6',
    'apqn_capacity_fragmented_free_queues{node="n1",type="CEX8C"} 1',
  ]) {
    t.true(lines.includes(line), `${line}\n--- in ---\n${lines.filter((l) => l.startsWith('apqn_capacity')).join('\n')}`);
  }
  states = [];
  t.false((await registry.metrics()).includes('node="n1"'), 'no stale series for a node that left');
});

test('registering keeps an onSync hook that was already there', (t) => {
  const seen: string[] = [];
  const controller = fakeController({ onSync: (queue) => seen.push(queue) });
  registerControllerMetrics(new Registry(), controller);
  controller.onSync!('nodes', 0.01, false);
  t.deepEqual(seen, ['nodes']);
});

async function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

test('the server: /metrics in Prometheus text format, /readyz waits for caches and agents, /healthz for stalled agents', async (t) => {
  let ready = false;
  let healthy = true;
  let synced = false;
  const controller = fakeController();
  controller.caches.nodes = { hasSynced: () => synced };
  const agent = fakeAgent('node-a', drainingStatus, { isReady: () => ready, isHealthy: () => healthy });
  const server = await serveMetrics(0, { controller, agents: [agent] }, undefined, '127.0.0.1');
  t.teardown(() => server.close());

  const metrics = await get(server.port, '/metrics');
  t.is(metrics.status, 200);
  t.regex(metrics.type, /^text\/plain; version=0\.0\.4/);
  t.regex(metrics.body, /^apqn_process_resident_memory_bytes \d+/m, 'process metrics too');
  t.regex(metrics.body, /^apqn_agent_drains_waiting\{node="node-a"\} 1$/m);
  t.regex(metrics.body, /^apqn_controller_leading 1$/m);

  t.is((await get(server.port, '/readyz')).status, 503, 'caches not synced');
  synced = true;
  const notReady = await get(server.port, '/readyz');
  t.is(notReady.status, 503);
  t.regex(notReady.body, /node-a/);
  ready = true;
  t.is((await get(server.port, '/readyz')).status, 200);

  t.is((await get(server.port, '/healthz')).status, 200);
  healthy = false;
  t.is((await get(server.port, '/healthz')).status, 503);
  t.is((await get(server.port, '/nothing')).status, 404);
});
