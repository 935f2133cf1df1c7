// The three kinds of sysfs entries the virtual tree is made of. Directories are computed on
// lookup (a 5,440-queue node is never materialised as objects); attribute files carry the
// kernel's show/store functions. A file that is not readable cannot be opened for reading
// and one that is not writable cannot be opened for writing (EACCES, even for root).

export interface DirNode {
  readonly kind: 'dir';
  /** Entry names (any order; VirtualSysfs sorts). */
  entries(): string[];
  child(name: string): SysfsNode | undefined;
}

export interface FileNode {
  readonly kind: 'file';
  /** Has a show function (mode has a read bit). */
  readonly readable: boolean;
  /** Has a store function (mode has a write bit). */
  readonly writable: boolean;
  show(): string;
  store(value: string): void;
}

export interface LinkNode {
  readonly kind: 'link';
  /** Relative to the directory holding the link, as sysfs stores it. */
  readonly target: string;
}

export type SysfsNode = DirNode | FileNode | LinkNode;

class CallbackFile implements FileNode {
  readonly kind = 'file' as const;
  constructor(
    readonly showFn: (() => string) | undefined,
    readonly storeFn: ((value: string) => void) | undefined,
  ) {}
  get readable(): boolean {
    return this.showFn !== undefined;
  }
  get writable(): boolean {
    return this.storeFn !== undefined;
  }
  show(): string {
    return this.showFn!();
  }
  store(value: string): void {
    this.storeFn!(value);
  }
}

export function file(show?: () => string, store?: (value: string) => void): FileNode {
  return new CallbackFile(show, store);
}

/** An attribute of one device, described once per kind of device; `K` identifies the device. */
export interface DeviceAttr<M, K> {
  readonly show?: (model: M, key: K) => string;
  readonly store?: (model: M, key: K, value: string) => void;
}

/** A device attribute file: a table entry bound to one device (no closures per lookup, which
 *  keeps a 5,000-queue inventory cheap). */
export class DeviceAttrFile<M, K> implements FileNode {
  readonly kind = 'file' as const;
  constructor(
    readonly attr: DeviceAttr<M, K>,
    readonly model: M,
    readonly key: K,
  ) {}
  get readable(): boolean {
    return this.attr.show !== undefined;
  }
  get writable(): boolean {
    return this.attr.store !== undefined;
  }
  show(): string {
    return this.attr.show!(this.model, this.key);
  }
  store(value: string): void {
    this.attr.store!(this.model, this.key, value);
  }
}

export function link(target: string): LinkNode {
  return { kind: 'link', target };
}

/** A directory with a fixed set of entries, each built when looked up. */
export function staticDir(children: Record<string, () => SysfsNode>): DirNode {
  return {
    kind: 'dir',
    entries: () => Object.keys(children),
    child: (name) => (Object.prototype.hasOwnProperty.call(children, name) ? children[name]!() : undefined),
  };
}

/** A directory whose entries change with the model. */
export function dynamicDir(entries: () => string[], child: (name: string) => SysfsNode | undefined): DirNode {
  return { kind: 'dir', entries, child };
}
