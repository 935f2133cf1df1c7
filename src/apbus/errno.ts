// The error numbers a sysfs read or write can end with, and the one error type every SysfsIO
// throws. The sim shell prints `error: <errno> <explanation>`, so explanations read like
// strerror(3).

export type Errno =
  | 'EINVAL'
  | 'EBUSY'
  | 'ENODEV'
  | 'EADDRNOTAVAIL'
  | 'EADDRINUSE'
  | 'EEXIST'
  | 'ENOENT'
  | 'EACCES'
  | 'EPERM'
  | 'ENOTDIR'
  | 'EISDIR'
  | 'EAGAIN'
  | 'ENOSPC'
  | 'EIO'
  | 'ERANGE';

const explanations: Record<Errno, string> = {
  EINVAL: 'Invalid argument',
  EBUSY: 'Device or resource busy',
  ENODEV: 'No such device',
  EADDRNOTAVAIL: 'Cannot assign requested address',
  EADDRINUSE: 'Address already in use',
  EEXIST: 'File exists',
  ENOENT: 'No such file or directory',
  EACCES: 'Permission denied',
  EPERM: 'Operation not permitted',
  ENOTDIR: 'Not a directory',
  EISDIR: 'Is a directory',
  EAGAIN: 'Resource temporarily unavailable',
  ENOSPC: 'No space left on device',
  EIO: 'Input/output error',
  ERANGE: 'Numerical result out of range',
};

/** strerror-like text for an errno, e.g. EBUSY -> 'Device or resource busy'. */
export function errnoExplanation(e: Errno): string {
  return explanations[e];
}

export function isErrno(code: unknown): code is Errno {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(explanations, code);
}

/** A failed sysfs read/write/list. `message` is `${errno} ${explanation}`; `path` is the
 *  sysfs-relative path it is about (may be the raw input when the path itself was bad). */
export class SysfsError extends Error {
  constructor(
    readonly errno: Errno,
    readonly path: string,
    readonly explanation: string = errnoExplanation(errno),
  ) {
    super(`${errno} ${explanation}`);
    this.name = 'SysfsError';
  }
}
