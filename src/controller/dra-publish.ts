// One concern: a node's DRA pool. Reads the caches, decides with dra-slices.ts, and writes the
// ResourceSlices that changed (all new-generation slices first, then deletes of the rest).
// The kubelet wipes a node's slices when it starts and when a driver's plugin stays away; the
// slice informer sees the deletes and this reconcile publishes the pool again.
import type { APNodeState, APQNReservation } from '../api/types.js';
import { type ResourceSlice } from '../api/dra.js';
import { isAlreadyExists, isConflict, isNotFound, type CustomResourceClient } from '../k8s/client.js';
import type { Informer, NodeObject } from '../k8s/informer.js';
import type { SyncResult } from '../k8s/workqueue.js';
import type { Logger } from '../log.js';
import { devicesForNode, nodeOwner, planPool } from './dra-slices.js';
import type { Scope } from './context.js';

export interface SlicePublisherContext {
  reservations: Informer<APQNReservation>;
  nodeStates: Informer<APNodeState>;
  nodes: Informer<NodeObject>;
  slices: Informer<ResourceSlice & { metadata?: { name?: string } }>;
  sliceClient: CustomResourceClient<ResourceSlice>;
  scope: Scope;
  log: Logger;
  /** Counts slice writes (create/replace/delete), for tests and metrics. */
  onWrite?: (op: 'create' | 'replace' | 'delete', name: string) => void;
}

/** This driver's stored slices of `node` (the informer lists only this driver's). */
export function slicesOf(ctx: Pick<SlicePublisherContext, 'slices'>, node: string): ResourceSlice[] {
  return ctx.slices.list().filter((s) => s.spec?.nodeName === node);
}

export async function reconcileNodeSlices(node: string, ctx: SlicePublisherContext): Promise<SyncResult> {
  if (ctx.scope.nodes && !ctx.scope.nodes(node)) return;
  const reservations = ctx.reservations.list(ctx.scope.namespace);
  const devices = devicesForNode(node, reservations, ctx.nodeStates.get(node));
  const stored = slicesOf(ctx, node);
  const plan = planPool(node, devices, stored, nodeOwner(ctx.nodes.get(node)));
  if (!plan) return;
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
      await ctx.sliceClient.delete(name);
      ctx.onWrite?.('delete', name);
    }
  } catch (err) {
    // The cache was behind (someone else wrote or deleted): the informer brings the change
    // and requeues this node; retry soon from the fresh cache.
    if (isConflict(err) || isAlreadyExists(err) || isNotFound(err)) {
      log.debug('slice write raced; retrying from the cache', { error: String(err) });
      return { requeueAfterMs: 200 };
    }
    throw err;
  }
  log.info('published DRA devices', {
    devices: devices.length,
    slices: plan.writes.length,
    deleted: plan.deletes.length,
    generation: plan.generation,
  });
}
