// `npm run build` and the compiled commands as they ship. The build goes into a copy of the
// package as npm would install it — package.json, the "files" it lists, and node_modules with
// only the production dependencies — and the commands run from there with plain `node`: no
// tsx loader, no src/, and tsx (a dev dependency) not resolvable from the package. A file the
// compiled code reads at run time but the build or "files" leaves out (a .proto, a CRD, the
// example topology) fails here.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { operatorClients } from '../../src/k8s/client.js';
import { eventually, kubeConfig, kubeconfigPath } from '../support/cluster.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const manifest = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as {
  files: string[];
  dependencies: Record<string, string>;
  bin: Record<string, string>;
};

const pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'apqn-build-'));
test.after.always(() => fs.rmSync(pkg, { recursive: true, force: true }));

/** The environment of a command run from the copy: nothing that would preload a loader. */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete e.NODE_OPTIONS;
  if (!('APQN_RUN' in extra)) delete e.APQN_RUN;
  return e;
}

const node = (args: string[], extra: Record<string, string> = {}) =>
  spawnSync(process.execPath, args, { cwd: pkg, encoding: 'utf8', env: env(extra), timeout: 60_000 });

test.before('npm run build into a copy of the package with its production dependencies', async () => {
  fs.copyFileSync(path.join(repo, 'package.json'), path.join(pkg, 'package.json'));
  for (const entry of manifest.files) {
    if (entry.replace(/\/$/, '') === 'dist') continue; // built below
    fs.cpSync(path.join(repo, entry), path.join(pkg, entry), { recursive: true });
  }
  for (const dep of Object.keys(manifest.dependencies)) {
    const link = path.join(pkg, 'node_modules', dep);
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(path.join(repo, 'node_modules', dep), link);
  }
  await promisify(execFile)('npm', ['run', 'build', '--', path.join(pkg, 'dist')], {
    cwd: repo,
    env: env(),
    maxBuffer: 16 << 20,
  });
});

test('the copy is what an installed package holds: dist/ without src/, and tsx is not resolvable', (t) => {
  t.true(fs.existsSync(path.join(pkg, 'dist/cli.js')));
  t.true(fs.existsSync(path.join(pkg, 'dist/agent/dra/proto/dra-v1.proto')), 'the build copies the .proto files');
  t.false(fs.existsSync(path.join(pkg, 'src')));
  t.false(fs.existsSync(path.join(pkg, 'dist/cli.js.map')), 'no source maps pointing at a src/ that is not shipped');
  const r = node(['--input-type=module', '-e', "await import('tsx/esm/api')"]);
  t.not(r.status, 0, 'tsx must not be importable from the package');
  t.regex(r.stderr, /ERR_MODULE_NOT_FOUND|Cannot find package 'tsx'/);
  const leftovers = spawnSync('grep', ['-rlE', String.raw`(from |import\()'(tsx['/]|[^']*\.ts')`, path.join(pkg, 'dist')], { encoding: 'utf8' });
  t.is(leftovers.stdout, '', 'no compiled module imports a .ts file or tsx');
});

test('the installed commands run dist/: --help of every command and of the kubectl plugin', (t) => {
  const bin = (name: string) => path.join(pkg, manifest.bin[name]!);
  const top = node([bin('apqn-operator'), '--help']);
  t.is(top.status, 0, top.stderr);
  const listed = [...top.stdout.matchAll(/^ {2}([a-z]+) {2,}/gm)].map((m) => m[1]!);
  t.true(listed.includes('controller') && listed.includes('sim'), top.stdout);
  for (const name of listed) {
    const r = node([bin('apqn-operator'), name, '--help']);
    t.is(r.status, 0, `${name} --help: ${r.stderr}`);
    t.regex(r.stdout, new RegExp(`usage: apqn-operator ${name}`));
  }
  const direct = node([path.join(pkg, 'dist/cli.js'), 'controller', '--help']);
  t.is(direct.status, 0, direct.stderr);
  t.regex(direct.stdout, /usage: apqn-operator controller/);
  const plugin = node([bin('kubectl-apqn'), '--help']);
  t.is(plugin.status, 0, plugin.stderr);
  t.regex(plugin.stdout, /matrix/);
});

test('APQN_RUN=src in an installed package is an error that says why; an unknown value too', (t) => {
  const src = node([path.join(pkg, 'bin/apqn-operator.js'), '--help'], { APQN_RUN: 'src' });
  t.is(src.status, 1);
  t.regex(src.stderr, /src\/cli\.ts is missing: this is not a checkout/);
  const bogus = node([path.join(pkg, 'bin/apqn-operator.js'), '--help'], { APQN_RUN: 'compiled' });
  t.is(bogus.status, 1);
  t.regex(bogus.stderr, /APQN_RUN must be "dist" or "src"/);
});

test('compiled sim boots node-a of the shipped examples/topology.yaml and renders its sysfs', (t) => {
  const out = path.join(pkg, 'render-node-a');
  const r = node([path.join(pkg, 'bin/apqn-operator.js'), 'sim', '--topology', 'examples/topology.yaml', '--node', 'node-a', '--render', out]);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stderr, /rendered node-a into/);
  t.true(fs.existsSync(path.join(out, 'bus/ap/apmask')), 'the AP bus masks are rendered');
});

test('the compiled code finds the CRDs, the DRA .proto files and the default topology beside it', (t) => {
  const probe = `
    const { loadCrds } = await import('./dist/k8s/crds.js');
    const { kubeletProtos } = await import('./dist/agent/dra/grpc.js');
    const { DEFAULT_TOPOLOGY } = await import('./dist/commands/dev.js');
    const fs = await import('node:fs');
    const protos = kubeletProtos();
    console.log(JSON.stringify({
      crds: loadCrds().map((c) => c.metadata.name).sort(),
      protos: Object.keys(protos).sort(),
      topology: fs.existsSync(DEFAULT_TOPOLOGY) && DEFAULT_TOPOLOGY.startsWith(${JSON.stringify(pkg)}),
    }));`;
  const r = node(['--input-type=module', '-e', probe]);
  t.is(r.status, 0, r.stderr);
  const seen = JSON.parse(r.stdout) as { crds: string[]; protos: string[]; topology: boolean };
  const shipped = fs
    .readdirSync(path.join(repo, 'crds'))
    .filter((f) => /^kind: CustomResourceDefinition$/m.test(fs.readFileSync(path.join(repo, 'crds', f), 'utf8')));
  t.is(seen.crds.length, shipped.length, seen.crds.join(' '));
  t.true(seen.crds.every((n) => n.endsWith('.ap.s390x.io')), seen.crds.join(' '));
  t.deepEqual(seen.protos, ['draV1', 'draV1beta1', 'registration']);
  t.true(seen.topology, 'dev finds examples/topology.yaml in the package');
});

test('the compiled agent serves its DRA plugin (loading the .proto files) and reports to the real API server', async (t) => {
  const nodeName = `build-${randomBytes(3).toString('hex')}`;
  const dirs = path.join(pkg, `dra-${nodeName}`);
  const topology = path.join(pkg, `${nodeName}.yaml`);
  fs.writeFileSync(topology, `nodes:\n  - name: ${nodeName}\n    cards: [ { id: "05", type: CEX8C, domains: "0004-0005" } ]\n`);
  const states = operatorClients(kubeConfig()).nodeStates;
  t.teardown(() => states.delete(nodeName).then(() => undefined, () => undefined));

  const child = spawn(
    process.execPath,
    [
      path.join(pkg, 'bin/apqn-operator.js'), 'agent', '--node', nodeName, '--simulate', topology,
      '--kubeconfig', kubeconfigPath(), '--rescan-seconds', '1',
      '--dra-plugin', '--dra-registration-dir', path.join(dirs, 'registry'), '--dra-plugin-dir', path.join(dirs, 'plugin'),
      '--cdi-dir', path.join(dirs, 'cdi'), '--dra-metadata-dir', path.join(dirs, 'metadata'),
    ],
    { cwd: pkg, env: env({ APQN_LOG_FORMAT: 'json', APQN_LOG_LEVEL: 'info' }), stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  const registration = path.join(dirs, 'registry', 'ap.s390x.io-reg.sock');
  await eventually('the DRA registration socket', () => {
    if (child.exitCode !== null) throw new Error(`the agent exited ${child.exitCode}:\n${output}`);
    return fs.existsSync(registration) ? true : undefined;
  });
  t.true(fs.existsSync(path.join(dirs, 'plugin', 'dra.sock')));
  const state = await eventually('the agent status on APNodeState', async () => {
    const found = await states.find(nodeName);
    return found?.status ? found : undefined;
  });
  t.truthy(state.status);

  child.kill('SIGTERM');
  t.is(await exited, 0, output);
  t.false(fs.existsSync(registration), 'the agent removes its sockets when it stops');
});
