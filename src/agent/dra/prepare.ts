// NodePrepareResources for one claim, as decisions: is the allocated device ours, on this node,
// a reservation this node's spec names, of the claim's own namespace — and is its mdev on the
// bus with exactly the reserved matrix and the vfio-ap device API? The answer is the devices
// to hand out (with their /dev/vfio group), or a PrepareRefusal saying why not.
import { CLAIM_REQUEST, DRA_DRIVER, draDeviceName, type ResourceClaim } from '../../api/dra.js';
import type { MdevIntent } from '../../api/types.js';
import { SysfsError } from '../../apbus/errno.js';
import { parseAdapterId, parseDomainId } from '../../apbus/ids.js';
import { normalizeMatrix, readMatrix, sameMatrix } from '../../apbus/backend/mdevs.js';
import { VFIO_AP_DEVICE_API, readMdevVfio } from '../../apbus/backend/vfio-device.js';
import type { SysfsIO } from '../../apbus/sysfs-io.js';
import { POD_CLAIM_NAME_ANNOTATION, type ClaimIdentity, type PreparedDevice } from './files.js';

/** A claim this node will not prepare; the message goes back to the kubelet (and the pod's events). */
export class PrepareRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrepareRefusal';
  }
}

export interface ClaimRef {
  namespace: string;
  name: string;
  uid: string;
}

export function claimIdentity(ref: ClaimRef, rc: ResourceClaim): ClaimIdentity {
  const podClaimName = rc.metadata?.annotations?.[POD_CLAIM_NAME_ANNOTATION];
  return {
    namespace: ref.namespace,
    name: ref.name,
    uid: ref.uid,
    ...(rc.metadata?.generation !== undefined ? { generation: rc.metadata.generation } : {}),
    ...(podClaimName ? { podClaimName } : {}),
  };
}

/** The spec mdev whose DRA device name is `device` (names embed the mdev UUID, so at most one). */
export function intentForDevice(mdevs: readonly MdevIntent[], device: string): MdevIntent | undefined {
  return mdevs.find((m) => {
    try {
      return draDeviceName(m.reservation, m.uuid) === device;
    } catch {
      return false;
    }
  });
}

function namespaceOf(reservationKey: string): string {
  return reservationKey.slice(0, reservationKey.indexOf('/'));
}

/** Checks the bus: the mdev exists, is a vfio-ap device, has exactly the intent's matrix. */
export function checkMdev(io: SysfsIO, intent: MdevIntent): { iommuGroup: number } {
  let info;
  try {
    info = readMdevVfio(io, intent.uuid);
  } catch (err) {
    if (err instanceof SysfsError && err.errno === 'ENOENT') {
      throw new PrepareRefusal(`mdev ${intent.uuid} of reservation ${intent.reservation} does not exist on this node (yet)`);
    }
    throw err;
  }
  if (info.deviceApi !== VFIO_AP_DEVICE_API) {
    throw new PrepareRefusal(`mdev ${intent.uuid} has device_api ${JSON.stringify(info.deviceApi)}, not ${VFIO_AP_DEVICE_API}`);
  }
  const wanted = normalizeMatrix({
    adapters: intent.adapters.map(parseAdapterId),
    domains: intent.domains.map(parseDomainId),
    controlDomains: intent.controlDomains.map(parseDomainId),
  });
  const actual = readMatrix(io, intent.uuid);
  if (!sameMatrix(normalizeMatrix(actual), wanted)) {
    throw new PrepareRefusal(
      `mdev ${intent.uuid} does not have the matrix reservation ${intent.reservation} reserved (the agent may still be applying it)`,
    );
  }
  return { iommuGroup: info.iommuGroup };
}

/**
 * What to prepare for `rc` on `node`, whose spec names `mdevs`. Throws PrepareRefusal for a
 * claim that must not (or cannot yet) get its device here.
 */
export function planPrepare(ref: ClaimRef, rc: ResourceClaim, node: string, mdevs: readonly MdevIntent[], io: SysfsIO): PreparedDevice[] {
  const what = `ResourceClaim ${ref.namespace}/${ref.name}`;
  if (rc.metadata?.uid !== ref.uid) {
    throw new PrepareRefusal(`${what} has uid ${rc.metadata?.uid ?? '?'}, the kubelet asked for ${ref.uid} (deleted and recreated?)`);
  }
  const results = (rc.status?.allocation?.devices?.results ?? []).filter((r) => r.driver === DRA_DRIVER);
  if (results.length === 0) throw new PrepareRefusal(`${what} has no device of driver ${DRA_DRIVER} allocated`);
  if (results.length > 1) {
    throw new PrepareRefusal(`${what} has ${results.length} vfio_ap devices; a guest can use one (libvirt allows one vfio-ap hostdev per guest)`);
  }
  const result = results[0]!;
  if (result.adminAccess) throw new PrepareRefusal(`${what} asks for admin access to ${result.device}; vfio_ap devices are never shared`);
  if (result.pool !== node) throw new PrepareRefusal(`${what} is allocated device ${result.pool}/${result.device}, which is not on node ${node}`);
  const intent = intentForDevice(mdevs, result.device);
  if (!intent) throw new PrepareRefusal(`device ${result.device} is not a reservation of node ${node} (no such mdev in APNodeState ${node})`);
  const owner = namespaceOf(intent.reservation);
  if (owner !== ref.namespace) {
    throw new PrepareRefusal(
      `refused: device ${result.device} belongs to reservation ${intent.reservation}; a claim in namespace ${ref.namespace} cannot use it`,
    );
  }
  const { iommuGroup } = checkMdev(io, intent);
  return [
    {
      request: result.request || CLAIM_REQUEST,
      pool: result.pool,
      device: result.device,
      mdevUUID: intent.uuid,
      iommuGroup,
      reservation: intent.reservation,
    },
  ];
}
