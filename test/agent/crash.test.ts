// Crash safety: for a multi-step plan, kill the agent at every point where it writes something
// — before each step (onStep throws: the journal entry for that step is already written, the
// step is not done) and before each journal write (onJournal throws: e.g. a mask bit already
// restored whose entry is not yet removed) — restart it with a fresh memory over the node's
// journal (and the last status the runtime would have written, or none), and run passes until
// Synced. Every time: it converges, no queue is left without a driver, no APQN sits in two
// mdevs, nothing outside the spec was touched, no pass ever says Synced while the bus differs
// from the spec, and once everything is released the bus is exactly as before and the journal
// empty.
import test, { type ExecutionContext } from 'ava';
import type { KernelProfile } from '../../src/apbus/model/index.js';
import type { NodeStateSpec, NodeStateStatus } from '../../src/api/types.js';
import {
  CREATE,
  MATRIX,
  SimNode,
  UUID_A,
  UUID_B,
  UUID_FOREIGN,
  busDiffers,
  busSnapshot,
  driverless,
  foreignSnapshot,
  intent,
  mdevIntent,
} from './fixture.js';

class Killed extends Error {}

interface Scenario {
  readonly kernel: KernelProfile;
  /** Someone else's things on the node before the operator arrives. */
  readonly foreign: (node: SimNode) => void;
  readonly apply: NodeStateSpec;
  /** Release ns/a, keep ns/b. */
  readonly release: NodeStateSpec;
  /** Both deleted at once, the spec composed from a stale status: nothing named any more, no
   *  bit asked back — the agent hands back from its journal alone. */
  readonly dropAll: NodeStateSpec;
}

const maskScenario = (kernel: KernelProfile): Scenario => ({
  kernel,
  foreign: (node) => {
    node.sys.write('bus/ap/aqmask', '-0xa');
    node.sys.write(CREATE, UUID_FOREIGN);
    node.sys.write(`${MATRIX}/${UUID_FOREIGN}/assign_adapter`, '5');
    node.sys.write(`${MATRIX}/${UUID_FOREIGN}/assign_domain`, '0xa');
  },
  apply: {
    apmask: [{ id: '07', host: false }],
    aqmask: [{ id: '0004', host: false }],
    queues: [
      ...['05.0004', '06.0004'].map((q) => intent(q, 'ns/a')),
      ...['07.0004', '07.0005'].map((q) => intent(q, 'ns/b')),
    ],
    mdevs: [mdevIntent(UUID_A, 'ns/a', ['05', '06'], ['0004'], ['0004']), mdevIntent(UUID_B, 'ns/b', ['07'], ['0005'])],
  },
  release: {
    apmask: [{ id: '07', host: false }],
    aqmask: [{ id: '0004', host: true }],
    queues: [intent('07.0005', 'ns/b')],
    mdevs: [mdevIntent(UUID_B, 'ns/b', ['07'], ['0005'])],
  },
  dropAll: { apmask: [], aqmask: [], queues: [], mdevs: [] },
});

const overrideScenario: Scenario = {
  kernel: '6.19',
  foreign: (node) => {
    node.sys.write(CREATE, UUID_FOREIGN); // an empty mdev of someone else
    node.sys.write('devices/ap/card05/05.000a/driver_override', 'vfio_ap'); // set, not yet probed
  },
  apply: {
    bindingMode: 'DriverOverride',
    overrides: ['05.0004', '06.0004', '07.0005'].map((apqn) => ({ apqn, driver: 'vfio_ap' as const })),
    queues: [intent('05.0004', 'ns/a'), intent('06.0004', 'ns/a'), intent('07.0005', 'ns/b')],
    mdevs: [mdevIntent(UUID_A, 'ns/a', ['05', '06'], ['0004'], ['0004']), mdevIntent(UUID_B, 'ns/b', ['07'], ['0005'])],
  },
  release: {
    bindingMode: 'DriverOverride',
    overrides: [
      { apqn: '05.0004', driver: 'cex4queue' },
      { apqn: '06.0004', driver: 'cex4queue' },
      { apqn: '07.0005', driver: 'vfio_ap' },
    ],
    queues: [intent('07.0005', 'ns/b')],
    mdevs: [mdevIntent(UUID_B, 'ns/b', ['07'], ['0005'])],
  },
  dropAll: { bindingMode: 'DriverOverride', overrides: [], queues: [], mdevs: [] },
};

/** Passes until Synced, checking after each that Synced is never claimed over a differing bus. */
function runUntilSynced(t: ExecutionContext, node: SimNode, spec: NodeStateSpec, released: string[], onStep?: (i: number, s: string) => void): void {
  for (let pass = 0; pass < 40; pass++) {
    const r = node.pass(spec, onStep ? { onStep } : {});
    if (r.synced) {
      t.deepEqual(busDiffers(node, spec, released), [], 'Synced while the bus differs');
      if (r.requeueAfterMs === undefined) return;
    }
    node.model.tick(Math.max(1, (r.requeueAfterMs ?? 0) / 1000));
  }
  t.fail(`no convergence: ${JSON.stringify(node.lastStatus?.conditions)}`);
}

/** A node with the foreign set-up, optionally with `from` already applied. */
function startNode(s: Scenario, from: NodeStateSpec | null): SimNode {
  const node = new SimNode({ kernel: s.kernel });
  s.foreign(node);
  if (from) node.converge(from);
  return node;
}

/** Points where an uninterrupted agent going from `from` to `to` writes: `step: …` before each
 *  bus step, `journal: …` before each journal write. */
function countPoints(s: Scenario, from: NodeStateSpec | null, to: NodeStateSpec): string[] {
  const node = startNode(s, from);
  const points: string[] = [];
  node.converge(to, { pass: { onStep: (_i, step) => points.push(`step: ${step}`), onJournal: (_i, what) => points.push(`journal: ${what}`) } });
  return points;
}

function crashAt(
  t: ExecutionContext,
  s: Scenario,
  from: NodeStateSpec | null,
  to: NodeStateSpec,
  killAt: number,
  seedFromStatus: boolean,
  released: string[],
  /** The bus to end with, when `to` hands everything back. */
  expected?: ReturnType<typeof busSnapshot>,
): void {
  const node = startNode(s, from);
  const specs = [s.apply, s.release];
  const foreignBefore = foreignSnapshot(node, specs);
  let written: NodeStateStatus | undefined = node.lastStatus;
  let global = 0;
  let killed = false;
  const kill = () => {
    if (global++ === killAt) throw new Killed(`killed at point ${killAt}`);
  };
  try {
    for (let pass = 0; pass < 40 && !killed; pass++) {
      const r = node.pass(to, { onStep: kill, onJournal: kill });
      written = r.status; // the runtime wrote it
      if (r.synced && r.requeueAfterMs === undefined) break;
      node.model.tick(Math.max(1, (r.requeueAfterMs ?? 0) / 1000));
    }
  } catch (err) {
    if (!(err instanceof Killed)) throw err;
    killed = true;
  }
  t.true(killed, `point ${killAt} was reached`);
  node.restart(seedFromStatus ? (written ?? null) : null);
  runUntilSynced(t, node, to, released);
  t.deepEqual(busDiffers(node, to, released), [], 'converged to the spec');
  t.deepEqual(driverless(node), [], 'every queue device has a driver');
  t.deepEqual(sharedApqnsOf(node), [], 'no APQN in two mdevs');
  t.is(foreignSnapshot(node, specs), foreignBefore, 'nothing outside the spec was touched');
  if (expected) {
    t.deepEqual(busSnapshot(node), expected, `killed at point ${killAt}: the bus as before`);
    t.deepEqual(node.journal(), [], 'nothing left to hand back');
  }
}

function sharedApqnsOf(node: SimNode): string[] {
  const seen = new Set<string>();
  const shared: string[] = [];
  for (const uuid of node.mdevs()) {
    for (const line of node.lines(`${MATRIX}/${uuid}/matrix`)) {
      if (!line.includes('.') || line.startsWith('.') || line.endsWith('.')) continue;
      if (seen.has(line)) shared.push(line);
      seen.add(line);
    }
  }
  return shared;
}

const scenarios: Array<{ name: string; s: Scenario }> = [
  { name: 'masks, kernel 6.10 (ap_config)', s: maskScenario('6.10') },
  { name: 'masks, kernel 5.15 (assign_*)', s: maskScenario('5.15') },
  { name: 'driver_override, kernel 6.19', s: overrideScenario },
];

for (const { name, s } of scenarios) {
  test(`crash at every step and journal write while applying two reservations (${name})`, (t) => {
    const points = countPoints(s, null, s.apply);
    t.true(points.filter((p) => p.startsWith('step:')).length >= 5, `a multi-step plan: ${points.join(' | ')}`);
    t.true(points.some((p) => p.startsWith('journal:')), 'journal writes among them');
    for (let i = 0; i < points.length; i++) {
      for (const seeded of [true, false]) crashAt(t, s, null, s.apply, i, seeded, []);
    }
  });

  test(`crash at every step and journal write while releasing one of two reservations (${name})`, (t) => {
    const points = countPoints(s, s.apply, s.release);
    t.true(points.filter((p) => p.startsWith('step:')).length >= 2, `a multi-step plan: ${points.join(' | ')}`);
    // Restarted with or without its last status: the journal on the node says mdev A is its own.
    for (let i = 0; i < points.length; i++) {
      for (const seeded of [true, false]) crashAt(t, s, s.apply, s.release, i, seeded, [UUID_A]);
    }
  });

  test(`crash at every step and journal write while handing back a spec dropped at once (${name})`, (t) => {
    const before = busSnapshot(startNode(s, null));
    const points = countPoints(s, s.apply, s.dropAll);
    // Mask restores: the kill between the bus write that undoes a change and the journal write
    // that forgets it is among the points.
    t.true(points.some((p) => p.startsWith('journal:') && p.includes('forget')), points.join(' | '));
    for (let i = 0; i < points.length; i++) {
      for (const seeded of [true, false]) crashAt(t, s, s.apply, s.dropAll, i, seeded, [UUID_A, UUID_B], before);
    }
  });

  test(`crash while applying, then the spec dropped at once: handed back from the journal (${name})`, (t) => {
    const before = busSnapshot(startNode(s, null));
    const points = countPoints(s, null, s.apply);
    for (let i = 0; i < points.length; i++) {
      const node = startNode(s, null);
      let n = 0;
      const kill = () => {
        if (n++ === i) throw new Killed(`killed at point ${i}`);
      };
      t.throws(() => node.converge(s.apply, { pass: { onStep: kill, onJournal: kill } }), { instanceOf: Killed });
      node.restart(null);
      runUntilSynced(t, node, s.dropAll, [UUID_A, UUID_B]);
      t.deepEqual(busSnapshot(node), before, `killed at point ${i} (${points[i]}), then dropped: the bus as before`);
      t.deepEqual(node.journal(), [], 'nothing left to hand back');
    }
  });
}
