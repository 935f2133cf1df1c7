// The README's walkthrough, run as written: `apqn-operator dev` with examples/topology.yaml as a
// child process (what `npm start` runs), then every ```sh e2e block of README.md in order with
// the control plane's kubectl first on PATH and KUBECONFIG set, each block's stdout compared
// with the ```text e2e-output block after it. Then Ctrl-C (SIGINT): dev must exit 0 and leave
// no etcd or kube-apiserver behind. When the README and the operator disagree, this fails.
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Step {
  /** The block's shell text. */
  script: string;
  /** What it must print (undefined: only that it succeeds). */
  expected?: string;
  /** 1-based line of the block in the README, for messages. */
  line: number;
}

/** The ```sh e2e blocks of a markdown text, each with the ```text e2e-output block right after it. */
function walkthroughSteps(markdown: string): Step[] {
  const blocks: Array<{ info: string; body: string; line: number }> = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) body.push(lines[i]!);
    blocks.push({ info: open[1]!.trim(), body: body.join('\n'), line: start + 1 });
  }
  const steps: Step[] = [];
  blocks.forEach((b, k) => {
    if (b.info !== 'sh e2e') return;
    const next = blocks[k + 1];
    steps.push({ script: b.body, line: b.line, ...(next?.info === 'text e2e-output' ? { expected: next.body } : {}) });
  });
  return steps;
}

const AGE = /^\d+[smhd](\d+[smh])?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Token-wise comparison of outputs, blank lines ignored; ages (`3s`, `2m5s`) and UUIDs match any of their kind. */
function outputMismatch(expected: string, actual: string): string | undefined {
  const rows = (s: string) => s.split('\n').filter((l) => l.trim() !== '');
  const want = rows(expected);
  const got = rows(actual);
  for (let i = 0; i < Math.max(want.length, got.length); i++) {
    const w = want[i]?.trim().split(/\s+/) ?? [];
    const g = got[i]?.trim().split(/\s+/) ?? [];
    const same =
      w.length === g.length &&
      w.every((token, j) => token === g[j] || (AGE.test(token) && AGE.test(g[j]!)) || (UUID.test(token) && UUID.test(g[j]!)));
    if (!same) return `line ${i + 1}: expected\n  ${want[i] ?? '(nothing)'}\nbut got\n  ${got[i] ?? '(nothing)'}`;
  }
  return undefined;
}

const matching: Array<[string, string, string, boolean]> = [
  ['identical text', 'a b\nc', 'a b\nc', true],
  ['columns aligned differently', 'NAME   AGE\nx      3s', 'NAME AGE\nx 3s', true],
  ['ages differ', 'x 3s', 'x 2m10s', true],
  ['UUIDs differ', 'm f1dae3f4-77b8-5554-968e-388c193eef97', 'm 0e3a6c1d-0000-5aaa-8bbb-000000000000', true],
  ['blank lines between kubectl get groups', 'a\n\nb', 'a\nb\n', true],
  ['a value differs', 'x True', 'x False', false],
  ['an age stands where a value should', 'x True', 'x 3s', false],
  ['a line is missing', 'a\nb', 'a', false],
  ['an extra line', 'a', 'a\nb', false],
  ['an extra column', 'a b', 'a b c', false],
];
for (const [why, expected, actual, same] of matching) {
  test(`output comparison: ${why} ${same ? 'matches' : 'does not match'}`, (t) => {
    t.is(outputMismatch(expected, actual) === undefined, same);
  });
}

test('the walkthrough parser pairs each sh e2e block with the output block right after it', (t) => {
  const md = ['```sh', 'npm start', '```', '```sh e2e', 'kubectl get x', '```', 'text', '```text e2e-output', 'X', '```', '```sh e2e', 'kubectl delete x', '```', '```text', 'not checked', '```'].join('\n');
  t.deepEqual(walkthroughSteps(md), [
    { script: 'kubectl get x', expected: 'X', line: 4 },
    { script: 'kubectl delete x', line: 11 },
  ]);
});

/** PIDs of a process's direct children (from /proc). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    const text = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
    if (text) out.push(...text.split(/\s+/).map(Number));
  }
  return out;
}

function commandOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
  } catch {
    return ''; // gone
  }
}

test('the README walkthrough works as written, and Ctrl-C stops everything', async (t) => {
  const readme = fs.readFileSync(path.join(repo, 'README.md'), 'utf8');
  const steps = walkthroughSteps(readme);
  t.true(steps.length >= 5, `found ${steps.length} sh e2e blocks`);
  t.true(readme.includes('```sh\nnpm start\n```'), 'the walkthrough starts with npm start');
  t.regex(fs.readFileSync(path.join(repo, 'hack/start.sh'), 'utf8'), /src\/cli\.ts dev --topology examples\/topology\.yaml/, 'npm start is what this test runs');
  const bin = process.env.APQN_CONTROLPLANE_BIN;
  if (!bin) throw new Error('APQN_CONTROLPLANE_BIN is not set: run the tests through `npm test`');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apqn-readme-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const kubeconfig = path.join(dir, 'kubeconfig');
  const dev = spawn(process.execPath, ['--import=tsx', 'src/cli.ts', 'dev', '--topology', 'examples/topology.yaml', '--kubeconfig-out', kubeconfig], {
    cwd: repo,
    env: { ...process.env, APQN_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  dev.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  dev.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    dev.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let exitedYet = false;
  void exited.then(() => (exitedYet = true));
  t.teardown(() => {
    if (!exitedYet) dev.kill('SIGKILL'); // the control plane's exit hook cannot run then; the next start reaps it
  });
  const stderrTail = () => stderr.split('\n').slice(-25).join('\n');

  // ready: exactly one line on stdout.
  const deadline = Date.now() + 180_000;
  while (!stdout.includes('\n') && !exitedYet && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  t.is(stdout, `ready: KUBECONFIG=${kubeconfig}\n`, `dev's stdout; stderr ends:\n${stderrTail()}`);
  t.true(fs.existsSync(kubeconfig));
  t.regex(stderr, new RegExp(`alias kubectl=${bin.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/kubectl`), 'the kubectl hint');
  const started = childrenOf(dev.pid!).filter((pid) => /\/(etcd|kube-apiserver)$/.test(commandOf(pid)));
  t.is(started.length, 2, 'dev runs etcd and kube-apiserver');

  for (const step of steps) {
    const result = spawnSync('bash', ['-eo', 'pipefail', '-c', step.script], {
      cwd: repo,
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: kubeconfig, PATH: `${bin}:${process.env.PATH}` },
      timeout: 120_000,
    });
    const where = `README.md line ${step.line}:\n${step.script}`;
    if (result.status !== 0) {
      t.fail(`${where}\nexited ${result.status}: ${result.stderr}\n--- dev's stderr ends ---\n${stderrTail()}`);
      break;
    }
    if (step.expected !== undefined) {
      const mismatch = outputMismatch(step.expected, result.stdout);
      t.is(mismatch, undefined, `${where}\n${mismatch}\n--- full output ---\n${result.stdout}`);
      if (mismatch) break;
    }
  }

  dev.kill('SIGINT');
  const end = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000))]);
  t.deepEqual(end, { code: 0, signal: null }, `dev exits cleanly on SIGINT; stderr ends:\n${stderrTail()}`);
  t.is(stdout.split('\n').filter(Boolean).length, 1, 'still one line on stdout');
  for (const pid of started) t.is(commandOf(pid), '', `process ${pid} (etcd/kube-apiserver) is gone`);
  t.false(fs.existsSync(kubeconfig), 'the kubeconfig is removed');
});
