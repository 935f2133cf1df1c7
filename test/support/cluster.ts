// Test access to the real control plane started by test/support/with-controlplane.ts
// (`npm test`). Integration tests never skip: without the control plane they fail and say how
// to run them.
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import type { ExecutionContext } from 'ava';
import * as yaml from 'js-yaml';
import { waitFor } from '../../src/k8s/controlplane.js';

export function kubeconfigPath(): string {
  const p = process.env.APQN_TEST_KUBECONFIG;
  if (!p) {
    throw new Error(
      'this test needs the real local control plane: run it through `npm test` ' +
        '(or: node --import=tsx test/support/with-controlplane.ts -- npx ava FILE)',
    );
  }
  return p;
}

export function kubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath());
  return kc;
}

/** A fresh namespace for one test (or file), deleted when the test ends. */
export async function testNamespace(t: ExecutionContext, prefix = 't'): Promise<string> {
  const kc = kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const slug = t.title.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 30);
  const name = `${prefix}-${slug || 'test'}-${randomBytes(3).toString('hex')}`.replace(/-+/g, '-');
  await core.createNamespace({ body: { metadata: { name } } });
  t.teardown(async () => {
    try {
      await core.deleteNamespace({ name });
    } catch {
      /* already gone */
    }
  });
  return name;
}

/** Runs the control plane's kubectl against the test cluster. */
export function kubectl(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const bin = process.env.APQN_CONTROLPLANE_BIN;
  if (!bin) throw new Error('APQN_CONTROLPLANE_BIN is not set: run the tests through `npm test`');
  const result = spawnSync(path.join(bin, 'kubectl'), args, {
    input,
    encoding: 'utf8',
    env: { ...process.env, KUBECONFIG: kubeconfigPath() },
  });
  return { status: result.status ?? 1, stdout: result.stdout, stderr: result.stderr };
}

/** Polls until `probe` returns a value (not undefined), or fails the test at the deadline. */
export function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  return waitFor(what, async () => probe(), timeoutMs, intervalMs);
}

/** A KubeConfig for the test cluster that authenticates with `token` (a ServiceAccount's, say). */
export function kubeConfigForToken(token: string): k8s.KubeConfig {
  const cluster = kubeConfig().getCurrentCluster()!;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: cluster.server, skipTLSVerify: true }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

/**
 * Applies one of deploy/'s admission policies (and its binding) with `replacements` made in its
 * text — the accounts and names it matches, changed to the test's own so that nothing else on
 * the shared control plane is affected — and its objects renamed with `suffix`; removed when the
 * test ends. Fails the test if the file no longer contains a text to replace.
 */
export function applyPolicyCopy(t: ExecutionContext, file: string, replacements: ReadonlyArray<[string, string]>, suffix: string): void {
  let text = fs.readFileSync(file, 'utf8');
  for (const [from, to] of replacements) {
    if (!text.includes(from)) throw new Error(`${file} no longer contains ${from}`);
    text = text.replaceAll(from, to);
  }
  const docs = yaml.loadAll(text) as Array<{ kind: string; metadata: { name: string }; spec: { policyName?: string } }>;
  for (const d of docs) {
    d.metadata.name = `${d.metadata.name}-${suffix}`;
    if (d.spec.policyName) d.spec.policyName = `${d.spec.policyName}-${suffix}`;
  }
  const applied = kubectl(['apply', '-f', '-'], docs.map((d) => yaml.dump(d)).join('---\n'));
  if (applied.status !== 0) throw new Error(`applying ${file}: ${applied.stderr}`);
  t.teardown(() => {
    for (const d of docs) kubectl(['delete', d.kind.toLowerCase(), d.metadata.name, '--ignore-not-found']);
  });
}
