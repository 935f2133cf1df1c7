// How many API writes the agent makes for one spec generation on the happy path, against the
// real API server: one status write carrying observedGeneration and the final state, and at
// most one Normal event about the node (Warnings stay per reservation). Counted twice: by the
// writer's own counter and by the versions of the object the API server reports. And an event
// sink in trouble costs events, never the loop.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import type { APNodeState, NodeStateSpec } from '../../src/api/types.js';
import type { AgentEventSink } from '../../src/agent/event-sink.js';
import { classifyDifference } from '../../src/agent/status-writer.js';
import { testNamespace } from '../support/cluster.js';
import {
  agentFor,
  condition,
  eventsIn,
  recordVersions,
  reservationStatus,
  simulatedModel,
  syncedAtGeneration,
  uniqueNode,
  waitForNodeState,
  writeSpec,
} from './runtime-support.js';
import { eventually } from '../support/cluster.js';

const CARDS = ['05', '06', '07', '08'].map((id) => ({ id, domains: '0004-0007' }));

/** What the controller writes for `count` one-card reservations on domain 0004 (the aqmask bit
 *  cleared once for all), each with the given in-use policy. */
function batchSpec(namespace: string, count: number, inUsePolicy: 'Wait' | 'Force'): { spec: NodeStateSpec; reservations: string[] } {
  const reservations: string[] = [];
  const queues: NonNullable<NodeStateSpec['queues']> = [];
  const mdevs: NonNullable<NodeStateSpec['mdevs']> = [];
  for (let i = 0; i < count; i++) {
    const reservation = `${namespace}/vm${i}`;
    const adapter = CARDS[i]!.id;
    reservations.push(reservation);
    queues.push({ apqn: `${adapter}.0004`, reservation, inUsePolicy, drainTimeoutSeconds: 300 });
    mdevs.push({ uuid: randomUUID(), reservation, adapters: [adapter], domains: ['0004'], controlDomains: [] });
  }
  return { spec: { bindingMode: 'Masks', apmask: [], aqmask: [{ id: '0004', host: false, original: true }], queues, mdevs }, reservations };
}

/** The versions the watch reported after `from` in which the status changed in more than the
 *  heartbeat (a heartbeat-only patch is not a status write of this generation). */
function statusChanges(versions: readonly APNodeState[], from: APNodeState): APNodeState[] {
  const changes: APNodeState[] = [];
  let previous = from;
  for (const v of versions) {
    if (v.metadata.resourceVersion === previous.metadata.resourceVersion) continue;
    if (classifyDifference(previous.status, v.status ?? {}) !== 'none') changes.push(v);
    previous = v;
  }
  return changes;
}

for (const inUsePolicy of ['Wait', 'Force'] as const) {
  test(`happy path (${inUsePolicy}): one status write per applied spec generation, final state and observedGeneration in it`, async (t) => {
    const ns = await testNamespace(t, `once-${inUsePolicy.toLowerCase()}`);
    const name = uniqueNode(`once-${inUsePolicy.toLowerCase()}`);
    const model = simulatedModel(name, CARDS);
    // A heartbeat far outside the measurement: every write counted here is a status change.
    const agent = await agentFor(t, model, name, { heartbeatMs: 60_000 });
    await agent.ready();
    const empty = await waitForNodeState(name, 'Synced on the empty spec', syncedAtGeneration);

    const recorder = await recordVersions(name);
    t.teardown(() => recorder.stop());
    const before = agent.stats().status;
    const { spec, reservations } = batchSpec(ns, 4, inUsePolicy);
    const written = await writeSpec(name, spec);
    const generation = written.metadata.generation!;
    const done = await waitForNodeState(name, 'Synced on the batch', (o) => syncedAtGeneration(o) && o.metadata.generation === generation);
    for (const r of reservations) t.is(reservationStatus(done.status, r)?.phase, 'Applied', r);
    // Nothing is left to write now; a second write would come within the writer's hold (≤ 1.5 s
    // after the pass that found the work done). The window is that wait and a margin.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    recorder.stop();

    const after = agent.stats().status;
    const changes = statusChanges(recorder.versions, empty);
    t.log(`${after.writes - before.writes} status writes (${after.heartbeats - before.heartbeats} heartbeat-only), watch saw ${changes.length} status changes: ${changes.map((v) => `${condition(v.status, 'Synced')?.reason}@${v.status?.observedGeneration}`).join(', ')}`);
    t.is(after.writes - before.writes, 1, 'exactly one status write for the spec generation');
    t.is(changes.length, 1, 'the API server saw the status change once');
    const only = changes[0]!;
    t.is(only.status?.observedGeneration, generation, 'the write carries the generation it applied');
    t.is(condition(only.status, 'Synced')?.status, 'True', 'and the final state');
    for (const r of reservations) t.is(reservationStatus(only.status, r)?.phase, 'Applied', r);
  });
}

test('happy path: no Normal event per reservation; one aggregated Normal event about the node names them', async (t) => {
  const ns = await testNamespace(t, 'batch-events');
  const name = uniqueNode('batch-events');
  const model = simulatedModel(name, CARDS);
  const agent = await agentFor(t, model, name);
  await agent.ready();
  await waitForNodeState(name, 'Synced on the empty spec', syncedAtGeneration);

  const { spec, reservations } = batchSpec(ns, 4, 'Wait');
  const written = await writeSpec(name, spec);
  const generation = written.metadata.generation!;
  await waitForNodeState(name, 'Synced on the batch', (o) => syncedAtGeneration(o) && o.metadata.generation === generation);

  const aboutNode = await eventually('the aggregated Normal event about the node', async () => {
    const events = (await eventsIn('default')).filter((e) => e.regarding?.kind === 'APNodeState' && e.regarding.name === name && e.type === 'Normal');
    return events.length > 0 ? events : undefined;
  });
  await agent.stop(); // flushes event writes in flight: what follows sees all of them
  t.is(aboutNode.length, 1, 'one Normal event for the batch');
  const note = aboutNode[0]!.note ?? '';
  t.is(aboutNode[0]!.reason, 'Applied');
  t.regex(note, new RegExp(`generation ${generation}`));
  t.regex(note, /4 reservations ready/);
  for (const r of reservations) t.true(note.includes(r), `${r} named in "${note}"`);
  const perReservation = (await eventsIn(ns)).filter((e) => e.type === 'Normal');
  t.deepEqual(perReservation.map((e) => `${e.reason} ${e.regarding?.name}`), [], 'no Normal event about any reservation');
});

test('an event sink that throws or never answers holds up neither the loop nor stop()', async (t) => {
  const ns = await testNamespace(t, 'stuck-sink');
  const name = uniqueNode('stuck-sink');
  const model = simulatedModel(name, CARDS);
  let emitted = 0;
  const events: AgentEventSink = {
    emit: () => {
      emitted++;
      if (emitted % 2 === 1) throw new Error('the sink broke');
      return new Promise<void>(() => undefined); // an event write that never ends
    },
    flush: () => new Promise<void>(() => undefined),
  };
  const agent = await agentFor(t, model, name, { events });
  await agent.ready();
  await waitForNodeState(name, 'Synced on the empty spec', syncedAtGeneration);
  const first = await writeSpec(name, batchSpec(ns, 2, 'Wait').spec);
  await waitForNodeState(name, 'Synced on the first batch', (o) => syncedAtGeneration(o) && o.metadata.generation === first.metadata.generation);
  const second = await writeSpec(name, batchSpec(ns, 4, 'Wait').spec);
  await waitForNodeState(name, 'Synced on the second batch', (o) => syncedAtGeneration(o) && o.metadata.generation === second.metadata.generation);
  t.is(emitted, 2, 'one event per batch reached the sink: the first threw, the second hangs');
  t.true(agent.runtime.isHealthy(), 'the loop is still passing');

  const started = Date.now();
  await agent.stop();
  t.true(Date.now() - started < 8000, `stop() gave up on the hung flush (${Date.now() - started} ms)`);
});
