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
    const rel = normalizeSysfsPath(path);
    const node = this.#lookup(rel, true);
    if (node.kind === 'dir') throw new SysfsError('EISDIR', rel);
    if (node.kind !== 'file' || !node.readable) throw new SysfsError('EACCES', rel, 'attribute is write-only');
    try {
      return node.show();
    } catch (err) {
      throw translate(err, rel);
    }
  }

  write(path: string, value: string): void {
    const rel = normalizeSysfsPath(path);
    const node = this.#lookup(rel, true);
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
    const rel = normalizeSysfsPath(path);
    const node = this.#lookup(rel, true);
    if (node.kind !== 'dir') throw new SysfsError('ENOTDIR', rel);
    try {
      return node.entries().sort();
    } catch (err) {
      throw translate(err, rel);
    }
  }

  readlink(path: string): string {
    const rel = normalizeSysfsPath(path);
    const node = this.#lookup(rel, false);
    if (node.kind !== 'link') throw new SysfsError('EINVAL', rel, 'not a symbolic link');
    return node.target;
  }

  exists(path: string): boolean {
    const rel = normalizeSysfsPath(path);
    try {
      this.#lookup(rel, true);
      return true;
    } catch (err) {
      if (err instanceof SysfsError) return false;
      throw err;
    }
  }

  /** Where a path leads (links followed), e.g. 'bus/ap/devices/05.0004' ->
   *  'devices/ap/card05/05.0004'. */
  realpath(path: string): string {
    return this.#resolve(normalizeSysfsPath(path), true).where.join('/');
  }

  /** The node at `rel`. The hot path (a file or directory in a directory already resolved)
   *  allocates nothing but the node: the parent comes from the cache and only a link as the
   *  last component, or a miss, takes the full walk (which also raises the right errno). */
  #lookup(rel: string, followLast: boolean): SysfsNode {
    if (rel === '') return this.#root;
    const slash = rel.lastIndexOf('/');
    const parent = slash < 0 ? this.#root : this.#parentDir(rel.slice(0, slash));
    if (parent !== undefined) {
      let child: SysfsNode | undefined;
      try {
        child = parent.child(slash < 0 ? rel : rel.slice(slash + 1));
      } catch (err) {
        throw translate(err, rel);
      }
      if (child !== undefined && (child.kind !== 'link' || !followLast)) return child;
    }
    return this.#resolve(rel, followLast).node;
  }

  /** The directory at `dirPath` (links followed) from the cache, resolving and caching it on
   *  a miss; undefined when it is not a directory (the caller's full walk reports why). */
  #parentDir(dirPath: string): DirNode | undefined {
    if (this.#dirsGeneration !== this.model.generation) {
      this.#dirs.clear();
      this.#dirsGeneration = this.model.generation;
    }
    const cached = this.#dirs.get(dirPath);
    if (cached !== undefined) return cached.node as DirNode;
    let resolved: Resolved;
    try {
      resolved = this.#resolve(dirPath, true);
    } catch (err) {
      if (err instanceof SysfsError) return undefined;
      throw err;
    }
    if (resolved.node.kind !== 'dir') return undefined;
    this.#dirs.set(dirPath, resolved);
    return resolved.node;
  }

  /** Where `rel` leads, with the canonical path (for realpath and the directory cache). */
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
