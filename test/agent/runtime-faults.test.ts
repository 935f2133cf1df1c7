// Faults the agent must survive, against the real API server with the model underneath: the
// bus changed behind its back (drift), cards going away and coming back, node reboots, agent
// restarts and crashes mid-plan, its APNodeState deleted.
import test from 'ava';
import { randomUUID } from 'node:crypto';
import type { ApBusModel } from '../../src/apbus/model/index.js';
import type { APNodeState } from '../../src/api/types.js';
import { parseApiTime } from '../../src/k8s/clock.js';
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

const twoCards = [
  { id: '05', domains: '0004-0005' },
  { id: '06', domains: '0004-0005' },
];
const MATRIX = '/sys/devices/vfio_ap/matrix';

/** A node with one applied vfio_ap reservation (05,06 × 0004). */
async function appliedNode(t: Parameters<typeof agentFor>[0], prefix: string, options: Parameters<typeof agentFor>[3] = {}) {
  const name = uniqueNode(prefix);
  const model = simulatedModel(name, twoCards);
  const agent = await agentFor(t, model, name, options);
  await agent.ready();
  const reservation = 'team-a/r1';
  const spec = vfioSpec({ reservation, adapters: ['05', '06'], domains: ['0004'], clearDomains: ['0004'] });
  const written = await writeSpec(name, wire(spec));
  await waitForNodeState(name, 'Applied', (o) => syncedAtGeneration(o) && o.metadata.generation === written.metadata.generation);
  return { name, model, agent, spec, reservation };
}

const guestSees = (model: ApBusModel, uuid: string) => model.mdevs.get(uuid) !== undefined;

test('drift: an owned mdev changed by hand is repaired within a rescan and reported, then Drift clears', async (t) => {
  const { name, model, agent, spec } = await appliedNode(t, 'drift');
  agent.io!.write(`${MATRIX}/${spec.uuid}/unassign_adapter`, '0x06');
  const drifted = await waitForNodeState(name, 'Drift=True (DriftRepaired)', (o) => condition(o.status, 'Drift')?.reason === 'DriftRepaired', 10_000);
  const drift = condition(drifted.status, 'Drift')!;
  t.is(drift.status, 'True');
  t.regex(drift.message, new RegExp(spec.uuid));
  t.is(condition(drifted.status, 'Synced')?.status, 'True', 'repaired in the same pass');
  t.deepEqual(drifted.status?.mdevs?.[0]?.matrix, ['05.0004', '06.0004']);
  // driftHoldSeconds (5 in these tests) after the last difference it goes back to False.
  await waitForNodeState(name, 'Drift back to False', (o) => condition(o.status, 'Drift')?.status === 'False', 20_000);
  t.true(guestSees(model, spec.uuid));
});

test('drift: a foreign mdev is reported (ForeignChange) and left alone', async (t) => {
  const { name, model, agent } = await appliedNode(t, 'foreign');
  const foreign = randomUUID();
  agent.io!.write(`${MATRIX}/mdev_supported_types/vfio_ap-passthrough/create`, foreign);
  const seen = await waitForNodeState(name, 'Drift=True (ForeignChange)', (o) => condition(o.status, 'Drift')?.reason === 'ForeignChange', 10_000);
  t.regex(condition(seen.status, 'Drift')!.message, new RegExp(foreign));
  t.deepEqual(seen.status?.mdevs?.find((m) => m.uuid === foreign)?.owned, false);
  t.is(condition(seen.status, 'Synced')?.status, 'True', 'nothing of the spec is affected');
  // Release everything: the agent removes its own mdev, never the foreign one.
  await writeSpec(name, { bindingMode: 'Masks', aqmask: [{ id: '0004', host: true, original: true }], queues: [], mdevs: [] });
  const released = await waitForNodeState(name, 'released', (o) => syncedAtGeneration(o) && (o.status?.mdevs?.length ?? 0) === 1);
  t.deepEqual(released.status?.mdevs?.map((m) => m.uuid), [foreign]);
  t.truthy(model.mdevs.get(foreign), 'the foreign mdev is still there');
});

const cardFaults: Array<{ why: string; fault: (m: ApBusModel) => void; heal: (m: ApBusModel) => void; reason: string }> = [
  { why: 'hot-unplug', fault: (m) => m.removeCard(0x06), heal: (m) => m.replugCard(0x06), reason: 'CardRemoved' },
  { why: 'checkstop', fault: (m) => m.setCheckstop(0x06, true), heal: (m) => m.setCheckstop(0x06, false), reason: 'CardCheckstopped' },
  { why: 'deconfigured', fault: (m) => m.setCardConfig(0x06, false), heal: (m) => m.setCardConfig(0x06, true), reason: 'CardDeconfigured' },
];

for (const c of cardFaults) {
  test(`${c.why} of a card the spec uses: Degraded (${c.reason}), and back when the card is`, async (t) => {
    const { name, model, spec, reservation } = await appliedNode(t, c.why.slice(0, 8));
    c.fault(model);
    const degraded = await waitForNodeState(name, `Degraded ${c.reason}`, (o) => condition(o.status, 'Degraded')?.status === 'True', 10_000);
    const d = condition(degraded.status, 'Degraded')!;
    t.is(d.reason, c.reason);
    t.regex(d.message, /card 06/);
    t.regex(d.message, new RegExp(reservation));
    c.heal(model);
    const back = await waitForNodeState(name, 'Degraded=False and Synced', (o) => condition(o.status, 'Degraded')?.status === 'False' && syncedAtGeneration(o), 15_000);
    t.deepEqual(back.status?.mdevs?.find((m) => m.uuid === spec.uuid)?.guestMatrix, ['05.0004', '06.0004']);
  });
}

/** Every stored version from `versions` that says Synced=True must show the spec applied. */
function syncedVersionsShowTheMdev(versions: APNodeState[], uuid: string): string[] {
  const wrong: string[] = [];
  for (const v of versions) {
    if (condition(v.status, 'Synced')?.status !== 'True') continue;
    const m = v.status?.mdevs?.find((x) => x.uuid === uuid);
    if (!m || m.guestMatrix.join() !== '05.0004,06.0004' || !/^0xf7f/.test(v.status?.aqmask ?? '')) {
      wrong.push(`rv ${v.metadata.resourceVersion}: Synced=True but mdev ${JSON.stringify(m)} aqmask ${v.status?.aqmask}`);
    }
  }
  return wrong;
}

test('node reboot under a running agent: the spec is re-applied (same mdev UUID) before Synced is reported', async (t) => {
  const { name, model, spec } = await appliedNode(t, 'reboot');
  const recorder = await recordVersions(name);
  t.teardown(() => recorder.stop());
  const rebootAt = Date.now();
  model.reboot();
  t.is(model.mdevs.count, 0, 'the bus is at boot defaults');
  // A status is the bus as of the pass before its write: one written a second after the reboot
  // (passes run every 300 ms here) comes from a pass that saw the rebooted bus.
  const after = rebootAt + 1000;
  await waitForNodeState(name, 'a status from after the reboot, Synced', (o) => parseApiTime(o.status?.heartbeatTime) >= after && syncedAtGeneration(o) && (o.status?.mdevs?.length ?? 0) === 1);
  recorder.stop();
  t.true(guestSees(model, spec.uuid), 'the same UUID exists again');
  t.false(model.aqmask.has(4));
  const since = recorder.versions.filter((v) => parseApiTime(v.status?.heartbeatTime) >= after);
  t.deepEqual(syncedVersionsShowTheMdev(since, spec.uuid), []);
});

test('node reboot with an agent restart: the new agent re-applies from the stored spec and status', async (t) => {
  const { name, model, agent, spec } = await appliedNode(t, 'reboot2');
  await agent.stop();
  const rebootAt = Date.now();
  model.reboot();
  const recorder = await recordVersions(name);
  t.teardown(() => recorder.stop());
  const second = await agentFor(t, model, name);
  await second.ready();
  // A status the new agent wrote after the reboot (the stored one from before it is Synced too,
  // and the new agent may have stepped before it wrote: waiting for steps alone raced that).
  await waitForNodeState(
    name,
    'Synced after the reboot',
    (o) => parseApiTime(o.status?.heartbeatTime) >= rebootAt && syncedAtGeneration(o) && (o.status?.mdevs?.length ?? 0) === 1 && second.stats().steps > 0,
  );
  recorder.stop();
  t.true(guestSees(model, spec.uuid));
  // The stored pre-reboot status is stale until the new agent writes (the controller goes by
  // heartbeatTime); every status written since must be truthful.
  const since = recorder.versions.filter((v) => parseApiTime(v.status?.heartbeatTime) >= rebootAt);
  t.true(since.length >= 1);
  t.deepEqual(syncedVersionsShowTheMdev(since, spec.uuid), []);
});

test('restart: a new agent knows from its journal on the node which mdevs are its own and releases one the spec dropped', async (t) => {
  const { name, model, agent, spec, reservation } = await appliedNode(t, 'restart');
  await agent.stop();
  // While no agent runs, the controller releases the reservation.
  await writeSpec(name, { bindingMode: 'Masks', aqmask: [{ id: '0004', host: true, original: true }], queues: [], mdevs: [] });
  const second = await agentFor(t, model, name);
  await second.ready();
  const obj = await waitForNodeState(name, 'released after the restart', (o) => syncedAtGeneration(o) && (o.status?.mdevs?.length ?? 1) === 0);
  t.is(model.mdevs.get(spec.uuid), undefined, 'the owned mdev was removed');
  t.true(model.aqmask.has(4));
  t.is(reservationStatus(obj.status, reservation), undefined);
});

test('a crash in the middle of a plan: the next agent converges from whatever the bus is', async (t) => {
  const name = uniqueNode('crash');
  const model = simulatedModel(name, twoCards);
  // Killed just before it creates the mdev (after the cordon and the mask bit); a dead agent
  // does nothing more (every later step throws).
  let crashes = 0;
  const first = await agentFor(t, model, name, {
    onStep: (_index, step) => {
      if (step.startsWith('create mdev') || crashes > 0) {
        crashes++;
        throw new Error('killed after the first step');
      }
    },
  });
  await first.ready();
  const spec = vfioSpec({ reservation: 'team-a/r1', adapters: ['05', '06'], domains: ['0004'], clearDomains: ['0004'] });
  await writeSpec(name, wire(spec));
  const failed = await waitForNodeState(name, 'Synced=False (AgentError)', (o) => condition(o.status, 'Synced')?.reason === 'AgentError');
  t.regex(condition(failed.status, 'Synced')!.message, /killed after the first step/);
  t.true(crashes >= 1);
  await first.stop();
  t.false(model.aqmask.has(4), 'the first step (mask bit) happened');
  t.is(model.mdevs.count, 0, 'the second (create mdev) did not');

  const second = await agentFor(t, model, name);
  await second.ready();
  await waitForNodeState(name, 'Synced after the restart', (o) => syncedAtGeneration(o) && (o.status?.mdevs?.length ?? 0) === 1);
  t.true(guestSees(model, spec.uuid));
  t.is(second.stats().passErrors, 0);
});

test('its APNodeState deleted: the agent recreates it (empty spec) and reports again', async (t) => {
  const name = uniqueNode('deleted');
  const model = simulatedModel(name, twoCards);
  const agent = await agentFor(t, model, name);
  await agent.ready();
  const first = await waitForNodeState(name, 'Synced', syncedAtGeneration);
  await nodeStates().delete(name);
  const again = await waitForNodeState(name, 'recreated and reported', (o) => o.metadata.uid !== first.metadata.uid && syncedAtGeneration(o));
  t.deepEqual(again.spec, {});
  t.is(again.status?.queueCount, 4);
  t.true(agent.runtime.isHealthy());
});
