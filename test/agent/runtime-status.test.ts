// The agent runtime against the real API server, the model underneath: the APNodeState it
// creates, the inventory and conditions it reports, how rarely it writes, and how it copes
// with 409s and an unreachable API server.
import test from 'ava';
import { formatMicroTime, parseApiTime } from '../../src/k8s/clock.js';
import { CustomResourceClient, NodeStateType, isConflict } from '../../src/k8s/client.js';
import type { APNodeState } from '../../src/api/types.js';
import { kubeConfig } from '../support/cluster.js';
import { CuttableProxy, apiServerAddress } from '../k8s/proxy.js';
import {
  agentFor,
  condition,
  nodeStates,
  recordVersions,
  reservationStatus,
  simulatedModel,
  syncedAtGeneration,
  uniqueNode,
  vfioSpec,
  waitForNodeState,
  wire,
  writeSpec,
} from './runtime-support.js';

test('creates its APNodeState with an empty spec and reports the inventory', async (t) => {
  const name = uniqueNode('inv');
  const model = simulatedModel(name, [
    { id: '05', type: 'CEX8C', domains: '0004-0007' },
    { id: '06', type: 'CEX7P', domains: ['0004', '0005'] },
    { id: '08', type: 'CEX7A', domains: '0000-0001' },
  ]);
  t.is(await nodeStates().find(name), undefined, 'no object before the agent starts');
  const agent = await agentFor(t, model, name);
  await agent.ready();

  const obj = await waitForNodeState(name, 'Synced on the empty spec', syncedAtGeneration);
  t.deepEqual(obj.spec, {}, 'created with an empty spec');
  const s = obj.status!;
  t.regex(s.heartbeatTime ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, 'heartbeat is a MicroTime with 6 digits');
  t.deepEqual(
    s.cards?.map((c) => [c.id, c.type, c.mode, c.online, c.config, c.chkstop]),
    [
      ['05', 'CEX8C', 'CCA', true, true, false],
      ['06', 'CEX7P', 'EP11', true, true, false],
      ['08', 'CEX7A', 'Accel', true, true, false],
    ],
  );
  t.is(s.queues?.length, 8);
  t.is(s.queueCount, 8, 'queueCount feeds the QUEUES printer column');
  t.deepEqual(s.queues?.[0], {
    apqn: '05.0004',
    driver: 'cex4queue',
    online: true,
    config: true,
    chkstop: false,
    requestsInFlight: 0,
    requestCount: 0,
  });
  t.true(s.queues!.every((q) => q.driver === 'cex4queue'));
  t.regex(s.apmask ?? '', /^0xf{64}$/);
  t.regex(s.aqmask ?? '', /^0xf{64}$/);
  t.deepEqual(s.mdevs, []);
  t.is(s.kernel?.driverOverride, false);
  t.is(s.maxDomainId, 84);
  t.is(condition(s, 'Synced')?.status, 'True');
  t.is(condition(s, 'Degraded')?.status, 'False');
  t.is(condition(s, 'Drift')?.status, 'False');
  t.is(s.observedGeneration, obj.metadata.generation);
});

test('applies a vfio_ap spec: masks, mdev, matrix, owned, Applied', async (t) => {
  const name = uniqueNode('apply');
  const model = simulatedModel(name, [
    { id: '05', domains: '0004-0006' },
    { id: '06', domains: '0004-0006' },
  ]);
  const agent = await agentFor(t, model, name);
  await agent.ready();
  const spec = vfioSpec({ reservation: 'team-a/r1', adapters: ['05', '06'], domains: ['0004'], controlDomains: ['0004'], clearDomains: ['0004'] });
  await writeSpec(name, wire(spec));
  const obj = await waitForNodeState(name, 'Synced on the vfio spec', (o) => syncedAtGeneration(o) && (o.metadata.generation ?? 0) > 1);
  const s = obj.status!;
  t.deepEqual(s.mdevs, [
    { uuid: spec.uuid, matrix: ['05.0004', '06.0004'], guestMatrix: ['05.0004', '06.0004'], controlDomains: ['0004'], owned: true, reservation: 'team-a/r1', inUse: false },
  ]);
  t.deepEqual(
    s.queues?.filter((q) => q.driver === 'vfio_ap').map((q) => [q.apqn, q.vfioStatus]),
    [
      ['05.0004', 'assigned'],
      ['06.0004', 'assigned'],
    ],
  );
  t.false(model.aqmask.has(4), 'aqmask bit 0004 cleared on the bus');
  t.true(model.aqmask.has(5), 'other bits untouched');
  t.regex(s.aqmask ?? '', /^0xf7f/);
  t.is(reservationStatus(s, 'team-a/r1')?.phase, 'Applied');
});

test('heartbeat advances while nothing else is written: no write storm on a 64 x 85-queue node', async (t) => {
  const name = uniqueNode('storm');
  const cards = Array.from({ length: 64 }, (_, i) => ({ id: (i + 1).toString(16).padStart(2, '0'), domains: '0000-0054' }));
  const model = simulatedModel(name, cards);
  // On these small machines one status write of a 5,440-queue object costs the API server 1-7 s
  // (see the report on managedFields), so the window is wide and the heartbeat not too short.
  const heartbeatMs = 2000;
  const rescanMs = 200;
  const agent = await agentFor(t, model, name, { heartbeatMs, rescanMs });
  await agent.ready();
  const first = await waitForNodeState(name, 'the full inventory', (o) => o.status?.queueCount === 64 * 85 && syncedAtGeneration(o), 60_000);
  t.is(first.status?.queues?.length, 5440);

  const recorder = await recordVersions(name);
  const before = agent.stats();
  const windowMs = 10_000;
  // A measurement window, not a wait for a state: every rescan is a pass, and only heartbeats
  // may reach the API server meanwhile.
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  recorder.stop();
  const after = agent.stats();
  const writes = after.status.writes - before.status.writes;
  const passes = after.passes - before.passes;
  t.log(`${passes} passes, ${writes} status writes (${after.status.heartbeats - before.status.heartbeats} heartbeat-only) in ${windowMs} ms`);
  t.true(passes >= 10, `the agent kept rescanning (${passes} passes)`);
  t.true(writes <= Math.ceil(windowMs / heartbeatMs) + 1, `at most one write per heartbeat period (${writes})`);
  t.is(after.status.heartbeats - before.status.heartbeats, writes, 'every write was a heartbeat-only patch');
  // What the API server saw: resourceVersion moved only with the heartbeat.
  const modified = recorder.versions.filter((v) => v.metadata.resourceVersion !== first.metadata.resourceVersion);
  t.true(modified.length <= writes + 1, `watch saw ${modified.length} versions`);
  const beats = modified.map((v) => parseApiTime(v.status?.heartbeatTime));
  for (let i = 1; i < beats.length; i++) t.true(beats[i]! > beats[i - 1]!, 'heartbeatTime strictly increases');
  // The heartbeat advances (on a busy API server one write of this object can take seconds).
  const lastBeat = parseApiTime(first.status?.heartbeatTime);
  await waitForNodeState(name, 'a newer heartbeat', (o) => parseApiTime(o.status?.heartbeatTime) > lastBeat, 60_000);
});

test('a 409 on the status write (a concurrent writer) is re-read and retried', async (t) => {
  const name = uniqueNode('conflict');
  const model = simulatedModel(name, [{ id: '05', domains: '0004-0005' }]);
  // A status client that lets another writer in just before each armed status patch.
  const other = new CustomResourceClient<APNodeState>(kubeConfig(), NodeStateType);
  let armed = 0;
  let conflictsSeen = 0;
  class InterleavedClient extends CustomResourceClient<APNodeState> {
    override async patchStatus(...args: Parameters<CustomResourceClient<APNodeState>['patchStatus']>): Promise<APNodeState> {
      if (armed > 0) {
        armed--;
        await other.patch(name, { metadata: { labels: { 'test.ap.s390x.io/bump': String(Date.now()) } } });
      }
      try {
        return await super.patchStatus(...args);
      } catch (err) {
        if (isConflict(err)) conflictsSeen++;
        throw err;
      }
    }
  }
  const agent = await agentFor(t, model, name, { nodeStates: new InterleavedClient(kubeConfig(), NodeStateType) });
  await agent.ready();
  await waitForNodeState(name, 'Synced', syncedAtGeneration);

  armed = 2;
  const spec = vfioSpec({ reservation: 'team-a/r1', adapters: ['05'], domains: ['0004'], clearDomains: ['0004'] });
  await writeSpec(name, wire(spec));
  const obj = await waitForNodeState(name, 'Synced after the conflicts', (o) => syncedAtGeneration(o) && (o.metadata.generation ?? 0) > 1);
  t.true(conflictsSeen >= 1, `the API server answered 409 (${conflictsSeen})`);
  t.true(agent.stats().status.conflicts >= 1, 'the writer counted the conflict and retried');
  t.is(obj.status?.mdevs?.[0]?.uuid, spec.uuid);
  t.truthy(obj.metadata.labels?.['test.ap.s390x.io/bump'], "the other writer's change survived");
});

test('API server unreachable: the agent keeps the bus on the last spec, then reports once it is back', async (t) => {
  const name = uniqueNode('offline');
  const model = simulatedModel(name, [
    { id: '05', domains: '0004-0005' },
    { id: '06', domains: '0004-0005' },
  ]);
  const proxy = await CuttableProxy.start(apiServerAddress());
  t.teardown(() => proxy.close());
  const agent = await agentFor(t, model, name, {
    kubeConfig: proxy.kubeConfig(),
    apiBackoff: { initialMs: 100, maxMs: 1000 },
  });
  await agent.ready();
  const spec = vfioSpec({ reservation: 'team-a/r1', adapters: ['05', '06'], domains: ['0004'], clearDomains: ['0004'] });
  await writeSpec(name, wire(spec));
  await waitForNodeState(name, 'Synced', (o) => syncedAtGeneration(o) && (o.metadata.generation ?? 0) > 1);

  await proxy.cut();
  const failuresBefore = agent.stats().status.failures;
  // Behind its back, while it cannot reach the API server: the mdev goes away.
  agent.io!.write(`/sys/devices/vfio_ap/matrix/${spec.uuid}/remove`, '1');
  const started = Date.now();
  while (!model.mdevs.get(spec.uuid)) {
    if (Date.now() - started > 15_000) t.fail('the agent did not re-create the mdev while the API server was away');
    await new Promise((r) => setTimeout(r, 50));
  }
  t.pass('mdev re-created from the last spec seen');
  // It tried to report and failed (heartbeats/changes), without dying.
  while (agent.stats().status.failures === failuresBefore) {
    if (Date.now() - started > 15_000) t.fail('no status write was attempted while the API server was away');
    await new Promise((r) => setTimeout(r, 50));
  }
  t.true(agent.runtime.isHealthy(), 'the loop is still passing');

  await proxy.restore();
  const obj = await waitForNodeState(name, 'Drift reported after the API server came back', (o) => condition(o.status, 'Drift')?.reason === 'DriftRepaired');
  t.is(condition(obj.status, 'Synced')?.status, 'True');
  t.is(obj.status?.mdevs?.[0]?.uuid, spec.uuid);
  t.true(parseApiTime(obj.status?.heartbeatTime) > Date.parse(formatMicroTime(started)) - 1, 'heartbeat resumed');
});
