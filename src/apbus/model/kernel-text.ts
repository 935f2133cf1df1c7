// The little text scanners the kernel's sysfs store functions use, so the model accepts and
// refuses exactly what they do. Each names the kernel function it mirrors.
import { Mask, applyMaskWrite } from '../mask.js';

/** sysfs_streq(): equal, ignoring one trailing newline on either side. */
export function sysfsStreq(a: string, b: string): boolean {
  const strip = (s: string) => (s.endsWith('\n') ? s.slice(0, -1) : s);
  return strip(a) === strip(b);
}

/** The C string the kernel sees: text up to the first NUL. */
export function cString(text: string): string {
  const nul = text.indexOf('\0');
  return nul === -1 ? text : text.slice(0, nul);
}

/**
 * sscanf(buf, "%d") / sscanf(buf, "%i"): skips leading white space, an optional sign, then
 * the longest run of digits (base 10 for %d; for %i '0x' hex, leading '0' octal, else
 * decimal). Trailing text is ignored, as sscanf does. Returns null when no digit was read.
 */
export function scanInt(raw: string, conversion: 'd' | 'i'): number | null {
  const s = cString(raw);
  let pos = 0;
  while (pos < s.length && /\s/.test(s[pos]!)) pos++;
  let sign = 1;
  if (s[pos] === '+' || s[pos] === '-') {
    if (s[pos] === '-') sign = -1;
    pos++;
  }
  let base = 10;
  if (conversion === 'i' && s[pos] === '0') {
    if ((s[pos + 1] === 'x' || s[pos + 1] === 'X') && /[0-9a-fA-F]/.test(s[pos + 2] ?? '')) {
      base = 16;
      pos += 2;
    } else {
      base = 8;
    }
  }
  const start = pos;
  let value = 0;
  for (; pos < s.length; pos++) {
    const digit = parseInt(s[pos]!, 16);
    if (Number.isNaN(digit) || digit >= base) break;
    value = value * base + digit;
  }
  if (pos === start) return null;
  return sign * value;
}

/** kstrtobool(): y/Y/t/T/1 and "on" are true, n/N/f/F/0 and "off" false, else null. */
export function kstrtobool(raw: string): boolean | null {
  const s = cString(raw);
  switch (s[0]) {
    case 'y':
    case 'Y':
    case 't':
    case 'T':
    case '1':
      return true;
    case 'n':
    case 'N':
    case 'f':
    case 'F':
    case '0':
      return false;
    case 'o':
    case 'O':
      if (s[1] === 'n' || s[1] === 'N') return true;
      if (s[1] === 'f' || s[1] === 'F') return false;
      return null;
    default:
      return null;
  }
}

/** uuid_is_valid() on the first 36 characters: hex digits with '-' at 8, 13, 18, 23, in
 *  either letter case. */
export function uuidIsValid(text: string): boolean {
  if (text.length < 36) return false;
  for (let i = 0; i < 36; i++) {
    const c = text[i]!;
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== '-') return false;
    } else if (!/[0-9a-fA-F]/.test(c)) {
      return false;
    }
  }
  return true;
}

/** ap_hex2bitmap() on one ap_config field: optional '0x', up to 64 hex digits filled from
 *  bit 0, nothing else. An empty field is an empty mask. Returns null on a parse error. */
export function hex2bitmap(field: string): Mask | null {
  if (field.startsWith('+') || field.startsWith('-')) return null; // not the relative form
  try {
    return applyMaskWrite(Mask.none(), field);
  } catch {
    return null;
  }
}

/**
 * ap_config_store()'s parse_bitmap() x3: the text is cut at ',' and '\n' (strsep), the first
 * three fields are apm, aqm, adm; anything after the third separator is ignored. Fewer than
 * three fields, or a field that is not a hex mask, is a parse error (null).
 */
export function parseApConfigText(raw: string): { apm: Mask; aqm: Mask; adm: Mask } | null {
  // kstrndup(buf, AP_CONFIG_STRLEN): only so many bytes are looked at.
  let rest: string | null = cString(raw).slice(0, AP_CONFIG_STRLEN);
  const fields: Mask[] = [];
  for (let i = 0; i < 3; i++) {
    if (rest === null) return null;
    const cut: number = rest.search(/[,\n]/);
    const field = cut === -1 ? rest : rest.slice(0, cut);
    rest = cut === -1 ? null : rest.slice(cut + 1);
    const mask = hex2bitmap(field);
    if (mask === null) return null;
    fields.push(mask);
  }
  return { apm: fields[0]!, aqm: fields[1]!, adm: fields[2]! };
}

/** vfio_ap_ops.c AP_CONFIG_STRLEN: AP_DEVICES_STRLEN + 2 * AP_DOMAINS_STRLEN, each 256/4 + 3. */
export const AP_CONFIG_STRLEN = 3 * (256 / 4 + 3);
