// Adapter ids, domain ids, APQNs and mdev UUIDs: parsed from user text at the edges, numbers
// everywhere inside apbus. User-facing spellings (api.md) are always hex: '5', '05', '0x05'
// for adapter 5; '4', '0004', '0x0004' for domain 4. This is NOT the kernel's sysfs write
// grammar (auto-detected base) — see mask.ts for that.

/** Bad user input; the message says why and is fit for a condition or CLI error. */
export class ApbusInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApbusInputError';
  }
}

export const MAX_ID = 255;

export interface Apqn {
  readonly adapter: number;
  readonly domain: number;
}

// At most 4 hex digits: enough for the padded domain spelling, short enough that no
// absurd input gets near Number precision.
const HEX_ID_RE = /^(?:0[xX])?([0-9a-fA-F]{1,4})$/;

function parseHexId(text: string, what: 'adapter' | 'domain'): number {
  const range = what === 'adapter' ? 'adapters are 0..255 (00..ff)' : 'domains are 0..255 (00..ff)';
  if (typeof text !== 'string') throw new ApbusInputError(`${what} id must be a string`);
  const m = HEX_ID_RE.exec(text);
  if (!m) {
    throw new ApbusInputError(
      `invalid ${what} id ${JSON.stringify(text)}: expected hex digits, e.g. ${what === 'adapter' ? "'05' or '0x05'" : "'0004' or '0x0004'"}`,
    );
  }
  const value = parseInt(m[1]!, 16);
  if (value > MAX_ID) throw new ApbusInputError(`${what} id ${JSON.stringify(text)} is out of range: ${range}`);
  return value;
}

/** '5', '05', '0x05', '0x5' -> 5. */
export function parseAdapterId(text: string): number {
  return parseHexId(text, 'adapter');
}

/** '4', '0004', '0x0004' -> 4; '0100' (256) is rejected. */
export function parseDomainId(text: string): number {
  return parseHexId(text, 'domain');
}

/** 'cc.qqqq' and other hex spellings of the same pair ('5.4', '0x05.0x0004'). */
export function parseApqn(text: string): Apqn {
  if (typeof text !== 'string') throw new ApbusInputError('APQN must be a string');
  const parts = text.split('.');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    throw new ApbusInputError(`invalid APQN ${JSON.stringify(text)}: expected adapter.domain in hex, e.g. '05.0004'`);
  }
  try {
    return { adapter: parseAdapterId(parts[0]!), domain: parseDomainId(parts[1]!) };
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new ApbusInputError(`invalid APQN ${JSON.stringify(text)}: ${why}`);
  }
}

function checkId(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > MAX_ID) throw new RangeError(`${what} ${n} is not 0..255`);
}

export function formatAdapterId(a: number): string {
  checkId(a, 'adapter');
  return a.toString(16).padStart(2, '0');
}

export function formatDomainId(d: number): string {
  checkId(d, 'domain');
  return d.toString(16).padStart(4, '0');
}

export function formatApqn(q: Apqn): string {
  return `${formatAdapterId(q.adapter)}.${formatDomainId(q.domain)}`;
}

/** Dense key for maps and arrays: adapter*256 + domain (0..65535). */
export function apqnIndex(adapter: number, domain: number): number {
  checkId(adapter, 'adapter');
  checkId(domain, 'domain');
  return adapter * 256 + domain;
}

export function apqnFromIndex(index: number): Apqn {
  if (!Number.isInteger(index) || index < 0 || index > 0xffff) throw new RangeError(`APQN index ${index} is not 0..65535`);
  return { adapter: index >> 8, domain: index & 0xff };
}

/** Adapter-major ascending, the order the kernel lists `matrix`. */
export function compareApqn(a: Apqn, b: Apqn): number {
  return a.adapter - b.adapter || a.domain - b.domain;
}

export function sameApqn(a: Apqn, b: Apqn): boolean {
  return a.adapter === b.adapter && a.domain === b.domain;
}

/** Lower-case canonical 8-4-4-4-12 form, as the kernel names mdev directories. */
export const MDEV_UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const MDEV_UUID_ANY_CASE_RE = new RegExp(MDEV_UUID_RE.source, 'i');

/** Accepts a 36-char UUID in any letter case; returns it lower-cased. */
export function parseMdevUuid(text: string): string {
  if (typeof text !== 'string') throw new ApbusInputError('mdev UUID must be a string');
  // Test before lower-casing: some non-ASCII letters lower-case to ASCII ones.
  const lower = text.toLowerCase();
  if (!MDEV_UUID_ANY_CASE_RE.test(text)) {
    throw new ApbusInputError(
      `invalid mdev UUID ${JSON.stringify(text)}: expected 36 characters like 6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab`,
    );
  }
  return lower;
}
