// What a guest's container needs to open a matrix mdev through VFIO: the mdev's IOMMU group
// (its `iommu_group` link names /dev/vfio/<group>) and the device API of its type
// (`mdev_type/device_api`, `vfio-ap` for the vfio_ap driver). Reads only.
import { SysfsError } from '../errno.js';
import type { SysfsIO } from '../sysfs-io.js';
import { mdevDir } from './paths.js';

export const VFIO_AP_DEVICE_API = 'vfio-ap';

export interface MdevVfioInfo {
  uuid: string;
  /** N of /dev/vfio/N. */
  iommuGroup: number;
  /** As the kernel prints it, trimmed: `vfio-ap`. */
  deviceApi: string;
  /** The mdev type's directory name, e.g. `vfio_ap-passthrough`. */
  mdevType: string;
}

function lastSegment(target: string): string {
  const parts = target.split('/').filter((p) => p !== '');
  return parts[parts.length - 1] ?? '';
}

/**
 * The VFIO facts of an existing mdev. Throws the SysfsError of the failed read (ENOENT when the
 * mdev does not exist), or an EINVAL SysfsError when the group link does not end in a number.
 */
export function readMdevVfio(io: SysfsIO, uuid: string): MdevVfioInfo {
  const dir = mdevDir(uuid);
  const groupLink = `${dir}/iommu_group`;
  const group = lastSegment(io.readlink(groupLink));
  if (!/^\d+$/.test(group)) throw new SysfsError('EINVAL', groupLink, `IOMMU group link ends in ${JSON.stringify(group)}, not a number`);
  return {
    uuid: dir.slice(dir.lastIndexOf('/') + 1),
    iommuGroup: Number(group),
    deviceApi: io.read(`${dir}/mdev_type/device_api`).trim(),
    mdevType: lastSegment(io.readlink(`${dir}/mdev_type`)),
  };
}
