// Runs a command (the ava suite) with one real local control plane for the whole run:
//   node --import=tsx test/support/with-controlplane.ts -- npx ava [args]
// The control plane's kubeconfig and binaries reach the tests through APQN_TEST_KUBECONFIG
// and APQN_CONTROLPLANE_BIN. Whatever happens to the command, the control plane is stopped.
import { spawn } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import { LocalControlPlane } from '../../src/k8s/controlplane.js';
import { installCrds } from '../../src/k8s/crds.js';
import { logger } from '../../src/log.js';

const log = logger('test-controlplane');
const sep = process.argv.indexOf('--');
const command = sep >= 0 ? process.argv.slice(sep + 1) : [];
if (command.length === 0) {
  process.stderr.write('usage: with-controlplane.ts -- COMMAND [ARGS]\n');
  process.exit(2);
}

const started = Date.now();
const cp = await LocalControlPlane.start({ scheduler: process.env.APQN_TEST_SCHEDULER !== '0', log });
const kc = new k8s.KubeConfig();
kc.loadFromFile(cp.kubeconfigPath);
await installCrds(kc);
log.info('control plane ready for tests', { seconds: ((Date.now() - started) / 1000).toFixed(1) });

const child = spawn(command[0]!, command.slice(1), {
  stdio: 'inherit',
  env: {
    ...process.env,
    APQN_TEST_KUBECONFIG: cp.kubeconfigPath,
    APQN_CONTROLPLANE_BIN: cp.binDir,
  },
});
const forward = (signal: NodeJS.Signals) => child.kill(signal);
process.on('SIGINT', forward);
process.on('SIGTERM', forward);
const code: number = await new Promise((resolve) =>
  child.on('exit', (c, signal) => resolve(c ?? (signal ? 128 + 1 : 1))),
);
await cp.stop();
process.exit(code);
