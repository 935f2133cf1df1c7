import test from 'ava';
import type { MaskBit } from '../../src/api/types.js';
import { parseApqn } from '../../src/apbus/ids.js';
import { type OwnedMaskBits, acquireMaskBits, effectiveMasks, forgetSettledBits, NONE_APPLIED, releasePlan } from '../../src/controller/mask-bits.js';

const bit = (id: string, host: boolean, original?: boolean): MaskBit => ({ id, host, ...(original !== undefined ? { original } : {}) });
const masks = (apmask: number[], aqmask: number[]) => ({ apmask: new Set(apmask), aqmask: new Set(aqmask) });

interface ReleaseCase {
  why: string;
  owned: OwnedMaskBits;
  node: { apmask: Set<number>; aqmask: Set<number> };
  stillReserved: string[];
  restoreAdapters: number[];
  restoreDomains: number[];
  after: OwnedMaskBits;
}

const releaseCases: ReleaseCase[] = [
  {
    why: 'the last reservation on an adapter goes: its bit goes back to what it was',
    owned: { apmask: [bit('05', false, true)], aqmask: [] },
    node: masks([6], [4, 5]),
    stillReserved: [],
    restoreAdapters: [5],
    restoreDomains: [],
    after: { apmask: [bit('05', true, true)], aqmask: [] },
  },
  {
    why: 'a remaining reservation still needs the bit: it stays cleared',
    owned: { apmask: [bit('05', false, true)], aqmask: [] },
    node: masks([6], [4, 5]),
    stillReserved: ['05.0005'],
    restoreAdapters: [],
    restoreDomains: [],
    after: { apmask: [bit('05', false, true)], aqmask: [] },
  },
  {
    why: 'a bit that was clear before the operator is not set: the entry is just dropped',
    owned: { apmask: [bit('05', false, false), bit('06', false)], aqmask: [] },
    node: masks([], [4]),
    stillReserved: [],
    restoreAdapters: [],
    restoreDomains: [],
    after: { apmask: [], aqmask: [] },
  },
  {
    why: 'a pair freed twice (adapter and domain bit) keeps exactly one of them',
    owned: { apmask: [bit('05', false, true)], aqmask: [bit('0004', false, true)] },
    node: masks([6], [5]),
    stillReserved: ['05.0004'],
    restoreAdapters: [5],
    restoreDomains: [],
    after: { apmask: [bit('05', true, true)], aqmask: [bit('0004', false, true)] },
  },
  {
    why: 'a pair kept off the host by a bit the operator does not own frees the owned one',
    owned: { apmask: [bit('05', false, true)], aqmask: [] },
    node: masks([6], [5]), // domain 4 was cleared by someone else
    stillReserved: ['05.0004'],
    restoreAdapters: [5],
    restoreDomains: [],
    after: { apmask: [bit('05', true, true)], aqmask: [] },
  },
  {
    why: 'entries already asking for the host value are left alone',
    owned: { apmask: [bit('07', true, true)], aqmask: [bit('0004', true, false)] },
    node: masks([], []),
    stillReserved: [],
    restoreAdapters: [],
    restoreDomains: [],
    after: { apmask: [bit('07', true, true)], aqmask: [bit('0004', true, false)] },
  },
  {
    why: 'decisions go adapters ascending, then domains',
    owned: { apmask: [bit('06', false, true), bit('05', false, true)], aqmask: [bit('0004', false, true)] },
    node: masks([], []),
    stillReserved: ['05.0004', '06.0004'],
    restoreAdapters: [5, 6],
    restoreDomains: [],
    after: { apmask: [bit('05', true, true), bit('06', true, true)], aqmask: [bit('0004', false, true)] },
  },
];

for (const c of releaseCases) {
  test(`releasePlan: ${c.why}`, (t) => {
    const r = releasePlan(c.owned, c.node, c.stillReserved.map(parseApqn));
    t.deepEqual(r.restoreAdapters, c.restoreAdapters);
    t.deepEqual(r.restoreDomains, c.restoreDomains);
    t.deepEqual(r.owned, c.after);
    // every pair still reserved stays off the host
    const after = effectiveMasks(r.owned, c.node);
    for (const q of c.stillReserved.map(parseApqn)) t.false(after.apmask.has(q.adapter) && after.aqmask.has(q.domain), `${q.adapter}.${q.domain}`);
  });
}

test('acquireMaskBits records the value before the first change, and keeps it on later plans', (t) => {
  const node = masks([5, 6], [4]);
  const first = acquireMaskBits({ apmask: [], aqmask: [] }, { clearAdapters: [6, 5], clearDomains: [7] }, node);
  t.deepEqual(first, { apmask: [bit('05', false, true), bit('06', false, true)], aqmask: [bit('0007', false, false)] });
  // later the node shows 05 cleared (applied); a new plan clears 05 again: original stays true
  const second = acquireMaskBits(first, { clearAdapters: [5], clearDomains: [] }, masks([], [4]));
  t.deepEqual(second.apmask[0], bit('05', false, true));
  // a restored entry that is cleared again keeps its original
  const third = acquireMaskBits({ apmask: [bit('05', true, true)], aqmask: [] }, { clearAdapters: [5], clearDomains: [] }, masks([5], []));
  t.deepEqual(third.apmask, [bit('05', false, true)]);
});

test('forgetSettledBits drops restored bits once the node shows them under a spec that restores them, keeps the rest (cleared ones are releasePlan\'s)', (t) => {
  const owned = { apmask: [bit('05', true, true), bit('06', true, true), bit('07', false, true)], aqmask: [bit('0004', false, false)] };
  const node = masks([5], []); // 05 restored on the node, 06 not yet
  t.deepEqual(forgetSettledBits(owned, node, owned), { apmask: [bit('06', true, true), bit('07', false, true)], aqmask: [bit('0004', false, false)] });
  // The status is about a spec that still cleared 05: the node showing 05 set says nothing
  // about the restore (the agent may not have cleared it yet), so the entry stays.
  const older = { apmask: [bit('05', false, true)], aqmask: [] };
  t.deepEqual(forgetSettledBits(owned, node, older).apmask.map((b) => b.id), ['05', '06', '07']);
  t.deepEqual(forgetSettledBits(owned, node, NONE_APPLIED).apmask.map((b) => b.id), ['05', '06', '07']);
});

test('effectiveMasks applies owned bits over the node masks', (t) => {
  const eff = effectiveMasks({ apmask: [bit('05', false, true), bit('09', true, false)], aqmask: [bit('0004', false)] }, masks([5, 6], [4, 5]));
  t.deepEqual([...eff.apmask].sort(), [6, 9]);
  t.deepEqual([...eff.aqmask], [5]);
});
