// `kubectl apqn plan -f reservation.yaml`: what the controller and the node's agent would do if
// this reservation were applied now — decided by the controller's own code (decideCluster:
// validation, scheduling, conflicts, mask planning, node spec composition) on the cluster as
// it is, with and without the reservation, and the node's steps taken by the agent's own
// reconcile pass on an in-memory copy of the node (node-twin.ts). Writes nothing anywhere.
import type { APNodeState, APQNReservation, MaskBit, QueueOverride } from '../api/types.js';
import { reservationKey } from '../api/types.js';
import { formatAdapterId, formatApqn, formatDomainId } from '../apbus/ids.js';
import type { ClusterView } from '../controller/cluster-view.js';
import { effectiveMasks } from '../controller/mask-bits.js';
import { nodeInventory } from '../controller/node-inventory.js';
import { type NodeComposition } from '../controller/node-spec.js';
import { type ClusterDecision, type ReservationDecision, decideCluster, nodeCandidates } from '../controller/placement.js';
import { idRanges, joinList, plural } from '../controller/phrases.js';
import { type HeldQueue, schedule } from '../controller/schedule.js';
import { nodeCapacity } from './capacity.js';
import { buildNodeTwin, runAgent, type TwinRun } from './node-twin.js';
import { type Paint, plain } from './text.js';

export type Outcome = 'placed' | 'conflict' | 'rejected' | 'unplaced';

export interface MaskChange {
  mask: 'apmask' | 'aqmask';
  id: string;
  /** true: set (the host driver gets the row/column); false: cleared (vfio_ap). */
  host: boolean;
}

export interface NodeChoice {
  node: string;
  picked: boolean;
  /** Host queues this placement would take from the host (on top of other reservations'). */
  displaced?: number;
  /** Why the node does not fit. */
  why?: string;
}

export interface PlanReport {
  reservation: string;
  /** Not in the cluster yet (else: a change of an existing one). */
  isNew: boolean;
  outcome: Outcome;
  node?: string;
  apqns?: string[];
  reason?: string;
  message?: string;
  holders?: string[];
  /** Nodes considered (request or explicit queues without nodeName). */
  choices: NodeChoice[];
  mdev?: { uuid: string; provisional: boolean; adapters: string[]; domains: string[]; controlDomains: string[] };
  maskChanges: MaskChange[];
  overrideChanges: QueueOverride[];
  /** Host queues leaving the host although not reserved (whole rows/columns move). */
  displaced: string[];
  /** Queues leaving the host with host requests in flight now, and the policy that applies. */
  inUse: Array<{ apqn: string; requestsInFlight: number }>;
  inUsePolicy: string;
  drainTimeoutSeconds: number;
  /** Other reservations whose standing the change alters. */
  affected: Array<{ reservation: string; before: string; after: string }>;
  /** The node's steps (the agent on a copy of the node), when it is placed. */
  steps?: TwinRun;
  /** The node had not yet reached its current spec; these steps come first (not this plan's). */
  pendingBefore?: TwinRun;
  /**
   * A request not placed although enough queues are free: the nodes where they are (but form no
   * adapters × domains product together), and the placed reservations without which it would
   * fit (a preview: nothing is moved).
   */
  fragmentation?: { nodes: string[]; moves: Array<{ reservation: string; node: string; apqns: string[] }> };
  notes: string[];
}

/** At most this many placed reservations are tried one by one for a fragmentation hint. */
const FRAGMENTATION_TRIES = 100;

/** The uid a reservation that does not exist yet is planned with (its mdev UUID derives from it). */
export const PLANNED_UID = 'kubectl-apqn-plan';

/** The reservation as the controller would see it once applied: an existing one keeps its
 *  identity, status and age with the new spec; a new one is the youngest. */
export function plannedObject(file: APQNReservation, existing: APQNReservation | undefined, now: number): APQNReservation {
  if (existing) return { ...existing, spec: file.spec, metadata: { ...existing.metadata, generation: (existing.metadata.generation ?? 1) + 1 } };
  return {
    apiVersion: file.apiVersion,
    kind: 'APQNReservation',
    metadata: { ...file.metadata, uid: `${PLANNED_UID}/${reservationKey(file)}`, creationTimestamp: new Date(now).toISOString().replace(/\.\d+Z$/, 'Z'), generation: 1 },
    spec: file.spec,
  };
}

function standingText(d: ReservationDecision | undefined): string {
  if (!d) return 'absent';
  const s = d.standing;
  switch (s.kind) {
    case 'holds':
      return `holds ${idList(s.apqns.map(formatApqn))} on ${s.node}`;
    case 'conflict':
      return `conflict (${s.reason})`;
    case 'rejected':
      return `rejected (${s.problem.reason})`;
    case 'unplaced':
      return `unplaced (${s.reason})`;
    case 'released':
      return 'released';
  }
}

function idList(apqns: readonly string[]): string {
  return joinList([...apqns], 6);
}

function heldQueues(decision: ClusterDecision): Map<string, Map<string, HeldQueue>> {
  const held = new Map<string, Map<string, HeldQueue>>();
  for (const d of decision.reservations.values()) {
    if (d.standing.kind !== 'holds') continue;
    const onNode = held.get(d.standing.node) ?? new Map<string, HeldQueue>();
    for (const q of d.standing.apqns) onNode.set(formatApqn(q), { reservation: d.key, driver: d.spec?.driver ?? 'vfio_ap' });
    held.set(d.standing.node, onNode);
  }
  return held;
}

function maskChanges(state: APNodeState | undefined, before: NodeComposition | undefined, after: NodeComposition): MaskChange[] {
  const inventory = nodeInventory(state?.metadata.name ?? '', state?.status ?? {});
  const current = { apmask: inventory.apmask, aqmask: inventory.aqmask };
  const owned = (c: NodeComposition | undefined) => ({ apmask: c?.spec.apmask ?? ([] as MaskBit[]), aqmask: c?.spec.aqmask ?? ([] as MaskBit[]) });
  const was = effectiveMasks(owned(before), current);
  const will = effectiveMasks(owned(after), current);
  const out: MaskChange[] = [];
  for (const mask of ['apmask', 'aqmask'] as const) {
    const format = mask === 'apmask' ? formatAdapterId : formatDomainId;
    for (let id = 0; id <= 255; id++) {
      if (was[mask].has(id) !== will[mask].has(id)) out.push({ mask, id: format(id), host: will[mask].has(id) });
    }
  }
  return out;
}

function overrideChanges(before: NodeComposition | undefined, after: NodeComposition): QueueOverride[] {
  const was = new Map((before?.spec.overrides ?? []).map((o) => [o.apqn, o.driver]));
  return after.spec.overrides.filter((o) => was.get(o.apqn) !== o.driver);
}

/** Decides `planned` (in the form plannedObject gives) against `view`: the cluster as it is,
 *  which holds the old object when `planned` changes an existing one. */
export function planReservation(view: ClusterView, planned: APQNReservation, isNew: boolean): PlanReport {
  const key = reservationKey(planned);
  const others = view.reservations.filter((r) => reservationKey(r) !== key);
  // The baseline is the cluster as it is (with the old object, for a change).
  const before = decideCluster(view);
  const after = decideCluster({ ...view, reservations: [...others, planned] });
  const d = after.reservations.get(key)!;
  const report: PlanReport = {
    reservation: key,
    isNew,
    outcome: 'unplaced',
    choices: [],
    maskChanges: [],
    overrideChanges: [],
    displaced: [],
    inUse: [],
    inUsePolicy: d.spec?.inUsePolicy ?? planned.spec?.inUsePolicy ?? 'Wait',
    drainTimeoutSeconds: d.spec?.drainTimeoutSeconds ?? planned.spec?.drainTimeoutSeconds ?? 300,
    affected: [],
    notes: [],
  };
  if (d.claimWait) report.notes.push(d.claimWait);
  else if (d.specProblem && d.standing.kind === 'holds') report.notes.push(`the new spec is not accepted (${d.specProblem.reason}: ${d.specProblem.message}); the old placement stays`);
  if (view.nodeLabels.size === 0 && Object.keys(planned.spec?.nodeSelector ?? {}).length > 0) {
    report.notes.push('node labels could not be read: nodeSelector was checked against no labels');
  }

  for (const [k, a] of after.reservations) {
    if (k === key) continue;
    const b = standingText(before.reservations.get(k));
    const now = standingText(a);
    if (b !== now) report.affected.push({ reservation: k, before: b, after: now });
  }

  // The nodes a free choice would look at, with what each would cost.
  if (d.spec && !d.spec.nodeName && d.standing.kind !== 'rejected') {
    const held = heldQueues(before);
    const picked = d.standing.kind === 'holds' ? d.standing.node : undefined;
    for (const node of nodeCandidates(view)) {
      const r = schedule({ reservation: key, spec: d.spec, nodes: [node], held });
      report.choices.push(
        r.ok
          ? { node: node.name, picked: node.name === picked, displaced: r.placement.displacedWeight }
          : { node: node.name, picked: false, why: r.misses[0]?.why ?? r.message },
      );
    }
    report.choices.sort((x, y) => (x.node < y.node ? -1 : x.node > y.node ? 1 : 0));
  }

  const s = d.standing;
  if (s.kind === 'rejected') {
    return { ...report, outcome: 'rejected', reason: s.problem.reason, message: s.problem.message };
  }
  if (s.kind === 'unplaced') {
    const fragmentation = d.spec?.request ? fragmentationOf(view, before, planned, d.spec.request) : undefined;
    return { ...report, outcome: 'unplaced', reason: s.reason, message: s.message, ...(fragmentation ? { fragmentation } : {}) };
  }
  if (s.kind === 'released') return { ...report, outcome: 'unplaced', reason: 'Deleting', message: 'the reservation is being deleted' };
  if (s.kind === 'conflict') {
    return { ...report, outcome: 'conflict', node: s.node, apqns: s.apqns.map(formatApqn), reason: s.reason, message: s.message, holders: s.holders };
  }

  // Placed: what changes on its node.
  const node = s.node;
  const state = view.nodeStates.get(node);
  const composition = after.nodes.get(node)!;
  const baseline = before.nodes.get(node);
  report.outcome = 'placed';
  report.node = node;
  report.apqns = s.apqns.map(formatApqn);
  // Only what this reservation adds: a queue the node already gives up for others is not its doing.
  const alreadyDisplaced = new Set([...(baseline?.displaced.values() ?? [])].flat());
  report.displaced = (composition.displaced.get(key) ?? []).filter((q) => !alreadyDisplaced.has(q));
  report.maskChanges = maskChanges(state, baseline, composition);
  report.overrideChanges = overrideChanges(baseline, composition);
  const mdev = composition.spec.mdevs.find((m) => m.reservation === key);
  if (mdev) report.mdev = { uuid: mdev.uuid, provisional: isNew, adapters: mdev.adapters, domains: mdev.domains, controlDomains: mdev.controlDomains };

  const inventory = nodeInventory(node, state?.status ?? {});
  const leaving = new Set([...report.apqns, ...report.displaced]);
  for (const q of inventory.queues.values()) {
    if (q.driver === 'cex4queue' && q.requestsInFlight > 0 && leaving.has(q.apqn)) {
      report.inUse.push({ apqn: q.apqn, requestsInFlight: q.requestsInFlight });
    }
  }
  report.inUse.sort((x, y) => (x.apqn < y.apqn ? -1 : 1));

  if (state?.status?.cards) {
    const twin = buildNodeTwin(state);
    report.notes.push(...twin.notes.map((n) => `the copy of node ${node} differs: ${n}`));
    if (baseline) {
      const settle = runAgent(twin, baseline.spec);
      if (settle.entries.some((e) => e.kind === 'step') || !settle.synced) report.pendingBefore = settle;
    }
    report.steps = runAgent(twin, composition.spec);
  } else {
    report.notes.push(`node ${node} has not reported its bus yet: no steps can be previewed`);
  }
  return report;
}

// ------------------------------------------------------------------------------ rendering

/** The mdev UUID of a reservation not created yet depends on its uid: show it as a name. */
function provisionalName(report: PlanReport): (text: string) => string {
  if (!report.mdev?.provisional) return (t) => t;
  const uuid = report.mdev.uuid;
  return (t) => t.split(uuid).join('<new mdev>');
}

function groupIds(changes: readonly MaskChange[], mask: 'apmask' | 'aqmask', host: boolean): string {
  const ids = changes.filter((c) => c.mask === mask && c.host === host).map((c) => parseInt(c.id, 16));
  return idRanges(ids, mask === 'apmask' ? formatAdapterId : formatDomainId);
}

export function renderPlan(report: PlanReport, paint: Paint = plain): string {
  const out: string[] = [];
  const fix = provisionalName(report);
  out.push(`${paint('Plan', 'bold')} for APQNReservation ${report.reservation} (${report.isNew ? 'new' : 'change of the existing object'}; nothing was written)`);
  out.push('');

  if (report.choices.length > 0) {
    out.push('Nodes considered:');
    for (const c of report.choices) {
      const mark = c.picked ? paint('->', 'green') : '  ';
      out.push(`  ${mark} ${c.node}: ${c.why ?? `fits, takes ${plural(c.displaced ?? 0, 'other host queue')} from the host`}${c.picked ? ' (picked)' : ''}`);
    }
    out.push('');
  }

  switch (report.outcome) {
    case 'rejected':
      out.push(`${paint('Rejected', 'red')} (${report.reason}): ${report.message}`);
      out.push('Nothing would change on any node.');
      break;
    case 'unplaced':
      out.push(`${paint('Not placed', 'yellow')} (${report.reason}): ${report.message}`);
      out.push('Nothing would change until a node fits; the controller keeps trying.');
      if (report.fragmentation) {
        const f = report.fragmentation;
        out.push(`Enough queues are free on ${joinList(f.nodes)}, but not as one adapters x domains product: they are fragmented.`);
        for (const m of f.moves.slice(0, 5)) {
          out.push(`  without ${m.reservation} (moved elsewhere or deleted) it would be placed on ${m.node}: ${idList(m.apqns)}`);
        }
        if (f.moves.length > 5) out.push(`  … and ${plural(f.moves.length - 5, 'more such reservation')}`);
        if (f.moves.length > 0) out.push('  (a preview: kubectl apqn moves nothing)');
      }
      break;
    case 'conflict':
      out.push(`${paint('Conflict', 'red')} (${report.reason})${report.node ? ` on node ${report.node}` : ''}: ${report.message}`);
      out.push('Nothing would change until the holders release these queues (the older reservation wins; nothing is taken from it).');
      break;
    case 'placed':
      renderPlaced(report, out, paint, fix);
      break;
  }

  if (report.affected.length > 0) {
    out.push('');
    out.push('Other reservations affected:');
    for (const a of report.affected) out.push(`  ${a.reservation}: ${a.before} -> ${a.after}`);
  }
  if (report.notes.length > 0) {
    out.push('');
    for (const n of report.notes) out.push(`note: ${n}`);
  }
  return out.join('\n') + '\n';
}

/**
 * Whether a request fails only because the free queues are fragmented: some node has at least
 * adapters × domains free queues of one card type, and taking one placed reservation away (each
 * tried alone, with the controller's own decision) would let the request be placed.
 */
function fragmentationOf(
  view: ClusterView,
  before: ClusterDecision,
  planned: APQNReservation,
  request: { adapters: number; domains: number },
): PlanReport['fragmentation'] {
  const need = request.adapters * request.domains;
  const heldOn = (node: string) =>
    [...before.reservations.values()].flatMap((r) => (r.standing.kind === 'holds' && r.standing.node === node ? r.standing.apqns.map(formatApqn) : []));
  const nodes = [...view.nodeStates.values()]
    .filter((s) => nodeCapacity(s, view.reservations, heldOn(s.metadata.name ?? '')).types.some((t) => t.freeQueues >= need))
    .map((s) => s.metadata.name ?? '')
    .sort();
  if (nodes.length === 0) return undefined;
  const key = reservationKey(planned);
  const moves: NonNullable<PlanReport['fragmentation']>['moves'] = [];
  const holders = [...before.reservations.values()]
    .filter((r) => r.key !== key && r.standing.kind === 'holds' && nodes.includes(r.standing.node))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .slice(0, FRAGMENTATION_TRIES);
  for (const r of holders) {
    const without = view.reservations.filter((x) => reservationKey(x) !== r.key && reservationKey(x) !== key);
    const d = decideCluster({ ...view, reservations: [...without, planned] }).reservations.get(key);
    if (d?.standing.kind === 'holds') moves.push({ reservation: r.key, node: d.standing.node, apqns: d.standing.apqns.map(formatApqn) });
  }
  return { nodes, moves };
}

function renderPlaced(report: PlanReport, out: string[], paint: Paint, fix: (t: string) => string): void {
  out.push(`${paint('Placed', 'green')} on node ${report.node}: ${idList(report.apqns ?? [])}`);
  if (report.mdev) {
    const m = report.mdev;
    const ctrl = m.controlDomains.length ? `, control domains ${m.controlDomains.join(',')}` : '';
    out.push(`  mdev ${m.provisional ? '<new mdev> (its UUID is derived from the reservation uid, set when it is created)' : m.uuid}: ${m.adapters.join(',')} x ${m.domains.join(',')}${ctrl}`);
  }
  out.push('');
  if (report.maskChanges.length === 0 && report.overrideChanges.length === 0) {
    out.push(`Mask bits: no change on ${report.node}.`);
  } else {
    out.push(`Changes on node ${report.node}:`);
    for (const [mask, host] of [['apmask', false], ['aqmask', false], ['apmask', true], ['aqmask', true]] as const) {
      const ids = groupIds(report.maskChanges, mask, host);
      if (ids) out.push(`  ${mask} ${host ? 'set' : 'clear'} ${ids}${host ? ' (back to the host driver)' : ' (to vfio_ap)'}`);
    }
    for (const o of report.overrideChanges) out.push(`  driver_override ${o.apqn} = ${o.driver}`);
  }
  if (report.displaced.length > 0) {
    out.push(`Host queues displaced (not reserved, but in a cleared row or column): ${report.displaced.length}`);
    out.push(`  ${report.displaced.join(' ')}`);
  } else {
    out.push('Host queues displaced: none');
  }
  if (report.inUse.length > 0) {
    const list = report.inUse.map((q) => `${q.apqn} (${plural(q.requestsInFlight, 'request')})`).join(', ');
    const what =
      report.inUsePolicy === 'Force'
        ? 'inUsePolicy Force: the agent moves them anyway and the requests in flight are cut off (EAGAIN)'
        : report.inUsePolicy === 'Fail'
          ? 'inUsePolicy Fail: the agent refuses the move while they are in use'
          : `inUsePolicy Wait: the agent waits for them to drain (Stuck after ${report.drainTimeoutSeconds} s)`;
    out.push(`Host requests in flight on queues that leave the host: ${list}; ${what}`);
  }

  if (report.pendingBefore) {
    out.push('');
    out.push(`Node ${report.node} has not reached its current spec yet; the agent does this first (not part of this plan):`);
    renderSteps(report.pendingBefore, out, fix);
  }
  if (report.steps) {
    out.push('');
    out.push(`Node steps (the agent's own planner on a copy of ${report.node}'s reported bus), in order:`);
    renderSteps(report.steps, out, fix);
  }
}

function renderSteps(run: TwinRun, out: string[], fix: (t: string) => string): void {
  let n = 0;
  for (const e of run.entries) {
    if (e.kind === 'step') out.push(`  ${++n}. ${fix(e.text)}`);
    else if (e.kind === 'wait') out.push(`     waits: ${fix(e.text)}`);
    else out.push(`     note: ${fix(e.text)}`);
  }
  if (n === 0 && run.synced) out.push('  (nothing to do: the node already matches)');
  if (!run.synced) for (const b of run.blocked) out.push(`  stops here: ${fix(b)}`);
}

/** For -o json: the report with the provisional mdev UUID named as such. */
export function planJson(report: PlanReport): unknown {
  const fix = provisionalName(report);
  return JSON.parse(fix(JSON.stringify(report)));
}

/** The reservation's identity as the plan uses it (the file may omit the namespace). */
export function withNamespace(r: APQNReservation, namespace: string): APQNReservation {
  return { ...r, metadata: { ...r.metadata, namespace: r.metadata?.namespace ?? namespace } };
}
