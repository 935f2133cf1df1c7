// The three kinds of sysfs entries the virtual tree is made of. Directories are computed on
// lookup (a 5,440-queue node is never materialised as objects); attribute files carry the
// kernel's show/store functions. A file without `show` reads EIO and one without `store`
// writes EIO, as dev_attr_show()/dev_attr_store() answer root, who may open any mode.

export interface DirNode {
  readonly kind: 'dir';
  /** Entry names (any order; VirtualSysfs sorts). */
  entries(): string[];
  child(name: string): SysfsNode | undefined;
}

export interface FileNode {
  readonly kind: 'file';
  readonly show?: () => string;
  readonly store?: (value: string) => void;
}

export interface LinkNode {
  readonly kind: 'link';
  /** Relative to the directory holding the link, as sysfs stores it. */
  readonly target: string;
}

export type SysfsNode = DirNode | FileNode | LinkNode;

export function file(show?: () => string, store?: (value: string) => void): FileNode {
  const node: { kind: 'file'; show?: () => string; store?: (value: string) => void } = { kind: 'file' };
  if (show) node.show = show;
  if (store) node.store = store;
  return node;
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
