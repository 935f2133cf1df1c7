// What a kernel store/show function returns instead of a byte count. The virtual sysfs turns
// it into a SysfsError carrying the path; model-only hooks (attachGuest …) throw it as is.
import { errnoExplanation, type Errno } from '../errno.js';

export class ApBusError extends Error {
  constructor(
    readonly errno: Errno,
    readonly detail: string = errnoExplanation(errno),
  ) {
    super(`${errno} ${detail}`);
    this.name = 'ApBusError';
  }
}

export function fail(errno: Errno, detail?: string): never {
  throw new ApBusError(errno, detail);
}
