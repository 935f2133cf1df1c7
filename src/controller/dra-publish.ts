// One concern: a node's DRA pool. Reads that node's objects (the indexes of dra-routing.ts),
// decides with dra-slices.ts, and writes the ResourceSlices that changed — at most once per
// window per node (dra-window.ts): writes first, then the deletes of slices the pool no longer
// has. Replaces carry the cached resourceVersion and deletes a uid and resourceVersion
// precondition, so a slice someone else changed or recreated meanwhile is never overwritten or
// deleted blindly: the API server answers 409, and the next try starts from the fresh cache.
// The kubelet wipes a node's slices when it starts and when a driver's plugin stays away; the
// slice informer sees the deletes and this reconcile publishes the pool again.
import type { APNodeState, APQNReservation } from '../api/types.js';
import { type ResourceSlice } from '../api/dra.js';
import { isAlreadyExists, isConflict, isNotFound, type CustomResourceClient } from '../k8s/client.js';
import type { NodeObject } from '../k8s/informer.js';
import type { SyncResult } from '../k8s/workqueue.js';
import type { Logger } from '../log.js';
import { devicesForNode, nodeOwner, planPool } from './dra-slices.js';
import type { PublishWindow } from './dra-window.js';
import type { Scope } from './context.js';

export interface SlicePublisherContext {
  /** The reservations whose status.nodeName is `node` (in scope). */
  reservationsOf(node: string): readonly APQNReservation[];
  nodeStates: { get(name: string): APNodeState | undefined };
  nodes: { get(name: string): NodeObject | undefined };
  /** This driver's stored slices of `node`. */
  slicesOf(node: string): readonly ResourceSlice[];
  sliceClient: CustomResourceClient<ResourceSlice>;
  window: PublishWindow;
  scope: Scope;
  log: Logger;
  /** Counts slice writes (create/replace/delete), for tests and metrics. */
  onWrite?: (op: 'create' | 'replace' | 'delete', name: string) => void;
}

/** Retry after a lost race: soon, once the informer has brought the other writer's change. */
const RACE_RETRY_MS = 200;

export async function reconcileNodeSlices(node: string, ctx: SlicePublisherContext): Promise<SyncResult> {
  if (ctx.scope.nodes && !ctx.scope.nodes(node)) return;
  // Within the window of the last write, look again when it closes: whatever changes until then
  // goes out in one write.
  const wait = ctx.window.wait(node);
  if (wait > 0) return { requeueAfterMs: wait };
  const devices = devicesForNode(node, ctx.reservationsOf(node), ctx.nodeStates.get(node));
  const stored = ctx.slicesOf(node);
  const plan = planPool(node, devices, stored, nodeOwner(ctx.nodes.get(node)));
  if (!plan) return;
  ctx.window.open(node);
  const log = ctx.log.child({ node });
  const byName = new Map(stored.map((s) => [s.metadata?.name ?? '', s]));
  try {
    for (const slice of plan.writes) {
      const name = slice.metadata!.name!;
      const existing = byName.get(name);
      if (existing) {
        slice.metadata!.resourceVersion = existing.metadata?.resourceVersion;
        await ctx.sliceClient.replace(slice);
        ctx.onWrite?.('replace', name);
      } else {
        await ctx.sliceClient.create(slice);
        ctx.onWrite?.('create', name);
      }
    }
    for (const name of plan.deletes) {
      const { uid, resourceVersion } = byName.get(name)?.metadata ?? {};
      if (await ctx.sliceClient.delete(name, { preconditions: { uid, resourceVersion } })) ctx.onWrite?.('delete', name);
    }
  } catch (err) {
    // The cache was behind (someone else wrote, recreated or deleted a slice): the informer
    // brings the change and requeues this node; retry soon from the fresh cache.
    if (isConflict(err) || isAlreadyExists(err) || isNotFound(err)) {
      log.debug('slice write raced; retrying from the cache', { error: String(err) });
      return { requeueAfterMs: RACE_RETRY_MS };
    }
    throw err;
  }
  log.info('published DRA devices', {
    devices: devices.length,
    slices: plan.writes.length,
    deleted: plan.deletes.length,
    generation: plan.generation,
    ...(plan.bumped ? { bumped: true } : {}),
  });
}
