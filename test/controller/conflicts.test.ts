import test from 'ava';
import { type QueueWant, resolveHolders } from '../../src/controller/conflicts.js';
import { reservation } from './fixtures.js';

const t0 = '2026-11-25T10:00:00Z';
const t1 = '2026-11-25T10:01:00Z';
const t2 = '2026-11-25T10:02:00Z';

const want = (
  ns: string,
  name: string,
  node: string,
  apqns: string[],
  meta: { created?: string; deleted?: string } = {},
  holding?: boolean,
): QueueWant => ({ reservation: reservation(ns, name, { apqns }, meta), node, apqns, ...(holding !== undefined ? { holding } : {}) });

interface Case {
  why: string;
  wants: QueueWant[];
  holds: string[]; // reservations that hold their queues
  conflicts?: Record<string, { holders: string[]; contested: string[]; message?: string | RegExp }>;
  holders?: Record<string, Record<string, string>>;
}

const cases: Case[] = [
  {
    why: 'no overlap: everyone holds',
    wants: [want('a', 'x', 'z1', ['05.0004']), want('a', 'y', 'z1', ['05.0005']), want('a', 'z', 'z2', ['05.0004'])],
    holds: ['a/x', 'a/y', 'a/z'],
    holders: { z1: { '05.0004': 'a/x', '05.0005': 'a/y' }, z2: { '05.0004': 'a/z' } },
  },
  {
    why: 'the older reservation wins, the newer names it',
    wants: [want('b', 'new', 'z1', ['05.0004', '06.0004'], { created: t1 }), want('a', 'old', 'z1', ['05.0004'], { created: t0 })],
    holds: ['a/old'],
    conflicts: {
      'b/new': {
        holders: ['a/old'],
        contested: ['05.0004'],
        message: '05.0004 on node z1 is held by a/old (created earlier); this reservation waits and proceeds by itself once a/old releases them',
      },
    },
  },
  {
    why: 'same creation time: namespace/name decides',
    wants: [want('b', 'x', 'z1', ['05.0004'], { created: t0 }), want('a', 'x', 'z1', ['05.0004'], { created: t0 })],
    holds: ['a/x'],
    conflicts: { 'b/x': { holders: ['a/x'], contested: ['05.0004'], message: /same creation time, earlier by name/ } },
  },
  {
    why: 'spellings do not hide a conflict',
    wants: [want('a', 'old', 'z1', ['5.4'], { created: t0 }), want('a', 'new', 'z1', ['0x05.0x0004'], { created: t1 })],
    holds: ['a/old'],
    conflicts: { 'a/new': { holders: ['a/old'], contested: ['05.0004'] } },
  },
  {
    why: 'all or nothing: a loser blocks nobody with its other queues',
    wants: [
      want('a', 'first', 'z1', ['05.0004'], { created: t0 }),
      want('a', 'second', 'z1', ['05.0004', '05.0005'], { created: t1 }),
      want('a', 'third', 'z1', ['05.0005'], { created: t2 }),
    ],
    holds: ['a/first', 'a/third'],
    conflicts: { 'a/second': { holders: ['a/first'], contested: ['05.0004'] } },
    holders: { z1: { '05.0004': 'a/first', '05.0005': 'a/third' } },
  },
  {
    why: 'the same queue on two nodes is two queues',
    wants: [want('a', 'x', 'z1', ['05.0004'], { created: t0 }), want('a', 'y', 'z2', ['05.0004'], { created: t1 })],
    holds: ['a/x', 'a/y'],
  },
  {
    why: 'a deleted reservation still holds its queues against an older-looking newcomer',
    wants: [want('a', 'leaving', 'z1', ['05.0004'], { created: t1, deleted: t2 }), want('a', 'older', 'z1', ['05.0004'], { created: t0 })],
    holds: ['a/leaving'],
    conflicts: { 'a/older': { holders: ['a/leaving'], contested: ['05.0004'], message: /being deleted, holds them until they are released/ } },
  },
  {
    why: 'a deleted reservation known to hold nothing gets nothing',
    wants: [want('a', 'leaving', 'z1', ['05.0004'], { created: t0, deleted: t2 }, false), want('a', 'newer', 'z1', ['05.0004'], { created: t1 })],
    holds: ['a/newer'],
  },
  {
    why: 'a holder keeps its queues against an older reservation edited to want them (no silent steal)',
    wants: [want('a', 'edited', 'z1', ['05.0004'], { created: t0 }, false), want('a', 'bound', 'z1', ['05.0004'], { created: t1 }, true)],
    holds: ['a/bound'],
    conflicts: { 'a/edited': { holders: ['a/bound'], contested: ['05.0004'], message: /already holds them/ } },
  },
  {
    why: 'several holders are all named',
    wants: [
      want('a', 'p', 'z1', ['05.0004'], { created: t0 }),
      want('a', 'q', 'z1', ['06.0004'], { created: t0 }),
      want('a', 'r', 'z1', ['05.0004', '06.0004'], { created: t1 }),
    ],
    holds: ['a/p', 'a/q'],
    conflicts: {
      'a/r': { holders: ['a/p', 'a/q'], contested: ['05.0004', '06.0004'], message: /05\.0004 and 06\.0004 on node z1 are held by a\/p \(created earlier\) and a\/q \(created earlier\)/ },
    },
  },
  {
    why: 'a missing creation time counts as newest',
    wants: [want('a', 'unknown', 'z1', ['05.0004']), want('b', 'dated', 'z1', ['05.0004'], { created: t2 })],
    holds: ['b/dated'],
  },
];

for (const c of cases) {
  test(`resolveHolders: ${c.why}`, (t) => {
    const { holders, verdicts } = resolveHolders(c.wants);
    const holding = [...verdicts.values()].filter((v) => v.holds).map((v) => v.key).sort();
    t.deepEqual(holding, [...c.holds].sort());
    for (const [key, expected] of Object.entries(c.conflicts ?? {})) {
      const v = verdicts.get(key);
      if (!v || v.holds) return t.fail(`${key} should be in conflict`);
      t.is(v.reason, 'Conflict');
      t.deepEqual(v.holders, expected.holders);
      t.deepEqual(v.contested, expected.contested);
      if (typeof expected.message === 'string') t.is(v.message, expected.message);
      else if (expected.message) t.regex(v.message, expected.message);
    }
    if (c.holders) {
      const got = Object.fromEntries([...holders].map(([node, m]) => [node, Object.fromEntries(m)]));
      t.deepEqual(got, c.holders);
    }
  });
}

test('resolveHolders: the outcome does not depend on input order', (t) => {
  const wants = cases.find((c) => c.why.startsWith('all or nothing'))!.wants;
  const key = (w: QueueWant[]): string => JSON.stringify([...resolveHolders(w).verdicts.entries()].sort());
  t.is(key([...wants].reverse()), key(wants));
  t.is(key([wants[1]!, wants[2]!, wants[0]!]), key(wants));
});

test('resolveHolders: one reservation listed twice is a caller bug', (t) => {
  t.throws(() => resolveHolders([want('a', 'x', 'z1', ['05.0004']), want('a', 'x', 'z2', ['05.0004'])]));
});
