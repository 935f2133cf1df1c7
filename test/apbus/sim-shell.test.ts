import test from 'ava';
import { SysfsError } from '../../src/apbus/errno.js';
import type { Apqn } from '../../src/apbus/ids.js';
import { executeSimLine, runSimCommand, runSimScript, tokenize, type SimCardSpec, type SimContext, type SimModel } from '../../src/apbus/sim-shell.js';
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
  replugCard(id: number) {
    this.calls.push(`replug ${id}`);
  }
  addCard(spec: SimCardSpec) {
    this.calls.push(`add ${spec.id} hwtype=${spec.hwtype} ${spec.mode} [${spec.domains.join(',')}]`);
  }
  setCardConfig(id: number, on: boolean) {
    this.calls.push(`config ${id} ${on}`);
  }
  setCheckstop(id: number, on: boolean) {
    this.calls.push(`chkstop ${id} ${on}`);
  }
  reboot() {
    this.calls.push('reboot');
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
  { why: 'card add replugs a removed card', line: 'card add 0x0a', output: '', calls: ['replug 10'] },
  { why: 'card add with type and a domain range plugs a new card', line: 'card add 09 CEX8P 0000-0002', output: '', calls: ['add 9 hwtype=14 P [0,1,2]'] },
  { why: 'card add with a domain list', line: 'card add 09 CEX7C 0005,0x4', output: '', calls: ['add 9 hwtype=13 C [4,5]'] },
  { why: 'card config off', line: 'card config 05 off', output: '', calls: ['config 5 false'] },
  { why: 'card chkstop on', line: 'card chkstop 05 1', output: '', calls: ['chkstop 5 true'] },
  { why: 'reboot', line: 'reboot', output: '', calls: ['reboot'] },
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
  { why: 'card add with an unknown type', line: 'card add 09 CEX9Z 0000', output: '', outcome: 'usage' },
  { why: 'card add with a reversed domain range', line: 'card add 09 CEX8P 0005-0001', output: '', outcome: 'usage' },
  { why: 'card add with a type but no domains', line: 'card add 09 CEX8P', output: '', outcome: 'usage' },
  { why: 'card config with a bad switch', line: 'card config 05 maybe', output: '', outcome: 'usage' },
  { why: 'card without an id', line: 'card remove', output: '', outcome: 'usage' },
  { why: 'reboot takes no argument', line: 'reboot now', output: '', outcome: 'usage' },
  { why: 'host load of zero requests', line: 'host load 05.0004 0', output: '', outcome: 'usage' },
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

// ------------------------------------------------------------------ black box: the real model
// A booted node from a topology file, driven only through shell lines; assertions read what
// `cat` prints, as a user would.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openSimSession } from '../../src/commands/sim.js';

const ALL = '0x' + 'f'.repeat(64) + '\n';
const TOPOLOGY = `
nodes:
  - name: n1
    kernel: "6.10"
    maxDomainId: 84
    cards:
      - { id: "05", type: CEX8P, domains: "0000-0007" }
      - { id: "06", type: CEX7C, domains: ["0004", "0005"] }
    hostLoad:
      - { apqn: "05.0004", pendingRequests: 3, drainsAfterSeconds: 5 }
  - name: n2
    kernel: "6.19"
    cards:
      - { id: "0a", type: CEX8C, domains: "0001-0002" }
`;
const simDir = fs.mkdtempSync(path.join(os.tmpdir(), 'apqn-sim-'));
const topologyFile = path.join(simDir, 'topology.yaml');
fs.writeFileSync(topologyFile, TOPOLOGY);
test.after.always('remove the sim temp dir', () => fs.rmSync(simDir, { recursive: true, force: true }));

const MDEV = '6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab';
const M = `/sys/devices/vfio_ap/matrix/${MDEV}`;
const CREATE = 'devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create';

/** Runs lines one by one on a fresh node; returns each line's output. */
function session(lines: string[], opts: { node?: string; profile?: '5.15' | '6.10' | '6.19' } = {}): string[] {
  const s = openSimSession({ topologyFile, ...opts });
  return lines.map((line) => runSimCommand(line, { io: s.io, model: s.model }));
}

test('real model: a fresh node reads like a booted kernel', (t) => {
  const [apmask, bindings, devices, link] = session([
    'cat /sys/bus/ap/apmask',
    'cat bus/ap/bindings',
    'ls bus/ap/devices',
    'readlink bus/ap/devices/05.0004',
  ]);
  t.is(apmask, ALL);
  t.is(bindings, '10/10 (complete)\n');
  t.true(devices!.split('\n').includes('card05') && devices!.split('\n').includes('06.0005'));
  t.is(link, '../../../devices/ap/card05/05.0004\n');
});

test('real model: echo writes masks with the kernel grammar, errors print one line', (t) => {
  const out = session(['echo -0x5 > bus/ap/apmask', 'cat bus/ap/apmask', 'echo +08 > bus/ap/apmask', 'cat bus/ap/apmask', 'cat bus/ap/nothing']);
  t.is(out[0], '');
  t.is(out[1], '0xfb' + 'f'.repeat(62) + '\n');
  t.regex(out[2]!, /^error: EINVAL Invalid argument[^\n]*\n$/);
  t.is(out[3], out[1], 'a refused write changes nothing');
  t.is(out[4], 'error: ENOENT No such file or directory\n');
});

test('real model: an mdev from creation to removal, with a guest in between', (t) => {
  const out = session([
    'echo -5 > bus/ap/apmask', // 0
    `echo ${MDEV} > ${CREATE}`,
    `echo 5 > ${M}/assign_adapter`,
    `echo 0x4 > ${M}/assign_domain`,
    `echo 6 > ${M}/assign_adapter`, // 4: adapter 6 still belongs to the host
    `cat ${M}/matrix`,
    'cat bus/ap/devices/05.0004/status',
    `guest attach ${MDEV}`,
    'cat bus/ap/devices/05.0004/status', // 8
    `echo 1 > ${M}/remove`,
    'echo +5 > bus/ap/apmask', // 10
    `guest detach ${MDEV}`,
    `echo 1 > ${M}/remove`,
    'ls devices/vfio_ap/matrix', // 13
  ]);
  t.deepEqual(out.slice(0, 4), ['', '', '', '']);
  t.regex(out[4]!, /^error: EADDRNOTAVAIL /);
  t.is(out[5], '05.0004\n');
  t.is(out[6], 'assigned\n');
  t.is(out[7], '');
  t.is(out[8], 'in use\n');
  t.regex(out[9]!, /^error: EBUSY /, 'remove while a guest uses it');
  t.regex(out[10]!, /^error: EBUSY /, 'giving an assigned adapter back to the host');
  t.is(out[11], '');
  t.is(out[12], '');
  t.is(out[13], 'mdev_supported_types\n');
});

test('real model: host load drains with tick', (t) => {
  const q = 'bus/ap/devices/05.0004';
  const out = session([`cat ${q}/pendingq_count`, 'tick 4', `cat ${q}/pendingq_count`, 'tick 1', `cat ${q}/pendingq_count`, 'host load 06.0005 2 1', `cat bus/ap/devices/06.0005/pendingq_count`]);
  t.deepEqual(out, ['3\n', '', '3\n', '', '0\n', '', '2\n']);
});

test('real model: cards leave and come back', (t) => {
  const out = session(['card remove 06', 'cat bus/ap/devices/card06/type', 'card add 06', 'cat bus/ap/devices/card06/type', 'card remove 07']);
  t.is(out[0], '');
  t.is(out[1], 'error: ENOENT No such file or directory\n');
  t.is(out[2], '');
  t.is(out[3], 'CEX7C\n');
  t.regex(out[4]!, /^error: ENODEV /);
});

test('real model: model refusals print their errno', (t) => {
  const [attach, load] = session([`guest attach ${MDEV}`, 'host load 05.0004 1']);
  t.regex(attach!, /^error: ENOENT [^\n]*\n$/, 'no such mdev');
  t.is(load, '', 'an online host queue takes load');
});

test('real model: --node and --profile choose what boots', (t) => {
  t.is(session(['cat bus/ap/bindings'], { node: 'n2' })[0], '2/2 (complete)\n');
  const create = [`echo ${MDEV} > ${CREATE}`, `ls ${M}`];
  t.true(session(create)[1]!.includes('ap_config\n'), '6.10 has ap_config');
  t.false(session(create, { profile: '5.15' })[1]!.includes('ap_config\n'), '5.15 does not');
});

test('openSimSession names what is wrong', (t) => {
  t.throws(() => openSimSession({ topologyFile, node: 'nope' }), { message: /no node "nope" \(nodes: n1, n2\)/ });
  t.throws(() => openSimSession({ topologyFile: path.join(simDir, 'missing.yaml') }), { message: /missing\.yaml/ });
});

// ------------------------------------------------------------------ the command, as a process

function simCommand(args: string[], stdin = '') {
  const entry = new URL('../../src/commands/sim.ts', import.meta.url).href;
  const r = spawnSync(
    process.execPath,
    ['--import=tsx', '--input-type=module', '-e', `const m = await import(${JSON.stringify(entry)}); process.exitCode = await m.run(process.argv.slice(1));`, '--', ...args],
    { input: stdin, encoding: 'utf8', timeout: 60_000 },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('apqn-operator sim: a script runs to the end; a line it does not understand makes exit 1', (t) => {
  const script = path.join(simDir, 'demo.sim');
  fs.writeFileSync(script, ['# demo', 'cat bus/ap/bindings', 'echo -0x5 > bus/ap/apmask', 'cat bus/ap/apmask', 'frobnicate', 'cat bus/ap/bindings'].join('\n') + '\n');
  const r = simCommand(['--topology', topologyFile, '--script', script]);
  t.is(r.stdout, `10/10 (complete)\n0xfb${'f'.repeat(62)}\nerror: unknown command "frobnicate" (try help)\n10/10 (complete)\n`);
  t.is(r.code, 1);
});

test('apqn-operator sim: reads stdin and stops at exit', (t) => {
  const r = simCommand(['--topology', topologyFile, '--node', 'n2'], 'cat /sys/bus/ap/bindings\nexit\ncat bus/ap/apmask\n');
  t.is(r.stdout, '2/2 (complete)\n');
  t.is(r.code, 0);
});

test('apqn-operator sim: usage errors exit 2 and say why', (t) => {
  const noTopology = simCommand([]);
  t.is(noTopology.code, 2);
  t.regex(noTopology.stderr, /--topology FILE is required/);
  const badProfile = simCommand(['--topology', topologyFile, '--profile', '4.18']);
  t.is(badProfile.code, 2);
  t.regex(badProfile.stderr, /--profile must be one of 5\.15, 6\.10, 6\.19/);
  const help = simCommand(['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /usage: apqn-operator sim --topology FILE/);
});
