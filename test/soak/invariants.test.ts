// The soak's invariant checker (bench/soak-invariants.ts) on hand-made bus states: a sound
// state passes, and each invariant fires on a state broken in its way (and only that one).
import test from 'ava';
import type { APNodeState, APQNReservation, Condition, NodeStateSpec, ReservationSpec, ReservationStatus } from '../../src/api/types.js';
import {
  checkReleased,
  checkSettled,
  settleProblems,
  type BusSnapshot,
  type ClusterState,
  type InvariantId,
  type Violation,
} from '../../bench/soak-invariants.js';

const UUID = '11111111-2222-5333-8444-555555555555';
const UUID2 = '66666666-7777-5888-9999-aaaaaaaaaaaa';

/** Node n1 (6.10) before the run: adapters 05, 06 x domains 0004, 0005, all on the host. */
function before(): BusSnapshot {
  return {
    node: 'n1',
    kernel: '6.10',
    apmask: ['05', '06'],
    aqmask: ['0004', '0005'],
    queues: ['05.0004', '05.0005', '06.0004', '06.0005'].map((apqn) => ({ apqn, driver: 'cex4queue' as const, override: null, online: true })),
    mdevs: [],
  };
}

const cond = (type: string, status: Condition['status'], reason: string, message = `${reason}.`, observedGeneration = 1): Condition => ({
  type,
  status,
  reason,
  message,
  observedGeneration,
  lastTransitionTime: '2026-01-01T00:00:00Z',
});

function reservation(name: string, spec: ReservationSpec, status?: ReservationStatus, generation = 1): APQNReservation {
  return {
    apiVersion: 'ap.s390x.io/v1alpha1',
    kind: 'APQNReservation',
    metadata: { name, namespace: 'ns', generation, uid: name },
    spec,
    ...(status ? { status: { observedGeneration: generation, ...status } } : {}),
  };
}

const ready = (generation = 1) => [cond('Ready', 'True', 'Ready', 'Ready.', generation)];

function nodeState(spec: NodeStateSpec, synced: Condition['status'] = 'True', generation = 3, observed = generation): APNodeState {
  return {
    apiVersion: 'ap.s390x.io/v1alpha1',
    kind: 'APNodeState',
    metadata: { name: 'n1', generation },
    spec,
    status: { observedGeneration: observed, conditions: [cond('Synced', synced, synced === 'True' ? 'Synced' : 'Applying', 'x', observed)] },
  };
}

/** A sound settled state: payments holds 05,06 x 0004 on vfio_ap (aqmask bit 0004 cleared), keep holds 05.0005 on the host. */
function sound(): ClusterState {
  const bus = before();
  bus.aqmask = ['0005'];
  bus.queues = bus.queues.map((q) => (q.apqn.endsWith('.0004') ? { ...q, driver: 'vfio_ap' } : q));
  bus.mdevs = [{ uuid: UUID, adapters: ['05', '06'], domains: ['0004'], controlDomains: [] }];
  return {
    buses: [bus],
    reservations: [
      reservation('payments', { nodeName: 'n1', apqns: ['05.0004', '06.0004'] }, { nodeName: 'n1', apqns: ['05.0004', '06.0004'], mdevUUID: UUID, conditions: ready() }),
      reservation('keep', { nodeName: 'n1', apqns: ['05.0005'], driver: 'host' }, { nodeName: 'n1', apqns: ['05.0005'], conditions: ready() }),
      reservation('late', { nodeName: 'n1', apqns: ['05.0004'] }, { conditions: [cond('Ready', 'False', 'Conflict', '05.0004 on node n1 is held by ns/payments (older).')] }),
    ],
    nodeStates: [
      nodeState({
        bindingMode: 'Masks',
        aqmask: [{ id: '0004', host: false, original: true }],
        mdevs: [{ uuid: UUID, reservation: 'ns/payments', adapters: ['05', '06'], domains: ['0004'], controlDomains: [] }],
      }),
    ],
  };
}

/** A sound state after release: the bus as before, every spec empty. */
function released(): ClusterState {
  return { buses: [before()], reservations: [], nodeStates: [nodeState({})] };
}

const ids = (vs: Violation[]) => [...new Set(vs.map((v) => v.invariant))].sort();

test('a sound settled state and a sound release pass every invariant', (t) => {
  t.deepEqual(checkSettled(sound(), [before()]), []);
  t.deepEqual(checkReleased(released(), [before()]), []);
  t.deepEqual(settleProblems(sound()), []);
});

interface Case {
  why: string;
  phase: 'settled' | 'released';
  break: (s: ClusterState) => ClusterState;
  fires: InvariantId;
  says: RegExp;
  left?: string[];
  /** Other invariants the same breakage rightly trips (a Synced lie after release is also a loss). */
  also?: InvariantId[];
}

const bus0 = (s: ClusterState) => s.buses[0]!;
const withBus = (s: ClusterState, change: (b: BusSnapshot) => void): ClusterState => {
  const b = structuredClone(bus0(s));
  change(b);
  return { ...s, buses: [b] };
};
const withReservation = (s: ClusterState, name: string, change: (r: APQNReservation) => void): ClusterState => ({
  ...s,
  reservations: s.reservations.map((r) => {
    if (r.metadata.name !== name) return r;
    const copy = structuredClone(r);
    change(copy);
    return copy;
  }),
});
const withNodeSpec = (s: ClusterState, spec: NodeStateSpec, synced: Condition['status'] = 'True'): ClusterState => ({ ...s, nodeStates: [nodeState(spec, synced)] });

const cases: Case[] = [
  {
    why: 'one-mdev-per-apqn: a second mdev with 06.0004 in its matrix',
    phase: 'settled',
    // (the node does not claim Synced: the model itself refuses such an mdev, so only a broken bus shows one)
    break: (s) => withNodeSpec(withBus(s, (b) => b.mdevs.push({ uuid: UUID2, adapters: ['06'], domains: ['0004'], controlDomains: [] })), sound().nodeStates[0]!.spec, 'False'),
    fires: 'one-mdev-per-apqn',
    says: /06\.0004 is in the matrix of 2 mdevs/,
  },
  {
    why: 'queue-has-driver: a queue left unbound',
    phase: 'settled',
    break: (s) => withBus(s, (b) => (b.queues[3]!.driver = '')),
    fires: 'queue-has-driver',
    says: /06\.0005 is bound to no driver/,
  },
  {
    why: 'ready-once: a second reservation Ready on a queue another one is Ready on',
    phase: 'settled',
    break: (s) => ({
      ...s,
      reservations: [...s.reservations, reservation('twin', { nodeName: 'n1', apqns: ['05.0005'], driver: 'host' }, { nodeName: 'n1', apqns: ['05.0005'], conditions: ready() })],
    }),
    fires: 'ready-once',
    says: /05\.0005 on node n1 is Ready in 2 reservations: ns\/keep, ns\/twin/,
  },
  {
    why: 'ready-matches-bus: the mdev of a Ready reservation does not exist',
    phase: 'settled',
    // its queues stay on vfio_ap; the node spec no longer names the mdev either (no Synced complaint)
    break: (s) => withNodeSpec(withBus(s, (b) => (b.mdevs = [])), { bindingMode: 'Masks', aqmask: [{ id: '0004', host: false, original: true }] }),
    fires: 'ready-matches-bus',
    says: /mdev 11111111-.* does not exist on node n1/,
  },
  {
    why: 'ready-matches-bus: the mdev has a domain more than the reservation',
    phase: 'settled',
    break: (s) => {
      const spec = { bindingMode: 'Masks' as const, aqmask: [{ id: '0004', host: false }], mdevs: [{ uuid: UUID, reservation: 'ns/payments', adapters: ['05', '06'], domains: ['0004', '0005'], controlDomains: [] }] };
      return withNodeSpec(withBus(s, (b) => (b.mdevs[0]!.domains = ['0004', '0005'])), spec);
    },
    fires: 'ready-matches-bus',
    says: /has matrix 05,06 x 0004,0005, not 05,06 x 0004/,
  },
  {
    why: 'ready-matches-bus: a control domain the spec asks for is not in the mdev',
    phase: 'settled',
    break: (s) => withReservation(s, 'payments', (r) => (r.spec.controlDomains = ['0005'])),
    fires: 'ready-matches-bus',
    says: /not 05,06 x 0004 control 0005/,
  },
  {
    why: 'ready-matches-bus: a Ready host reservation whose queue is on vfio_ap',
    phase: 'settled',
    break: (s) =>
      withNodeSpec(
        withBus(s, (b) => {
          b.apmask = ['06'];
          for (const q of b.queues) if (q.apqn.startsWith('05.')) q.driver = 'vfio_ap';
        }),
        { bindingMode: 'Masks', apmask: [{ id: '05', host: false }], aqmask: [{ id: '0004', host: false }], mdevs: sound().nodeStates[0]!.spec.mdevs! },
      ),
    fires: 'ready-matches-bus',
    says: /driver host.*05\.0005 is on vfio_ap/,
  },
  {
    why: 'ready-matches-bus: Ready for queues its current spec no longer names',
    phase: 'settled',
    break: (s) =>
      withReservation(s, 'payments', (r) => {
        r.spec.apqns = ['05.0004'];
        r.metadata.generation = 2;
        r.status!.observedGeneration = 2;
        r.status!.conditions = ready(2);
      }),
    fires: 'ready-matches-bus',
    says: /Ready=True for 05\.0004,06\.0004 but its spec \(generation 2\) asks for 05\.0004/,
  },
  {
    why: 'not-ready-says-why: Ready=False without a reason',
    phase: 'settled',
    break: (s) => withReservation(s, 'late', (r) => (r.status!.conditions = [cond('Ready', 'False', '', '')])),
    fires: 'not-ready-says-why',
    says: /Ready=False without a reason or a message/,
  },
  {
    why: 'not-ready-says-why: a reservation with no status at all',
    phase: 'settled',
    break: (s) => withReservation(s, 'late', (r) => delete r.status),
    fires: 'not-ready-says-why',
    says: /has no status at all/,
  },
  {
    why: 'not-ready-says-why: conditions without Ready',
    phase: 'settled',
    break: (s) => withReservation(s, 'late', (r) => (r.status!.conditions = [cond('Accepted', 'True', 'Valid')])),
    fires: 'not-ready-says-why',
    says: /no Ready condition \(conditions: Accepted=True\)/,
  },
  {
    why: 'synced-matches-bus: Synced with an empty spec while a mask bit stays cleared (the lost queue of issue 12)',
    phase: 'released',
    break: (s) => withBus(s, (b) => (b.aqmask = ['0005'])),
    fires: 'synced-matches-bus',
    says: /aqmask bit 0004 is clear; the spec does not own it, so it must be restored to set/,
    also: ['nothing-lost'],
  },
  {
    why: 'synced-matches-bus: Synced while a bit the spec owns has the other value',
    phase: 'settled',
    break: (s) =>
      withNodeSpec(s, { ...sound().nodeStates[0]!.spec, apmask: [{ id: '06', host: false }] }),
    fires: 'synced-matches-bus',
    says: /apmask bit 06 is set; the spec wants it clear/,
  },
  {
    why: 'synced-matches-bus: Synced while an mdev the spec wants is missing',
    phase: 'settled',
    break: (s) => withNodeSpec(s, { ...sound().nodeStates[0]!.spec, mdevs: [...sound().nodeStates[0]!.spec.mdevs!, { uuid: UUID2, reservation: 'ns/x', adapters: ['05'], domains: ['0005'], controlDomains: [] }] }),
    fires: 'synced-matches-bus',
    says: /mdev 66666666-.* does not exist; the spec wants it/,
  },
  {
    why: 'synced-matches-bus: Synced while an mdev neither the spec nor the old bus has exists',
    phase: 'released',
    break: (s) => withBus(s, (b) => b.mdevs.push({ uuid: UUID2, adapters: ['05'], domains: ['0005'], controlDomains: [] })),
    fires: 'synced-matches-bus',
    says: /mdev 66666666-.* \(05 x 0005\) exists; neither the spec nor the bus before the run has it/,
    also: ['nothing-lost'],
  },
  {
    why: 'synced-matches-bus: Synced while a driver_override is left behind',
    phase: 'released',
    break: (s) => withBus(s, (b) => (b.queues[0]!.override = 'vfio_ap')),
    fires: 'synced-matches-bus',
    says: /driver_override of 05\.0004 is vfio_ap; before the run it was unset/,
    also: ['nothing-lost'],
  },
  {
    why: 'synced-matches-bus: Synced while a queue sits on a driver its masks do not give it',
    phase: 'settled',
    break: (s) => withBus(s, (b) => (b.queues[3]!.driver = 'vfio_ap')),
    fires: 'synced-matches-bus',
    says: /06\.0005 is on vfio_ap; its masks and driver_override put it on cex4queue/,
  },
  {
    why: 'nothing-lost: a mask bit not restored after release (named with the queues it stranded)',
    phase: 'released',
    break: (s) => ({
      ...withBus(s, (b) => {
        b.aqmask = ['0005'];
        for (const q of b.queues) if (q.apqn.endsWith('.0004')) q.driver = 'vfio_ap';
      }),
      nodeStates: [nodeState({}, 'False')],
    }),
    fires: 'nothing-lost',
    says: /aqmask bit 0004 is clear; before the run it was set \(2 queues moved by it: 05\.0004, 06\.0004\)/,
  },
  {
    why: 'nothing-lost: an mdev left after release',
    phase: 'released',
    break: (s) => ({ ...withBus(s, (b) => b.mdevs.push({ uuid: UUID, adapters: ['05'], domains: ['0004'], controlDomains: [] })), nodeStates: [nodeState({}, 'False')] }),
    fires: 'nothing-lost',
    says: /mdev 11111111-.* \(05 x 0004\) is left/,
  },
  {
    why: 'nothing-lost: a queue on another driver than before the run, masks as before',
    phase: 'released',
    break: (s) => ({
      ...withBus(s, (b) => {
        b.queues[3]!.driver = 'vfio_ap';
        b.queues[3]!.override = 'vfio_ap';
      }),
      nodeStates: [nodeState({}, 'False')],
    }),
    fires: 'nothing-lost',
    says: /06\.0005 is on vfio_ap; before the run it was on cex4queue/,
  },
  {
    why: 'synced-matches-bus: a host queue left cordoned (offline) on a Synced node',
    phase: 'settled',
    break: (s) => withBus(s, (b) => (b.queues[1]!.online = false)),
    fires: 'synced-matches-bus',
    says: /05\.0005 is offline on the host driver \(cordoned\) though nothing takes it; before the run it was online/,
  },
  {
    why: 'nothing-lost: a host queue left offline after release (a cordon never undone)',
    phase: 'released',
    break: (s) => ({ ...withBus(s, (b) => (b.queues[1]!.online = false)), nodeStates: [nodeState({}, 'False')] }),
    fires: 'nothing-lost',
    says: /05\.0005 is offline to the host \(a cordon never undone\); before the run it was online/,
  },
  {
    why: 'all-released: a reservation whose finalizer never finished',
    phase: 'released',
    break: (s) => s,
    left: ['APQNReservation ns/stuck (finalizers: ap.s390x.io/release-queues)'],
    fires: 'all-released',
    says: /APQNReservation ns\/stuck .* still exists after deletion/,
  },
];

for (const c of cases) {
  test(c.why, (t) => {
    const state = c.break(c.phase === 'settled' ? sound() : released());
    const found = c.phase === 'settled' ? checkSettled(state, [before()]) : checkReleased(state, [before()], c.left ?? []);
    t.true(
      found.some((v) => v.invariant === c.fires && c.says.test(v.message)),
      `expected ${c.fires} matching ${c.says}; got:\n${found.map((v) => `${v.invariant}: ${v.message}`).join('\n') || '(nothing)'}`,
    );
    t.deepEqual(ids(found), [c.fires, ...(c.also ?? [])].sort(), 'only this invariant fires');
  });
}

test('a claimed reservation stays Ready with its recorded matrix while a spec change waits for the claim', (t) => {
  const state = withReservation(sound(), 'payments', (r) => {
    r.spec.apqns = ['05.0005'];
    r.spec.controlDomains = ['0005'];
    r.metadata.generation = 2;
    r.status!.observedGeneration = 2;
    r.status!.claimedBy = { name: 'vm1' };
    r.status!.matrix = { adapters: ['05', '06'], domains: ['0004'], controlDomains: [] };
    r.status!.conditions = [cond('Scheduled', 'True', 'ClaimedByGuest', 'claim vm1 holds this reservation: the spec change waits', 2), ...ready(2)];
  });
  t.deepEqual(checkSettled(state, [before()]), []);
  const unclaimed = withReservation(state, 'payments', (r) => {
    delete r.status!.claimedBy;
    r.status!.conditions = ready(2);
  });
  t.deepEqual(ids(checkSettled(unclaimed, [before()])), ['ready-matches-bus'], 'without the claim, the same state is a violation');
});

test('a Synced=True about an older spec generation is not judged against the current spec', (t) => {
  const state = withBus(released(), (b) => (b.aqmask = ['0005']));
  const stale = { ...state, nodeStates: [nodeState({}, 'True', 4, 3)] };
  t.deepEqual(
    checkReleased(stale, [before()]).map((v) => v.invariant),
    ['nothing-lost'],
    'the lost bit is still found by nothing-lost; synced-matches-bus does not judge a stale Synced',
  );
});

test('settleProblems names what is still moving: lagging status, draining, a deletion not held by a claim, a node applying', (t) => {
  const s = sound();
  const moving: ClusterState = {
    ...s,
    reservations: [
      reservation('lag', { nodeName: 'n1', apqns: ['05.0005'] }, { conditions: ready(1), observedGeneration: 1 }, 2),
      reservation('drain', { nodeName: 'n1', apqns: ['05.0005'] }, { conditions: [cond('Ready', 'False', 'Draining', '05.0005 has 3 host requests in flight.')] }),
      { ...reservation('going', { nodeName: 'n1', apqns: ['05.0005'] }, { conditions: [cond('Ready', 'False', 'Releasing')] }), metadata: { name: 'going', namespace: 'ns', generation: 1, deletionTimestamp: '2026-01-01T00:00:00Z' } },
      { ...reservation('held', { nodeName: 'n1', apqns: ['05.0005'] }, { conditions: [cond('Ready', 'False', 'ClaimedByGuest')] }), metadata: { name: 'held', namespace: 'ns', generation: 1, deletionTimestamp: '2026-01-01T00:00:00Z' } },
    ],
    nodeStates: [nodeState({}, 'False')],
  };
  const problems = settleProblems(moving);
  t.deepEqual(problems, [
    'ns/lag: status is for generation 1, spec is 2',
    'ns/drain: Ready=False Draining (05.0005 has 3 host requests in flight.)',
    'ns/going: being deleted (Ready=False Releasing)',
    'node n1: Synced=False Applying (x)',
  ]);
});
