// Placing a reservation: which node, and (for request-based reservations) which queues.
//  - spec.nodeName: only that node is checked (a held queue there is conflicts.ts's business).
//  - otherwise every node matching spec.nodeSelector is a candidate; with explicit apqns a
//    node must have them all and none held by another reservation; with a request, a fitting
//    adapters × domains product is searched (queue-search.ts).
// Among fitting nodes the winner displaces the least extra host-queue weight — the node's mask
// plan with the placement minus without it (0 in DriverOverride mode or for driver: host) —
// then comes first by node name. A placement whose mask plan would take a queue from a
// `driver: host` reservation does not fit (never a silent move).

import type { BindingMode, Driver, NodeStateSpec, NodeStateStatus } from '../api/types.js';
import { type Apqn, apqnIndex, formatAdapterId, formatApqn, formatDomainId, parseApqn } from '../apbus/ids.js';
import { effectiveMasks } from './mask-bits.js';
import { type MaskPlan, type MaskPlanOptions, PROTECTED, planMaskClears } from './mask-plan.js';
import { hostQueuesOf, nodeInventory } from './node-inventory.js';
import { joinList, plural } from './phrases.js';
import { type NodeQueueView, criteria, productOf, searchQueues } from './queue-search.js';
import { type RejectReason, type ValidSpec, checkOnNode, summarize } from './validate.js';

export interface NodeCandidate {
  name: string;
  labels: Readonly<Record<string, string>>;
  /** The agent's report; undefined until it has reported. */
  status?: NodeStateStatus;
  /** The node's current desired state: its owned mask bits count as applied; its binding mode. */
  spec?: NodeStateSpec;
}

export interface HeldQueue {
  reservation: string; // namespace/name
  driver: Driver;
}

/** node name -> canonical APQN -> holder (conflicts.ts's winners, with their drivers). */
export type HeldQueues = ReadonlyMap<string, ReadonlyMap<string, HeldQueue>>;

export interface ScheduleInput {
  /** namespace/name of the reservation being placed: its own holdings do not count against it. */
  reservation: string;
  spec: ValidSpec;
  nodes: readonly NodeCandidate[];
  held: HeldQueues;
  maskPlanOptions?: MaskPlanOptions;
  searchBudget?: number;
  /**
   * false: the caller compares no nodes and reads no plan (a pinned reservation, step 3), so
   * the node's mask plans are made only when a driver: host holder there could be displaced.
   */
  weigh?: boolean;
}

export interface Placement {
  node: string;
  apqns: string[];
  adapters: string[];
  domains: string[];
  /** Host-queue weight this placement displaces on top of the node's other reservations. */
  displacedWeight: number;
  /** The node's whole mask plan with this placement (vfio_ap on a node in mask mode). */
  plan?: MaskPlan;
}

export type ScheduleReason = 'NoFittingNode' | 'NodeNotFound' | 'Conflict' | RejectReason;

export interface NodeMiss {
  node: string;
  reason: ScheduleReason;
  /** Short, for a list of nodes: "only 1 of the 2 adapters needed (…)". */
  why: string;
  /** A whole sentence naming the node, for a condition about this node alone. */
  message: string;
  temporary: boolean;
}

export type ScheduleResult =
  | { ok: true; placement: Placement }
  | { ok: false; reason: ScheduleReason; message: string; temporary: boolean; misses: NodeMiss[] };

const MAX_NODES_IN_MESSAGE = 6;

export function schedule(input: ScheduleInput): ScheduleResult {
  const { spec } = input;
  const nodes = [...input.nodes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const candidates = spec.nodeName ? nodes.filter((n) => n.name === spec.nodeName) : nodes;
  if (spec.nodeName && candidates.length === 0) {
    const why = `node ${spec.nodeName} has no APNodeState yet (is the agent running there?)`;
    return { ok: false, reason: 'NodeNotFound', message: why, temporary: true, misses: [{ node: spec.nodeName, reason: 'NodeNotFound', why, message: why, temporary: true }] };
  }

  let best: Placement | undefined;
  const misses: NodeMiss[] = [];
  for (const node of candidates) {
    const outcome = placeOnNode(input, node);
    if ('why' in outcome) misses.push(outcome);
    else if (!best || outcome.displacedWeight < best.displacedWeight) best = outcome; // names ascend: ties keep the first
  }
  if (best) return { ok: true, placement: best };

  if (spec.nodeName) {
    const miss = misses[0]!;
    return { ok: false, reason: miss.reason, message: miss.message, temporary: miss.temporary, misses };
  }
  if (candidates.length === 0) {
    return { ok: false, reason: 'NoFittingNode', message: 'no node has reported an AP inventory yet (are the agents running?)', temporary: true, misses };
  }
  const listed = misses.slice(0, MAX_NODES_IN_MESSAGE).map((m) => `${m.node}: ${m.why}`);
  const more = misses.length > MAX_NODES_IN_MESSAGE ? `; and ${plural(misses.length - MAX_NODES_IN_MESSAGE, 'more node')}` : '';
  return {
    ok: false,
    reason: 'NoFittingNode',
    message: `no node fits ${wanted(spec)}: ${listed.join('; ')}${more}`,
    temporary: true,
    misses,
  };
}

function wanted(spec: ValidSpec): string {
  if (spec.apqns) return joinList(spec.apqns.map(formatApqn));
  const r = spec.request!;
  return `${plural(r.adapters, 'adapter')} × ${plural(r.domains, 'domain')} (${criteria(spec)})`;
}

function selects(selector: Readonly<Record<string, string>>, labels: Readonly<Record<string, string>>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function placeOnNode(input: ScheduleInput, node: NodeCandidate): Placement | NodeMiss {
  const { spec } = input;
  const miss = (reason: ScheduleReason, why: string, temporary: boolean, message = `node ${node.name}: ${why}`): NodeMiss => ({
    node: node.name,
    reason,
    why,
    message,
    temporary,
  });
  const rejected = (problems: ReturnType<typeof checkOnNode>): NodeMiss => {
    const p = summarize(problems);
    return miss(spec.nodeName ? p.reason : 'NoFittingNode', p.message.split(` on node ${node.name}`).join(''), p.temporary, p.message);
  };
  if (!selects(spec.nodeSelector, node.labels)) return miss('NoFittingNode', 'not selected by nodeSelector', false);
  if (!node.status) return miss('NoFittingNode', 'no AP inventory reported yet (is the agent running?)', true);

  const inventory = nodeInventory(node.name, node.status);
  const owned = { apmask: node.spec?.apmask ?? [], aqmask: node.spec?.aqmask ?? [] };
  const masks = effectiveMasks(owned, inventory);
  const bindingMode: BindingMode = node.spec?.bindingMode ?? 'Masks';
  const heldByOthers = new Map<number, { reservation: string; protected: boolean }>();
  for (const [apqn, holder] of input.held.get(node.name) ?? []) {
    if (holder.reservation === input.reservation) continue;
    const q = parseApqn(apqn);
    heldByOthers.set(apqnIndex(q.adapter, q.domain), { reservation: holder.reservation, protected: holder.driver === 'host' });
  }

  let product: Apqn[];
  if (spec.apqns) {
    product = spec.apqns;
    const problems = checkOnNode(spec, product, inventory);
    if (problems.length > 0) return rejected(problems);
    if (!spec.nodeName) {
      const held = product.filter((q) => heldByOthers.has(apqnIndex(q.adapter, q.domain)));
      if (held.length > 0) {
        const by = [...new Set(held.map((q) => heldByOthers.get(apqnIndex(q.adapter, q.domain))!.reservation))];
        return miss('NoFittingNode', `${joinList(held.map(formatApqn))} held by ${joinList(by, 3)}`, true);
      }
    }
  } else {
    const view: NodeQueueView = { inventory, masks, heldByOthers, bindingMode };
    const found = searchQueues(view, spec, input.searchBudget);
    if (!found.ok) return miss('NoFittingNode', found.why, true);
    product = productOf(found.adapters, found.domains);
    const problems = checkOnNode(spec, product, inventory);
    if (problems.length > 0) return rejected(problems);
  }

  const adapters = [...new Set(product.map((q) => q.adapter))].sort((a, b) => a - b);
  const domains = [...new Set(product.map((q) => q.domain))].sort((a, b) => a - b);
  const placement: Placement = {
    node: node.name,
    apqns: product.map(formatApqn),
    adapters: adapters.map(formatAdapterId),
    domains: domains.map(formatDomainId),
    displacedWeight: 0,
  };
  if (spec.driver !== 'vfio_ap' || bindingMode !== 'Masks') return placement;
  // Without a protected queue on the node no plan can take one: the plans would only weigh.
  if (input.weigh === false && ![...heldByOthers.values()].some((h) => h.protected)) return placement;

  const hostQueues = hostQueuesOf(inventory).map((hq) =>
    heldByOthers.get(apqnIndex(hq.apqn.adapter, hq.apqn.domain))?.protected ? { ...hq, weight: PROTECTED } : hq,
  );
  const othersReserved = [...heldByOthers.entries()].filter(([, h]) => !h.protected).map(([i]) => ({ adapter: i >> 8, domain: i & 0xff }));
  const base = planMaskClears({ ...masks, reserved: othersReserved, hostQueues }, input.maskPlanOptions);
  const plan = planMaskClears({ ...masks, reserved: [...othersReserved, ...product], hostQueues }, input.maskPlanOptions);
  const before = new Set(base.conflicts);
  const taken = plan.conflicts.filter((q) => !before.has(q));
  if (taken.length > 0) {
    const holders = [...new Set(taken.flatMap((q) => {
      const p = parseApqn(q);
      const h = heldByOthers.get(apqnIndex(p.adapter, p.domain));
      return h ? [h.reservation] : [];
    }))];
    const what = `would take ${joinList(taken)} from the host, held by driver: host ${holders.length === 1 ? 'reservation' : 'reservations'} ${joinList(holders, 3)}`;
    return miss(spec.nodeName ? 'Conflict' : 'NoFittingNode', `freeing these queues ${what}`, true, `freeing these queues on node ${node.name} ${what}`);
  }
  placement.plan = plan;
  placement.displacedWeight = Math.max(0, plan.displacedWeight - base.displacedWeight);
  return placement;
}
