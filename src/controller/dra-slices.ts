// What a node's DRA pool should publish (pure): one device per Ready vfio_ap reservation
// placed on the node, in ResourceSlices of at most 128 devices, and the fewest writes that take
// the stored slices there. An unchanged pool is not written at all.
//
// When the pool generation goes up follows from what the scheduler does (resource.k8s.io/v1
// ResourcePool docs; the structured allocator's GatherPools): a consumer takes, per pool, only
// the slices of the highest generation it has seen and ignores every older one; a pool whose
// slices disagree with resourceSliceCount is "incomplete" (refused only for AllocationMode All;
// our claims ask for exactly one device, which an incomplete pool can still give); a pool that
// lists a device name twice within one generation is "invalid" and not used. Slices are written
// one API call at a time, so a reader may see any mix of old and new slices of one generation.
// The docs ask drivers to bump the generation on every change; Kubernetes' own publisher
// (dynamic-resource-allocation/resourceslice) keeps it when a single slice update suffices,
// because one write is atomic. The rule here is what makes every such mix safe:
//   - devices only added or changed: keep the generation. Existing devices stay in their slice
//     (nothing moves, so no mix lists a device twice or misses one); new devices fill the first
//     slices with room, then new slices. A mix of old and new slices lists only devices that
//     exist, each with the attributes of one moment. One new device rewrites one slice; a new
//     slice rewrites every slice (resourceSliceCount is in each), and until then the pool looks
//     incomplete, which does not stop a one-device allocation.
//   - a device leaves (or the stored slices are not of one generation, or list a device twice): the
//     next generation, every slice rewritten and repacked, written before the extra slices are
//     deleted. Once the scheduler sees one new slice it drops all old ones, so an old slice still
//     listing the removed device is never combined with new ones (with the same generation, a
//     slice not yet rewritten or not yet deleted would keep offering the device).
//   - a changed owner (the Node appeared) is metadata the scheduler does not read: rewritten,
//     same generation.
import type { APNodeState, APQNReservation } from '../api/types.js';
import { reservationKey } from '../api/types.js';
import {
  DRA_DRIVER,
  DeviceAttr,
  MAX_DEVICES_PER_SLICE,
  RESOURCE_API_VERSION,
  boundedString,
  draDeviceName,
  reservationAttrValue,
  resourceSliceName,
  type DeviceAttribute,
  type OwnerReference,
  type ResourceSlice,
  type SliceDevice,
} from '../api/dra.js';
import { deepEqual } from '../k8s/merge-patch.js';
import { getCondition } from './conditions.js';

/** A reservation that has a device on `node` now: vfio_ap, placed there, Ready, not deleting. */
export function isPublishable(r: APQNReservation, node: string): boolean {
  return (
    (r.spec?.driver ?? 'vfio_ap') === 'vfio_ap' &&
    !r.metadata.deletionTimestamp &&
    r.status?.nodeName === node &&
    !!r.status.mdevUUID &&
    getCondition(r.status.conditions, 'Ready')?.status === 'True'
  );
}

const str = (value: string): DeviceAttribute => ({ string: boundedString(value) });
const int = (value: number): DeviceAttribute => ({ int: value });

function joined(values: Iterable<string>): string | undefined {
  const list = [...new Set(values)].filter((v) => v && v !== 'Unknown').sort();
  return list.length > 0 ? list.join(',') : undefined;
}

/** The device of one publishable reservation. Card facts come from the node's agent report. */
export function deviceOf(r: APQNReservation, node: string, nodeState?: APNodeState): SliceDevice {
  const key = reservationKey(r);
  const uuid = r.status!.mdevUUID!;
  const matrix = r.status?.matrix;
  const adapters = new Set(matrix?.adapters ?? (r.status?.apqns ?? []).map((q) => q.split('.')[0]!));
  const domains = new Set(matrix?.domains ?? (r.status?.apqns ?? []).map((q) => q.split('.')[1]!));
  const attributes: Record<string, DeviceAttribute> = {
    [DeviceAttr.reservation]: { string: reservationAttrValue(key) },
    [DeviceAttr.namespace]: str(r.metadata.namespace ?? ''),
    [DeviceAttr.mdevUUID]: str(uuid),
    [DeviceAttr.node]: str(node),
    [DeviceAttr.adapters]: int(adapters.size),
    [DeviceAttr.domains]: int(domains.size),
    [DeviceAttr.controlDomains]: int(matrix?.controlDomains?.length ?? 0),
  };
  const cards = (nodeState?.status?.cards ?? []).filter((c) => adapters.has(c.id));
  const cardType = joined(cards.map((c) => c.type));
  if (cardType) attributes[DeviceAttr.cardType] = str(cardType);
  const mode = joined(cards.map((c) => c.mode));
  if (mode) attributes[DeviceAttr.mode] = str(mode);
  const generations = cards.map((c) => /^CEX(\d+)/i.exec(c.type)?.[1]).filter((g): g is string => !!g).map(Number);
  if (generations.length > 0) attributes[DeviceAttr.cardGeneration] = int(Math.min(...generations));
  return { name: draDeviceName(key, uuid), attributes };
}

/**
 * Everything of a reservation that deviceOf reads, as one comparable string; undefined when it
 * publishes no device. Keep in step with isPublishable and deviceOf: an update that leaves it
 * unchanged cannot change any pool, and is not routed to the publisher.
 */
export function deviceInputsOf(r: APQNReservation): string | undefined {
  const node = r.status?.nodeName;
  if (!node || !isPublishable(r, node)) return undefined;
  const m = r.status?.matrix;
  return JSON.stringify([
    node,
    r.metadata.namespace ?? '',
    r.metadata.name,
    r.status!.mdevUUID,
    m?.adapters ?? null,
    m?.domains ?? null,
    m?.controlDomains?.length ?? 0,
    r.status?.apqns ?? [],
  ]);
}

/** The card facts of a node's agent report that devices carry (id, type, mode), comparable. */
export function cardFactsOf(nodeState: APNodeState | undefined): string {
  return (nodeState?.status?.cards ?? [])
    .map((c) => `${c.id}=${c.type}/${c.mode ?? ''}`)
    .sort()
    .join(',');
}

/** The node's devices, sorted by name; a duplicate name (same mdev UUID twice) is kept once. */
export function devicesForNode(node: string, reservations: readonly APQNReservation[], nodeState?: APNodeState): SliceDevice[] {
  const byName = new Map<string, SliceDevice>();
  for (const r of reservations) {
    if (!isPublishable(r, node)) continue;
    const device = deviceOf(r, node, nodeState);
    if (!byName.has(device.name)) byName.set(device.name, device);
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export function chunk<T>(items: readonly T[], size = MAX_DEVICES_PER_SLICE): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The Node as the slices' owner, so they go away with it (as kubelet-published slices do). */
export function nodeOwner(node: { metadata?: { name?: string; uid?: string } } | undefined): OwnerReference | undefined {
  if (!node?.metadata?.name || !node.metadata.uid) return undefined;
  return { apiVersion: 'v1', kind: 'Node', name: node.metadata.name, uid: node.metadata.uid, controller: true };
}

export interface SlicePlan {
  generation: number;
  /** Whether the generation went up (a device left, or the stored pool was not one generation). */
  bumped: boolean;
  /** Whole slices to create or replace (by name). */
  writes: ResourceSlice[];
  /** Names of stored slices to delete (after the writes). */
  deletes: string[];
}

function sliceObject(node: string, name: string, devices: SliceDevice[], generation: number, count: number, owners?: OwnerReference[]): ResourceSlice {
  return {
    apiVersion: RESOURCE_API_VERSION,
    kind: 'ResourceSlice',
    metadata: { name, ...(owners && owners.length > 0 ? { ownerReferences: owners } : {}) },
    spec: {
      driver: DRA_DRIVER,
      pool: { name: node, generation, resourceSliceCount: count },
      nodeName: node,
      devices,
    },
  };
}

const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Stored slices in index order (`…-2` before `…-10`), other names after them. */
function inIndexOrder(node: string, stored: readonly ResourceSlice[]): ResourceSlice[] {
  const prefix = resourceSliceName(node, 0).slice(0, -1);
  const index = (s: ResourceSlice) => {
    const name = s.metadata?.name ?? '';
    const tail = name.startsWith(prefix) ? name.slice(prefix.length) : '';
    return /^\d+$/.test(tail) ? Number(tail) : Number.MAX_SAFE_INTEGER;
  };
  return [...stored].sort((a, b) => index(a) - index(b) || ((a.metadata?.name ?? '') < (b.metadata?.name ?? '') ? -1 : 1));
}

interface Layout {
  name: string;
  devices: SliceDevice[];
}

/** Keeps every stored slice and its devices; new devices fill the slices with room, then new slices. */
function fill(node: string, kept: Layout[], added: readonly SliceDevice[]): Layout[] {
  const slices = kept.map((k) => ({ name: k.name, devices: [...k.devices] }));
  const taken = new Set(slices.map((s) => s.name));
  let next = 0;
  const freshName = () => {
    while (taken.has(resourceSliceName(node, next))) next++;
    taken.add(resourceSliceName(node, next));
    return resourceSliceName(node, next);
  };
  let at = 0;
  for (const device of added) {
    while (at < slices.length && slices[at]!.devices.length >= MAX_DEVICES_PER_SLICE) at++;
    if (at === slices.length) slices.push({ name: freshName(), devices: [] });
    slices[at]!.devices.push(device);
  }
  // A slice left empty (stored empty, never by this planner) goes: it would only count.
  return slices.filter((s) => s.devices.length > 0);
}

/**
 * The writes that make `stored` (this driver's slices of this node) publish `devices`, or
 * undefined when nothing needs writing. No devices → every slice deleted. See the header for
 * when the generation goes up.
 */
export function planPool(
  node: string,
  devices: readonly SliceDevice[],
  stored: readonly ResourceSlice[],
  owner?: OwnerReference,
): SlicePlan | undefined {
  const wanted = new Map(devices.map((d) => [d.name, d]));
  const current = inIndexOrder(node, stored);
  const generations = new Set(current.map((s) => s.spec?.pool?.generation ?? 0));
  const top = Math.max(0, ...generations);
  // What stays where it is: stored devices still wanted (with their current content).
  const placed = new Set<string>();
  let left = false;
  const kept: Layout[] = current.map((s) => {
    const devicesKept: SliceDevice[] = [];
    for (const d of s.spec?.devices ?? []) {
      const now = wanted.get(d.name);
      if (!now || placed.has(d.name)) {
        left = true; // gone, or listed twice
        continue;
      }
      placed.add(d.name);
      devicesKept.push(now);
    }
    return { name: s.metadata?.name ?? '', devices: devicesKept };
  });
  const added = devices.filter((d) => !placed.has(d.name));
  const bumped = left || generations.size > 1;
  const generation = bumped ? top + 1 : current.length > 0 ? top : 1;
  const layout: Layout[] = bumped
    ? chunk([...devices].sort(byName)).map((d, i) => ({ name: resourceSliceName(node, i), devices: d }))
    : fill(node, kept, added);

  const storedByName = new Map(current.map((s) => [s.metadata?.name ?? '', s]));
  const writes: ResourceSlice[] = [];
  for (const l of layout) {
    const existing = storedByName.get(l.name);
    // Without a known owner (no Node object), the stored owner references stay as they are.
    const owners = owner ? [owner] : existing?.metadata?.ownerReferences;
    const slice = sliceObject(node, l.name, [...l.devices].sort(byName), generation, layout.length, owners);
    if (existing && sameSlice(existing, slice)) continue;
    writes.push(slice);
  }
  const inLayout = new Set(layout.map((l) => l.name));
  const deletes = current.map((s) => s.metadata?.name ?? '').filter((n) => n && !inLayout.has(n));
  if (writes.length === 0 && deletes.length === 0) return undefined;
  return { generation, bumped, writes, deletes };
}

/** Whether a stored slice already says what `want` says (what the scheduler reads, and the owner). */
function sameSlice(stored: ResourceSlice, want: ResourceSlice): boolean {
  return (
    stored.spec?.driver === want.spec.driver &&
    stored.spec?.nodeName === want.spec.nodeName &&
    deepEqual(stored.spec?.pool, want.spec.pool) &&
    deepEqual(stored.spec?.devices ?? [], want.spec.devices) &&
    deepEqual(stored.metadata?.ownerReferences ?? [], want.metadata?.ownerReferences ?? [])
  );
}
