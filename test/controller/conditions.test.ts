import test from 'ava';
import type { Condition } from '../../src/api/types.js';
import {
  conditionsEqual,
  getCondition,
  isFalse,
  isTrue,
  removeCondition,
  rfc3339,
  setCondition,
  statusChanged,
} from '../../src/controller/conditions.js';

const T0 = Date.parse('2026-11-25T10:00:00.123Z');
const T1 = Date.parse('2026-11-25T10:05:00.999Z');

const ready = (status: Condition['status'], reason: string, lastTransitionTime = '2026-11-25T10:00:00Z'): Condition => ({
  type: 'Ready',
  status,
  reason,
  message: reason,
  observedGeneration: 1,
  lastTransitionTime,
});

interface SetCase {
  why: string;
  before: Condition[] | undefined;
  set: Omit<Condition, 'lastTransitionTime'>;
  after: Condition[];
}

const setCases: SetCase[] = [
  {
    why: 'a new condition is appended with the time now (whole seconds)',
    before: undefined,
    set: { type: 'Ready', status: 'False', reason: 'Pending', message: 'Pending', observedGeneration: 1 },
    after: [ready('False', 'Pending')],
  },
  {
    why: 'same status, new reason and message: the transition time stays',
    before: [ready('False', 'Pending')],
    set: { type: 'Ready', status: 'False', reason: 'Draining', message: 'Draining', observedGeneration: 2 },
    after: [{ ...ready('False', 'Draining'), observedGeneration: 2 }],
  },
  {
    why: 'a status change moves the transition time',
    before: [ready('False', 'Pending')],
    set: { type: 'Ready', status: 'True', reason: 'Ready', message: 'Ready', observedGeneration: 1 },
    after: [ready('True', 'Ready', '2026-11-25T10:05:00Z')],
  },
  {
    why: 'other conditions keep their place',
    before: [{ ...ready('True', 'Ok'), type: 'Accepted' }, ready('False', 'Pending'), { ...ready('False', 'No'), type: 'Conflict' }],
    set: { type: 'Ready', status: 'True', reason: 'Ready', message: 'Ready', observedGeneration: 1 },
    after: [{ ...ready('True', 'Ok'), type: 'Accepted' }, ready('True', 'Ready', '2026-11-25T10:05:00Z'), { ...ready('False', 'No'), type: 'Conflict' }],
  },
];

for (const c of setCases) {
  test(`setCondition: ${c.why}`, (t) => {
    const before = c.before ? structuredClone(c.before) : undefined;
    const now = c.before ? T1 : T0;
    t.deepEqual(setCondition(c.before, c.set, now), c.after);
    t.deepEqual(c.before, before, 'the input list is not mutated');
  });
}

test('rfc3339 drops the milliseconds the API server would drop', (t) => {
  t.is(rfc3339(T0), '2026-11-25T10:00:00Z');
  t.is(rfc3339(new Date(T1)), '2026-11-25T10:05:00Z');
});

test('getCondition / isTrue / isFalse / removeCondition', (t) => {
  const list = [ready('True', 'Ready'), { ...ready('False', 'No'), type: 'Conflict' }];
  t.is(getCondition(list, 'Conflict')?.reason, 'No');
  t.is(getCondition(list, 'Bound'), undefined);
  t.true(isTrue(list, 'Ready'));
  t.false(isTrue(list, 'Conflict'));
  t.true(isFalse(list, 'Conflict'));
  t.false(isFalse(list, 'Bound'));
  t.false(isTrue(undefined, 'Ready'));
  t.deepEqual(removeCondition(list, 'Ready'), [list[1]]);
});

const a = ready('True', 'Ready');
const b = { ...ready('False', 'Held'), type: 'Conflict' };

const equalCases: Array<{ why: string; x: Condition[] | undefined; y: Condition[] | undefined; equal: boolean }> = [
  { why: 'order does not matter', x: [a, b], y: [b, a], equal: true },
  { why: 'missing and empty are the same', x: undefined, y: [], equal: true },
  { why: 'a different time is a difference', x: [a], y: [{ ...a, lastTransitionTime: '2026-11-25T11:00:00Z' }], equal: false },
  { why: 'a different message is a difference', x: [a], y: [{ ...a, message: 'other' }], equal: false },
  { why: 'an extra condition is a difference', x: [a], y: [a, b], equal: false },
];

for (const c of equalCases) {
  test(`conditionsEqual: ${c.why}`, (t) => {
    t.is(conditionsEqual(c.x, c.y), c.equal);
  });
}

const status = { observedGeneration: 2, nodeName: 'z1', apqns: ['05.0004', '06.0004'], conditions: [a, b] };
const changedCases: Array<{ why: string; next: unknown; changed: boolean }> = [
  { why: 'identical', next: structuredClone(status), changed: false },
  { why: 'only lastTransitionTime churn', next: { ...status, conditions: [{ ...a, lastTransitionTime: '2030-01-01T00:00:00Z' }, b] }, changed: false },
  { why: 'conditions reordered', next: { ...status, conditions: [b, a] }, changed: false },
  { why: 'an undefined field equals a missing one', next: { ...status, mdevUUID: undefined }, changed: false },
  { why: 'a condition status flips', next: { ...status, conditions: [{ ...a, status: 'False' }, b] }, changed: true },
  { why: 'a reason changes', next: { ...status, conditions: [a, { ...b, reason: 'Other' }] }, changed: true },
  { why: 'the APQN list changes', next: { ...status, apqns: ['05.0004'] }, changed: true },
  { why: 'the APQN order changes (lists other than conditions keep their order)', next: { ...status, apqns: ['06.0004', '05.0004'] }, changed: true },
  { why: 'observedGeneration moves', next: { ...status, observedGeneration: 3 }, changed: true },
  { why: 'a new field appears', next: { ...status, mdevUUID: 'x' }, changed: true },
];

for (const c of changedCases) {
  test(`statusChanged: ${c.why}`, (t) => {
    t.is(statusChanged(status, c.next), c.changed);
  });
}
