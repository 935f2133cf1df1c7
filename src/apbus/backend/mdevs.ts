// Matrix mdevs: create, remove, read and set their matrix. setMatrix uses `ap_config` (one
// all-or-nothing write) when the kernel has it; otherwise assign_*/unassign_* one id at a
// time, undoing the writes already made if one fails, so a refused change (EADDRINUSE,
// EADDRNOTAVAIL …) leaves the mdev with the matrix it had.
import { ApbusInputError, parseMdevUuid } from '../ids.js';
import type { SysfsIO } from '../sysfs-io.js';
import { readMdevMatrix } from './inventory.js';
import { MDEV_TYPE, checkId, mdevDir } from './paths.js';
import { formatApConfig, lines, parseMatrixLines } from './parse.js';
import type { GuestMatrix, MdevMatrix, SetMatrixResult } from './types.js';

export function createMdev(io: SysfsIO, uuid: string): void {
  io.write(`${MDEV_TYPE}/create`, parseMdevUuid(uuid));
}

export function removeMdev(io: SysfsIO, uuid: string): void {
  io.write(`${mdevDir(uuid)}/remove`, '1');
}

export function mdevExists(io: SysfsIO, uuid: string): boolean {
  return io.exists(mdevDir(uuid));
}

export function readMatrix(io: SysfsIO, uuid: string): MdevMatrix {
  const dir = mdevDir(uuid);
  return readMdevMatrix(io, dir, io.list(dir));
}

export function readGuestMatrix(io: SysfsIO, uuid: string): GuestMatrix {
  const path = `${mdevDir(uuid)}/guest_matrix`;
  return parseMatrixLines(lines(io.read(path)), path);
}

/** Ids validated, de-duplicated and ascending. */
export function normalizeMatrix(m: MdevMatrix): MdevMatrix {
  if (typeof m !== 'object' || m === null) throw new ApbusInputError('matrix must be {adapters, domains, controlDomains}');
  const ids = (list: unknown, what: 'adapter' | 'domain' | 'control domain'): number[] => {
    if (!Array.isArray(list)) throw new ApbusInputError(`matrix ${what}s must be a list of ids`);
    return [...new Set(list.map((n: unknown) => checkId(n, what)))].sort((a, b) => a - b);
  };
  return {
    adapters: ids(m.adapters, 'adapter'),
    domains: ids(m.domains, 'domain'),
    controlDomains: ids(m.controlDomains ?? [], 'control domain'),
  };
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export function sameMatrix(a: MdevMatrix, b: MdevMatrix): boolean {
  return sameIds(a.adapters, b.adapters) && sameIds(a.domains, b.domains) && sameIds(a.controlDomains, b.controlDomains);
}

type AssignFile =
  | 'assign_adapter'
  | 'unassign_adapter'
  | 'assign_domain'
  | 'unassign_domain'
  | 'assign_control_domain'
  | 'unassign_control_domain';

interface AssignStep {
  readonly file: AssignFile;
  readonly id: number;
}

const UNDO: Record<AssignFile, AssignFile> = {
  assign_adapter: 'unassign_adapter',
  unassign_adapter: 'assign_adapter',
  assign_domain: 'unassign_domain',
  unassign_domain: 'assign_domain',
  assign_control_domain: 'unassign_control_domain',
  unassign_control_domain: 'assign_control_domain',
};

/** The assign_* steps from `from` to `to`: removals first, so every intermediate
 *  adapters × domains product lies inside `from` or `to` and passes the kernel's checks
 *  whenever `to` does. */
export function assignSteps(from: MdevMatrix, to: MdevMatrix): AssignStep[] {
  const gone = (a: readonly number[], b: readonly number[]) => a.filter((id) => !b.includes(id));
  const steps: AssignStep[] = [];
  const push = (file: AssignFile, ids: number[]) => ids.forEach((id) => steps.push({ file, id }));
  push('unassign_control_domain', gone(from.controlDomains, to.controlDomains));
  push('unassign_domain', gone(from.domains, to.domains));
  push('unassign_adapter', gone(from.adapters, to.adapters));
  push('assign_adapter', gone(to.adapters, from.adapters));
  push('assign_domain', gone(to.domains, from.domains));
  push('assign_control_domain', gone(to.controlDomains, from.controlDomains));
  return steps;
}

// Errors met while undoing a failed assign sequence, keyed by the error setMatrix rethrew.
const rollbackFailures = new WeakMap<object, unknown[]>();

/** When setMatrix failed and could not fully restore the previous matrix: what went wrong
 *  while restoring (empty when the rollback succeeded). */
export function rollbackFailuresOf(err: unknown): readonly unknown[] {
  return (typeof err === 'object' && err !== null && rollbackFailures.get(err)) || [];
}

export function setMatrix(io: SysfsIO, uuid: string, target: MdevMatrix): SetMatrixResult {
  const want = normalizeMatrix(target);
  const dir = mdevDir(uuid);
  const attrs = io.list(dir);
  const current = readMdevMatrix(io, dir, attrs);
  if (sameMatrix(current, want)) return { via: 'unchanged', writes: 0 };
  if (attrs.includes('ap_config')) {
    io.write(`${dir}/ap_config`, formatApConfig(want));
    return { via: 'ap_config', writes: 1 };
  }
  const write = (step: AssignStep) => io.write(`${dir}/${step.file}`, `0x${step.id.toString(16)}`);
  const done: AssignStep[] = [];
  try {
    for (const step of assignSteps(current, want)) {
      write(step);
      done.push(step);
    }
  } catch (err) {
    const failures: unknown[] = [];
    for (const step of done.reverse()) {
      try {
        write({ file: UNDO[step.file], id: step.id });
      } catch (undoErr) {
        failures.push(undoErr);
      }
    }
    if (failures.length > 0 && typeof err === 'object' && err !== null) rollbackFailures.set(err, failures);
    throw err;
  }
  return { via: 'assign', writes: done.length };
}
