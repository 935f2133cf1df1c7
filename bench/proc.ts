// A process's memory and CPU from /proc (Linux): what the benchmark reads of the controller child.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';

/** A `kB` field of /proc/<pid>/status (VmHWM: peak RSS, VmRSS: current), in bytes; 0 when absent. */
export function procStatusBytes(pid: number, field: string): number {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

/** Clock ticks per second, the unit of /proc/<pid>/stat's times. */
export const CLK_TCK = (() => {
  const n = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/**
 * utime + stime of /proc/<pid>/stat, in seconds: the CPU the process used so far, all its threads
 * (V8's compiler and GC threads, libuv's pool). The fields are read after the `(comm)` field, which
 * may hold spaces: there state is the 1st, utime the 12th, stime the 13th.
 */
export function parseStatCpuSeconds(stat: string, ticksPerSecond = CLK_TCK): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`not a /proc/<pid>/stat line: ${stat.slice(0, 80)}`);
  return (utime + stime) / ticksPerSecond;
}

export function procCpuSeconds(pid: number): number {
  return parseStatCpuSeconds(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
}
