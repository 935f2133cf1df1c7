// SysfsIO over a real directory tree: /sys on an IBM Z host, or a temp tree in tests.
// Every path is confined to the root: normalizeSysfsPath refuses '..', NUL and foreign
// absolute paths, and each operation resolves symlinks and refuses targets outside the
// root before it opens anything. sysfs itself is full of symlinks (bus/ap/devices/* ->
// devices/ap/*), so following them is normal; leaving the root through one is not.
//
// Reads are the hot path (an inventory of a 5,440-queue node reads ~17,000 attributes), so
// they do not resolve the whole path each time. Instead each instance keeps the set of
// directories it has verified to be plain directories inside the root: a directory is
// verified once, by lstat of its name inside its verified parent (not a symlink, a
// directory), so its path below the resolved root is already its real path. A read of
// <verified dir>/<name> is then one open(O_NOFOLLOW) of that path: the directory part needs
// no check, and O_NOFOLLOW refuses a symlink as the last component (ELOOP), which sends the
// read down the checked slow path (realpath, refuse outside, open, re-check the opened fd).
//
// The window this leaves: a verified directory replaced by a symlink later would be
// followed by a read. On a real host that cannot happen: sysfs (kernfs) has no symlink,
// rename or mkdir for userspace, not even for root; only the kernel adds and removes
// entries, and it never turns a directory into a link. In a test tree only the tree's owner
// can do it. Writes, which are where an escape would do harm, never use the verified set:
// each one resolves the whole path with realpath, refuses anything outside the root, opens
// with O_NOFOLLOW, and re-checks what was opened through /proc/self/fd before it writes.
// A cached directory that disappears (a card removed) just fails the fast open: the entry
// is dropped and the slow path gives the answer (ENOENT).
//
// Attributes are opened non-blocking and checked with fstat before any read or write: a
// kernfs attribute is a regular file with one link. A FIFO would block a blocking open or
// read, a device node is not an attribute, and a hard link could name a file elsewhere that
// the path checks never saw; none of them occur under /sys, so each is refused (EACCES).
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { SysfsError, errnoExplanation, isErrno } from './errno.js';
import { normalizeSysfsPath, type SysfsIO } from './sysfs-io.js';

const { O_RDONLY, O_WRONLY, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = fs.constants;

/** Reads go through one buffer: a sysfs attribute prints at most a page. */
const READ_CHUNK = 16 * 1024;

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
  /** Directories (relative paths) verified to be real directories inside the root, reached
   *  through no symlink: `${root}/${dir}` is their real path. */
  readonly #verifiedDirs = new Set<string>();
  readonly #buffer = Buffer.allocUnsafe(READ_CHUNK);

  constructor(root = '/sys') {
    this.root = nodePath.resolve(root);
  }

  read(path: string): string {
    const rel = normalizeSysfsPath(path);
    const slash = rel.lastIndexOf('/');
    const dir = slash < 0 ? '' : rel.slice(0, slash);
    if (rel !== '' && this.#verifiedDir(dir)) {
      let fd: number | undefined;
      try {
        fd = fs.openSync(`${this.#rootReal()}/${rel}`, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
      } catch {
        // A link as the last component (ELOOP), or the directory changed or went: the
        // checked path decides, and the directory is verified again next time.
        this.#verifiedDirs.delete(dir);
      }
      if (fd !== undefined) return this.#guard(rel, () => this.#readAndClose(attributeFd(fd, rel)));
    }
    return this.#guard(rel, () => this.#readAndClose(attributeFd(this.#open(rel, O_RDONLY | O_NOFOLLOW | O_NONBLOCK), rel)));
  }

  /** One write() of exactly `value` to an existing attribute: never creates a file. Always
   *  the fully checked path, never the verified-directory shortcut of reads. */
  write(path: string, value: string): void {
    const rel = normalizeSysfsPath(path);
    this.#guard(rel, () => {
      // No O_CREAT: a missing attribute is ENOENT.
      const fd = attributeFd(this.#open(rel, O_WRONLY | O_NOFOLLOW | O_NONBLOCK), rel);
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
      if (this.#verifiedDir(rel)) return fs.readdirSync(rel === '' ? this.#rootReal() : `${this.#rootReal()}/${rel}`).sort();
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

  /** Whether `dir` (clean, relative) is a directory reached from the root through no
   *  symlink; verified once per instance, one lstat per directory on top of its parent's. */
  #verifiedDir(dir: string): boolean {
    if (this.#verifiedDirs.has(dir)) return true;
    let ok: boolean;
    if (dir === '') {
      try {
        ok = fs.statSync(this.#rootReal(), { throwIfNoEntry: false })?.isDirectory() === true;
      } catch {
        ok = false;
      }
    } else {
      const slash = dir.lastIndexOf('/');
      if (!this.#verifiedDir(slash < 0 ? '' : dir.slice(0, slash))) return false;
      let stats: fs.Stats | undefined;
      try {
        stats = fs.lstatSync(`${this.#rootReal()}/${dir}`, { throwIfNoEntry: false });
      } catch {
        stats = undefined; // ENOTDIR, EACCES …: not verifiable, the slow path reports it
      }
      ok = stats !== undefined && stats.isDirectory() && !stats.isSymbolicLink();
    }
    if (ok) this.#verifiedDirs.add(dir);
    return ok;
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

  /** The whole file, then closes `fd`. A read shorter than asked for is the end of the file:
   *  a regular file reads short only at its end, and a sysfs attribute delivers everything its
   *  show function printed (at most a page) in the first read. */
  #readAndClose(fd: number): string {
    try {
      const buffer = this.#buffer;
      const n = fs.readSync(fd, buffer, 0, buffer.length, null);
      if (n < buffer.length) return buffer.toString('utf8', 0, n);
      const chunks = [Buffer.from(buffer)];
      for (;;) {
        const chunk = Buffer.allocUnsafe(READ_CHUNK);
        const got = fs.readSync(fd, chunk, 0, chunk.length, null);
        if (got === 0) break;
        chunks.push(chunk.subarray(0, got));
      }
      return Buffer.concat(chunks).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  }

  #guard<T>(rel: string, op: () => T): T {
    try {
      return op();
    } catch (err) {
      throw toSysfsError(err, rel);
    }
  }
}

/** `fd` if it is an attribute (a regular file with one link; a directory is EISDIR, as a read
 *  of it would say); otherwise closes it and refuses. */
function attributeFd(fd: number, rel: string): number {
  let stats: fs.Stats;
  try {
    stats = fs.fstatSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  if (stats.isFile() && stats.nlink === 1) return fd;
  fs.closeSync(fd);
  if (stats.isDirectory()) throw new SysfsError('EISDIR', rel);
  const what = stats.isFile() ? `a file with ${stats.nlink} links` : stats.isFIFO() ? 'a FIFO' : stats.isSocket() ? 'a socket' : 'a device node';
  throw new SysfsError('EACCES', rel, `not a sysfs attribute: ${what}`);
}

function isInside(root: string, candidate: string): boolean {
  if (root === nodePath.sep) return candidate.startsWith(nodePath.sep);
  return candidate === root || candidate.startsWith(root + nodePath.sep);
}
