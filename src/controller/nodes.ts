// One concern: a node's APNodeState.spec. Composed from the reservations holding queues on the
// node (placement.ts, node-spec.ts) and written as one JSON patch guarded by a `test` of the
// spec it was computed from (the owned mask bits' `original` values must come from the spec as
// stored, never from a stale copy; a failed test re-reads and recomputes). A reservation joins the spec only once (1) it carries the
// finalizer, (2) its status records this placement, and (3) its status reports every host
// queue this spec takes from the host because of it — so nothing moves unannounced.
import type { APNodeState, APQNReservation, NodeStateSpec } from '../api/types.js';
import { API_VERSION } from '../api/types.js';
import { PatchStrategy } from '@kubernetes/client-node';
import { isAlreadyExists, isConflict, isInvalid, retryOnConflict } from '../k8s/client.js';
import { deepEqual } from '../k8s/merge-patch.js';
import type { SyncResult } from '../k8s/workqueue.js';
import type { ClusterView } from './cluster-view.js';
import { clusterView, type ControllerContext } from './context.js';
import { joinList, plural } from './phrases.js';
import { composeNodeSpec, type NodeComposition, type NodeMember } from './node-spec.js';
import { effectiveMasks } from './mask-bits.js';
import { nodeInventory } from './node-inventory.js';
import { decideCluster, hasFinalizer, placementInSpec, recordedPlacement, sameApqns, type ClusterDecision } from './placement.js';

const RETRY_GATED_MS = 5_000;

export interface GatedComposition {
  composition: NodeComposition;
  /** Holders not in this spec yet, and why. */
  waiting: Array<{ key: string; why: string }>;
}

/**
 * Why a holder cannot join the node spec yet (undefined: it can). A holder the current spec
 * already serves with this matrix stays in it whatever its status says now, and queues the
 * current spec already keeps off the host need no new report.
 */
export function gateClosed(
  r: APQNReservation | undefined,
  m: NodeMember,
  node: string,
  composition: NodeComposition,
  current?: APNodeState,
): string | undefined {
  if (!r) return 'not in the cache';
  if (!hasFinalizer(r)) return 'no finalizer yet';
  const inSpec = placementInSpec(new Map(current ? [[node, current]] : []), m.key);
  const served = inSpec !== undefined && sameApqns(inSpec.apqns, m.apqns);
  const recorded = recordedPlacement(r);
  if (!served && (!recorded || recorded.node !== node || !sameApqns(recorded.apqns, m.apqns))) {
    return 'placement not recorded in status yet';
  }
  const reported = new Set(r.status?.displacedQueues ?? []);
  const already = offHostUnderSpec(current);
  const unreported = (composition.displaced.get(m.key) ?? []).filter((q) => !reported.has(q) && !already.has(q));
  if (unreported.length > 0) return `displaced queues ${joinList(unreported)} not reported yet`;
  return undefined;
}

/** Queues the node's current spec already takes from the host (owned bits away from their original value). */
function offHostUnderSpec(state: APNodeState | undefined): Set<string> {
  const out = new Set<string>();
  if (!state?.status) return out;
  const inventory = nodeInventory(state.metadata.name ?? '', state.status);
  const owned = { apmask: state.spec?.apmask ?? [], aqmask: state.spec?.aqmask ?? [] };
  const final = effectiveMasks(owned, inventory);
  const original = effectiveMasks(
    {
      apmask: owned.apmask.filter((b) => b.original !== undefined).map((b) => ({ id: b.id, host: b.original! })),
      aqmask: owned.aqmask.filter((b) => b.original !== undefined).map((b) => ({ id: b.id, host: b.original! })),
    },
    inventory,
  );
  for (const [i, q] of inventory.queues) {
    const was = original.apmask.has(i >> 8) && original.aqmask.has(i & 0xff);
    const is = final.apmask.has(i >> 8) && final.aqmask.has(i & 0xff);
    if (was && !is) out.add(q.apqn);
  }
  return out;
}

/** The node's spec from the holders whose gates are open (dropping the others can only shrink what moves). */
export function gatedComposition(node: string, view: ClusterView, cluster: ClusterDecision): GatedComposition {
  const byKey = new Map(view.reservations.map((r) => [`${r.metadata.namespace}/${r.metadata.name}`, r]));
  let members = cluster.members.get(node) ?? [];
  const waiting: GatedComposition['waiting'] = [];
  for (;;) {
    const composition = composeNodeSpec(node, view.nodeStates.get(node), members);
    const closed = members
      .filter((m) => composition.included.includes(m.key))
      .map((m) => ({ key: m.key, why: gateClosed(byKey.get(m.key), m, node, composition, view.nodeStates.get(node)) }))
      .filter((x): x is { key: string; why: string } => x.why !== undefined);
    if (closed.length === 0) return { composition, waiting };
    waiting.push(...closed);
    const drop = new Set(closed.map((c) => c.key));
    members = members.filter((m) => !drop.has(m.key));
  }
}

export async function reconcileNode(node: string, ctx: ControllerContext): Promise<SyncResult> {
  if (ctx.scope.nodes && !ctx.scope.nodes(node)) return;
  const log = ctx.log.child({ node });
  let waiting = 0;
  await retryOnConflict(
    async (attempt) => {
      let state: APNodeState | undefined = ctx.caches.nodeStates.get(node);
      if (attempt > 1) state = await ctx.clients.nodeStates.find(node);
      const view = clusterView(ctx, state ? { nodeState: state } : {});
      const cluster = decideCluster(view);
      const gated = gatedComposition(node, view, cluster);
      waiting = gated.waiting.length;
      for (const w of gated.waiting) log.debug('reservation not in the node spec yet', { reservation: w.key, why: w.why });
      const spec = gated.composition.spec;

      if (!state) {
        if (gated.composition.included.length === 0) return;
        try {
          await ctx.clients.nodeStates.create({ apiVersion: API_VERSION, kind: 'APNodeState', metadata: { name: node }, spec });
          log.info('APNodeState created', { reservations: gated.composition.included });
        } catch (err) {
          if (isAlreadyExists(err)) throw Object.assign(new Error('APNodeState appeared meanwhile'), { code: 409 });
          throw err;
        }
        return;
      }
      if (sameSpec(state.spec, spec)) return;

      await announceForcedMoves(ctx, view, gated.composition);
      // Guarded by the spec it was computed from (a JSON-patch `test`), not the resourceVersion:
      // the agent's status writes change the latter every few seconds and must not make this fail.
      const ops = state.spec
        ? [
            { op: 'test', path: '/spec', value: state.spec },
            { op: 'replace', path: '/spec', value: spec },
          ]
        : [{ op: 'add', path: '/spec', value: spec }];
      await ctx.clients.nodeStates.patch(node, ops, { strategy: PatchStrategy.JsonPatch });
      log.info('node spec written', {
        reservations: gated.composition.included,
        mdevs: spec.mdevs.length,
        queues: spec.queues.length,
        apmask: spec.apmask.map((b) => `${b.host ? '+' : '-'}${b.id}`).join(','),
        aqmask: spec.aqmask.map((b) => `${b.host ? '+' : '-'}${b.id}`).join(','),
      });
    },
    { attempts: 5, initialDelayMs: 20, retryable: (err) => isConflict(err) || isInvalid(err) },
  );
  return waiting > 0 ? { requeueAfterMs: RETRY_GATED_MS } : undefined;
}

/** Equal as the agent reads them: an empty list is an absent one, no bindingMode is Masks. */
export function sameSpec(current: NodeStateSpec | undefined, desired: NodeStateSpec): boolean {
  const normal = (spec: NodeStateSpec | undefined) => {
    const out: Record<string, unknown> = { bindingMode: spec?.bindingMode ?? 'Masks' };
    for (const key of ['apmask', 'aqmask', 'overrides', 'queues', 'mdevs'] as const) {
      const list = spec?.[key];
      if (list && list.length > 0) out[key] = list;
    }
    return out;
  };
  return deepEqual(normal(current), normal(desired));
}

/** A Warning on each reservation whose Force policy will cut off host requests in flight. */
async function announceForcedMoves(ctx: ControllerContext, view: ClusterView, composition: NodeComposition): Promise<void> {
  for (const [key, apqns] of composition.forced) {
    const r = view.reservations.find((x) => `${x.metadata.namespace}/${x.metadata.name}` === key);
    if (!r) continue;
    await ctx.events.emit(
      r,
      'Warning',
      'ForcedUnbind',
      `inUsePolicy Force: ${plural(apqns.length, 'queue')} ${joinList(apqns)} will leave the host with host requests still in flight; they are cut off`,
    );
  }
}
