// `apqn-operator controlplane`: build (first time) and run only the local real control plane
// with the CRDs installed — for poking at the API by hand, or to run tests against.
import * as fs from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { LocalControlPlane } from '../k8s/controlplane.js';
import { installCrds } from '../k8s/crds.js';
import { logger } from '../log.js';
import { parseFlags } from '../util/args.js';

export const summary = 'build and start only the local control plane (etcd + kube-apiserver) with the CRDs';

export async function run(args: string[]): Promise<number> {
  const flags = parseFlags(args, { 'kubeconfig-out': 'string', scheduler: 'boolean', help: 'boolean' });
  if (flags.help) {
    process.stdout.write('usage: apqn-operator controlplane [--kubeconfig-out PATH] [--scheduler]\n');
    return 0;
  }
  const log = logger('controlplane');
  const cp = await LocalControlPlane.start({
    kubeconfigPath: flags['kubeconfig-out'],
    scheduler: flags.scheduler ?? false,
    log,
  });
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cp.kubeconfigPath);
  await installCrds(kc);
  process.stdout.write(`ready: KUBECONFIG=${cp.kubeconfigPath}\n`);
  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await cp.stop();
  if (flags['kubeconfig-out']) fs.rmSync(flags['kubeconfig-out'], { force: true });
  return 0;
}
