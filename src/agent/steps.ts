// The small, idempotent bus operations a pass is made of. Each is one sysfs write (setMatrix
// via assign_* may be several, undone on failure) and safe to be the last thing done before a
// crash: the next pass re-plans from what the bus then shows.
import { type Apqn, formatAdapterId, formatApqn, formatDomainId } from '../apbus/ids.js';
import type { MaskKind, MdevMatrix, QueueDriverName } from '../apbus/backend.js';

export type Step =
  | { readonly kind: 'removeMdev'; readonly uuid: string }
  /** One relative write; every change has the same value (all set, or all cleared). */
  | { readonly kind: 'maskBits'; readonly mask: MaskKind; readonly bits: readonly number[]; readonly host: boolean }
  /** driver_override of one queue; null clears it. */
  | { readonly kind: 'setOverride'; readonly apqn: Apqn; readonly driver: 'vfio_ap' | null }
  | { readonly kind: 'unbind'; readonly apqn: Apqn; readonly driver: QueueDriverName }
  | { readonly kind: 'bind'; readonly apqn: Apqn; readonly driver: QueueDriverName }
  | { readonly kind: 'createMdev'; readonly uuid: string }
  | { readonly kind: 'setMatrix'; readonly uuid: string; readonly matrix: MdevMatrix }
  /** zcrypt `online` of host queues: 0 cordons them before a move (zcrypt sends them nothing
   *  new), 1 puts them back when the move is no longer wanted. */
  | { readonly kind: 'queueOnline'; readonly apqns: readonly Apqn[]; readonly online: boolean };

export function formatMaskBit(mask: MaskKind, bit: number): string {
  return mask === 'apmask' ? formatAdapterId(bit) : formatDomainId(bit);
}

export function formatMatrix(m: MdevMatrix): string {
  const list = (ids: readonly number[], f: (n: number) => string) => (ids.length ? ids.map(f).join(',') : '-');
  const ctrl = m.controlDomains.length ? ` control ${list(m.controlDomains, formatDomainId)}` : '';
  return `${list(m.adapters, formatAdapterId)} x ${list(m.domains, formatDomainId)}${ctrl}`;
}

/** One line for logs, onStep and PassResult.stepsExecuted. */
export function describeStep(step: Step): string {
  switch (step.kind) {
    case 'removeMdev':
      return `remove mdev ${step.uuid}`;
    case 'maskBits':
      return `${step.mask} ${step.host ? 'set' : 'clear'} ${step.bits.map((b) => formatMaskBit(step.mask, b)).join(',')}`;
    case 'setOverride':
      return `driver_override ${formatApqn(step.apqn)} ${step.driver === null ? 'cleared' : `= ${step.driver}`}`;
    case 'unbind':
      return `unbind ${formatApqn(step.apqn)} from ${step.driver}`;
    case 'bind':
      return `bind ${formatApqn(step.apqn)} to ${step.driver}`;
    case 'createMdev':
      return `create mdev ${step.uuid}`;
    case 'setMatrix':
      return `set matrix of mdev ${step.uuid} to ${formatMatrix(step.matrix)}`;
    case 'queueOnline':
      return `${step.online ? 'uncordon' : 'cordon'} ${step.apqns.map(formatApqn).join(',')} (online ${step.online ? 1 : 0})`;
  }
}
