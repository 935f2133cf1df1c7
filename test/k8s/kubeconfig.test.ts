// ClusterConfig (src/k8s/kubeconfig.ts) against client-node's KubeConfig: the same kubeconfig
// files must give the same server, TLS options and credentials. No API server needed.
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import * as k8s from '@kubernetes/client-node';
import { ClusterConfig, type ApiConfig } from '../../src/k8s/kubeconfig.js';

function tempDir(t: ExecutionContext): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apqn-kubeconfig-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>, namespace?: string): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', ...(namespace ? { namespace } : {}) } }],
    'current-context': 'ctx',
  });
}

/** What applyToHTTPSOptions set, in a comparable form. */
async function applied(config: ApiConfig) {
  const opts: https.RequestOptions = {};
  await config.applyToHTTPSOptions(opts);
  const agent = opts.agent as (http.Agent & { options: Record<string, unknown> }) | undefined;
  const text = (v: unknown) => (Buffer.isBuffer(v) ? v.toString('utf8') : v);
  return {
    headers: opts.headers,
    auth: opts.auth,
    ca: text(opts.ca),
    cert: text(opts.cert),
    key: text(opts.key),
    rejectUnauthorized: opts.rejectUnauthorized,
    servername: opts.servername,
    agent: agent && {
      https: agent instanceof https.Agent,
      ca: text(agent.options.ca),
      cert: text(agent.options.cert),
      key: text(agent.options.key),
      rejectUnauthorized: agent.options.rejectUnauthorized,
      servername: agent.options.servername,
    },
  };
}

async function same(t: ExecutionContext, file: string) {
  const light = ClusterConfig.fromFile(file);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(file);
  t.deepEqual(light.getCurrentCluster(), kc.getCurrentCluster());
  t.deepEqual(light.getCurrentUser(), kc.getCurrentUser());
  t.is(light.getContextObject(light.getCurrentContext())?.namespace, kc.getContextObject(kc.getCurrentContext())?.namespace);
  const ours = await applied(light);
  t.deepEqual(ours, await applied(kc));
  return ours;
}

test('a token with TLS verification off', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'config');
  fs.writeFileSync(file, kubeconfig({ server: 'https://127.0.0.1:6443/', 'insecure-skip-tls-verify': true }, { token: 'abc' }, 'ns1'));
  const result = await same(t, file);
  t.is((result.headers as Record<string, string>).Authorization, 'Bearer abc');
  t.false(result.rejectUnauthorized);
  t.true(result.agent?.https);
});

test('certificate files relative to the kubeconfig, a CA file and a TLS server name', async (t) => {
  const dir = tempDir(t);
  fs.mkdirSync(path.join(dir, 'pki'));
  fs.writeFileSync(path.join(dir, 'pki', 'ca.crt'), 'CA');
  fs.writeFileSync(path.join(dir, 'pki', 'client.crt'), 'CERT');
  fs.writeFileSync(path.join(dir, 'pki', 'client.key'), 'KEY');
  const file = path.join(dir, 'config');
  fs.writeFileSync(
    file,
    kubeconfig(
      { server: 'https://api.example:6443', 'certificate-authority': 'pki/ca.crt', 'tls-server-name': 'kubernetes' },
      { 'client-certificate': 'pki/client.crt', 'client-key': 'pki/client.key' },
    ),
  );
  const result = await same(t, file);
  t.like(result, { ca: 'CA', cert: 'CERT', key: 'KEY', servername: 'kubernetes' });
  t.like(result.agent, { ca: 'CA', cert: 'CERT', key: 'KEY', servername: 'kubernetes' });
});

test('inline certificate data, impersonation, and basic auth', async (t) => {
  const dir = tempDir(t);
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const file = path.join(dir, 'config');
  fs.writeFileSync(
    file,
    kubeconfig(
      { server: 'https://api.example', 'certificate-authority-data': b64('CA') },
      { 'client-certificate-data': b64('CERT'), 'client-key-data': b64('KEY'), as: 'someone', username: 'me', password: 'pw' },
    ),
  );
  const result = await same(t, file);
  t.like(result, { ca: 'CA', cert: 'CERT', key: 'KEY', auth: 'me:pw' });
  t.is((result.headers as Record<string, string>)['Impersonate-User'], 'someone');
});

test('a token file, and an auth-provider token file', async (t) => {
  const dir = tempDir(t);
  fs.writeFileSync(path.join(dir, 'token'), 'from-file');
  const direct = path.join(dir, 'direct');
  fs.writeFileSync(direct, kubeconfig({ server: 'https://api.example' }, { 'token-file': path.join(dir, 'token') }));
  t.is(((await same(t, direct)).headers as Record<string, string>).Authorization, 'Bearer from-file');
  const provider = path.join(dir, 'provider');
  fs.writeFileSync(
    provider,
    kubeconfig({ server: 'https://api.example' }, { 'auth-provider': { name: 'tokenFile', config: { tokenFile: path.join(dir, 'token') } } }),
  );
  t.is(((await same(t, provider)).headers as Record<string, string>).Authorization, 'Bearer from-file');
});

test('an exec credential plugin', async (t) => {
  const dir = tempDir(t);
  const plugin = path.join(dir, 'plugin.sh');
  fs.writeFileSync(
    plugin,
    '#!/bin/sh\necho \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"from-exec"}}\'\n',
    { mode: 0o755 },
  );
  const file = path.join(dir, 'config');
  fs.writeFileSync(
    file,
    kubeconfig({ server: 'https://api.example' }, { exec: { apiVersion: 'client.authentication.k8s.io/v1', command: plugin, interactiveMode: 'Never' } }),
  );
  t.is(((await same(t, file)).headers as Record<string, string>).Authorization, 'Bearer from-exec');
});

test('plain HTTP only with TLS verification off, as client-node allows it', async (t) => {
  const dir = tempDir(t);
  const insecure = path.join(dir, 'insecure');
  fs.writeFileSync(insecure, kubeconfig({ server: 'http://127.0.0.1:8080', 'insecure-skip-tls-verify': true }, { token: 'x' }));
  t.false((await same(t, insecure)).agent?.https);
  const refused = path.join(dir, 'refused');
  fs.writeFileSync(refused, kubeconfig({ server: 'http://127.0.0.1:8080' }, { token: 'x' }));
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(refused);
  const theirs = await t.throwsAsync(kc.applyToHTTPSOptions({}));
  await t.throwsAsync(ClusterConfig.fromFile(refused).applyToHTTPSOptions({}), { message: theirs!.message });
});

test('$KUBECONFIG lists merge: a later current-context wins, names must not repeat', (t) => {
  const dir = tempDir(t);
  const first = path.join(dir, 'a');
  const second = path.join(dir, 'b');
  fs.writeFileSync(first, kubeconfig({ server: 'https://one' }, { token: 'x' }));
  fs.writeFileSync(
    second,
    JSON.stringify({
      clusters: [{ name: 'c2', cluster: { server: 'https://two' } }],
      users: [{ name: 'u2', user: { token: 'y' } }],
      contexts: [{ name: 'ctx2', context: { cluster: 'c2', user: 'u2' } }],
      'current-context': 'ctx2',
    }),
  );
  const kc = new k8s.KubeConfig();
  const saved = process.env.KUBECONFIG;
  process.env.KUBECONFIG = [first, second].join(path.delimiter);
  try {
    kc.loadFromDefault();
  } finally {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
  }
  const merged = ClusterConfig.fromFiles([first, second]);
  t.is(merged.getCurrentCluster()?.server, 'https://two');
  t.deepEqual(merged.getCurrentCluster(), kc.getCurrentCluster());
  t.throws(() => ClusterConfig.fromFiles([first, first]), { message: 'Duplicate cluster: c' });
});

test('in a cluster: the service account token, CA and namespace', async (t) => {
  const dir = tempDir(t);
  const sa = path.join(dir, 'var/run/secrets/kubernetes.io/serviceaccount');
  fs.mkdirSync(sa, { recursive: true });
  fs.writeFileSync(path.join(sa, 'token'), 'sa-token');
  fs.writeFileSync(path.join(sa, 'ca.crt'), 'SA-CA');
  fs.writeFileSync(path.join(sa, 'namespace'), 'apqn-system');
  const saved = { host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT };
  t.teardown(() => {
    for (const [name, value] of [
      ['KUBERNETES_SERVICE_HOST', saved.host],
      ['KUBERNETES_SERVICE_PORT', saved.port],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  process.env.KUBERNETES_SERVICE_HOST = 'fd00::1';
  process.env.KUBERNETES_SERVICE_PORT = '443';
  const light = ClusterConfig.inCluster(dir);
  const kc = new k8s.KubeConfig();
  kc.loadFromCluster(dir);
  t.is(light.getCurrentCluster()?.server, 'https://[fd00::1]:443');
  t.deepEqual(light.getCurrentCluster(), kc.getCurrentCluster());
  t.is(light.getContextObject(light.getCurrentContext())?.namespace, 'apqn-system');
  const ours = await applied(light);
  t.deepEqual(ours, await applied(kc));
  t.like(ours, { ca: 'SA-CA', headers: { Authorization: 'Bearer sa-token' } });
});
