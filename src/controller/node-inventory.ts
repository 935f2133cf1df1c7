// A node's AP inventory as the controller reasons about it: the agent's APNodeState.status
// turned into numeric-id maps once, so validation, scheduling and mask planning do not each
// re-parse strings. Entries the agent reported in a form we cannot parse are skipped (the
// agent owns that status; a bad entry must not stop the controller).

import type { CardGeneration, CardStatus, NodeStateStatus, QueueStatus } from '../api/types.js';
import { MAX_ID, apqnIndex, parseAdapterId, parseApqn } from '../apbus/ids.js';
import { Mask } from '../apbus/mask.js';
import { IdSet } from './id-set.js';
import type { HostQueue } from './mask-plan.js';

/** Card hwtype per generation: CEX4 = 10 … CEX8 = 14. vfio_ap binds 10..14 only. */
export const HWTYPE: Record<CardGeneration, number> = { CEX4: 10, CEX5: 11, CEX6: 12, CEX7: 13, CEX8: 14 };
export const MIN_VFIO_AP_HWTYPE = 10;
export const MAX_VFIO_AP_HWTYPE = 14;

export interface NodeInventory {
  name: string;
  cards: Map<number, CardStatus>;
  /** apqnIndex -> queue */
  queues: Map<number, QueueStatus>;
  apmask: IdSet;
  aqmask: IdSet;
  maxAdapterId: number;
  maxDomainId: number;
  /** Queues in the matrix of an mdev this operator does not own (apqnIndex -> mdev UUID): not ours to give. */
  foreignMdevQueues: Map<number, string>;
}

/**
 * Parsed once per status object: informer copies are never changed in place (an update is a new
 * object), so a node's report is parsed once per resourceVersion however many reservations,
 * gates and judgements read it. The result is shared: callers must not change it.
 */
const parsed = new WeakMap<NodeStateStatus, NodeInventory>();

export function nodeInventory(name: string, status: NodeStateStatus): NodeInventory {
  const memo = parsed.get(status);
  if (memo && memo.name === name) return memo;
  const inventory = parseInventory(name, status);
  parsed.set(status, inventory);
  return inventory;
}

function parseInventory(name: string, status: NodeStateStatus): NodeInventory {
  const cards = new Map<number, CardStatus>();
  for (const card of status.cards ?? []) {
    const id = tryParse(() => parseAdapterId(card.id));
    if (id !== undefined) cards.set(id, card);
  }
  const queues = new Map<number, QueueStatus>();
  for (const queue of status.queues ?? []) {
    const q = tryParse(() => parseApqn(queue.apqn));
    if (q) queues.set(apqnIndex(q.adapter, q.domain), queue);
  }
  const foreignMdevQueues = new Map<number, string>();
  for (const mdev of status.mdevs ?? []) {
    if (mdev.owned) continue;
    for (const line of mdev.matrix) {
      const q = tryParse(() => parseApqn(line)); // 'aa.' / '.dddd' lines (empty product) do not parse: skipped
      if (q) foreignMdevQueues.set(apqnIndex(q.adapter, q.domain), mdev.uuid);
    }
  }
  return {
    name,
    cards,
    queues,
    apmask: maskBits(status.apmask),
    aqmask: maskBits(status.aqmask),
    maxAdapterId: status.maxAdapterId ?? MAX_ID,
    maxDomainId: status.maxDomainId ?? MAX_ID,
    foreignMdevQueues,
  };
}

/** hwtype from the report, else from the type name ('CEX8C' -> 14); undefined when unknown. */
export function cardHwtype(card: CardStatus): number | undefined {
  if (card.hwtype !== undefined) return card.hwtype;
  const m = /^CEX(\d+)/i.exec(card.type);
  return m ? Number(m[1]) + 6 : undefined;
}

/** 'CEX7' for 13; 'hwtype 9' outside the CEX4..CEX8 names. */
export function generationName(hwtype: number | undefined): string {
  if (hwtype === undefined) return 'an unknown card type';
  const gen = Object.entries(HWTYPE).find(([, h]) => h === hwtype);
  return gen ? gen[0] : `hwtype ${hwtype}`;
}

/** A card that can serve queues right now. */
export function cardUsable(card: CardStatus): boolean {
  return card.online && card.config && !card.chkstop;
}

/** Queues the host driver holds now, weight 1 each (what a mask plan would displace). */
export function hostQueuesOf(inventory: NodeInventory): HostQueue[] {
  const out: HostQueue[] = [];
  for (const [i, q] of inventory.queues) {
    if (q.driver === 'cex4queue') out.push({ apqn: { adapter: i >> 8, domain: i & 0xff } });
  }
  return out;
}

function maskBits(text: string | undefined): IdSet {
  // No report yet: the boot default, both masks all ones.
  const mask = text === undefined ? Mask.all() : (tryParse(() => Mask.parseKernel(text)) ?? Mask.all());
  return IdSet.of(mask.bits());
}

function tryParse<T>(parse: () => T): T | undefined {
  try {
    return parse();
  } catch {
    return undefined;
  }
}
