import test from 'ava';
import type { APQNClaim, APQNReservation } from '../../src/api/types.js';
import { desiredClaimStatus, judgeClaim } from '../../src/controller/claim-status.js';
import { NOW, claim, cond, placed, res, view } from './view-fixtures.js';

const ready = (): APQNReservation =>
  res('vm', { nodeName: 'n', apqns: ['05.0004'] }, {
    status: { ...placed('n', ['05.0004'], { mdevUUID: 'u-1' }), conditions: [cond('Scheduled', 'True'), cond('Ready', 'True', 'Ready')] },
  });
const notReady = (): APQNReservation =>
  res('vm', { nodeName: 'n', apqns: ['05.0004'] }, { status: { ...placed('n', ['05.0004']), conditions: [cond('Ready', 'False', 'Pending')] } });

const cases: Array<{ why: string; claim: APQNClaim; others?: APQNClaim[]; reservations: APQNReservation[]; phase: 'Pending' | 'Bound' | 'Lost'; reason: string }> = [
  { why: 'binds to a Ready vfio_ap reservation', claim: claim('c', 'vm'), reservations: [ready()], phase: 'Bound', reason: 'Bound' },
  { why: 'waits for a reservation that is not Ready', claim: claim('c', 'vm'), reservations: [notReady()], phase: 'Pending', reason: 'ReservationNotReady' },
  { why: 'waits for a reservation that does not exist', claim: claim('c', 'vm'), reservations: [], phase: 'Pending', reason: 'ReservationNotFound' },
  {
    why: 'a host reservation cannot be claimed',
    claim: claim('c', 'vm'),
    reservations: [res('vm', { nodeName: 'n', driver: 'host', apqns: ['05.0004'] })],
    phase: 'Pending',
    reason: 'NotVfioAp',
  },
  {
    why: 'the older claim wins; the newer gets AlreadyClaimed',
    claim: claim('young', 'vm', { age: 1 }),
    others: [claim('old', 'vm', { age: 9 })],
    reservations: [ready()],
    phase: 'Pending',
    reason: 'AlreadyClaimed',
  },
  {
    why: 'a bound claim keeps the reservation against an older one',
    claim: claim('old', 'vm', { age: 9 }),
    others: [claim('bound', 'vm', { age: 1, phase: 'Bound' })],
    reservations: [ready()],
    phase: 'Pending',
    reason: 'AlreadyClaimed',
  },
  {
    why: 'a bound claim stays bound while its reservation is not Ready (e.g. agent unavailable)',
    claim: claim('c', 'vm', { phase: 'Bound' }),
    reservations: [notReady()],
    phase: 'Bound',
    reason: 'Bound',
  },
  {
    why: 'a bound claim whose reservation is gone is Lost',
    claim: claim('c', 'vm', { phase: 'Bound' }),
    reservations: [],
    phase: 'Lost',
    reason: 'ReservationDeleted',
  },
  {
    why: 'Lost is for good, even if a reservation of that name comes back',
    claim: claim('c', 'vm', { phase: 'Lost' }),
    reservations: [ready()],
    phase: 'Lost',
    reason: 'ReservationDeleted',
  },
  {
    why: 'a claim does not bind to a reservation being deleted',
    claim: claim('c', 'vm'),
    reservations: [res('vm', { nodeName: 'n', apqns: ['05.0004'] }, { deleting: true, status: ready().status })],
    phase: 'Pending',
    reason: 'ReservationDeleting',
  },
];

for (const c of cases) {
  test(c.why, (t) => {
    const j = judgeClaim(c.claim, view({ reservations: c.reservations, claims: [c.claim, ...(c.others ?? [])] }));
    t.is(j.phase, c.phase);
    t.is(j.bound.reason, c.reason);
    t.is(j.bound.status, c.phase === 'Bound' ? 'True' : 'False');
  });
}

test('a bound claim publishes node, mdev UUID and APQNs', (t) => {
  const c = claim('c', 'vm');
  const j = judgeClaim(c, view({ reservations: [ready()], claims: [c] }));
  const status = desiredClaimStatus(undefined, j, 1, NOW);
  t.like(status, { phase: 'Bound', nodeName: 'n', mdevUUID: 'u-1', apqns: ['05.0004'], observedGeneration: 1 });
  t.is(status.conditions?.[0]?.type, 'Bound');
  t.is(j.event?.reason, 'Bound');
  const pending = desiredClaimStatus(undefined, judgeClaim(c, view({ reservations: [notReady()], claims: [c] })), 1, NOW);
  t.is(pending.nodeName, undefined, 'nothing published before binding');
});
