// SysfsIO over a real directory tree: /sys on an IBM Z host, or a temp tree in tests.
// Every path is confined to the root: normalizeSysfsPath refuses '..', NUL and foreign
// absolute paths, and each operation resolves symlinks and refuses targets outside the
// root before it opens anything. sysfs itself is full of symlinks (bus/ap/devices/* ->
// devices/ap/*), so following them is normal; leaving the root through one is not.
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { SysfsError, errnoExplanation, isErrno } from './errno.js';
import { normalizeSysfsPath, type SysfsIO } from './sysfs-io.js';

const { O_RDONLY, O_WRONLY, O_NOFOLLOW, O_DIRECTORY } = fs.constants;

/** Maps a node fs error to SysfsError; codes outside our Errno set become EIO naming them. */
function toSysfsError(err: unknown, path: string): SysfsError {
  if (err instanceof SysfsError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ELOOP') return new SysfsError('EACCES', path, 'refusing to follow a symlink here');
  if (isErrno(code)) return new SysfsError(code, path);
  const detail = err instanceof Error ? err.message : String(err);
  return new SysfsError('EIO', path, `${errnoExplanation('EIO')} (${code ?? detail})`);
}

export class RealSysfs implements SysfsIO {
  readonly root: string;
  #resolvedRoot: string | undefined;

  constructor(root = '/sys') {
    this.root = nodePath.resolve(root);
  }

  read(path: string): string {
    const rel = normalizeSysfsPath(path);
    return this.#guard(rel, () => {
      const fd = this.#open(rel, O_RDONLY | O_NOFOLLOW);
      try {
        return fs.readFileSync(fd, 'utf8');
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  /** One write() of exactly `value` to an existing attribute: never creates a file. */
  write(path: string, value: string): void {
    const rel = normalizeSysfsPath(path);
    this.#guard(rel, () => {
      // No O_CREAT: a missing attribute is ENOENT.
      const fd = this.#open(rel, O_WRONLY | O_NOFOLLOW);
      try {
        // Truncate only after #open verified the target, so nothing outside the root is
        // ever touched. sysfs ignores truncation; plain files in test trees then behave
        // like attributes (the new value replaces the old).
        try {
          fs.ftruncateSync(fd, 0);
        } catch {
          /* not truncatable (some pseudo files): the write below is what matters */
        }
        // Deliberately one call: a sysfs store acts on what a single write() delivers.
        fs.writeSync(fd, Buffer.from(value, 'utf8'));
      } finally {
        fs.closeSync(fd);
      }
    });
  }

  list(path: string): string[] {
    const rel = normalizeSysfsPath(path);
    return this.#guard(rel, () => {
      // Open (and so verify) the resolved directory before reading its entries.
      const fd = this.#open(rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      fs.closeSync(fd);
      return fs.readdirSync(this.#realInside(rel)).sort();
    });
  }

  readlink(path: string): string {
    const rel = normalizeSysfsPath(path);
    return this.#guard(rel, () => {
      if (rel === '') throw new SysfsError('EINVAL', path, 'the sysfs root is not a symlink');
      // Resolve only the parent: the last component is the link we want to read, unfollowed.
      const parent = this.#realInside(nodePath.posix.dirname(rel) === '.' ? '' : nodePath.posix.dirname(rel));
      return fs.readlinkSync(nodePath.join(parent, nodePath.posix.basename(rel)), 'utf8');
    });
  }

  exists(path: string): boolean {
    const rel = normalizeSysfsPath(path);
    try {
      this.#realInside(rel);
      return true;
    } catch {
      return false;
    }
  }

  /** The root with its own symlinks resolved; cached once found (a mount point stays put). */
  #rootReal(): string {
    if (this.#resolvedRoot === undefined) {
      try {
        this.#resolvedRoot = fs.realpathSync(this.root);
      } catch (err) {
        throw toSysfsError(err, '');
      }
    }
    return this.#resolvedRoot;
  }

  /** The fully resolved path of `rel`, which must exist and lie inside the root. */
  #realInside(rel: string): string {
    const rootReal = this.#rootReal();
    const real = fs.realpathSync(nodePath.join(rootReal, rel));
    if (!isInside(rootReal, real)) throw new SysfsError('EACCES', rel, 'path resolves outside the sysfs root');
    return real;
  }

  /** Opens the resolved file, then re-checks what was actually opened (the tree could have
   *  changed between realpath and open). */
  #open(rel: string, flags: number): number {
    const real = this.#realInside(rel);
    const fd = fs.openSync(real, flags);
    let opened: string | undefined;
    try {
      opened = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      opened = undefined; // no /proc: the realpath check above stands alone
    }
    if (opened !== undefined && !isInside(this.#rootReal(), opened)) {
      fs.closeSync(fd);
      throw new SysfsError('EACCES', rel, 'path resolves outside the sysfs root');
    }
    return fd;
  }

  #guard<T>(rel: string, op: () => T): T {
    try {
      return op();
    } catch (err) {
      throw toSysfsError(err, rel);
    }
  }
}

function isInside(root: string, candidate: string): boolean {
  if (root === nodePath.sep) return candidate.startsWith(nodePath.sep);
  return candidate === root || candidate.startsWith(root + nodePath.sep);
}
