// The benchmark's /proc readings of the controller child: CPU time and memory.
import test from 'ava';
import { parseStatCpuSeconds, procCpuSeconds, procStatusBytes } from '../../bench/proc.js';

test('utime + stime from a stat line, a command name with spaces and parentheses included', (t) => {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
  const stat = '4242 (node (bench) x) S 1 4242 4242 0 -1 4194560 9000 0 12 0 250 50 0 0 20 0 11 0 100 1000000 5000';
  t.is(parseStatCpuSeconds(stat, 100), 3);
  t.throws(() => parseStatCpuSeconds('garbage', 100));
});

test('this process: its CPU time grows with work; its peak RSS is at least its RSS', (t) => {
  const before = procCpuSeconds(process.pid);
  const end = Date.now() + 200;
  let x = 0;
  while (Date.now() < end) x += Math.sqrt(x + 1);
  t.true(x > 0);
  const after = procCpuSeconds(process.pid);
  t.true(after - before >= 0.1, `${before} → ${after}`);
  t.true(procStatusBytes(process.pid, 'VmHWM') >= procStatusBytes(process.pid, 'VmRSS'));
  t.true(procStatusBytes(process.pid, 'VmRSS') > 10 * 2 ** 20);
  t.is(procStatusBytes(process.pid, 'NoSuchField'), 0);
});
