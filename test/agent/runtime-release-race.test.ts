// Create → delete races against the real API server, the agent running as in its pod (its
// journal in a state dir of the node): a one-queue reservation's spec (mdev + aqmask bit
// cleared, original set, inUsePolicy Force) written and replaced by a spec without it at
// several timings relative to the agent's passes — before it starts applying, after a pass
// stopped mid-apply, after the mask write but before its status said so, and with the agent
// killed in that window — and issue 2.2's reproduction with the real controller in the loop.
// Each time the node ends as it began and a Synced status never shows a bit left cleared.
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { ApBusModel } from '../../src/apbus/model/index.js';
import { API_VERSION, type APNodeState, type APQNReservation, type NodeStateSpec } from '../../src/api/types.js';
import { startController } from '../../src/commands/controller.js';
import { CustomResourceClient, NodeStateType, operatorClients } from '../../src/k8s/client.js';
import { logger } from '../../src/log.js';
import { eventually, kubeConfig, testNamespace } from '../support/cluster.js';
import {
  agentFor,
  condition,
  nodeStates,
  recordVersions,
  simulatedModel,
  stateDirOf,
  syncedAtGeneration,
  uniqueNode,
  waitForNodeState,
  writeSpec,
} from './runtime-support.js';

const cards = [
  { id: '05', domains: '0000-000f' },
  { id: '06', domains: '0000-000f' },
  { id: '07', domains: '0000-000f' },
];

/** Status writes pass, wait (the pass goes on; only the report is late) or fail (API down). */
class StatusGate extends CustomResourceClient<APNodeState> {
  mode: 'pass' | 'hold' | 'fail' = 'pass';
  override async patchStatus(...args: Parameters<CustomResourceClient<APNodeState>['patchStatus']>): Promise<APNodeState> {
    while (this.mode === 'hold') await new Promise((resolve) => setTimeout(resolve, 20));
    if (this.mode === 'fail') throw new Error('connect ECONNREFUSED (test: API server unreachable)');
    return super.patchStatus(...args);
  }
}

/** The controller's spec for reservation `ns/vm` on 05.0004: domain 0004 cleared. */
function reservationSpec(uuid = randomUUID()): NodeStateSpec {
  return {
    bindingMode: 'Masks',
    aqmask: [{ id: '0004', host: false, original: true }],
    queues: [{ apqn: '05.0004', reservation: 'ns/vm', inUsePolicy: 'Force', drainTimeoutSeconds: 300 }],
    mdevs: [{ uuid, reservation: 'ns/vm', adapters: ['05'], domains: ['0004'], controlDomains: [] }],
  };
}
/** The reservation deleted, composed against a status that never showed the bit cleared. */
const dropped: NodeStateSpec = { bindingMode: 'Masks', aqmask: [], queues: [], mdevs: [] };

interface Bus {
  apmask: string;
  aqmask: string;
  drivers: string[];
  mdevs: number;
}
const busOf = (model: ApBusModel): Bus => ({
  apmask: model.apmask.toKernelString(),
  aqmask: model.aqmask.toKernelString(),
  drivers: ['05', '06', '07'].flatMap((a) => ['0004', '0005'].map((d) => `${a}.${d}=${model.queueDriver(parseInt(a, 16), parseInt(d, 16))}`)),
  mdevs: model.mdevs.count,
});

function journalOf(t: ExecutionContext, node: string): string {
  const file = path.join(stateDirOf(t, node), 'journal.json');
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
}

/** Waits for Synced at the newest generation with the bus as `before`, and checks every
 *  status written meanwhile: none says Synced over a bus with the bit still cleared. */
async function settlesAsBefore(t: ExecutionContext, node: string, model: ApBusModel, before: Bus, versions: { versions: APNodeState[]; stop(): void }): Promise<void> {
  const generation = (await nodeStates().get(node)).metadata.generation;
  await waitForNodeState(node, 'Synced at the last generation', (o) => syncedAtGeneration(o) && o.metadata.generation === generation);
  t.deepEqual(busOf(model), before, 'the bus as it began');
  versions.stop();
  const lying = versions.versions.filter(
    (v) => condition(v.status, 'Synced')?.status === 'True' && v.status?.observedGeneration === generation && v.status?.aqmask !== before.aqmask,
  );
  t.deepEqual(lying.map((v) => v.status?.aqmask), [], 'no Synced status of the last spec with aqmask differing from before');
  t.notRegex(journalOf(t, node), /"aqmask"|"uuid"/, 'the journal owes nothing');
}

async function node(t: ExecutionContext, prefix: string, options: Parameters<typeof agentFor>[3] = {}) {
  const name = uniqueNode(prefix);
  const model = simulatedModel(name, cards);
  const before = busOf(model);
  const agent = await agentFor(t, model, name, options);
  await agent.ready();
  await waitForNodeState(name, 'first Synced', syncedAtGeneration);
  const versions = await recordVersions(name);
  t.teardown(() => versions.stop());
  return { name, model, before, agent, versions };
}

test('dropped before the agent starts applying: nothing stays changed', async (t) => {
  const { name, model, before, versions } = await node(t, 'race-early');
  await writeSpec(name, reservationSpec());
  await writeSpec(name, dropped);
  await settlesAsBefore(t, name, model, before, versions);
});

test('dropped after a pass stopped mid-apply (after the mask write): the next pass restores the bit', async (t) => {
  let stopped = false;
  const { name, model, before, versions } = await node(t, 'race-mid', {
    onStep: (_i, step) => {
      if (!stopped && step.startsWith('create mdev')) {
        stopped = true;
        throw new Error('the pass stops here (test)');
      }
    },
  });
  await writeSpec(name, reservationSpec());
  await eventually('the pass to stop after clearing aqmask 0004', () => (stopped && !model.aqmask.has(4) ? true : undefined));
  t.is(model.mdevs.count, 0);
  await writeSpec(name, dropped);
  await settlesAsBefore(t, name, model, before, versions);
});

test('dropped after the mask write, before the status said so: restored from the journal', async (t) => {
  const gate = new StatusGate(kubeConfig(), NodeStateType);
  const { name, model, before, versions } = await node(t, 'race-late', { nodeStates: gate });
  gate.mode = 'hold';
  await writeSpec(name, reservationSpec());
  await eventually('the agent to apply the spec', () => (!model.aqmask.has(4) && model.mdevs.count === 1 ? true : undefined));
  const recorded = journalOf(t, name);
  await writeSpec(name, dropped);
  await new Promise((resolve) => setTimeout(resolve, 500));
  gate.mode = 'pass';
  await settlesAsBefore(t, name, model, before, versions);
  t.regex(recorded, /"mask":"aqmask","id":"0004","original":true/, 'recorded before the change');
});

test('the agent killed after the mask write, before any status said so; the spec dropped meanwhile: the next agent restores it', async (t) => {
  const gate = new StatusGate(kubeConfig(), NodeStateType);
  const { name, model, before, agent, versions } = await node(t, 'race-killed', { nodeStates: gate, apiBackoff: { initialMs: 50, maxMs: 200 } });
  gate.mode = 'fail';
  await writeSpec(name, reservationSpec());
  await eventually('the agent to apply the spec', () => (!model.aqmask.has(4) && model.mdevs.count === 1 ? true : undefined));
  await agent.stop(); // its last status (the empty node) is all the API server has
  t.is(condition((await nodeStates().get(name)).status, 'Synced')?.status, 'True');
  await writeSpec(name, dropped);
  const second = await agentFor(t, model, name); // same node, same state dir
  await second.ready();
  await settlesAsBefore(t, name, model, before, versions);
});

/** A simulated node whose agent's status writes can be held (StatusGate), with the real controller scoped to it. */
async function gatedNodeWithController(t: ExecutionContext, tag: string) {
  const ns = await testNamespace(t, tag);
  const name = `${ns}-a`;
  const model = simulatedModel(name, cards);
  const before = busOf(model);
  const gate = new StatusGate(kubeConfig(), NodeStateType);
  const agent = await agentFor(t, model, name, { nodeStates: gate });
  await agent.ready();
  const controller = await startController({
    kubeConfig: kubeConfig(),
    scope: { namespace: ns, nodes: (n) => n === name },
    log: logger('controller', { test: ns }),
  });
  t.teardown(() => controller.stop());
  return { ns, name, model, before, gate, agent, clients: operatorClients(kubeConfig()) };
}

test('issue 2.2: create → delete at once, five times (Force, one queue, 6.10, the real controller): the bus ends as it began', async (t) => {
  // The window: the agent applied the spec, but its status saying so has not reached the
  // controller when the delete arrives (a busy node, a slow API server). The controller then
  // composes the release against a status that still shows the bit set, and drops the bit.
  const { ns, name, model, before, gate, clients } = await gatedNodeWithController(t, 'race');

  for (let i = 0; i < 5; i++) {
    const vm = `vm${i}`;
    gate.mode = 'hold';
    await clients.reservations.create({
      apiVersion: API_VERSION,
      kind: 'APQNReservation',
      metadata: { name: vm, namespace: ns },
      spec: { nodeName: name, apqns: ['05.0004'], driver: 'vfio_ap', inUsePolicy: 'Force' },
    } as APQNReservation);
    await eventually(`${vm}: the agent to clear aqmask 0004`, () => (model.aqmask.has(4) ? undefined : true), 30_000);
    await clients.reservations.delete({ namespace: ns, name: vm }); // kubectl delete --wait=false
    await new Promise((resolve) => setTimeout(resolve, 1000));
    gate.mode = 'pass';
    await eventually(`${vm} to be gone`, async () => ((await clients.reservations.find({ namespace: ns, name: vm })) ? undefined : true), 60_000);
  }
  const settled = await eventually(
    'the node spec empty and Synced',
    async () => {
      const s = await nodeStates().get(name);
      const empty = !(s.spec.mdevs ?? []).length && !(s.spec.aqmask ?? []).length && !(s.spec.apmask ?? []).length;
      return empty && syncedAtGeneration(s) ? s : undefined;
    },
    60_000,
  );
  t.is(condition(settled.status, 'Synced')?.status, 'True');
  // Synced=True over an empty spec: nothing the operator changed may be left over.
  t.deepEqual(busOf(model), before, 'masks, drivers and mdevs as before: domain 0004 back on the host');
});

test('the real controller keeps the finalizer while the agent still owes the bit back (Releasing), and lets go once it is restored', async (t) => {
  const { ns, name, model, before, gate, clients, agent } = await gatedNodeWithController(t, 'race-fin');

  gate.mode = 'hold';
  await clients.reservations.create({
    apiVersion: API_VERSION,
    kind: 'APQNReservation',
    metadata: { name: 'vm', namespace: ns },
    spec: { nodeName: name, apqns: ['05.0004'], driver: 'vfio_ap', inUsePolicy: 'Force' },
  } as APQNReservation);
  await eventually('the agent to clear aqmask 0004', () => (model.aqmask.has(4) ? undefined : true), 30_000);
  // Someone else's mdev takes 07.0004 (off the host only because of our bit): the bit cannot
  // go back while it is there.
  const foreign = randomUUID();
  agent.io!.write('/sys/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create', foreign);
  agent.io!.write(`/sys/devices/vfio_ap/matrix/${foreign}/assign_adapter`, '7');
  agent.io!.write(`/sys/devices/vfio_ap/matrix/${foreign}/assign_domain`, '4');
  await clients.reservations.delete({ namespace: ns, name: 'vm' });
  await new Promise((resolve) => setTimeout(resolve, 1000));
  gate.mode = 'pass';

  const waiting = await eventually(
    'the reservation to wait in Releasing for the bit',
    async () => {
      const r = await clients.reservations.find({ namespace: ns, name: 'vm' });
      const ready = r?.status?.conditions?.find((c) => c.type === 'Ready');
      return ready?.reason === 'Releasing' && /aqmask bit 0004/.test(ready.message) ? r : undefined;
    },
    30_000,
  );
  t.truthy(waiting.metadata.deletionTimestamp, 'deleted, held by its finalizer');
  t.false(model.aqmask.has(4));
  const state = await nodeStates().get(name);
  t.is(condition(state.status, 'Synced')?.status, 'False');

  agent.io!.write(`/sys/devices/vfio_ap/matrix/${foreign}/remove`, '1');
  await eventually('the reservation to be gone', async () => ((await clients.reservations.find({ namespace: ns, name: 'vm' })) ? undefined : true), 60_000);
  await eventually('the node Synced', async () => (syncedAtGeneration(await nodeStates().get(name)) ? true : undefined), 30_000);
  t.deepEqual(busOf(model), before);
});
