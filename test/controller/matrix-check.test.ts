import test from 'ava';
import { checkMatrix } from '../../src/controller/matrix-check.js';

interface Case {
  why: string;
  apqns: string[];
  ok?: { adapters: number[]; domains: number[] };
  reason?: 'NotAMatrix' | 'InvalidAPQN';
  missing?: string[];
  removeToFit?: string[];
  message?: string | RegExp;
}

const cases: Case[] = [
  { why: 'one queue is a 1x1 matrix', apqns: ['05.0004'], ok: { adapters: [5], domains: [4] } },
  { why: 'a full 2x2 product in any order', apqns: ['06.0005', '05.0004', '06.0004', '05.0005'], ok: { adapters: [5, 6], domains: [4, 5] } },
  { why: 'other spellings of the same numbers are normalised', apqns: ['5.4', '0x06.0x0004'], ok: { adapters: [5, 6], domains: [4] } },
  { why: 'repeats of one pair do not break a product', apqns: ['05.0004', '5.4'], ok: { adapters: [5], domains: [4] } },
  {
    why: 'the example from the design: add the missing corner, or remove the odd one',
    apqns: ['05.0004', '06.0004', '05.0005'],
    reason: 'NotAMatrix',
    missing: ['06.0005'],
    removeToFit: ['05.0005'],
    message: '05.0004, 06.0004 and 05.0005 do not form a full matrix: add 06.0005, or remove 05.0005',
  },
  {
    why: 'a diagonal: both corners are missing, either pair alone is a matrix',
    apqns: ['05.0004', '06.0005'],
    reason: 'NotAMatrix',
    missing: ['05.0005', '06.0004'],
    removeToFit: ['06.0005'],
    message: '05.0004 and 06.0005 do not form a full matrix: add 05.0005 and 06.0004, or remove 06.0005',
  },
  {
    why: 'the largest sub-product wins: 2x2 kept, the stray pair removed',
    apqns: ['05.0004', '05.0005', '06.0004', '06.0005', '07.0006'],
    reason: 'NotAMatrix',
    missing: ['05.0006', '06.0006', '07.0004', '07.0005'],
    removeToFit: ['07.0006'],
  },
  {
    why: 'ties keep the pairs listed first',
    apqns: ['06.0004', '05.0005', '05.0004'],
    reason: 'NotAMatrix',
    missing: ['06.0005'],
    removeToFit: ['05.0005'],
  },
  {
    why: 'many APQNs are described by their adapters and domains, long lists are cut short',
    apqns: ['05.0000', '05.0001', '05.0002', '05.0003', '05.0004', '05.0005', '05.0006', '05.0007', '05.0008', '05.0009', '06.0000'],
    reason: 'NotAMatrix',
    removeToFit: ['06.0000'],
    message: /^The 11 APQNs on adapters 05-06 and domains 0000-0009 do not form a full matrix: add 06\.0001, .* and 1 more, or remove 06\.0000$/,
  },
  { why: 'an empty list is no matrix', apqns: [], reason: 'NotAMatrix', message: /at least one/ },
  { why: 'an invalid APQN is reported as such', apqns: ['05.0004', '05.0100'], reason: 'InvalidAPQN', message: /05\.0100/ },
];

for (const c of cases) {
  test(`checkMatrix: ${c.why}`, (t) => {
    const result = checkMatrix(c.apqns);
    if (c.ok) {
      t.deepEqual(result, { ok: true, ...c.ok });
      return;
    }
    if (result.ok) return t.fail(`expected ${c.reason}, got ok`);
    t.is(result.reason, c.reason!);
    if (c.missing) t.deepEqual(result.missing, c.missing);
    if (c.removeToFit) t.deepEqual(result.removeToFit, c.removeToFit);
    if (typeof c.message === 'string') t.is(result.message, c.message);
    else if (c.message) t.regex(result.message, c.message);
  });
}

test('checkMatrix: removing removeToFit leaves a full matrix, and adding missing completes one (random sets)', (t) => {
  let s = 7;
  const random = (): number => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  for (let round = 0; round < 200; round++) {
    const apqns: string[] = [];
    for (let a = 0; a < 4; a++) for (let d = 0; d < 4; d++) if (random() < 0.5) apqns.push(`0${a}.000${d}`);
    const result = checkMatrix(apqns);
    if (result.ok || apqns.length === 0) continue;
    const removed = new Set(result.removeToFit);
    t.true(checkMatrix(apqns.filter((q) => !removed.has(q))).ok, `round ${round}: remove ${[...removed]} from ${apqns}`);
    t.true(checkMatrix([...apqns, ...result.missing]).ok, `round ${round}: add ${result.missing} to ${apqns}`);
    // and it removes as few as possible: brute force over every adapters x domains choice
    const have = new Set(apqns);
    let largest = 0;
    for (let as = 1; as < 16; as++) {
      for (let ds = 1; ds < 16; ds++) {
        const pairs: string[] = [];
        for (let a = 0; a < 4; a++) for (let d = 0; d < 4; d++) if (as & (1 << a) && ds & (1 << d)) pairs.push(`0${a}.000${d}`);
        if (pairs.every((q) => have.has(q))) largest = Math.max(largest, pairs.length);
      }
    }
    t.is(apqns.length - removed.size, largest, `round ${round}: largest full sub-product of ${apqns}`);
  }
});
