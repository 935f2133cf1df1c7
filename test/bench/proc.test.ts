// The benchmark's /proc readings of the controller child: CPU time and memory.
import test from 'ava';
import { parseStatCpuSeconds, procCpuSeconds, procStatusBytes } from '../../bench/proc.js';

test('utime + stime from a stat line, a command name with spaces and parentheses included', (t) => {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
  const stat = '4242 (node (bench) x) S 1 4242 4242 0 -1 4194560 9000 0 12 0 250 50 0 0 20 0 11 0 100 1000000 5000';
  t.is(parseStatCpuSeconds(stat, 100), 3);
  t.throws(() => parseStatCpuSeconds('garbage', 100));
});

test('this process: its CPU time grows with work as Node counts it; its peak RSS is at least its RSS', (t) => {
  // Spin until Node's own counter says 200 ms of CPU were spent, not for 200 ms of wall time:
  // on a loaded CI machine wall time says nothing about how much CPU the process got.
  const before = procCpuSeconds(process.pid);
  const start = process.cpuUsage();
  let x = 0;
  const spentMs = () => {
    const d = process.cpuUsage(start);
    return (d.user + d.system) / 1000;
  };
  while (spentMs() < 200) x += Math.sqrt(x + 1);
  t.true(x > 0);
  const after = procCpuSeconds(process.pid);
  // /proc counts in clock ticks (10 ms); allow two ticks of rounding on each reading.
  t.true(after - before >= 0.2 - 0.04, `${before} → ${after}`);
  // RSS first: the peak read afterwards covers it, whereas RSS read after the peak may already exceed it.
  const rss = procStatusBytes(process.pid, 'VmRSS');
  t.true(procStatusBytes(process.pid, 'VmHWM') >= rss);
  t.true(rss > 10 * 2 ** 20);
  t.is(procStatusBytes(process.pid, 'NoSuchField'), 0);
});
