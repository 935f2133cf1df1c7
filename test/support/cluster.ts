// Test access to the real control plane started by test/support/with-controlplane.ts
// (`npm test`). Integration tests never skip: without the control plane they fail and say how
// to run them.
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import type { ExecutionContext } from 'ava';
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
