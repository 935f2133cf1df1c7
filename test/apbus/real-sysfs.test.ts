import test from 'ava';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SysfsError } from '../../src/apbus/errno.js';
import { RealSysfs } from '../../src/apbus/real-sysfs.js';
import { normalizeSysfsPath } from '../../src/apbus/sysfs-io.js';

// A small sysfs look-alike inside a temp dir, with a "secret" next to (outside) the root and
// two symlinks inside the root that point at it.
//   <tmp>/secret, <tmp>/outside/      — must never be read, written or created through
//   <tmp>/sys/bus/ap/{apmask, devices/card05 -> ../../../devices/ap/card05,
//                     escape -> <tmp>/secret, escapedir -> <tmp>/outside}
//   <tmp>/sys/devices/ap/card05/{type, 05.0004/online}
const SECRET = 'do not touch\n';
const APMASK = '0x' + 'f'.repeat(64) + '\n';

function makeTree() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'apqn-realsysfs-'));
  const root = path.join(tmp, 'sys');
  fs.writeFileSync(path.join(tmp, 'secret'), SECRET);
  fs.mkdirSync(path.join(tmp, 'outside'));
  fs.writeFileSync(path.join(tmp, 'outside', 'secret'), SECRET);
  fs.mkdirSync(path.join(root, 'bus/ap/devices'), { recursive: true });
  fs.mkdirSync(path.join(root, 'devices/ap/card05/05.0004'), { recursive: true });
  fs.writeFileSync(path.join(root, 'bus/ap/apmask'), APMASK);
  fs.writeFileSync(path.join(root, 'devices/ap/card05/type'), 'CEX8P\n');
  fs.writeFileSync(path.join(root, 'devices/ap/card05/05.0004/online'), '1\n');
  fs.symlinkSync('../../../devices/ap/card05', path.join(root, 'bus/ap/devices/card05'));
  fs.symlinkSync(path.join(tmp, 'secret'), path.join(root, 'bus/ap/escape'));
  fs.symlinkSync(path.join(tmp, 'outside'), path.join(root, 'bus/ap/escapedir'));
  fs.symlinkSync('../../..', path.join(root, 'bus/ap/up')); // relative link to <tmp>
  return { tmp, root, sysfs: new RealSysfs(root) };
}

function outsideUntouched(tmp: string): boolean {
  return (
    fs.readFileSync(path.join(tmp, 'secret'), 'utf8') === SECRET &&
    fs.readFileSync(path.join(tmp, 'outside', 'secret'), 'utf8') === SECRET &&
    fs.readdirSync(path.join(tmp, 'outside')).join(',') === 'secret' &&
    fs.readdirSync(tmp).sort().join(',') === 'outside,secret,sys'
  );
}

function errnoOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof SysfsError) return err.errno;
    return `not a SysfsError: ${String(err)}`;
  }
  return 'no error';
}

test.after.always('remove temp trees', () => {
  for (const dir of created) fs.rmSync(dir, { recursive: true, force: true });
});
const created: string[] = [];
function tree() {
  const t = makeTree();
  created.push(t.tmp);
  return t;
}

test('the default root is /sys', (t) => {
  t.is(new RealSysfs().root, '/sys');
});

test('read returns the file exactly, relative or /sys-absolute', (t) => {
  const { sysfs } = tree();
  t.is(sysfs.read('bus/ap/apmask'), APMASK);
  t.is(sysfs.read('/sys/bus/ap/apmask'), APMASK);
  t.is(sysfs.read('./bus//ap/apmask'), APMASK);
});

test('read follows symlinks that stay inside the root', (t) => {
  const { sysfs } = tree();
  t.is(sysfs.read('bus/ap/devices/card05/type'), 'CEX8P\n');
  t.is(sysfs.read('bus/ap/devices/card05/05.0004/online'), '1\n');
});

test('write replaces the value with exactly what was given, through an inside symlink too', (t) => {
  const { sysfs, root } = tree();
  sysfs.write('bus/ap/apmask', '+1');
  t.is(fs.readFileSync(path.join(root, 'bus/ap/apmask'), 'utf8'), '+1');
  sysfs.write('bus/ap/devices/card05/05.0004/online', '0\n');
  t.is(fs.readFileSync(path.join(root, 'devices/ap/card05/05.0004/online'), 'utf8'), '0\n');
});

test('writing a missing attribute is ENOENT and creates nothing', (t) => {
  const { sysfs, root } = tree();
  t.is(errnoOf(() => sysfs.write('bus/ap/newfile', '1')), 'ENOENT');
  t.false(fs.existsSync(path.join(root, 'bus/ap/newfile')));
  t.is(errnoOf(() => sysfs.write('bus/ap/nodir/newfile', '1')), 'ENOENT');
});

test('reading a missing file is ENOENT', (t) => {
  const { sysfs } = tree();
  t.is(errnoOf(() => sysfs.read('bus/ap/aqmask')), 'ENOENT');
  t.is(errnoOf(() => sysfs.read('devices/ap/card06/type')), 'ENOENT');
});

test('a directory is EISDIR for read and write; a file is ENOTDIR for list', (t) => {
  const { sysfs } = tree();
  t.is(errnoOf(() => sysfs.read('bus/ap')), 'EISDIR');
  t.is(errnoOf(() => sysfs.write('bus/ap', '1')), 'EISDIR');
  t.is(errnoOf(() => sysfs.list('bus/ap/apmask')), 'ENOTDIR');
  t.is(errnoOf(() => sysfs.read('bus/ap/apmask/x')), 'ENOTDIR');
});

test('list returns sorted names, also through an inside symlink and for the root', (t) => {
  const { sysfs } = tree();
  t.deepEqual(sysfs.list('bus/ap'), ['apmask', 'devices', 'escape', 'escapedir', 'up']);
  t.deepEqual(sysfs.list('bus/ap/devices/card05'), ['05.0004', 'type']);
  t.deepEqual(sysfs.list('/sys'), ['bus', 'devices']);
  t.deepEqual(sysfs.list(''), ['bus', 'devices']);
});

test('readlink returns the stored target, unfollowed', (t) => {
  const { sysfs, tmp } = tree();
  t.is(sysfs.readlink('bus/ap/devices/card05'), '../../../devices/ap/card05');
  t.is(sysfs.readlink('/sys/bus/ap/escape'), path.join(tmp, 'secret'), 'reading the link text reveals nothing beyond it');
  t.is(errnoOf(() => sysfs.readlink('bus/ap/apmask')), 'EINVAL');
  t.is(errnoOf(() => sysfs.readlink('bus/ap/missing')), 'ENOENT');
  t.is(errnoOf(() => sysfs.readlink('')), 'EINVAL');
});

test('exists is true inside, false for missing and for anything resolving outside', (t) => {
  const { sysfs } = tree();
  t.true(sysfs.exists('bus/ap/apmask'));
  t.true(sysfs.exists('bus/ap/devices/card05'));
  t.true(sysfs.exists('/sys'));
  t.false(sysfs.exists('bus/ap/aqmask'));
  t.false(sysfs.exists('bus/ap/escape'));
  t.false(sysfs.exists('bus/ap/escapedir/secret'));
  t.false(sysfs.exists('bus/ap/up'));
});

test('a write of an empty value is one empty write', (t) => {
  const { sysfs, root } = tree();
  sysfs.write('bus/ap/apmask', '');
  t.is(fs.readFileSync(path.join(root, 'bus/ap/apmask'), 'utf8'), '');
});

test('SysfsError message is "<errno> <explanation>"', (t) => {
  const { sysfs } = tree();
  const err = t.throws(() => sysfs.read('bus/ap/aqmask'), { instanceOf: SysfsError });
  t.is(err!.message, 'ENOENT No such file or directory');
  t.is(err!.path, 'bus/ap/aqmask');
});

// ------------------------------------------------------------ escape attempts

const escapes: Array<[string, string]> = [
  ['..', 'parent of the root'],
  ['../secret', 'sibling of the root'],
  ['../../etc/passwd', 'classic traversal'],
  ['/etc/passwd', 'absolute path outside /sys'],
  ['/sys/../secret', '/sys then ..'],
  ['/sysfoo/secret', 'a prefix of /sys is not /sys'],
  ['bus/../../secret', '.. in the middle'],
  ['card05/../../..', '.. after a name'],
  ['bus/ap/devices/card05/../../../../secret', '.. after an inside symlink'],
  ['bus/ap/..', 'a trailing ..'],
  ['%2e%2e/secret', 'percent-encoded dots'],
  ['..%2fsecret', 'percent-encoded slash'],
  ['..\\secret', 'backslash separator'],
  ['bus/ap/apmask\0/../../secret', 'NUL byte'],
  ['bus/ap/\n../../secret', 'control character'],
  ['bus/ap/escape', 'symlink to a file outside'],
  ['bus/ap/escapedir', 'symlinked directory outside, itself'],
  ['bus/ap/escapedir/secret', 'symlinked directory outside'],
  ['bus/ap/up', 'relative symlink to the parent of the root, itself'],
  ['bus/ap/escapedir/new', 'a new file in a symlinked directory outside'],
  ['bus/ap/up/secret', 'relative symlink climbing out'],
  ['bus/ap/up/sys/../secret', 'relative symlink climbing out, then ..'],
];

const ops: Array<[string, (s: RealSysfs, p: string) => unknown]> = [
  ['read', (s, p) => s.read(p)],
  ['write', (s, p) => s.write(p, 'pwned\n')],
  ['list', (s, p) => s.list(p)],
];

for (const [p, why] of escapes) {
  for (const [op, run] of ops) {
    test(`${op} refuses ${JSON.stringify(p)}: ${why}`, (t) => {
      const { sysfs, tmp } = tree();
      t.throws(() => run(sysfs, p), { instanceOf: SysfsError });
      t.true(outsideUntouched(tmp), 'nothing outside the root was changed or created');
    });
  }
}

test('readlink refuses paths whose directory resolves outside the root', (t) => {
  const { sysfs, tmp } = tree();
  for (const p of ['../secret', 'bus/ap/escapedir/secret', 'bus/ap/up/secret', '/etc/passwd']) {
    t.throws(() => sysfs.readlink(p), { instanceOf: SysfsError }, p);
  }
  t.true(outsideUntouched(tmp));
});

test('a symlink swapped in for an attribute after construction is still refused', (t) => {
  const { sysfs, root, tmp } = tree();
  const attr = path.join(root, 'bus/ap/apmask');
  fs.rmSync(attr);
  fs.symlinkSync(path.join(tmp, 'secret'), attr);
  t.is(errnoOf(() => sysfs.write('bus/ap/apmask', 'pwned')), 'EACCES');
  t.true(outsideUntouched(tmp));
});

test('a root that is itself reached through a symlink works', (t) => {
  const { root, tmp } = tree();
  const alias = path.join(tmp, '..', path.basename(tmp) + '-alias');
  fs.symlinkSync(root, alias);
  created.push(alias);
  const sysfs = new RealSysfs(alias);
  t.is(sysfs.read('bus/ap/devices/card05/type'), 'CEX8P\n');
  t.is(errnoOf(() => sysfs.read('bus/ap/escape')), 'EACCES');
});

// ------------------------------------------------------------ normalizeSysfsPath

const normal: Array<[string, string]> = [
  ['bus/ap/apmask', 'bus/ap/apmask'],
  ['/sys/bus/ap/apmask', 'bus/ap/apmask'],
  ['/sys', ''],
  ['/sys/', ''],
  ['', ''],
  ['.', ''],
  ['./bus//ap/./apmask/', 'bus/ap/apmask'],
  ['//sys//bus', 'bus'],
  ['devices/ap/card05/05.0004/driver_override', 'devices/ap/card05/05.0004/driver_override'],
  ['a..b/c.d', 'a..b/c.d'],
  ['bus/ap/', 'bus/ap'],
  ['.hidden/x', '.hidden/x'],
];
for (const [input, want] of normal) {
  test(`normalizeSysfsPath(${JSON.stringify(input)}) = ${JSON.stringify(want)}`, (t) => {
    t.is(normalizeSysfsPath(input), want);
  });
}

const abnormal: Array<[string, string]> = [
  ['..', 'EINVAL'],
  ['bus/../bus', 'EINVAL'],
  ['/etc/passwd', 'ENOENT'],
  ['/', 'ENOENT'],
  ['/sys/..', 'EINVAL'],
  ['a\0b', 'EINVAL'],
  ['a%2fb', 'EINVAL'],
  ['a\\b', 'EINVAL'],
  ['bus/ap/..', 'EINVAL'],
  ['bus/./..', 'EINVAL'],
  ['bus/ap\x7f', 'EINVAL'],
];
for (const [input, errno] of abnormal) {
  test(`normalizeSysfsPath refuses ${JSON.stringify(input)} with ${errno}`, (t) => {
    t.is(errnoOf(() => normalizeSysfsPath(input)), errno);
  });
}

// ------------------------------------------------------------ verified-directory cache

test('a directory swapped for a symlink to outside after reads cached it: a write through it is refused', (t) => {
  const { sysfs, root, tmp } = tree();
  t.is(sysfs.read('devices/ap/card05/05.0004/online'), '1\n', 'caches devices/ap/card05/05.0004');
  const queue = path.join(root, 'devices/ap/card05/05.0004');
  fs.rmSync(queue, { recursive: true });
  fs.writeFileSync(path.join(tmp, 'outside', 'online'), SECRET);
  fs.symlinkSync(path.join(tmp, 'outside'), queue);
  t.is(errnoOf(() => sysfs.write('devices/ap/card05/05.0004/online', 'pwned\n')), 'EACCES');
  t.is(fs.readFileSync(path.join(tmp, 'outside', 'online'), 'utf8'), SECRET, 'the file outside was not written');
  fs.rmSync(path.join(tmp, 'outside', 'online'));
  t.true(outsideUntouched(tmp));
});

test('an attribute swapped for a symlink to outside after its directory was cached is refused for read and write', (t) => {
  const { sysfs, root, tmp } = tree();
  t.is(sysfs.read('devices/ap/card05/type'), 'CEX8P\n');
  const attr = path.join(root, 'devices/ap/card05/type');
  fs.rmSync(attr);
  fs.symlinkSync(path.join(tmp, 'secret'), attr);
  t.is(errnoOf(() => sysfs.read('devices/ap/card05/type')), 'EACCES');
  t.is(errnoOf(() => sysfs.write('devices/ap/card05/type', 'pwned\n')), 'EACCES');
  t.true(outsideUntouched(tmp));
});

test('an attribute replaced by a symlink inside the root is followed, as before the cache', (t) => {
  const { sysfs, root } = tree();
  t.is(sysfs.read('devices/ap/card05/type'), 'CEX8P\n');
  const attr = path.join(root, 'devices/ap/card05/type');
  fs.rmSync(attr);
  fs.symlinkSync('../../../bus/ap/apmask', attr);
  t.is(sysfs.read('devices/ap/card05/type'), APMASK);
});

test('a cached directory that goes away reads ENOENT, and reads again when it comes back', (t) => {
  const { sysfs, root } = tree();
  t.is(sysfs.read('devices/ap/card05/05.0004/online'), '1\n');
  const card = path.join(root, 'devices/ap/card05');
  fs.rmSync(card, { recursive: true });
  t.is(errnoOf(() => sysfs.read('devices/ap/card05/05.0004/online')), 'ENOENT');
  t.is(errnoOf(() => sysfs.list('devices/ap/card05')), 'ENOENT');
  fs.mkdirSync(path.join(card, '05.0004'), { recursive: true });
  fs.writeFileSync(path.join(card, '05.0004/online'), '0\n');
  t.is(sysfs.read('devices/ap/card05/05.0004/online'), '0\n');
  t.deepEqual(sysfs.list('devices/ap/card05'), ['05.0004']);
});

test('a directory reached through a symlink is never cached: a retargeted link is followed at once', (t) => {
  const { sysfs, root } = tree();
  t.is(sysfs.read('bus/ap/devices/card05/type'), 'CEX8P\n');
  fs.mkdirSync(path.join(root, 'devices/ap/card06'));
  fs.writeFileSync(path.join(root, 'devices/ap/card06/type'), 'CEX7C\n');
  const link = path.join(root, 'bus/ap/devices/card05');
  fs.rmSync(link);
  fs.symlinkSync('../../../devices/ap/card06', link);
  t.is(sysfs.read('bus/ap/devices/card05/type'), 'CEX7C\n');
  t.deepEqual(sysfs.list('bus/ap/devices/card05'), ['type']);
});

test('a directory swapped for a symlink to outside after list cached it: a write through it is refused', (t) => {
  const { sysfs, root, tmp } = tree();
  t.deepEqual(sysfs.list('devices/ap/card05/05.0004'), ['online']);
  const queue = path.join(root, 'devices/ap/card05/05.0004');
  fs.rmSync(queue, { recursive: true });
  fs.symlinkSync(path.join(tmp, 'outside'), queue);
  t.is(errnoOf(() => sysfs.write('devices/ap/card05/05.0004/secret', 'pwned\n')), 'EACCES');
  t.true(outsideUntouched(tmp));
});

test('read returns files of any size whole, and empty files as empty', (t) => {
  const { sysfs, root } = tree();
  const big = Array.from({ length: 5000 }, (_, i) => `${i.toString(16).padStart(4, '0')}\n`).join('');
  fs.writeFileSync(path.join(root, 'bus/ap/big'), big);
  fs.writeFileSync(path.join(root, 'bus/ap/empty'), '');
  fs.writeFileSync(path.join(root, 'bus/ap/page'), 'x'.repeat(16 * 1024));
  t.is(sysfs.read('bus/ap/big'), big);
  t.is(sysfs.read('bus/ap/empty'), '');
  t.is(sysfs.read('bus/ap/page'), 'x'.repeat(16 * 1024), 'exactly the read buffer');
  t.is(sysfs.read('bus/ap/apmask'), APMASK, 'a small read after big ones');
});

test('a FIFO or a hard link where an attribute should be is refused at once, never blocking (fstat after a non-blocking open)', (t) => {
  const { tmp, root, sysfs } = tree();
  const dir = path.join(root, 'devices/ap/card05/05.0004');
  execFileSync('mkfifo', [path.join(dir, 'fifo')]);
  fs.linkSync(path.join(tmp, 'secret'), path.join(dir, 'linked')); // a second name for the outside file
  for (const name of ['fifo', 'linked']) {
    const rel = `devices/ap/card05/05.0004/${name}`;
    t.is(errnoOf(() => sysfs.read(rel)), 'EACCES', `read ${name}`);
    t.is(errnoOf(() => sysfs.read(rel)), 'EACCES', `read ${name} again (the verified-directory path)`);
    // A FIFO without a reader already fails the non-blocking open for writing (ENXIO, reported as EIO).
    t.is(errnoOf(() => sysfs.write(rel, '0')), name === 'fifo' ? 'EIO' : 'EACCES', `write ${name}`);
  }
  t.regex((() => { try { sysfs.read('devices/ap/card05/05.0004/linked'); } catch (err) { return String(err); } return ''; })(), /2 links/);
  t.true(outsideUntouched(tmp), 'the hard-linked outside file was neither read nor written');
  t.is(sysfs.read('devices/ap/card05/05.0004/online'), '1\n', 'a plain attribute beside them reads as before');
});
