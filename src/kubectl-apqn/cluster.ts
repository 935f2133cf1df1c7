// Reading what the plugin shows from the API server: one list per kind (reads only), turned
// into the controller's own ClusterView so `plan` decides exactly as the controller would.
import type { APNodeState, APQNClaim, APQNReservation, ObjectMeta } from '../api/types.js';
import { DEFAULT_HEARTBEAT_STALE_MS, type ClusterView } from '../controller/cluster-view.js';
import { getJson, operatorClients, statusCode } from '../k8s/client.js';
import type { ApiConfig } from '../k8s/kubeconfig.js';

export interface ClusterSnapshot {
  reservations: APQNReservation[];
  claims: APQNClaim[];
  nodeStates: APNodeState[];
  /** Labels of core Nodes; undefined when they could not be listed (no permission). */
  nodeLabels?: Map<string, Record<string, string>>;
}

export async function readNodeState(kc: ApiConfig, node: string): Promise<APNodeState | undefined> {
  return operatorClients(kc).nodeStates.find(node);
}

export async function listNodeStateNames(kc: ApiConfig): Promise<string[]> {
  const list = await operatorClients(kc).nodeStates.list();
  return list.items.map((s) => s.metadata.name ?? '').sort();
}

/** Reservations and claims of one namespace, or of all when `namespace` is undefined. */
export async function readReservationsAndClaims(
  kc: ApiConfig,
  namespace: string | undefined,
): Promise<{ reservations: APQNReservation[]; claims: APQNClaim[] }> {
  const clients = operatorClients(kc);
  const [reservations, claims] = await Promise.all([clients.reservations.list({ namespace }), clients.claims.list({ namespace })]);
  return { reservations: reservations.items, claims: claims.items };
}

/** Everything the controller decides from. */
export async function readCluster(kc: ApiConfig): Promise<ClusterSnapshot> {
  const clients = operatorClients(kc);
  const [reservations, claims, nodeStates, nodeLabels] = await Promise.all([
    clients.reservations.list(),
    clients.claims.list(),
    clients.nodeStates.list(),
    listNodeLabels(kc),
  ]);
  return { reservations: reservations.items, claims: claims.items, nodeStates: nodeStates.items, ...(nodeLabels ? { nodeLabels } : {}) };
}

async function listNodeLabels(kc: ApiConfig): Promise<Map<string, Record<string, string>> | undefined> {
  try {
    const nodes = await getJson<{ items: Array<{ metadata?: ObjectMeta }> }>(kc, '/api/v1/nodes');
    return new Map(nodes.items.map((n) => [n.metadata?.name ?? '', n.metadata?.labels ?? {}]));
  } catch (err) {
    if (statusCode(err) === 403) return undefined; // nodeSelector cannot be evaluated; said in the plan
    throw err;
  }
}

export function clusterView(snapshot: ClusterSnapshot, now: number): ClusterView {
  return {
    now,
    reservations: snapshot.reservations,
    claims: snapshot.claims,
    nodeStates: new Map(snapshot.nodeStates.map((s) => [s.metadata.name ?? '', s])),
    nodeLabels: snapshot.nodeLabels ?? new Map(),
    heartbeatStaleMs: DEFAULT_HEARTBEAT_STALE_MS,
  };
}
