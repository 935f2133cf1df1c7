import test from 'ava';
import { SysfsError } from '../../src/apbus/errno.js';
import type { Apqn } from '../../src/apbus/ids.js';
import { executeSimLine, runSimCommand, runSimScript, tokenize, type SimContext, type SimModel } from '../../src/apbus/sim-shell.js';
import { normalizeSysfsPath, type SysfsIO } from '../../src/apbus/sysfs-io.js';

// ------------------------------------------------------------------ grammar, against fakes
// A flat in-memory tree and a model that records calls: enough to pin down the shell's
// syntax. The scenarios against the real model are further down.

class MemorySysfs implements SysfsIO {
  readonly files = new Map<string, string>();
  readonly links = new Map<string, string>();
  readonly writes: Array<[string, string]> = [];
  read(path: string): string {
    const p = normalizeSysfsPath(path);
    const v = this.files.get(p);
    if (v === undefined) throw new SysfsError(this.#isDir(p) ? 'EISDIR' : 'ENOENT', p);
    return v;
  }
  write(path: string, value: string): void {
    const p = normalizeSysfsPath(path);
    if (!this.files.has(p)) throw new SysfsError('ENOENT', p);
    if (p === 'bus/ap/apmask' && value === 'busy\n') throw new SysfsError('EBUSY', p);
    this.writes.push([p, value]);
    this.files.set(p, value);
  }
  list(path: string): string[] {
    const p = normalizeSysfsPath(path);
    if (this.files.has(p)) throw new SysfsError('ENOTDIR', p);
    if (!this.#isDir(p)) throw new SysfsError('ENOENT', p);
    const prefix = p === '' ? '' : p + '/';
    const names = new Set<string>();
    for (const k of [...this.files.keys(), ...this.links.keys()]) {
      if (k.startsWith(prefix)) names.add(k.slice(prefix.length).split('/')[0]!);
    }
    return [...names].sort();
  }
  readlink(path: string): string {
    const p = normalizeSysfsPath(path);
    const v = this.links.get(p);
    if (v === undefined) throw new SysfsError(this.files.has(p) ? 'EINVAL' : 'ENOENT', p);
    return v;
  }
  exists(path: string): boolean {
    const p = normalizeSysfsPath(path);
    return this.files.has(p) || this.links.has(p) || this.#isDir(p);
  }
  #isDir(p: string): boolean {
    const prefix = p === '' ? '' : p + '/';
    return [...this.files.keys()].some((k) => k.startsWith(prefix));
  }
}

class RecordingModel implements SimModel {
  readonly calls: string[] = [];
  attachGuest(uuid: string) {
    if (uuid.startsWith('0000')) throw Object.assign(new Error('ENODEV No such device'), { errno: 'ENODEV' });
    this.calls.push(`attach ${uuid}`);
  }
  detachGuest(uuid: string) {
    this.calls.push(`detach ${uuid}`);
  }
  addHostLoad(apqn: Apqn, n: number, secs?: number) {
    this.calls.push(`load ${apqn.adapter}.${apqn.domain} ${n} ${secs ?? '-'}`);
  }
  tick(seconds: number) {
    this.calls.push(`tick ${seconds}`);
  }
  removeCard(id: number) {
    this.calls.push(`remove ${id}`);
  }
  addCard(id: number) {
    this.calls.push(`add ${id}`);
  }
}

function fakes() {
  const io = new MemorySysfs();
  io.files.set('bus/ap/apmask', '0x' + 'f'.repeat(64) + '\n');
  io.files.set('bus/ap/bindings', '4/4 (complete)\n');
  io.files.set('devices/ap/card05/type', 'CEX8P\n');
  io.links.set('bus/ap/devices/card05', '../../../devices/ap/card05');
  const model = new RecordingModel();
  const ctx: SimContext = { io, model };
  return { io, model, ctx };
}

const UUID = '6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab';

interface ShellCase {
  why: string;
  line: string;
  output: string;
  outcome?: 'ok' | 'failed' | 'usage';
  writes?: Array<[string, string]>;
  calls?: string[];
}

const shellCases: ShellCase[] = [
  { why: 'a blank line prints nothing', line: '', output: '' },
  { why: 'whitespace only prints nothing', line: '   \t ', output: '' },
  { why: 'a comment prints nothing', line: '# cat bus/ap/apmask', output: '' },
  { why: 'an indented comment prints nothing', line: '   # note', output: '' },
  { why: 'cat prints the file exactly', line: 'cat bus/ap/bindings', output: '4/4 (complete)\n' },
  { why: 'cat takes /sys paths', line: 'cat /sys/bus/ap/bindings', output: '4/4 (complete)\n' },
  { why: 'cat of several files concatenates', line: 'cat bus/ap/bindings devices/ap/card05/type', output: '4/4 (complete)\nCEX8P\n' },
  { why: 'cat of a missing file is ENOENT', line: 'cat bus/ap/nope', output: 'error: ENOENT No such file or directory\n', outcome: 'failed' },
  { why: 'cat of a directory is EISDIR', line: 'cat bus/ap', output: 'error: EISDIR Is a directory\n', outcome: 'failed' },
  { why: 'cat outside /sys is ENOENT', line: 'cat /etc/passwd', output: 'error: ENOENT absolute path outside /sys\n', outcome: 'failed' },
  { why: 'a trailing comment is ignored', line: 'cat bus/ap/bindings # how many bound', output: '4/4 (complete)\n' },
  { why: 'ls lists one name per line', line: 'ls bus/ap', output: 'apmask\nbindings\ndevices\n' },
  { why: 'ls without a path lists the root', line: 'ls', output: 'bus\ndevices\n' },
  { why: 'ls /sys lists the root', line: 'ls /sys', output: 'bus\ndevices\n' },
  { why: 'ls of a file prints its name like ls(1)', line: 'ls bus/ap/apmask', output: 'bus/ap/apmask\n' },
  { why: 'ls of a missing path is ENOENT', line: 'ls bus/xx', output: 'error: ENOENT No such file or directory\n', outcome: 'failed' },
  { why: 'readlink prints the stored target', line: 'readlink bus/ap/devices/card05', output: '../../../devices/ap/card05\n' },
  { why: 'readlink of a file is EINVAL', line: 'readlink bus/ap/apmask', output: 'error: EINVAL Invalid argument\n', outcome: 'failed' },
  { why: 'echo writes the value and a newline', line: 'echo 0x41 > bus/ap/apmask', output: '', writes: [['bus/ap/apmask', '0x41\n']] },
  { why: 'echo -n writes no newline', line: 'echo -n +1 > /sys/bus/ap/apmask', output: '', writes: [['bus/ap/apmask', '+1']] },
  { why: '"-n" quoted is still the option (as in bash)', line: 'echo "-n" +1 > bus/ap/apmask', output: '', writes: [['bus/ap/apmask', '+1']] },
  { why: 'no space around >', line: 'echo 0x41>bus/ap/apmask', output: '', writes: [['bus/ap/apmask', '0x41\n']] },
  { why: 'single quotes keep everything literal', line: "echo '+1, +2' > bus/ap/apmask", output: '', writes: [['bus/ap/apmask', '+1, +2\n']] },
  { why: 'double quotes keep > and # literal', line: 'echo "a > b # c" > bus/ap/apmask', output: '', writes: [['bus/ap/apmask', 'a > b # c\n']] },
  { why: 'escaped quote inside double quotes', line: 'echo "say \\"hi\\"" > bus/ap/apmask', output: '', writes: [['bus/ap/apmask', 'say "hi"\n']] },
  { why: 'several words are joined by one space', line: 'echo a   b > bus/ap/apmask', output: '', writes: [['bus/ap/apmask', 'a b\n']] },
  { why: 'echo with nothing writes a lone newline', line: 'echo > bus/ap/apmask', output: '', writes: [['bus/ap/apmask', '\n']] },
  { why: 'echo -n with nothing is a zero-length write', line: 'echo -n > bus/ap/apmask', output: '', writes: [['bus/ap/apmask', '']] },
  { why: 'quoted empty value', line: "echo '' > bus/ap/apmask", output: '', writes: [['bus/ap/apmask', '\n']] },
  { why: 'echo without > prints the value', line: 'echo hello', output: 'hello\n' },
  { why: 'a refused write prints the errno', line: 'echo busy > bus/ap/apmask', output: 'error: EBUSY Device or resource busy\n', outcome: 'failed' },
  { why: 'writing a missing file is ENOENT', line: 'echo 1 > bus/ap/nope', output: 'error: ENOENT No such file or directory\n', outcome: 'failed' },
  { why: 'guest attach', line: `guest attach ${UUID}`, output: '', calls: [`attach ${UUID}`] },
  { why: 'guest detach takes an upper-case UUID', line: `guest detach ${UUID.toUpperCase()}`, output: '', calls: [`detach ${UUID}`] },
  { why: 'a model refusal prints its errno', line: 'guest attach 00000000-0000-0000-0000-000000000000', output: 'error: ENODEV No such device\n', outcome: 'failed' },
  { why: 'host load with drain time', line: 'host load 05.0004 3 5', output: '', calls: ['load 5.4 3 5'] },
  { why: 'host load without drain time', line: 'host load 5.4 2', output: '', calls: ['load 5.4 2 -'] },
  { why: 'card remove', line: 'card remove 05', output: '', calls: ['remove 5'] },
  { why: 'card add', line: 'card add 0x0a', output: '', calls: ['add 10'] },
  { why: 'tick', line: 'tick 2.5', output: '', calls: ['tick 2.5'] },
  { why: 'CRLF line endings are fine', line: 'tick 1\r', output: '', calls: ['tick 1'] },
  // usage errors
  { why: 'unknown command', line: 'rm -rf /', output: 'error: unknown command "rm" (try help)\n', outcome: 'usage' },
  { why: "'1>' is a descriptor redirection in a shell", line: 'echo 1>bus/ap/apmask', output: '', outcome: 'usage' },
  { why: 'append is refused', line: 'echo 1 >> bus/ap/apmask', output: '', outcome: 'usage' },
  { why: 'a pipe is refused', line: 'cat bus/ap/apmask | head', output: '', outcome: 'usage' },
  { why: 'a semicolon is refused', line: 'cat a; cat b', output: '', outcome: 'usage' },
  { why: 'variables are refused', line: 'echo $X > bus/ap/apmask', output: '', outcome: 'usage' },
  { why: 'variables inside double quotes are refused', line: 'echo "$X" > bus/ap/apmask', output: '', outcome: 'usage' },
  { why: 'an unterminated quote', line: "echo 'abc > bus/ap/apmask", output: '', outcome: 'usage' },
  { why: 'two paths after >', line: 'echo 1 > a b', output: '', outcome: 'usage' },
  { why: 'no path after >', line: 'echo 1 >', output: '', outcome: 'usage' },
  { why: '> with cat', line: 'cat bus/ap/apmask > x', output: '', outcome: 'usage' },
  { why: 'a line starting with >', line: '> bus/ap/apmask', output: '', outcome: 'usage' },
  { why: 'cat without a path', line: 'cat', output: '', outcome: 'usage' },
  { why: 'guest with a bad UUID', line: 'guest attach not-a-uuid', output: '', outcome: 'usage' },
  { why: 'guest with a bad action', line: `guest open ${UUID}`, output: '', outcome: 'usage' },
  { why: 'host load with a bad APQN', line: 'host load 05.0100 1', output: '', outcome: 'usage' },
  { why: 'host load with a negative count', line: 'host load 05.0004 -1', output: '', outcome: 'usage' },
  { why: 'host load without a count', line: 'host load 05.0004', output: '', outcome: 'usage' },
  { why: 'card with a bad id', line: 'card remove 100', output: '', outcome: 'usage' },
  { why: 'tick with a negative time', line: 'tick -1', output: '', outcome: 'usage' },
  { why: 'tick without a time', line: 'tick', output: '', outcome: 'usage' },
];

for (const c of shellCases) {
  test(`sim: ${JSON.stringify(c.line)}: ${c.why}`, (t) => {
    const { io, model, ctx } = fakes();
    const result = executeSimLine(c.line, ctx);
    const outcome = c.outcome ?? 'ok';
    t.is(result.outcome, outcome);
    if (outcome === 'usage') {
      t.regex(result.output, /^error: [^\n]+\n$/, 'one error line');
    } else {
      t.is(result.output, c.output);
    }
    t.deepEqual(io.writes, c.writes ?? [], 'writes');
    t.deepEqual(model.calls, c.calls ?? [], 'model calls');
  });
}

test('runSimCommand returns just the output', (t) => {
  const { ctx } = fakes();
  t.is(runSimCommand('cat bus/ap/bindings', ctx), '4/4 (complete)\n');
});

test('help lists every command', (t) => {
  const { ctx } = fakes();
  const out = runSimCommand('help', ctx);
  for (const cmd of ['cat', 'ls', 'readlink', 'echo', 'guest', 'host load', 'card', 'tick']) t.true(out.includes(cmd), cmd);
});

test('runSimScript runs every line and counts usage errors, not refusals', (t) => {
  const { ctx, io } = fakes();
  const script = ['# demo', 'echo 0x41 > bus/ap/apmask', 'cat bus/ap/apmask', 'echo busy > bus/ap/apmask', 'frobnicate', ''].join('\n');
  const { output, usageErrors } = runSimScript(script, ctx);
  t.is(output, '0x41\nerror: EBUSY Device or resource busy\nerror: unknown command "frobnicate" (try help)\n');
  t.is(usageErrors, 1);
  t.is(io.files.get('bus/ap/apmask'), '0x41\n');
});

test('tokenize: words, quotes and the redirect', (t) => {
  t.deepEqual(tokenize(`echo -n 'a b'"c"d > x`), [
    { kind: 'word', text: 'echo', quoted: false },
    { kind: 'word', text: '-n', quoted: false },
    { kind: 'word', text: 'a bcd', quoted: true },
    { kind: 'redirect' },
    { kind: 'word', text: 'x', quoted: false },
  ]);
  t.deepEqual(tokenize('a\\ b'), [{ kind: 'word', text: 'a b', quoted: true }]);
  t.deepEqual(tokenize('a#b'), [{ kind: 'word', text: 'a#b', quoted: false }], "'#' inside a word is literal");
});
