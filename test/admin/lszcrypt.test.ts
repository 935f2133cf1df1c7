// The real lszcrypt (s390-tools 2.16.0, s390x, under qemu-user; see hack/s390-tools.sh) reads
// trees rendered by `apqn-operator sim --render` for fixed hosts in several states. Its output
// is compared whole with golden files (test/golden/lszcrypt/<state>/), and each state also
// states what a real host in it shows, line by line, so a wrong golden cannot slip in unseen.
// APQN_UPDATE_GOLDEN=1 rewrites the goldens.
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { matchGolden } from './golden.js';

const REPO = nodePath.resolve(nodePath.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TOPOLOGY = nodePath.join(REPO, 'test/admin/fixtures/lszcrypt-topology.yaml');
const CLI = nodePath.join(REPO, 'bin/apqn-operator.js');
const MDEV = '6d2f0a1e-8c1b-4b7e-9a55-0c0ffee00001';
const MATRIX = '/sys/devices/vfio_ap/matrix';

/** The lszcrypt wrapper from hack/s390-tools.sh; its error fails every test here. */
function provideLszcrypt(): string {
  try {
    return execFileSync('bash', [nodePath.join(REPO, 'hack/s390-tools.sh')], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`hack/s390-tools.sh could not provide lszcrypt:\n${stderr || String(err)}`);
  }
}

type Variant = '' | '-V' | '-b' | '-d';
const VARIANTS: readonly Variant[] = ['', '-V', '-b', '-d'];
const goldenName = (v: Variant) => `lszcrypt${v}.txt`;

interface Expect {
  variant: Variant;
  /** A line that must be there (matched against each line, trailing blanks trimmed). */
  line?: RegExp;
  /** No line may match. */
  noLine?: RegExp;
  why: string;
}

interface HostState {
  name: string;
  node: string;
  why: string;
  script: string[];
  expect: Expect[];
}

const maskedOut = [
  'echo -0x06 > /sys/bus/ap/apmask', // adapter 06: every domain goes to vfio_ap
  'echo -5 > /sys/bus/ap/aqmask', // domain 0005: every adapter goes to vfio_ap
];

const STATES: HostState[] = [
  {
    name: 'boot',
    node: 'z16-masks',
    why: 'freshly booted host: every queue on cex4queue',
    script: [],
    expect: [
      { variant: '', line: /^05 +CEX8C CCA-Coproc +online +0$/, why: 'a CCA card online, no requests yet' },
      { variant: '', line: /^07\.0006 +CEX8P EP11-Coproc +online +0$/, why: 'an EP11 queue' },
      { variant: '', line: /^08\.0003 +CEX7A Accelerator +online +0$/, why: 'an accelerator queue' },
      { variant: '-V', line: /^05\.0000 .* 14 +08|^05\.0000 .* 14 .*cex4queue$/, why: 'CEX8 is hwtype 14, queue on cex4queue' },
      { variant: '-V', line: /^06 .* 13 .* S--D--N-- +cex4card$/, why: 'CEX7C: hwtype 13, APSC+CCA+APXA functions, cex4card' },
      { variant: '-V', line: /^07 .* S----XN-- +cex4card$/, why: 'EP11 function bit X' },
      { variant: '-V', line: /^08 .* SMC-A-N-- +cex4card$/, why: 'accelerator: ME/CRT 4k and A' },
      { variant: '-d', line: /^ {4}00 +U +U +U +U +B +U +B +U +\. /, why: 'usage domains 00-07, of which 04 and 06 are also control domains' },
      { variant: '-d', line: /^ {4}10 +C +\. /, why: 'domain 0x10 is a control domain only' },
      { variant: '-b', line: /^ap_max_domain_id=0x54$/, why: 'maxDomainId 84' },
      { variant: '-b', line: /^ap_domain=0x0$/, why: 'the default domain is the first usable one' },
    ],
  },
  {
    name: 'masks-cleared',
    node: 'z16-masks',
    why: 'apmask bit 06 and aqmask bit 5 cleared: row 06 and column 0005 on vfio_ap',
    script: maskedOut,
    expect: [
      { variant: '', line: /^06 +CEX7C CCA-Coproc +online +0$/, why: 'the card itself stays with cex4card' },
      { variant: '', noLine: /^06\./, why: 'without -V, queues zcrypt does not drive are not listed' },
      { variant: '', noLine: /^0[5-8]\.0005/, why: 'column 0005 is gone from the host listing' },
      { variant: '-V', line: /^06\.0004 +CEX7C CCA-Coproc +- +- +0 +13 .* vfio_ap$/, why: 'vfio_ap queue: no online attribute (status -), request_count "-" (uninitiated since it left cex4queue), driver vfio_ap' },
      { variant: '-V', line: /^05\.0005 .* vfio_ap$/, why: 'the cleared domain on another adapter' },
      { variant: '-V', line: /^05\.0004 .* online .* cex4queue$/, why: 'the rest stays with the host' },
      { variant: '-d', line: /^ {4}00 +U +U +U +U +B +U +B +U +\. /, why: 'domain masks are the machine configuration, not apmask/aqmask' },
    ],
  },
  {
    name: 'guest-attached',
    node: 'z16-masks',
    why: 'an mdev with adapter 06 x domains 0004,0005 (control 0004), opened by a guest',
    script: [
      ...maskedOut,
      `echo ${MDEV} > ${MATRIX}/mdev_supported_types/vfio_ap-passthrough/create`,
      `echo 0x06 > ${MATRIX}/${MDEV}/assign_adapter`,
      `echo 4 > ${MATRIX}/${MDEV}/assign_domain`,
      `echo 5 > ${MATRIX}/${MDEV}/assign_domain`,
      `echo 4 > ${MATRIX}/${MDEV}/assign_control_domain`,
      `guest attach ${MDEV}`,
    ],
    expect: [
      { variant: '-V', line: /^06\.0004 +CEX7C CCA-Coproc +- .* vfio_ap$/, why: 'lszcrypt sees only the driver, not mdevs or guests' },
      { variant: '-V', line: /^06\.0005 .* vfio_ap$/, why: 'the second assigned queue' },
    ],
  },
  {
    name: 'host-load',
    node: 'z16-masks',
    why: 'host programs use three queues; one batch has drained',
    script: ['host load 05.0004 3', 'host load 05.0001 12', 'host load 06.0002 2 5', 'tick 10'],
    expect: [
      { variant: '', line: /^05 +CEX8C CCA-Coproc +online +15$/, why: 'the card counts every request sent to its queues' },
      { variant: '', line: /^05\.0001 .* online +12$/, why: 'request_count' },
      { variant: '', line: /^06\.0002 .* online +2$/, why: 'drained requests stay counted' },
      { variant: '-V', line: /^05 .* online +15 +15 /, why: 'PENDING on the card: its queues requestq + pendingq' },
      { variant: '-V', line: /^05\.0001 .* online +12 +12 /, why: 'more requests than the hardware queue holds: requestq + pendingq' },
      { variant: '-V', line: /^06\.0002 .* online +2 +0 /, why: 'drained: nothing pending' },
    ],
  },
  {
    name: 'offline-unbound',
    node: 'z16-masks',
    why: 'chzcrypt -d 08 and 05.0002 (software offline); 05.0003 unbound by hand',
    script: [
      'echo 0 > /sys/devices/ap/card08/online',
      'echo 0 > /sys/devices/ap/card05/05.0002/online',
      'echo 05.0003 > /sys/bus/ap/drivers/cex4queue/unbind',
    ],
    expect: [
      { variant: '', line: /^08 +CEX7A Accelerator +offline +0$/, why: 'card offline' },
      { variant: '', line: /^08\.0001 .* offline +0$/, why: 'the card takes its queues offline' },
      { variant: '', line: /^05\.0002 .* offline +0$/, why: 'one queue offline' },
      { variant: '', noLine: /^05\.0003/, why: 'a queue without a driver has no online attribute: not listed' },
      { variant: '-V', line: /^05\.0003 +CEX8C CCA-Coproc +- +- +0 .* -no-driver-$/, why: 'unbound queue: request_count "-" (uninitiated)' },
    ],
  },
  {
    name: 'config-chkstop-removed',
    node: 'z16-masks',
    why: 'card 08 deconfigured (SCLP), card 07 checkstopped, card 06 hot-unplugged',
    script: ['card config 08 off', 'card chkstop 07 on', 'card remove 06'],
    expect: [
      { variant: '', line: /^08 +CEX7A Accelerator +deconfig +0$/, why: 'online reads 0 and config 0' },
      { variant: '', line: /^08\.0002 .* deconfig +0$/, why: 'its queues are deconfigured too' },
      { variant: '', line: /^07 +CEX8P EP11-Coproc +offline +0$/, why: 's390-tools 2.16 has no checkstop status: online 0, config 1 reads offline' },
      { variant: '-V', noLine: /^06/, why: 'an unplugged card has no devices' },
      { variant: '-d', line: /^ {4}00 +U +U +U +U +B +U +B +U +\. /, why: 'domains stay in the configuration' },
    ],
  },
  {
    name: 'bus-attributes',
    node: 'z16-masks',
    why: 'chzcrypt-style bus settings: poll thread on, config_time 60, poll_timeout 1 ms, default domain 2',
    script: [
      'echo 1 > /sys/bus/ap/poll_thread',
      'echo 60 > /sys/bus/ap/config_time',
      'echo 1000000 > /sys/bus/ap/poll_timeout',
      'echo 2 > /sys/bus/ap/ap_domain',
    ],
    expect: [
      { variant: '-b', line: /^ap_domain=0x2$/, why: 'ap_domain printed in hex' },
      { variant: '-b', line: /^poll_thread is enabled$/, why: 'poll_thread 1' },
      { variant: '-b', line: /^config_time=60 \(seconds\)$/, why: 'config_time' },
      { variant: '-b', line: /^poll_timeout=1000000 \(nanoseconds\)$/, why: 'poll_timeout' },
      { variant: '-b', line: /^ap_interrupts are enabled$/, why: 'ap_interrupts 1' },
    ],
  },
  {
    name: 'driver-override',
    node: 'z16-override',
    why: 'kernel 6.19: 0a.0001 moved to vfio_ap with driver_override, masks untouched',
    script: [
      'echo vfio_ap > /sys/devices/ap/card0a/0a.0001/driver_override',
      'echo 0a.0001 > /sys/bus/ap/drivers/cex4queue/unbind',
      'echo 0a.0001 > /sys/bus/ap/drivers/vfio_ap/bind',
    ],
    expect: [
      { variant: '-V', line: /^0a\.0001 +CEX8P EP11-Coproc +- .* vfio_ap$/, why: 'the overridden queue' },
      { variant: '-V', line: /^0a\.0000 .* online .* cex4queue$/, why: 'its neighbours stay with the host' },
      { variant: '', noLine: /^0a\.0001/, why: 'not listed without -V' },
      { variant: '-d', line: /^ {4}00 +B +B +B +B +\. /, why: 'usage domains 00-03, control domains default to the usage domains' },
    ],
  },
];

/** Renders a state through the real CLI (black box) and lists it with every lszcrypt variant. */
async function listState(t: ExecutionContext, lszcrypt: string, state: HostState): Promise<Map<Variant, string>> {
  const scratch = fs.mkdtempSync(nodePath.join(os.tmpdir(), `lszcrypt-${state.name}-`));
  try {
    const script = nodePath.join(scratch, 'state.sim');
    fs.writeFileSync(script, state.script.map((l) => `${l}\n`).join(''));
    const tree = nodePath.join(scratch, 'sys');
    const args = [CLI, 'sim', '--topology', TOPOLOGY, '--node', state.node, '--script', script, '--render', tree];
    const { code, stdout, stderr } = await run(process.execPath, args, {});
    t.is(code, 0, `${state.name}: sim --render failed: ${stderr}`);
    t.is(stdout, '', `${state.name}: every script line succeeds silently (a refused write would print error: ...)`);
    t.regex(stderr, new RegExp(`^rendered ${state.node} into `), 'sim says what it rendered');
    return new Map(VARIANTS.map((v) => [v, runLszcrypt(lszcrypt, tree, v)]));
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function runLszcrypt(lszcrypt: string, tree: string, variant: Variant): string {
  const result = spawnSync(lszcrypt, variant ? [variant] : [], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', SYSFS_ROOT: tree },
  });
  if (result.status !== 0 || result.stderr) {
    throw new Error(`lszcrypt ${variant} exited ${result.status}: ${result.stderr}`);
  }
  return result.stdout;
}

const outputs = new Map<string, Map<Variant, string>>();

test.before('render every state and list it with lszcrypt', async (t) => {
  const lszcrypt = provideLszcrypt();
  await Promise.all(STATES.map(async (state) => outputs.set(state.name, await listState(t, lszcrypt, state))));
});

for (const state of STATES) {
  for (const variant of VARIANTS) {
    test(`${state.name}: lszcrypt ${variant || '(plain)'} matches its golden (${state.why})`, (t) => {
      matchGolden(t, `lszcrypt/${state.name}/${goldenName(variant)}`, outputs.get(state.name)!.get(variant)!);
    });
  }
  for (const e of state.expect) {
    test(`${state.name}: lszcrypt ${e.variant || '(plain)'} — ${e.why}`, (t) => {
      const lines = outputs.get(state.name)!.get(e.variant)!.split('\n').map((l) => l.trimEnd());
      if (e.line) t.true(lines.some((l) => e.line!.test(l)), `no line matches ${e.line}:\n${lines.join('\n')}`);
      if (e.noLine) t.false(lines.some((l) => e.noLine!.test(l)), `a line matches ${e.noLine}`);
    });
  }
}

test('lszcrypt cannot see mdevs or guests: guest-attached lists exactly what masks-cleared lists', (t) => {
  for (const v of VARIANTS) t.is(outputs.get('guest-attached')!.get(v), outputs.get('masks-cleared')!.get(v), `lszcrypt ${v}`);
});

test('sim --render refuses a directory that already holds files', async (t) => {
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'lszcrypt-busy-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(nodePath.join(dir, 'keep-me'), 'data');
  const { code, stderr } = await run(process.execPath, [CLI, 'sim', '--topology', TOPOLOGY, '--render', dir], {});
  t.is(code, 2);
  t.regex(stderr, /not empty/);
  t.deepEqual(fs.readdirSync(dir), ['keep-me']);
});

test('sim --render renders nothing when a script line is not understood', async (t) => {
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), 'lszcrypt-typo-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const script = nodePath.join(dir, 'typo.sim');
  fs.writeFileSync(script, 'ech 1 > /sys/bus/ap/poll_thread\n');
  const tree = nodePath.join(dir, 'sys');
  const { code, stderr } = await run(process.execPath, [CLI, 'sim', '--topology', TOPOLOGY, '--script', script, '--render', tree], {});
  t.is(code, 1);
  t.regex(stderr, /nothing rendered/);
  t.false(fs.existsSync(tree));
});
