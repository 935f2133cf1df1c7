// Writes a sysfs tree (typically the model's virtual sysfs) to a real directory: files with
// their current contents, directories, and symlinks with their stored relative targets. Read
// back with RealSysfs, it lets the same backend code be tested against an on-disk tree.
// Uses only the SysfsIO interface; symlinks are recreated, never walked into (no cycles).
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { SysfsError } from './errno.js';
import type { SysfsIO } from './sysfs-io.js';

export interface RenderStats {
  directories: number;
  files: number;
  symlinks: number;
  /** Attributes that cannot be read (bind, create, assign_adapter …): written empty, mode 0200. */
  writeOnly: number;
}

function attempt<T>(op: () => T): T | undefined {
  try {
    return op();
  } catch (err) {
    if (err instanceof SysfsError) return undefined;
    throw err;
  }
}

/** Renders `io` into `dir` (created if missing; must not already hold a tree). */
export function renderSysfs(io: SysfsIO, dir: string): RenderStats {
  const stats: RenderStats = { directories: 0, files: 0, symlinks: 0, writeOnly: 0 };
  fs.mkdirSync(dir, { recursive: true });
  const walk = (rel: string): void => {
    for (const name of io.list(rel)) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const onDisk = nodePath.join(dir, ...path.split('/'));
      const target = attempt(() => io.readlink(path));
      if (target !== undefined) {
        fs.symlinkSync(target, onDisk);
        stats.symlinks++;
        continue;
      }
      const entries = attempt(() => io.list(path));
      if (entries !== undefined) {
        fs.mkdirSync(onDisk);
        stats.directories++;
        walk(path);
        continue;
      }
      const contents = attempt(() => io.read(path));
      if (contents === undefined) {
        fs.writeFileSync(onDisk, '', { mode: 0o200 });
        stats.writeOnly++;
      } else {
        fs.writeFileSync(onDisk, contents, { mode: 0o644 });
        stats.files++;
      }
    }
  };
  walk('');
  return stats;
}
