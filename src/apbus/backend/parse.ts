// Parsers for what the kernel PRINTS in AP bus attribute files. Contents that do not match the
// kernel's format are reported as SysfsError EIO naming the file, never silently guessed.
import { SysfsError } from '../errno.js';
import { MAX_ID } from '../ids.js';
import { Mask } from '../mask.js';
import type { Bindings, CardMode, GuestMatrix, MdevMatrix, VfioQueueStatus } from './types.js';

export function badContents(path: string, text: string, expected: string): SysfsError {
  return new SysfsError('EIO', path, `unexpected contents ${JSON.stringify(text.slice(0, 80))}: expected ${expected}`);
}

/** Drops the one trailing newline the kernel prints. */
export function chomp(text: string): string {
  return text.endsWith('\n') ? text.slice(0, -1) : text;
}

/** '0\n' / '1\n' attributes (online, config, chkstop). */
export function parseFlag(text: string, path: string): boolean {
  const t = chomp(text);
  if (t === '1') return true;
  if (t === '0') return false;
  throw badContents(path, text, '0 or 1');
}

/** A queue's request_count: the kernel prints "-" while the queue is uninitiated (bound to
 *  vfio_ap or to no driver since it left cex4queue); no host requests then, so 0. */
export function parseRequestCount(text: string, path: string): number {
  if (text === '-\n' || text === '-') return 0;
  return parseDecimal(text, path);
}

/** Decimal counters and ids (hwtype, request_count, ap_max_adapter_id …). */
export function parseDecimal(text: string, path: string): number {
  // Digit by digit: this runs for every counter of every queue in an inventory.
  const end = text.endsWith('\n') ? text.length - 1 : text.length;
  let n = 0;
  for (let i = 0; i < end; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) throw badContents(path, text, 'a decimal number');
    n = n * 10 + digit;
  }
  if (end === 0 || !Number.isSafeInteger(n)) throw badContents(path, text, 'a decimal number');
  return n;
}

export function parseMask(text: string, path: string): Mask {
  try {
    return Mask.parseKernel(text);
  } catch {
    throw badContents(path, text, "'0x' and 64 hex digits");
  }
}

const BINDINGS_RE = /^(\d+)\/(\d+)( \(complete\))?$/;

/** `bindings`: 'bound/total', with ' (complete)' when every queue device has a driver. */
export function parseBindings(text: string, path: string): Bindings {
  const m = BINDINGS_RE.exec(chomp(text));
  if (!m) throw badContents(path, text, "'bound/total'");
  return { bound: Number(m[1]), total: Number(m[2]), complete: m[3] !== undefined };
}

// ap_functions bits as the AP instructions number them (bit 0 = most significant of 32).
const FUNC_COPRO = 0x80000000 >>> 3; // CCA coprocessor
const FUNC_ACCEL = 0x80000000 >>> 4; // accelerator
const FUNC_EP11 = 0x80000000 >>> 5; // EP11 coprocessor

/** Mode from the card `type` suffix ('CEX8P' -> EP11); `apFunctions` (the `ap_functions`
 *  text) is consulted only when the type carries no mode letter. */
export function cardMode(type: string, apFunctions?: string): CardMode {
  switch (type.charAt(type.length - 1)) {
    case 'C':
      return 'CCA';
    case 'P':
      return 'EP11';
    case 'A':
      return 'Accel';
  }
  if (apFunctions === undefined) return 'Unknown';
  const bits = Number.parseInt(chomp(apFunctions), 16);
  if (!Number.isFinite(bits)) return 'Unknown';
  // The order the kernel's uevent uses: accelerator, then CCA, then EP11.
  if (bits & FUNC_ACCEL) return 'Accel';
  if (bits & FUNC_COPRO) return 'CCA';
  if (bits & FUNC_EP11) return 'EP11';
  return 'Unknown';
}

export function parseVfioStatus(text: string, path: string): VfioQueueStatus {
  const t = chomp(text);
  if (t === 'unassigned' || t === 'assigned' || t === 'in use') return t;
  throw badContents(path, text, "'unassigned', 'assigned' or 'in use'");
}

/** `driver_override`: '' when none is set (the kernel prints '(null)' or an empty line). */
export function parseDriverOverride(text: string): string {
  const t = chomp(text).trim();
  return t === '(null)' ? '' : t;
}

/** The driver name from a `driver` symlink target ('../../../../bus/ap/drivers/vfio_ap'). */
export function driverFromLink(target: string): string {
  const slash = target.lastIndexOf('/');
  return slash < 0 ? target : target.slice(slash + 1);
}

/** Splits a multi-line attribute into its non-empty lines. */
export function lines(text: string): string[] {
  if (text === '' || text === '\n') return [];
  const out = chomp(text).split('\n');
  return out.filter((l) => l !== '');
}

function hexId(text: string, digits: number): number {
  if (text.length !== digits) return -1;
  const n = Number.parseInt(text, 16);
  return /^[0-9a-f]+$/.test(text) && n <= MAX_ID ? n : -1;
}

function ascendingUnique(ids: Iterable<number>): number[] {
  return [...new Set(ids)].sort((a, b) => a - b);
}

/** `matrix` / `guest_matrix`: 'aa.dddd' per APQN (a full product), or 'aa.' lines when there
 *  are only adapters, or '.dddd' lines when there are only domains. */
export function parseMatrixLines(textLines: readonly string[], path: string): GuestMatrix {
  const adapters: number[] = [];
  const domains: number[] = [];
  for (const line of textLines) {
    const dot = line.indexOf('.');
    const a = line.slice(0, dot);
    const d = line.slice(dot + 1);
    if (dot < 0 || (a === '' && d === '')) throw badContents(path, line, "'aa.dddd', 'aa.' or '.dddd' lines");
    if (a !== '') {
      const id = hexId(a, 2);
      if (id < 0) throw badContents(path, line, "'aa.dddd', 'aa.' or '.dddd' lines");
      adapters.push(id);
    }
    if (d !== '') {
      const id = hexId(d, 4);
      if (id < 0) throw badContents(path, line, "'aa.dddd', 'aa.' or '.dddd' lines");
      domains.push(id);
    }
  }
  return { adapters: ascendingUnique(adapters), domains: ascendingUnique(domains) };
}

/** `control_domains`: one '%04x' line each. */
export function parseControlDomains(textLines: readonly string[], path: string): number[] {
  return ascendingUnique(
    textLines.map((line) => {
      const id = hexId(line, 4);
      if (id < 0) throw badContents(path, line, "'dddd' lines");
      return id;
    }),
  );
}

/** `ap_config`: '0x<apm>,0x<aqm>,0x<adm>' (three kernel masks). */
export function parseApConfig(text: string, path: string): MdevMatrix {
  const parts = chomp(text).split(',');
  if (parts.length !== 3) throw badContents(path, text, "'0x<apm>,0x<aqm>,0x<adm>'");
  const [apm, aqm, adm] = parts.map((p) => parseMask(p, path)) as [Mask, Mask, Mask];
  return { adapters: apm.bits(), domains: aqm.bits(), controlDomains: adm.bits() };
}

/** The text `ap_config` accepts for a whole matrix. */
export function formatApConfig(m: MdevMatrix): string {
  return [m.adapters, m.domains, m.controlDomains].map((ids) => Mask.of(ids).toKernelString()).join(',');
}
