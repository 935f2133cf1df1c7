// One step → the backend call that does it. Errors are the SysfsError the write produced;
// the pass loop decides what they mean (EBUSY on remove: a guest holds the mdev).
import type { SysfsBackend } from '../apbus/backend.js';
import type { Step } from './steps.js';

export function executeStep(backend: SysfsBackend, step: Step): void {
  switch (step.kind) {
    case 'removeMdev':
      backend.removeMdev(step.uuid);
      return;
    case 'maskBits':
      backend.setMaskBits(
        step.mask,
        step.bits.map((bit) => ({ bit, value: step.host })),
      );
      return;
    case 'setOverride':
      backend.setDriverOverride(step.apqn, step.driver);
      return;
    case 'unbind':
      backend.unbind(step.driver, step.apqn);
      return;
    case 'bind':
      backend.bind(step.driver, step.apqn);
      return;
    case 'createMdev':
      backend.createMdev(step.uuid);
      return;
    case 'setMatrix':
      backend.setMatrix(step.uuid, step.matrix);
      return;
    case 'queueOnline':
      for (const apqn of step.apqns) backend.setQueueOnline(apqn, step.online);
      return;
  }
}
