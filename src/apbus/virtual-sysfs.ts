// SysfsIO over an ApBusModel: the same paths, texts, symlinks and errnos a real /sys gives
// the agent, so the backend code tested here is the code that runs on IBM Z.
//
// Errnos, as a root process sees them on real sysfs:
//   missing entry ENOENT; a path through a file ENOTDIR; read/write of a directory EISDIR;
//   list of a file ENOTDIR; readlink of a non-link EINVAL;
//   reading a write-only attribute or writing a read-only one EIO (root may open any mode;
//   dev_attr_show()/dev_attr_store() and their bus/driver twins answer -EIO for a missing
//   method; non-root would get EACCES from the file mode instead);
//   a zero-length write is a successful no-op (sysfs_kf_write() never calls the store);
//   one write() delivers at most PAGE_SIZE bytes to the store function.
import { SysfsError, errnoExplanation } from './errno.js';
import type { ApBusModel } from './model/ap-bus-model.js';
import { ApBusError } from './model/errors.js';
import type { DirNode, FileNode, LinkNode, SysfsNode } from './model/sysfs-nodes.js';
import { buildSysfsTree } from './model/sysfs-tree.js';
import { normalizeSysfsPath, type SysfsIO } from './sysfs-io.js';

const PAGE_SIZE = 4096;
const MAX_SYMLINK_HOPS = 40;

interface Resolved {
  node: SysfsNode;
  /** Canonical path of the node (links followed). */
  path: string;
}

export class VirtualSysfs implements SysfsIO {
  readonly model: ApBusModel;
  readonly #root: DirNode;

  constructor(model: ApBusModel) {
    this.model = model;
    this.#root = buildSysfsTree(model);
  }

  read(path: string): string {
    const rel = normalizeSysfsPath(path);
    const { node } = this.#resolve(rel, path, true);
    if (node.kind === 'dir') throw new SysfsError('EISDIR', rel);
    const f = node as FileNode;
    if (!f.readable) throw new SysfsError('EIO', rel, 'attribute is write-only');
    return this.#kernel(rel, () => f.show());
  }

  write(path: string, value: string): void {
    const rel = normalizeSysfsPath(path);
    const { node } = this.#resolve(rel, path, true);
    if (node.kind === 'dir') throw new SysfsError('EISDIR', rel);
    const f = node as FileNode;
    if (value.length === 0) return;
    if (!f.writable) throw new SysfsError('EIO', rel, 'attribute is read-only');
    this.#kernel(rel, () => f.store(truncateToPage(value)));
  }

  list(path: string): string[] {
    const rel = normalizeSysfsPath(path);
    const { node } = this.#resolve(rel, path, true);
    if (node.kind !== 'dir') throw new SysfsError('ENOTDIR', rel);
    return this.#kernel(rel, () => node.entries()).sort();
  }

  readlink(path: string): string {
    const rel = normalizeSysfsPath(path);
    const { node } = this.#resolve(rel, path, false);
    if (node.kind !== 'link') throw new SysfsError('EINVAL', rel, 'not a symbolic link');
    return (node as LinkNode).target;
  }

  exists(path: string): boolean {
    const rel = normalizeSysfsPath(path);
    try {
      this.#resolve(rel, path, true);
      return true;
    } catch (err) {
      if (err instanceof SysfsError) return false;
      throw err;
    }
  }

  /** Where a path leads (links followed), e.g. 'bus/ap/devices/05.0004' ->
   *  'devices/ap/card05/05.0004'. */
  realpath(path: string): string {
    const rel = normalizeSysfsPath(path);
    return this.#resolve(rel, path, true).path;
  }

  /** Walks the tree component by component; a link met on the way (or at the end, when
   *  `followLast`) restarts the walk at its target, resolved against the link's directory. */
  #resolve(rel: string, original: string, followLast: boolean): Resolved {
    let pending = rel === '' ? [] : rel.split('/');
    let at = 0;
    let where: string[] = [];
    let node: SysfsNode = this.#root;
    let hops = 0;
    while (at < pending.length) {
      const name = pending[at++]!;
      if (node.kind !== 'dir') throw new SysfsError('ENOTDIR', rel || original);
      const child = this.#lookup(rel, node, name);
      if (child === undefined) throw new SysfsError('ENOENT', rel || original);
      if (child.kind === 'link' && (at < pending.length || followLast)) {
        if (++hops > MAX_SYMLINK_HOPS) throw new SysfsError('ENOENT', rel, 'too many levels of symbolic links');
        const target = where;
        for (const part of child.target.split('/')) {
          if (part === '..') target.pop();
          else if (part !== '' && part !== '.') target.push(part);
        }
        pending = target.concat(pending.slice(at));
        at = 0;
        where = [];
        node = this.#root;
        continue;
      }
      where.push(name);
      node = child;
    }
    return { node, path: where.join('/') };
  }

  #lookup(rel: string, dir: DirNode, name: string): SysfsNode | undefined {
    try {
      return dir.child(name);
    } catch (err) {
      throw this.#translate(err, rel);
    }
  }

  /** Runs a show/store/lookup and reports kernel errors against the path. */
  #kernel<T>(rel: string, op: () => T): T {
    try {
      return op();
    } catch (err) {
      throw this.#translate(err, rel);
    }
  }

  #translate(err: unknown, rel: string): unknown {
    if (!(err instanceof ApBusError)) return err;
    // strerror text first, as a real sysfs would report it; the model's reason after it.
    const strerror = errnoExplanation(err.errno);
    return new SysfsError(err.errno, rel, err.detail === strerror ? strerror : `${strerror} (${err.detail})`);
  }
}

/** What one write() hands a store function: at most a page. */
function truncateToPage(value: string): string {
  if (value.length <= PAGE_SIZE / 4) return value;
  const bytes = new TextEncoder().encode(value);
  if (bytes.length <= PAGE_SIZE) return value;
  return new TextDecoder().decode(bytes.slice(0, PAGE_SIZE));
}
