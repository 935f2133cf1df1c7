// A small cluster in a settled state, made the way the real one gets there: the controller's
// decideCluster composes each node's spec from the reservations, the agent's reconcile pass
// applies it to a simulated bus (node-twin), and the node's status is what that agent reports.
//   node-a  kernel 6.10, masks: CCA 05/06, EP11 07, accelerator 08; payments/payments-vm holds
//           06.0004-0005 (a guest uses it, claim vm1-crypto); host requests in flight on
//           05.0001 (3) and 07.0006 (2).
//   node-b  kernel 6.19, driver_override: two EP11 cards; keys/ep11-vm holds 0a.0001.
// Names can be changed (the API-server test uses unique ones); the mdev UUIDs follow the
// reservations' uids, so objects the server gave a uid are passed back in before settling.
import type { APNodeState, APQNClaim, APQNReservation } from '../../src/api/types.js';
import { parseApqn } from '../../src/apbus/ids.js';
import { reconcileNode } from '../../src/agent/core.js';
import { mdevUuidFor } from '../../src/controller/mdev-uuid.js';
import { decideCluster } from '../../src/controller/placement.js';
import { clusterView } from '../../src/kubectl-apqn/cluster.js';
import { buildNodeTwin, runAgent } from '../../src/kubectl-apqn/node-twin.js';
import { T0, claim, cond, micro, nodeState, readyStatus, reservation, type NodeDesc } from './fixtures.js';

export interface Names {
  nodeA: string;
  nodeB: string;
  payments: string;
  keys: string;
}

export const DEFAULT_NAMES: Names = { nodeA: 'node-a', nodeB: 'node-b', payments: 'payments', keys: 'keys' };

export function nodeDescs(names: Names): NodeDesc[] {
  return [
    {
      name: names.nodeA,
      kernel: '6.10',
      cards: [
        { id: '05', type: 'CEX8C', domains: '0000-0007' },
        { id: '06', type: 'CEX7C', domains: '0000-0007' },
        { id: '07', type: 'CEX8P', domains: '0004-0006' },
        { id: '08', type: 'CEX7A', domains: '0000-0003' },
      ],
    },
    {
      name: names.nodeB,
      kernel: '6.19',
      cards: [
        { id: '0a', type: 'CEX8P', domains: '0000-0003' },
        { id: '0b', type: 'CEX8P', domains: '0000-0003' },
      ],
    },
  ];
}

/** Host requests in flight, by node a/b. */
export const LOAD = { a: { '05.0001': 3, '07.0006': 2 }, b: {} } as const;

export interface Cluster {
  nodeStates: APNodeState[];
  reservations: APQNReservation[];
  claims: APQNClaim[];
}

/** The reservations and the claim (without status); `uid`s are fixture ones until replaced. */
export function fixtureObjects(names: Names = DEFAULT_NAMES, now = T0): { reservations: APQNReservation[]; claims: APQNClaim[] } {
  const payments = reservation({ namespace: names.payments, name: 'payments-vm', spec: { nodeName: names.nodeA, apqns: ['06.0004', '06.0005'], controlDomains: ['0004'] } }, now);
  const ep11 = reservation({ namespace: names.keys, name: 'ep11-vm', spec: { nodeName: names.nodeB, apqns: ['0a.0001'] } }, now);
  const vm1 = claim(names.payments, 'vm1-crypto', 'payments-vm', undefined);
  vm1.metadata.creationTimestamp = payments.metadata.creationTimestamp;
  return { reservations: [payments, ep11], claims: [vm1] };
}

/** The statuses the controller writes once the reservations are Ready and the claim bound
 *  (from the objects' uids, which name the mdevs). */
export function fixtureStatuses(reservations: APQNReservation[], claims: APQNClaim[], now = T0): void {
  for (const r of reservations) {
    const mdev = mdevUuidFor(r.metadata.uid!);
    r.status = readyStatus(r.spec.nodeName!, r.spec.apqns!, mdev);
    r.status.matrix!.controlDomains = r.spec.controlDomains ?? [];
  }
  for (const c of claims) {
    const r = reservations.find((x) => x.metadata.namespace === c.metadata.namespace && x.metadata.name === c.spec.reservationName)!;
    r.status!.claimedBy = { name: c.metadata.name! };
    c.status = {
      phase: 'Bound',
      nodeName: r.status!.nodeName!,
      mdevUUID: r.status!.mdevUUID!,
      apqns: r.status!.apqns!,
      conditions: [cond('Bound', 'True', 'Bound', `bound to reservation ${r.metadata.name}: mdev ${r.status!.mdevUUID} on node ${r.status!.nodeName}`, now)],
    };
  }
}

/** Each node's spec (the controller's) and status (the agent's, after applying it). */
export function settleNodes(reservations: APQNReservation[], claims: APQNClaim[], names: Names = DEFAULT_NAMES, now = T0): APNodeState[] {
  const descs = nodeDescs(names);
  const loads: Record<string, Record<string, number>> = { [names.nodeA]: LOAD.a, [names.nodeB]: LOAD.b };
  const fresh = descs.map((d) => nodeState(d, now));
  const decision = decideCluster(clusterView({ reservations, claims, nodeStates: fresh }, now));
  return fresh.map((state) => {
    const name = state.metadata.name!;
    const spec = decision.nodes.get(name)!.spec;
    const twin = buildNodeTwin(state);
    const run = runAgent(twin, spec);
    if (!run.synced) throw new Error(`fixture: ${name} did not settle: ${run.blocked.join('; ')}`);
    for (const r of reservations) {
      if (r.status?.nodeName === name && r.status.claimedBy) twin.model.attachGuest(r.status.mdevUUID!);
    }
    for (const [apqn, n] of Object.entries(loads[name] ?? {})) twin.model.addHostLoad(parseApqn(apqn), n);
    twin.memory.idle = null; // guests and host load are not in the bus fingerprint: look again
    const result = reconcileNode(twin.backend, spec, twin.memory, { nowMs: twin.nowMs + 1000 });
    if (!result.synced) throw new Error(`fixture: ${name} is not synced after the guests and load`);
    return {
      ...state,
      spec,
      status: { ...result.status, observedGeneration: state.metadata.generation, heartbeatTime: micro(now - 5000) },
    } satisfies APNodeState;
  });
}

export function settledCluster(names: Names = DEFAULT_NAMES, now = T0): Cluster {
  const { reservations, claims } = fixtureObjects(names, now);
  fixtureStatuses(reservations, claims, now);
  return { nodeStates: settleNodes(reservations, claims, names, now), reservations, claims };
}
