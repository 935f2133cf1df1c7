// One concern: which node pools an informer event can change, in O(1) per event. The DRA side
// keeps its own indexes by node — reservations by status.nodeName and its ResourceSlices by
// spec.nodeName — maintained from the informers' add/update/delete events (never by listing),
// so that reconciling a node reads only that node's objects. The predicates here decide whether
// an update matters at all: agent heartbeats and counters, a Node's status, and reservation
// changes that leave the device as it was enqueue nothing.
import type { APNodeState, APQNReservation } from '../api/types.js';
import { objectKey } from '../k8s/keys.js';
import { cardFactsOf, deviceInputsOf } from './dra-slices.js';

/** Objects grouped by the node they belong to, updated from informer events. */
export class ByNode<T extends { metadata?: { name?: string; namespace?: string } }> {
  private readonly groups = new Map<string, Map<string, T>>();
  private readonly nodeOfKey = new Map<string, string>();

  constructor(private readonly nodeOf: (obj: T) => string | undefined) {}

  /** Records the object's current state (an add or an update). */
  set(obj: T): void {
    const key = objectKey(obj);
    const node = this.nodeOf(obj);
    const before = this.nodeOfKey.get(key);
    if (before !== undefined && before !== node) this.drop(before, key);
    if (!node) {
      this.nodeOfKey.delete(key);
      return;
    }
    this.nodeOfKey.set(key, node);
    let group = this.groups.get(node);
    if (!group) this.groups.set(node, (group = new Map()));
    group.set(key, obj);
  }

  delete(obj: T): void {
    const key = objectKey(obj);
    const node = this.nodeOfKey.get(key);
    if (node === undefined) return;
    this.nodeOfKey.delete(key);
    this.drop(node, key);
  }

  of(node: string): T[] {
    const group = this.groups.get(node);
    return group ? [...group.values()] : [];
  }

  nodes(): string[] {
    return [...this.groups.keys()];
  }

  private drop(node: string, key: string): void {
    const group = this.groups.get(node);
    if (!group) return;
    group.delete(key);
    if (group.size === 0) this.groups.delete(node);
  }
}

/**
 * The nodes whose pools a reservation event can change: none when the reservation's device
 * (or its absence) is the same before and after; else its node before and after.
 */
export function nodesToRepublish(old: APQNReservation | undefined, now: APQNReservation | undefined): string[] {
  const before = old ? deviceInputsOf(old) : undefined;
  const after = now ? deviceInputsOf(now) : undefined;
  if (before === after) return [];
  const nodes = new Set<string>();
  if (before !== undefined && old?.status?.nodeName) nodes.add(old.status.nodeName);
  if (after !== undefined && now?.status?.nodeName) nodes.add(now.status.nodeName);
  return [...nodes];
}

/** Whether an APNodeState update changes what its node's devices say (card type and mode). */
export function nodeStateMatters(old: APNodeState, now: APNodeState): boolean {
  return cardFactsOf(old) !== cardFactsOf(now);
}

/** Whether a Node update changes the slices' owner (a Node recreated under the same name). */
export function nodeMatters(old: { metadata?: { uid?: string } }, now: { metadata?: { uid?: string } }): boolean {
  return old.metadata?.uid !== now.metadata?.uid;
}
