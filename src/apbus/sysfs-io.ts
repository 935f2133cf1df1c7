// The one seam between the AP bus code and a sysfs tree: the real /sys (RealSysfs) or the
// model's virtual sysfs. Everything is synchronous: sysfs is an in-memory kernel filesystem.
import { SysfsError } from './errno.js';

/** One sysfs tree. Paths are RELATIVE to the sysfs root, '/'-separated, e.g. 'bus/ap/apmask'. */
export interface SysfsIO {
  /** Whole file contents as the kernel prints them (usually ending in '\n'). */
  read(path: string): string;
  /** One write() call of exactly `value` (no newline is added). */
  write(path: string, value: string): void;
  /** Directory entries (names only), sorted. */
  list(path: string): string[];
  /** Symlink target as stored (relative, e.g. '../../../bus/ap/drivers/vfio_ap'). */
  readlink(path: string): string;
  exists(path: string): boolean;
}

/** A path normalizeSysfsPath returns unchanged: names of sysfs characters (letters, digits,
 *  '_', '.', ':', '@', '+', '-'), none starting with '.' (so no '.' or '..' segment), joined by
 *  single '/', with no leading or trailing '/'. */
const CLEAN_PATH_RE = /^[\w:@+-][\w.:@+-]*(?:\/[\w:@+-][\w.:@+-]*)*$/;

/**
 * Turns user/agent input into a clean sysfs-relative path: accepts 'bus/ap', '/sys/bus/ap',
 * './bus/ap/', 'bus//ap'. Returns '' for the root itself. Rejects (SysfsError) anything that
 * could address something outside the tree: '..' segments anywhere (even ones that would
 * cancel out, like 'card05/../..'), absolute paths not under /sys, NUL bytes and other control
 * characters, backslashes and percent-encoding (sysfs names never contain them, so they can only be tricks).
 */
export function normalizeSysfsPath(path: string): string {
  // The common case first, in one regex: a path the backend built is already clean and is
  // returned as it is (an inventory passes thousands of them).
  if (typeof path === 'string' && CLEAN_PATH_RE.test(path)) return path;
  if (typeof path !== 'string') throw new SysfsError('EINVAL', String(path), 'path is not a string');
  if (path.includes('\0')) throw new SysfsError('EINVAL', path, 'path contains a NUL byte');
  if (/[\x00-\x1f\x7f]/.test(path)) throw new SysfsError('EINVAL', path, 'path contains a control character');
  if (path.includes('\\') || path.includes('%')) {
    throw new SysfsError('EINVAL', path, 'path contains characters sysfs names never have');
  }
  let rest = path;
  if (rest.startsWith('/')) {
    const parts = rest.split('/').filter((p) => p !== '' && p !== '.');
    if (parts[0] !== 'sys') throw new SysfsError('ENOENT', path, 'absolute path outside /sys');
    rest = parts.slice(1).join('/');
  }
  const segments: string[] = [];
  for (const seg of rest.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') throw new SysfsError('EINVAL', path, "path contains '..'");
    segments.push(seg);
  }
  return segments.join('/');
}
