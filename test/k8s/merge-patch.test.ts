import test from 'ava';
import { deepEqual, mergePatch } from '../../src/k8s/merge-patch.js';

const equalCases: Array<{ a: unknown; b: unknown; expected: boolean; why: string }> = [
  { a: { x: 1, y: [1, 2] }, b: { y: [1, 2], x: 1 }, expected: true, why: 'key order does not matter' },
  { a: [1, 2], b: [2, 1], expected: false, why: 'array order matters' },
  { a: { x: 1, y: undefined }, b: { x: 1 }, expected: true, why: 'an undefined property is absent' },
  { a: { x: 1, y: null }, b: { x: 1 }, expected: true, why: 'a null property is absent (the server drops it)' },
  { a: [null], b: [undefined], expected: false, why: 'array items are compared as they are' },
  { a: { c: [{ t: 'Ready' }] }, b: { c: [{ t: 'Ready', m: 'x' }] }, expected: false, why: 'nested differences count' },
  { a: '1', b: 1, expected: false, why: 'types must match' },
  { a: undefined, b: {}, expected: false, why: 'no status is not an empty status' },
];
for (const c of equalCases) {
  test(`deepEqual: ${c.why}`, (t) => {
    t.is(deepEqual(c.a, c.b), c.expected);
    t.is(deepEqual(c.b, c.a), c.expected, 'symmetric');
  });
}

const patchCases: Array<{ current: unknown; desired: unknown; expected: unknown; why: string }> = [
  { current: { a: 1 }, desired: { a: 1 }, expected: undefined, why: 'equal values need no patch' },
  { current: { a: 1, b: 2 }, desired: { a: 1 }, expected: { b: null }, why: 'a dropped field is deleted with null' },
  { current: { a: 1 }, desired: { a: 2, c: 'x' }, expected: { a: 2, c: 'x' }, why: 'changed and new fields are sent' },
  {
    current: { m: { keep: 1, drop: 2 } },
    desired: { m: { keep: 1, add: 3 } },
    expected: { m: { drop: null, add: 3 } },
    why: 'nested objects are patched key by key',
  },
  {
    current: { list: [1, 2, 3] },
    desired: { list: [1, 2] },
    expected: { list: [1, 2] },
    why: 'arrays are replaced whole',
  },
  { current: undefined, desired: { a: 1 }, expected: { a: 1 }, why: 'no current value: the whole desired value' },
  { current: { a: { b: 1 } }, desired: { a: 'flat' }, expected: { a: 'flat' }, why: 'a type change replaces' },
  { current: { a: 1 }, desired: { a: 1, b: undefined }, expected: undefined, why: 'undefined fields are ignored' },
];
for (const c of patchCases) {
  test(`mergePatch: ${c.why}`, (t) => {
    t.deepEqual(mergePatch(c.current, c.desired), c.expected);
  });
}

/** Applies an RFC 7386 merge patch (reference semantics, for checking round trips). */
function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === 'object' && target !== null && !Array.isArray(target) ? { ...(target as object) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

test('mergePatch round trip: applying the patch to current yields desired', (t) => {
  const current = {
    phase: 'Pending',
    conditions: [{ type: 'Ready', status: 'False' }],
    nodeName: 'z1',
    matrix: { adapters: ['05'], domains: ['0004'], controlDomains: ['0004'] },
  };
  const desired = {
    phase: 'Bound',
    conditions: [{ type: 'Ready', status: 'True' }],
    matrix: { adapters: ['05', '06'], domains: ['0004'] },
  };
  t.deepEqual(applyMergePatch(current, mergePatch(current, desired)), desired);
});
