// `npm run soak -- --seed N --seconds S [--faults] [--nodes K]`: issue 12's soak ("never lose a
// queue") on a local real control plane of its own: simulated nodes of every kernel profile,
// the real agents and two real controller replicas, seeded random churn by several writers,
// with --faults also agent kills, leader failover, API server restarts, watch cuts and host
// load; then it settles, checks the invariants (bench/soak-invariants.ts), deletes everything
// and checks that nothing was lost. Progress on stderr, the report on stdout; exit code 1 when
// any invariant was violated. See bench/soak-run.ts for the run, APQN_LOG_LEVEL=warn for the
// operator's own logs (silent by default).
import * as k8s from '@kubernetes/client-node';
import { LocalControlPlane } from '../src/k8s/controlplane.js';
import { installCrds } from '../src/k8s/crds.js';
import { logger, setLogLevel } from '../src/log.js';
import { UsageError, parseFlags } from '../src/util/args.js';
import { formatReport, runSoak } from './soak-run.js';

const USAGE = `usage: npm run soak -- [--seed 1] [--seconds 60] [--faults] [--nodes 3] [--writers 4]
                       [--settle-seconds 120] [--release-seconds 120]
  --seed             fixes every choice of the writers and the fault injector
  --seconds          how long the churn runs
  --faults           also kill agents at random steps, fail the controller leader over, restart
                     the API server, cut every watch, and put host requests on queues
  --nodes            simulated nodes; kernels 5.15, 6.10, 6.19 in turn (at least 1)
  --writers          concurrent writers creating, deleting, editing and claiming reservations
  --settle-seconds   how long the cluster may take to settle after the churn (a violation past it)
  --release-seconds  how long deleting everything may take
Exit code: 0 every invariant held, 1 a violation (each printed with the seed), 2 usage.
APQN_LOG_LEVEL=warn shows the operator's logs on stderr (silent by default).
`;

async function main(): Promise<number> {
  let flags;
  try {
    flags = parseFlags(process.argv.slice(2), {
      seed: 'number',
      seconds: 'number',
      faults: 'boolean',
      nodes: 'number',
      writers: 'number',
      'settle-seconds': 'number',
      'release-seconds': 'number',
      help: 'boolean',
    });
    if (flags._.length) throw new UsageError(`unexpected argument ${flags._[0]}`);
    for (const [name, min] of [['seconds', 1], ['nodes', 1], ['writers', 1], ['settle-seconds', 1], ['release-seconds', 1]] as const) {
      const v = flags[name];
      if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new UsageError(`--${name} must be an integer of at least ${min}`);
    }
    if (flags.seed !== undefined && (!Number.isInteger(flags.seed) || flags.seed < 0)) throw new UsageError('--seed must be a non-negative integer');
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`soak: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  setLogLevel(process.env.APQN_LOG_LEVEL ?? 'silent');
  const seed = flags.seed ?? 1;
  const say = (line: string) => process.stderr.write(`[soak seed=${seed}] ${line}\n`);
  say('starting a local control plane (etcd + kube-apiserver)');
  const cp = await LocalControlPlane.start({ log: logger('controlplane') });
  try {
    const kubeConfig = new k8s.KubeConfig();
    kubeConfig.loadFromFile(cp.kubeconfigPath);
    await installCrds(kubeConfig, undefined, logger('crds'));
    const report = await runSoak({
      seed,
      seconds: flags.seconds ?? 60,
      faults: flags.faults ?? false,
      nodes: flags.nodes ?? 3,
      writers: flags.writers ?? 4,
      settleSeconds: flags['settle-seconds'] ?? 120,
      releaseSeconds: flags['release-seconds'] ?? 120,
      kubeConfig,
      namespace: 'soak',
      nodePrefix: 'soak',
      controlPlane: cp,
      say,
    });
    process.stdout.write(`${formatReport(report)}\n`);
    return report.violations.length ? 1 : 0;
  } finally {
    await cp.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
