// One concern: a node's APNodeState.spec — one serialized writer per node (the work queue hands
// a node's key to one worker at a time), so the node spec is the one authority on who holds a
// queue there. Composed from the node's holders (decision-cache.ts, node-spec.ts) and written
// as one JSON patch guarded by a `test` of the generation of the spec it was computed from (the
// owned mask bits' `original` values must come from the spec as stored, never a stale copy).
//
// A reservation joins the spec only once (1) it carries the finalizer, (2) its placement is
// fixed by its spec (nodeName + apqns) or recorded in its status, and (3) its status reports
// every host queue this spec takes from the host because of it — so nothing moves unannounced.
//
// Writes are batched: the first change of an idle node is written at once; what arrives while
// the agent has not taken the last write (up to AGENT_PACE_MS) or while writes are frequent
// (more than NODE_WRITE_BURST in NODE_WRITE_WINDOW_MS) goes out together in the next. After each pass the node
// fans out to the reservations it decides whose status would change (the agent's report moved them).
import type { APNodeState, APQNReservation, NodeStateSpec } from '../api/types.js';
import { API_VERSION } from '../api/types.js';
import { PatchStrategy, isAlreadyExists, isConflict, isInvalid } from '../k8s/client.js';
import { deepEqual } from '../k8s/merge-patch.js';
import type { SyncResult } from '../k8s/workqueue.js';
import type { ClusterView } from './cluster-view.js';
import { significantStatusChange } from '../api/node-status.js';
import { agentAvailability } from './cluster-view.js';
import { judgeView, type ControllerContext, type NodeWriteRecord } from './context.js';
import { joinList, plural } from './phrases.js';
import { composeNodeSpec, type NodeComposition, type NodeMember } from './node-spec.js';
import { effectiveMasks, originalMasks } from './mask-bits.js';
import { nodeInventory } from './node-inventory.js';
import { fixedBySpec, hasFinalizer, placementInSpec, recordedPlacement, sameApqns, type ClusterDecision } from './placement.js';
import { needsReconcile } from './reservations.js';

const RETRY_GATED_MS = 5_000;
/**
 * Spec writes of one node: at most NODE_WRITE_BURST in quick succession, then one per
 * NODE_WRITE_WINDOW_MS (a floor under the agent's pace when it answers at once); what arrives
 * meanwhile goes out together in the next write.
 */
export const NODE_WRITE_WINDOW_MS = 100;
export const NODE_WRITE_BURST = 3;
/** While the agent lags behind the writes (see writeHold), the next waits for it this long at most. */
export const AGENT_PACE_MS = 3_000;
/**
 * A write refused, or held, because the cached node state is behind: the informer's event for
 * the newer copy enqueues the node again; this is only the safety net.
 */
const STALE_RETRY_MS = 1_000;

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
  alreadyOffHost: ReadonlySet<string> = offHostUnderSpec(current),
): string | undefined {
  if (!r) return 'not in the cache';
  if (!hasFinalizer(r)) return 'no finalizer yet';
  const inSpec = placementInSpec(new Map(current ? [[node, current]] : []), m.key);
  const served = inSpec !== undefined && sameApqns(inSpec.apqns, m.apqns);
  const recorded = recordedPlacement(r);
  const known = served || fixedBySpec(r, node, m.apqns) || (recorded && recorded.node === node && sameApqns(recorded.apqns, m.apqns));
  if (!known) return 'placement not recorded in status yet';
  const reported = new Set(r.status?.displacedQueues ?? []);
  const unreported = (composition.displaced.get(m.key) ?? []).filter((q) => !reported.has(q) && !alreadyOffHost.has(q));
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
  const original = originalMasks(owned, inventory);
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
  return gateMembers(node, view.nodeStates.get(node), cluster.members.get(node) ?? [], (key) => byKey.get(key));
}

export function gateMembers(
  node: string,
  state: APNodeState | undefined,
  holders: readonly NodeMember[],
  reservationOf: (key: string) => APQNReservation | undefined,
): GatedComposition {
  let members = [...holders];
  const waiting: GatedComposition['waiting'] = [];
  const already = offHostUnderSpec(state);
  for (;;) {
    const composition = composeNodeSpec(node, state, members);
    const included = new Set(composition.included);
    const closed = members
      .filter((m) => included.has(m.key))
      .map((m) => ({ key: m.key, why: gateClosed(reservationOf(m.key), m, node, composition, state, already) }))
      .filter((x): x is { key: string; why: string } => x.why !== undefined);
    if (closed.length === 0) return { composition, waiting };
    waiting.push(...closed);
    const drop = new Set(closed.map((c) => c.key));
    members = members.filter((m) => !drop.has(m.key));
  }
}

export async function reconcileNode(node: string, ctx: ControllerContext): Promise<SyncResult> {
  if (!node || (ctx.scope.nodes && !ctx.scope.nodes(node))) return;
  const log = ctx.log.child({ node });
  const state = ctx.caches.nodeStates.get(node);
  // A write could not go out now anyway: do not compose (the pass that can write will).
  const hold = state ? writeHold(node, state, ctx) : undefined;
  if (hold !== undefined) {
    fanOut(node, ctx);
    return { requeueAfterMs: Math.max(1, Math.ceil(hold)) };
  }
  const decision = ctx.decisions.node(node);
  const gated = gateMembers(node, state, decision?.members ?? [], (key) => ctx.caches.reservations.get(key));
  for (const w of gated.waiting) log.debug('reservation not in the node spec yet', { reservation: w.key, why: w.why });
  let result: SyncResult = gated.waiting.length > 0 ? { requeueAfterMs: RETRY_GATED_MS } : undefined;
  const later = (ms: number) => {
    if (!result || result.requeueAfterMs > ms) result = { requeueAfterMs: Math.max(1, Math.ceil(ms)) };
  };
  try {
    const wait = await writeSpec(node, state, gated.composition, ctx, log);
    if (wait !== undefined) later(wait);
  } finally {
    // The agent's report (or this pass's decision) may have moved the reservations it decides.
    fanOut(node, ctx);
  }
  return result;
}

function writeCredit(last: NodeWriteRecord | undefined, now: number): number {
  return last ? Math.min(NODE_WRITE_BURST, last.credit + (now - last.at) / NODE_WRITE_WINDOW_MS) : NODE_WRITE_BURST;
}

/** How long a spec write of this node must wait (undefined: it may go now). */
function writeHold(node: string, state: APNodeState, ctx: ControllerContext): number | undefined {
  const last = ctx.nodeWrites.get(node);
  if (!last) return undefined;
  if ((state.metadata.generation ?? 0) < last.generation) return STALE_RETRY_MS; // our last write is not in the cache yet
  const now = ctx.now();
  const credit = writeCredit(last, now);
  if (credit < 1) return (1 - credit) * NODE_WRITE_WINDOW_MS;
  // One spec generation in flight to the agent: the next waits (a while) for the agent to take
  // the last, so a burst becomes a few large generations, not many small ones. Each costs the
  // API server two writes of the whole APNodeState (the spec, then the agent's status), the
  // most expensive writes the operator makes (README, Benchmarks).
  const agentBehind = (state.status?.observedGeneration ?? 0) < last.generation;
  if (agentBehind && now - last.at < AGENT_PACE_MS) return AGENT_PACE_MS - (now - last.at);
  return undefined;
}

/** Writes the node spec if it differs; returns how long to wait before the next try, if it must wait. */
async function writeSpec(node: string, state: APNodeState | undefined, composition: NodeComposition, ctx: ControllerContext, log: ControllerContext['log']): Promise<number | undefined> {
  const spec = composition.spec;
  if (!state) {
    if (composition.included.length === 0) return undefined;
    try {
      const created = await ctx.clients.nodeStates.create({ apiVersion: API_VERSION, kind: 'APNodeState', metadata: { name: node }, spec });
      ctx.nodeWrites.set(node, { at: ctx.now(), generation: created.metadata.generation ?? 1, credit: NODE_WRITE_BURST - 1 });
      log.info('APNodeState created', { reservations: composition.included });
    } catch (err) {
      if (isAlreadyExists(err)) return STALE_RETRY_MS; // the informer brings it
      throw err;
    }
    return undefined;
  }
  if (sameSpec(state.spec, spec)) return undefined;
  // reconcileNode found no writeHold just before composing.
  const credit = writeCredit(ctx.nodeWrites.get(node), ctx.now());

  announceForcedMoves(ctx, composition);
  // Guarded by the spec it was computed from, not the resourceVersion (the agent's status writes
  // change that every few seconds and must not make this fail): a JSON-patch `test` of the
  // generation, which moves with every spec change and nothing else — or, without one, of the
  // spec itself.
  const generation = state.metadata.generation;
  const guard = generation !== undefined ? { op: 'test', path: '/metadata/generation', value: generation } : { op: 'test', path: '/spec', value: state.spec };
  const ops = state.spec ? [guard, { op: 'replace', path: '/spec', value: spec }] : [{ op: 'add', path: '/spec', value: spec }];
  try {
    const written = await ctx.clients.nodeStates.patch(node, ops, { strategy: PatchStrategy.JsonPatch });
    ctx.nodeWrites.set(node, { at: ctx.now(), generation: written.metadata.generation ?? 0, credit: credit - 1 });
  } catch (err) {
    // The stored spec is not the one this was computed from: the informer brings it, and the
    // node is decided again from it.
    if (isConflict(err) || isInvalid(err)) {
      log.debug('node spec changed meanwhile; deciding again from the newer copy', { error: String(err) });
      return STALE_RETRY_MS;
    }
    throw err;
  }
  log.info('node spec written', {
    reservations: composition.included.length,
    mdevs: spec.mdevs.length,
    queues: spec.queues.length,
    apmask: spec.apmask.map((b) => `${b.host ? '+' : '-'}${b.id}`).join(','),
    aqmask: spec.aqmask.map((b) => `${b.host ? '+' : '-'}${b.id}`).join(','),
  });
  return undefined;
}

/**
 * Enqueues the reservations this node decides (or that name it) whose status would change —
 * when what their judgement reads of the node changed since the last fan-out: the agent's
 * report (beyond heartbeat and counters) or whether the agent is available. A change of the
 * decision itself reaches them directly (DecisionCache's onChange).
 */
export function fanOut(node: string, ctx: ControllerContext): void {
  const state = ctx.caches.nodeStates.get(node);
  const seen = { status: state?.status, available: agentAvailability(judgeView(ctx, [node]), node).available };
  const last = ctx.fannedOut.get(node);
  if (last && last.available === seen.available && !significantStatusChange(last.status, seen.status)) return;
  ctx.fannedOut.set(node, seen);
  for (const key of ctx.decisions.attachedTo(node)) {
    if (needsReconcile(ctx, key)) ctx.enqueue.reservation(key);
  }
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

/** A Warning on each reservation whose Force policy will cut off host requests in flight (recorded in the background). */
function announceForcedMoves(ctx: ControllerContext, composition: NodeComposition): void {
  for (const [key, apqns] of composition.forced) {
    const r = ctx.caches.reservations.get(key);
    if (!r) continue;
    ctx.events
      .emit(r, 'Warning', 'ForcedUnbind', `inUsePolicy Force: ${plural(apqns.length, 'queue')} ${joinList(apqns)} will leave the host with host requests still in flight; they are cut off`)
      .catch(() => undefined);
  }
}
