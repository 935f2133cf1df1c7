// The Dynamic Resource Allocation contract between the controller (which publishes one DRA
// device per Ready vfio_ap reservation and creates a ResourceClaim per bound APQNClaim) and the
// agent (the node's kubelet DRA plugin). Both derive device names and attribute values from
// the same functions here, so the agent can map an allocated device back to the reservation in
// its own APNodeState.spec without reading any ResourceSlice.
//
// Wire types are the resource.k8s.io/v1 JSON shapes (Kubernetes 1.34), only the fields used.
import { createHash } from 'node:crypto';

/** The DRA driver name: ResourceSlices, allocation results, CDI vendor, kubelet plugin name. */
export const DRA_DRIVER = 'ap.s390x.io';
/** The DeviceClass (deploy/dra/deviceclass.yaml) every operator-made ResourceClaim names. */
export const DEVICE_CLASS = 'vfio-ap.ap.s390x.io';
/** The one request of an operator-made ResourceClaim (VMI hostDevices[].requestName). */
export const CLAIM_REQUEST = 'apqn';
export const RESOURCE_GROUP = 'resource.k8s.io';
export const RESOURCE_VERSION = 'v1';
export const RESOURCE_API_VERSION = `${RESOURCE_GROUP}/${RESOURCE_VERSION}`;

// Limits of resource.k8s.io/v1 (validation of ResourceSlice).
export const MAX_DEVICES_PER_SLICE = 128;
export const MAX_ATTRIBUTES_PER_DEVICE = 32;
export const MAX_ATTRIBUTE_STRING = 64;
const DNS_LABEL_MAX = 63;

/** Device attribute names (unqualified: they live in the driver's domain, `ap.s390x.io`). */
export const DeviceAttr = {
  /** `<namespace>/<name>` of the reservation (shortened with a hash beyond 64 characters). */
  reservation: 'reservation',
  namespace: 'namespace',
  /** The matrix mdev's UUID; also the attribute KubeVirt's virt-launcher reads (KEP-5304 metadata). */
  mdevUUID: 'mdevUUID',
  node: 'node',
  adapters: 'adapters',
  domains: 'domains',
  controlDomains: 'controlDomains',
  /** Card types of the reserved adapters, e.g. `CEX8C` (comma-joined when mixed). */
  cardType: 'cardType',
  /** Lowest card generation of the reserved adapters (7 for CEX7): `>=` in a selector. */
  cardGeneration: 'cardGeneration',
  /** CCA | EP11 | Accel (comma-joined when mixed). */
  mode: 'mode',
} as const;

/** Label on the ResourceClaims the controller creates (its informer selects on it). */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY = 'apqn-operator';

function shortHash(text: string, hexChars: number): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, hexChars);
}

/**
 * A string attribute value within the 64-character limit: the value itself when it fits,
 * else its first 47 characters, `~` and 16 hex digits of its SHA-256 (deterministic, so a
 * CEL selector built from the same function still matches).
 */
export function boundedString(value: string): string {
  if (value.length <= MAX_ATTRIBUTE_STRING) return value;
  return `${value.slice(0, MAX_ATTRIBUTE_STRING - 17)}~${shortHash(value, 16)}`;
}

/** The `reservation` attribute value of a reservation key `namespace/name`. */
export function reservationAttrValue(reservationKey: string): string {
  return boundedString(reservationKey);
}

/**
 * The DRA device name (a DNS label) of a reservation's mdev: a readable slug of
 * `namespace-name` (at most 26 characters) and the mdev UUID. The UUID is unique per
 * reservation object (derived from its metadata.uid), so names never collide within a pool,
 * and a deleted-and-recreated reservation gets a new device that no old allocation names.
 */
export function draDeviceName(reservationKey: string, mdevUUID: string): string {
  const uuid = mdevUUID.toLowerCase();
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(uuid)) {
    throw new Error(`mdev UUID ${JSON.stringify(mdevUUID)} is not canonical`);
  }
  const room = DNS_LABEL_MAX - uuid.length - 1;
  const slug = reservationKey
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+/, '')
    .slice(0, room)
    .replace(/-+$/, '');
  return `${slug || 'r'}-${uuid}`;
}

/** The CEL selector that picks exactly the device of one reservation. */
export function reservationSelector(reservationKey: string): string {
  return `device.attributes["${DRA_DRIVER}"].${DeviceAttr.reservation} == ${JSON.stringify(reservationAttrValue(reservationKey))}`;
}

/** ResourceSlice name for slice `index` of a node's pool (a DNS subdomain, ≤ 253 chars). */
export function resourceSliceName(node: string, index: number): string {
  const suffix = `-${DRA_DRIVER}-${index}`;
  const room = 253 - suffix.length;
  const base = node.length <= room ? node : `${node.slice(0, room - 17).replace(/[.-]+$/, '')}-${shortHash(node, 16)}`;
  return `${base}${suffix}`;
}

// ---------------------------------------------------------------------------------------------
// resource.k8s.io/v1 wire shapes (the subset used here)

/** For CustomResourceClient (src/k8s/client.ts): raw-JSON clients of the two DRA kinds used. */
export const ResourceSliceType = {
  group: RESOURCE_GROUP,
  version: RESOURCE_VERSION,
  plural: 'resourceslices',
  kind: 'ResourceSlice',
  namespaced: false,
};
export const ResourceClaimType = {
  group: RESOURCE_GROUP,
  version: RESOURCE_VERSION,
  plural: 'resourceclaims',
  kind: 'ResourceClaim',
  namespaced: true,
};

export interface DeviceAttribute {
  string?: string;
  int?: number;
  bool?: boolean;
  version?: string;
}

export interface SliceDevice {
  name: string;
  attributes?: Record<string, DeviceAttribute>;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ResourceSlice {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    ownerReferences?: OwnerReference[];
  };
  spec: {
    driver: string;
    pool: { name: string; generation: number; resourceSliceCount: number };
    nodeName?: string;
    devices: SliceDevice[];
  };
}

export interface DeviceRequestResult {
  request: string;
  driver: string;
  pool: string;
  device: string;
  adminAccess?: boolean;
}

export interface ConsumerReference {
  apiGroup?: string;
  resource: string;
  name: string;
  uid: string;
}

export interface ResourceClaim {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    deletionTimestamp?: string;
  };
  spec: {
    devices: {
      requests: Array<{
        name: string;
        exactly?: {
          deviceClassName: string;
          allocationMode?: 'ExactCount' | 'All';
          count?: number;
          selectors?: Array<{ cel?: { expression: string } }>;
        };
      }>;
    };
  };
  status?: {
    allocation?: {
      devices?: { results?: DeviceRequestResult[] };
      nodeSelector?: unknown;
    };
    reservedFor?: ConsumerReference[];
  };
}
