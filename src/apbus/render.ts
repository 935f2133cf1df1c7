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

/** A directory that cannot take a rendered tree; the message names it and says why. */
export class RenderTargetError extends Error {}

/** Checks that `dir` can take a tree: absent (its parent is then created as needed) or an
 *  empty directory. A rendering never overwrites or mixes with files that are already there. */
export function checkRenderTarget(dir: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new RenderTargetError(`${dir}: not a directory`);
    throw new RenderTargetError(`${dir}: ${(err as Error).message}`);
  }
  if (entries.length > 0) {
    throw new RenderTargetError(`${dir}: not empty (${entries.length} entries); give a new or empty directory`);
  }
}

/** Renders `io` into `dir` (created if missing; must not already hold a tree). */
export function renderSysfs(io: SysfsIO, dir: string): RenderStats {
  // Telling files, directories and links apart through SysfsIO means trying readlink and
  // list and catching the refusals, tens of thousands of times on a large node: stack
  // traces for those errors would dominate. Nothing else runs meanwhile (all synchronous).
  const savedLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return renderTree(io, dir);
  } finally {
    Error.stackTraceLimit = savedLimit;
  }
}

function renderTree(io: SysfsIO, dir: string): RenderStats {
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
