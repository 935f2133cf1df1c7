// A small cluster in a settled state, made the way the real one gets there: the controller's
// decideCluster composes each node's spec from the reservations, the agent's reconcile pass
// applies it to a simulated bus (node-twin), and the node's status is what that agent reports.
//   node-a  kernel 6.10, masks: CCA 05/06, EP11 07, accelerator 08; payments/payments-vm holds
//           06.0004-0005 (a guest uses it, claim vm1-crypto); host requests in flight on
//           05.0001 (3) and 07.0006 (2).
//   node-b  kernel 6.19, driver_override: two EP11 cards; keys/ep11-vm holds 0a.0001.
import type { APNodeState, APQNClaim, APQNReservation } from '../../src/api/types.js';
import { reservationKey } from '../../src/api/types.js';
import { parseApqn } from '../../src/apbus/ids.js';
import { reconcileNode } from '../../src/agent/core.js';
import type { ClusterView } from '../../src/controller/cluster-view.js';
import { mdevUuidFor } from '../../src/controller/mdev-uuid.js';
import { decideCluster } from '../../src/controller/placement.js';
import { clusterView } from '../../src/kubectl-apqn/cluster.js';
import { buildNodeTwin, runAgent } from '../../src/kubectl-apqn/node-twin.js';
import { T0, claim, cond, micro, nodeState, readyStatus, reservation, type NodeDesc } from './fixtures.js';

export const NODE_A: NodeDesc = {
  name: 'node-a',
  kernel: '6.10',
  cards: [
    { id: '05', type: 'CEX8C', domains: '0000-0007' },
    { id: '06', type: 'CEX7C', domains: '0000-0007' },
    { id: '07', type: 'CEX8P', domains: '0004-0006' },
    { id: '08', type: 'CEX7A', domains: '0000-0003' },
  ],
};

export const NODE_B: NodeDesc = {
  name: 'node-b',
  kernel: '6.19',
  cards: [
    { id: '0a', type: 'CEX8P', domains: '0000-0003' },
    { id: '0b', type: 'CEX8P', domains: '0000-0003' },
  ],
};

export const LOAD: Record<string, Record<string, number>> = { 'node-a': { '05.0001': 3, '07.0006': 2 } };

export interface Cluster {
  nodeStates: APNodeState[];
  reservations: APQNReservation[];
  claims: APQNClaim[];
}

function held(namespace: string, name: string, node: string, apqns: string[], extra: Partial<APQNReservation['spec']> = {}, now = T0): APQNReservation {
  const r = reservation({ namespace, name, spec: { nodeName: node, apqns, ...extra } }, now);
  r.status = readyStatus(node, apqns, mdevUuidFor(r.metadata.uid!));
  if (extra.controlDomains) r.status.matrix!.controlDomains = extra.controlDomains;
  return r;
}

/** The settled cluster; `now` stamps heartbeats and ages (T0 for unit tests, the real time for
 *  the API server). */
export function settledCluster(now = T0): Cluster {
  const payments = held('payments', 'payments-vm', 'node-a', ['06.0004', '06.0005'], { controlDomains: ['0004'] }, now);
  payments.status!.claimedBy = { name: 'vm1-crypto' };
  const ep11 = held('keys', 'ep11-vm', 'node-b', ['0a.0001'], {}, now);
  const reservations = [payments, ep11];
  const vm1 = claim('payments', 'vm1-crypto', 'payments-vm', 'Bound', cond('Bound', 'True', 'Bound', `bound to reservation payments-vm: mdev ${payments.status!.mdevUUID} on node node-a`, now), {
    nodeName: 'node-a',
    mdevUUID: payments.status!.mdevUUID!,
    apqns: payments.status!.apqns!,
  });
  vm1.metadata.creationTimestamp = payments.metadata.creationTimestamp;

  const fresh = [nodeState(NODE_A, now), nodeState(NODE_B, now)];
  const view: ClusterView = clusterView({ reservations, claims: [vm1], nodeStates: fresh }, now);
  const decision = decideCluster(view);
  const nodeStates = fresh.map((state) => {
    const name = state.metadata.name!;
    const spec = decision.nodes.get(name)!.spec;
    const twin = buildNodeTwin(state);
    const run = runAgent(twin, spec);
    if (!run.synced) throw new Error(`fixture: ${name} did not settle: ${run.blocked.join('; ')}`);
    for (const r of reservations) {
      if (r.status?.nodeName === name && r.status.claimedBy) twin.model.attachGuest(r.status.mdevUUID!);
    }
    for (const [apqn, n] of Object.entries(LOAD[name] ?? {})) twin.model.addHostLoad(parseApqn(apqn), n);
    twin.memory.idle = null; // guests and host load are not in the bus fingerprint: look again
    const result = reconcileNode(twin.backend, spec, twin.memory, { nowMs: twin.nowMs + 1000 });
    if (!result.synced) throw new Error(`fixture: ${name} is not synced after the guests and load`);
    return {
      ...state,
      spec,
      status: { ...result.status, observedGeneration: state.metadata.generation, heartbeatTime: micro(now - 5000) },
    } satisfies APNodeState;
  });
  return { nodeStates, reservations, claims: [vm1] };
}

export function keyOf(r: APQNReservation): string {
  return reservationKey(r);
}
