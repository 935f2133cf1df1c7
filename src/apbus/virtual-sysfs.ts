// SysfsIO over an ApBusModel: the same paths, texts, symlinks and errnos a real /sys gives
// the agent, so the backend code tested here is the code that runs on IBM Z.
//
// Errnos, as a root process sees them on real sysfs:
//   missing entry ENOENT; a path through a file ENOTDIR; read/write of a directory EISDIR;
//   list of a file ENOTDIR; readlink of a non-link EINVAL;
//   reading a write-only attribute or writing a read-only one EACCES, even for root: sysfs
//   sets KERNFS_ROOT_EXTRA_OPEN_PERM_CHECK, so kernfs_fop_open() refuses an open for
//   writing without a write bit in the file mode (and for reading without a read bit)
//   regardless of CAP_DAC_OVERRIDE;
//   a zero-length write to a writable attribute is a successful no-op (sysfs_kf_write()
//   never calls the store); one write() delivers at most PAGE_SIZE bytes to the store.
import { SysfsError, errnoExplanation } from './errno.js';
import type { ApBusModel } from './model/ap-bus-model.js';
import { ApBusError } from './model/errors.js';
import type { DirNode, SysfsNode } from './model/sysfs-nodes.js';
import { buildSysfsTree } from './model/sysfs-tree.js';
import { normalizeSysfsPath, type SysfsIO } from './sysfs-io.js';

const PAGE_SIZE = 4096;
const MAX_SYMLINK_HOPS = 40;

/** Characters of plain sysfs names (a name never starts with '.'). */
const NAME_CHAR = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:@+-') NAME_CHAR[c.charCodeAt(0)] = 1;
const DOT = 46;
const SLASH = 47;

/** Is this a path normalizeSysfsPath() would return unchanged: plain names joined by single
 *  '/', none starting with '.'? Checked first because it is cheap (inventories read
 *  thousands of attributes). */
function isCleanPath(path: string): boolean {
  let segmentStart = true;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === SLASH) {
      if (segmentStart) return false;
      segmentStart = true;
      continue;
    }
    if (c >= 128 || NAME_CHAR[c] === 0 || (segmentStart && c === DOT)) return false;
    segmentStart = false;
  }
  return !segmentStart;
}

interface Resolved {
  node: SysfsNode;
  /** Canonical path of the node (links followed), as components. */
  where: string[];
}

export class VirtualSysfs implements SysfsIO {
  readonly model: ApBusModel;
  readonly #root: DirNode;
  /** Directories already resolved, by the path they were asked by; valid for one model
   *  generation (any change of devices, drivers or mdevs clears it). */
  readonly #dirs = new Map<string, Resolved>();
  #dirsGeneration = -1;

  constructor(model: ApBusModel) {
    this.model = model;
    this.#root = buildSysfsTree(model);
  }

  read(path: string): string {
    const rel = normalize(path);
    const node = this.#resolve(rel, true).node;
    if (node.kind === 'dir') throw new SysfsError('EISDIR', rel);
    if (node.kind !== 'file' || !node.readable) throw new SysfsError('EACCES', rel, 'attribute is write-only');
    try {
      return node.show();
    } catch (err) {
      throw translate(err, rel);
    }
  }

  write(path: string, value: string): void {
    const rel = normalize(path);
    const node = this.#resolve(rel, true).node;
    if (node.kind === 'dir') throw new SysfsError('EISDIR', rel);
    if (node.kind !== 'file' || !node.writable) throw new SysfsError('EACCES', rel, 'attribute is read-only');
    if (value.length === 0) return;
    try {
      node.store(truncateToPage(value));
    } catch (err) {
      throw translate(err, rel);
    }
  }

  list(path: string): string[] {
    const rel = normalize(path);
    const node = this.#resolve(rel, true).node;
    if (node.kind !== 'dir') throw new SysfsError('ENOTDIR', rel);
    try {
      return node.entries().sort();
    } catch (err) {
      throw translate(err, rel);
    }
  }

  readlink(path: string): string {
    const rel = normalize(path);
    const node = this.#resolve(rel, false).node;
    if (node.kind !== 'link') throw new SysfsError('EINVAL', rel, 'not a symbolic link');
    return node.target;
  }

  exists(path: string): boolean {
    const rel = normalize(path);
    try {
      this.#resolve(rel, true);
      return true;
    } catch (err) {
      if (err instanceof SysfsError) return false;
      throw err;
    }
  }

  /** Where a path leads (links followed), e.g. 'bus/ap/devices/05.0004' ->
   *  'devices/ap/card05/05.0004'. */
  realpath(path: string): string {
    return this.#resolve(normalize(path), true).where.join('/');
  }

  /** The parent directory comes from the cache when it can; the last component is looked up
   *  every time (attribute nodes are cheap, and no contents are ever cached). */
  #resolve(rel: string, followLast: boolean): Resolved {
    if (rel === '') return { node: this.#root, where: [] };
    if (this.#dirsGeneration !== this.model.generation) {
      this.#dirs.clear();
      this.#dirsGeneration = this.model.generation;
    }
    const slash = rel.lastIndexOf('/');
    let parent: Resolved | undefined;
    if (slash < 0) parent = { node: this.#root, where: [] };
    else {
      const parentPath = rel.slice(0, slash);
      parent = this.#dirs.get(parentPath);
      if (parent === undefined) {
        parent = this.#resolve(parentPath, true);
        if (parent.node.kind === 'dir') this.#dirs.set(parentPath, parent);
      }
    }
    return this.#walk(parent.node, parent.where, [rel.slice(slash + 1)], rel, followLast);
  }

  /** Walks `names` from `start`; a link met on the way (or at the end, when `followLast`)
   *  restarts the walk from the root at its target, resolved against the link's directory. */
  #walk(start: SysfsNode, startWhere: readonly string[], names: string[], rel: string, followLast: boolean): Resolved {
    let pending = names;
    let at = 0;
    let where = startWhere.slice();
    let node = start;
    let hops = 0;
    while (at < pending.length) {
      const name = pending[at++]!;
      if (node.kind !== 'dir') throw new SysfsError('ENOTDIR', rel);
      let child: SysfsNode | undefined;
      try {
        child = node.child(name);
      } catch (err) {
        throw translate(err, rel);
      }
      if (child === undefined) throw new SysfsError('ENOENT', rel);
      if (child.kind === 'link' && (at < pending.length || followLast)) {
        if (++hops > MAX_SYMLINK_HOPS) throw new SysfsError('ENOENT', rel, 'too many levels of symbolic links');
        for (const part of child.target.split('/')) {
          if (part === '..') where.pop();
          else if (part !== '' && part !== '.') where.push(part);
        }
        pending = where.concat(pending.slice(at));
        at = 0;
        where = [];
        node = this.#root;
        continue;
      }
      where.push(name);
      node = child;
    }
    return { node, where };
  }
}

function normalize(path: string): string {
  return typeof path === 'string' && isCleanPath(path) ? path : normalizeSysfsPath(path);
}

/** Kernel errors from show/store/lookup, reported against the path. */
function translate(err: unknown, rel: string): unknown {
  if (!(err instanceof ApBusError)) return err;
  // strerror text first, as a real sysfs would report it; the model's reason after it.
  const strerror = errnoExplanation(err.errno);
  return new SysfsError(err.errno, rel, err.detail === strerror ? strerror : `${strerror} (${err.detail})`);
}

/** What one write() hands a store function: at most a page. */
function truncateToPage(value: string): string {
  if (value.length <= PAGE_SIZE / 4) return value;
  const bytes = new TextEncoder().encode(value);
  if (bytes.length <= PAGE_SIZE) return value;
  return new TextDecoder().decode(bytes.slice(0, PAGE_SIZE));
}
