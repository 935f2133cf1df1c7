// Kernel generations the model can pretend to be (ap-bus.md "Kernel profiles").
//   5.15: masks + assign_*           6.10: + ap_config
//   6.19: + per-queue driver_override, and the stricter mask-write in-use check
//         ("s390/ap: Use all-bits-one apmask/aqmask for vfio in_use() checks").

export const KERNEL_PROFILES = ['5.15', '6.10', '6.19'] as const;
export type KernelProfile = (typeof KERNEL_PROFILES)[number];

export interface ProfileFeatures {
  /** mdev attribute `ap_config` (vfio_ap_ops.c ap_config_show/store). */
  readonly apConfig: boolean;
  /** queue attribute `driver_override` (ap_queue.c driver_override_store). */
  readonly driverOverride: boolean;
  /** Mask writes check new adapters against ALL domains (and new domains against all
   *  adapters) instead of against the current other mask. */
  readonly inUseCheckAllBits: boolean;
}

export function profileFeatures(profile: KernelProfile): ProfileFeatures {
  switch (profile) {
    case '5.15':
      return { apConfig: false, driverOverride: false, inUseCheckAllBits: false };
    case '6.10':
      return { apConfig: true, driverOverride: false, inUseCheckAllBits: false };
    case '6.19':
      return { apConfig: true, driverOverride: true, inUseCheckAllBits: true };
  }
}

export function isKernelProfile(v: unknown): v is KernelProfile {
  return typeof v === 'string' && (KERNEL_PROFILES as readonly string[]).includes(v);
}
