// The bounded soak (issue 12, item 3): a few seeds of `npm run soak -- --faults`, shorter, in
// `npm test`, so that losing a queue fails CI. Each seed runs in its own namespace on its own
// three simulated nodes (5.15, 6.10, 6.19), with its own two controller replicas scoped to
// them, on the shared control plane; the seeds run side by side (about 25 s when every
// invariant holds, at most about 90 s when a run waits out its settle and release bounds).
//
// Every fault of `npm run soak --faults` runs here except the API server restart: this control
// plane is shared with the rest of the suite, so restarting it would break other tests. That
// fault runs in `npm run soak` only (on the soak's own control plane).
import test from 'ava';
import { formatReport, runSoak } from '../../bench/soak-run.js';
import { setLogLevel } from '../../src/log.js';
import { kubeConfig, testNamespace } from '../support/cluster.js';

setLogLevel('silent'); // the operator's warnings under faults are expected; the report says what matters

const SEEDS = [1, 2, 3];
const SECONDS = 15;

for (const seed of SEEDS) {
  test(`soak seed ${seed}: ${SECONDS} s of churn with faults; every invariant holds and nothing is lost`, async (t) => {
    const namespace = await testNamespace(t, `soak${seed}`);
    const progress: string[] = [];
    const report = await runSoak({
      seed,
      seconds: SECONDS,
      faults: true,
      nodes: 3,
      writers: 3,
      // Bounds that a healthy run meets with room to spare on a busy 2-core machine (it settles in
      // 2-11 s, releases in 2-16 s); a run that finds a stuck finalizer waits them out, so they
      // also cap the file at about 90 s.
      settleSeconds: 30,
      releaseSeconds: 30,
      kubeConfig: kubeConfig(),
      namespace,
      nodePrefix: `soak${seed}-${namespace.slice(-6)}`, // unique per test (the namespace's random suffix), short enough to read
      say: (line) => progress.push(line),
    });
    const text = formatReport(report);
    t.log(text);
    if (report.violations.length || report.faults.some((f) => f.recovered === false)) t.log(progress.join('\n'));
    t.true(report.operations.length > 0, 'the writers wrote');
    t.true(report.faults.length > 0, 'faults were injected');
    t.deepEqual(
      report.faults.filter((f) => f.recovered === false).map((f) => `${f.kind}: ${f.detail}`),
      [],
      'every fault was recovered from',
    );
    t.deepEqual(
      report.violations.map((v) => `seed=${seed} ${v.phase} ${v.invariant}${v.object ? ` ${v.object}` : ''}: ${v.message}`),
      [],
      'no invariant violated',
    );
  });
}
