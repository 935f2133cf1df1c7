// The `apqn-operator` dispatcher: every command it lists answers --help, and typos are errors.
import test from 'ava';
import { spawnSync } from 'node:child_process';

const run = (args: string[]) => spawnSync('node', ['bin/apqn-operator.js', ...args], { encoding: 'utf8' });

test('the usage lists every command, and each answers --help with its own usage', (t) => {
  const top = run(['--help']);
  t.is(top.status, 0);
  const listed = [...top.stdout.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1]!);
  t.deepEqual(listed.sort(), ['agent', 'controller', 'controlplane', 'dev', 'sim']);
  for (const name of listed) {
    const r = run([name, '--help']);
    t.is(r.status, 0, `${name} --help: ${r.stderr}`);
    t.regex(r.stdout, new RegExp(`usage: apqn-operator ${name}`), name);
  }
});

test('an unknown command or flag is an error that says what is wrong', (t) => {
  const cmd = run(['frobnicate']);
  t.is(cmd.status, 2);
  t.regex(cmd.stderr, /unknown command "frobnicate"/);
  const flag = run(['controller', '--leader-elekt']);
  t.not(flag.status, 0);
  t.regex(flag.stderr, /unknown flag --leader-elekt/);
});
