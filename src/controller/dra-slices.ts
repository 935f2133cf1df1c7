// What a node's DRA pool should publish (pure): one device per Ready vfio_ap reservation
// placed on the node, in ResourceSlices of at most 128 devices, and the writes that take the
// stored slices there. A rewrite bumps pool.generation, so the scheduler never combines slices
// of two versions of the pool; an unchanged pool is not written at all.
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
  /** Whole slices to create or replace (by name). */
  writes: ResourceSlice[];
  /** Names of stored slices to delete (after the writes). */
  deletes: string[];
}

function sliceObject(node: string, index: number, devices: SliceDevice[], generation: number, count: number, owner?: OwnerReference): ResourceSlice {
  return {
    apiVersion: RESOURCE_API_VERSION,
    kind: 'ResourceSlice',
    metadata: { name: resourceSliceName(node, index), ...(owner ? { ownerReferences: [owner] } : {}) },
    spec: {
      driver: DRA_DRIVER,
      pool: { name: node, generation, resourceSliceCount: count },
      nodeName: node,
      devices,
    },
  };
}

/** Whether the stored slices already publish exactly `chunks` as one complete pool generation. */
function upToDate(node: string, chunks: SliceDevice[][], stored: ResourceSlice[], owner?: OwnerReference): boolean {
  if (stored.length !== chunks.length) return false;
  const generation = stored[0]?.spec.pool.generation;
  return chunks.every((devices, i) => {
    const s = stored.find((x) => x.metadata?.name === resourceSliceName(node, i));
    return (
      !!s &&
      s.spec.pool.name === node &&
      s.spec.pool.generation === generation &&
      s.spec.pool.resourceSliceCount === chunks.length &&
      s.spec.nodeName === node &&
      deepEqual(s.spec.devices ?? [], devices) &&
      (!owner || deepEqual(s.metadata?.ownerReferences ?? [], [owner]))
    );
  });
}

/**
 * The writes that make `stored` (this driver's slices of this node) publish `devices`, or
 * undefined when nothing needs writing. No devices → every slice deleted.
 */
export function planPool(
  node: string,
  devices: readonly SliceDevice[],
  stored: readonly ResourceSlice[],
  owner?: OwnerReference,
): SlicePlan | undefined {
  const chunks = chunk(devices);
  const current = [...stored];
  if (upToDate(node, chunks, current, owner)) return undefined;
  const generation = Math.max(0, ...current.map((s) => s.spec?.pool?.generation ?? 0)) + 1;
  const writes = chunks.map((d, i) => sliceObject(node, i, d, generation, chunks.length, owner));
  const wanted = new Set(writes.map((w) => w.metadata!.name!));
  const deletes = current.map((s) => s.metadata?.name ?? '').filter((n) => n && !wanted.has(n));
  return { generation, writes, deletes };
}
