import test from 'ava';
import type { ReservationSpec } from '../../src/api/types.js';
import { nodeInventory } from '../../src/controller/node-inventory.js';
import { type RejectReason, type ValidSpec, checkOnNode, summarize, validateSpec } from '../../src/controller/validate.js';
import { parseApqn } from '../../src/apbus/ids.js';
import { nodeStatus, range } from './fixtures.js';

interface SpecCase {
  why: string;
  spec: ReservationSpec;
  reason?: RejectReason;
  message?: string | RegExp;
  check?: (spec: ValidSpec) => unknown;
}

const specCases: SpecCase[] = [
  {
    why: 'explicit APQNs in any spelling come out canonical and sorted, defaults applied',
    spec: { apqns: ['0x06.0x0004', '5.4'] },
    check: (s) => ({ driver: s.driver, apqns: s.apqns, inUsePolicy: s.inUsePolicy, drain: s.drainTimeoutSeconds }),
  },
  { why: 'apqns and request exclude each other', spec: { apqns: ['05.0004'], request: { adapters: 1, domains: 1 } }, reason: 'InvalidSpec', message: /exclude each other/ },
  { why: 'one of apqns or request is needed', spec: {}, reason: 'InvalidSpec', message: /spec\.apqns .* or spec\.request/ },
  { why: 'an empty apqns list counts as missing', spec: { apqns: [] }, reason: 'InvalidSpec' },
  { why: 'a malformed APQN', spec: { apqns: ['05.0004', '05-0005'] }, reason: 'InvalidAPQN', message: /"05-0005"/ },
  { why: 'a domain above 255', spec: { apqns: ['05.0100'] }, reason: 'InvalidAPQN', message: /0\.\.255/ },
  {
    why: 'two spellings of one queue',
    spec: { apqns: ['5.4', '05.0004'] },
    reason: 'DuplicateAPQN',
    message: '"5.4" and "05.0004" both name 05.0004: list each queue once',
  },
  { why: 'the same spelling twice', spec: { apqns: ['05.0004', '05.0004'] }, reason: 'DuplicateAPQN', message: '"05.0004" is listed 2 times: list each queue once' },
  {
    why: 'vfio_ap needs a full matrix',
    spec: { apqns: ['05.0004', '06.0004', '05.0005'] },
    reason: 'NotAMatrix',
    message: '05.0004, 06.0004 and 05.0005 do not form a full matrix: add 06.0005, or remove 05.0005',
  },
  { why: 'driver: host does not need a matrix', spec: { apqns: ['05.0004', '06.0005'], driver: 'host' }, check: (s) => s.apqns },
  { why: 'control domains are parsed and de-duplicated', spec: { apqns: ['05.0004'], controlDomains: ['0x4', '0004', '0006'] }, check: (s) => s.controlDomains },
  { why: 'a bad control domain', spec: { apqns: ['05.0004'], controlDomains: ['zz'] }, reason: 'InvalidControlDomain' },
  { why: 'control domains are for vfio_ap only', spec: { apqns: ['05.0004'], driver: 'host', controlDomains: ['0004'] }, reason: 'InvalidSpec', message: /vfio_ap/ },
  { why: 'a request with zero adapters', spec: { request: { adapters: 0, domains: 1 } }, reason: 'InvalidSpec', message: /request\.adapters/ },
  { why: 'an unknown card generation', spec: { request: { adapters: 1, domains: 1, minCardType: 'CEX3' as never } }, reason: 'InvalidSpec', message: /minCardType/ },
  { why: 'an unknown mode', spec: { request: { adapters: 1, domains: 1, mode: 'XCP' as never } }, reason: 'InvalidSpec', message: /request\.mode/ },
  { why: 'an unknown in-use policy', spec: { apqns: ['05.0004'], inUsePolicy: 'Sometimes' as never }, reason: 'InvalidSpec', message: /inUsePolicy/ },
  { why: 'a negative drain timeout', spec: { apqns: ['05.0004'], drainTimeoutSeconds: -1 }, reason: 'InvalidSpec', message: /drainTimeoutSeconds/ },
  { why: 'a valid request is kept', spec: { request: { adapters: 2, domains: 1, minCardType: 'CEX7', mode: 'EP11' } }, check: (s) => s.request },
];

const expectedChecks: Record<string, unknown> = {
  'explicit APQNs in any spelling come out canonical and sorted, defaults applied': {
    driver: 'vfio_ap',
    apqns: [parseApqn('05.0004'), parseApqn('06.0004')],
    inUsePolicy: 'Wait',
    drain: 300,
  },
  'driver: host does not need a matrix': [parseApqn('05.0004'), parseApqn('06.0005')],
  'control domains are parsed and de-duplicated': [4, 6],
  'a valid request is kept': { adapters: 2, domains: 1, minCardType: 'CEX7', mode: 'EP11' },
};

for (const c of specCases) {
  test(`validateSpec: ${c.why}`, (t) => {
    const verdict = validateSpec(c.spec);
    if (!c.reason) {
      if (!verdict.ok) return t.fail(`${verdict.problem.reason}: ${verdict.problem.message}`);
      t.deepEqual(c.check!(verdict.spec), expectedChecks[c.why]);
      return;
    }
    if (verdict.ok) return t.fail('expected a problem');
    t.is(verdict.problem.reason, c.reason);
    t.false(verdict.problem.temporary);
    if (typeof c.message === 'string') t.is(verdict.problem.message, c.message);
    else if (c.message) t.regex(verdict.problem.message, c.message);
  });
}

// ---------------------------------------------------------------------------------------------

const node = nodeInventory(
  'z1',
  nodeStatus({
    maxDomainId: 0x54,
    cards: [
      { id: '05', type: 'CEX8P', domains: range(0, 15) },
      { id: '06', type: 'CEX7C', domains: [4, 5] },
      { id: '03', type: 'CEX3A', domains: [4] },
      { id: '07', type: 'CEX8P', domains: [4], online: false },
      { id: '08', type: 'CEX8P', domains: [4], chkstop: true },
      { id: '09', type: 'CEX8P', domains: [4], config: false, online: false },
      { id: '0a', type: 'CEX8P', domains: [4, 5] },
    ],
    mdevs: [{ uuid: '11111111-2222-3333-4444-555555555555', matrix: ['0a.0005'], guestMatrix: [], controlDomains: [], owned: false }],
  }),
);

function valid(spec: ReservationSpec): ValidSpec {
  const v = validateSpec(spec);
  if (!v.ok) throw new Error(v.problem.message);
  return v.spec;
}

interface NodeCase {
  why: string;
  spec: ReservationSpec;
  apqns: string[];
  reasons: RejectReason[];
  message?: string | RegExp;
}

const nodeCases: NodeCase[] = [
  { why: 'existing queues on a CEX8 card fit', spec: { apqns: ['05.0004'] }, apqns: ['05.0004'], reasons: [] },
  {
    why: 'a queue the node does not have, with what the card does have',
    spec: { apqns: ['05.0004', '05.0010'] },
    apqns: ['05.0004', '05.0010'],
    reasons: ['QueueNotFound'],
    message: '05.0010 does not exist on node z1 (card 05 has domains 0000-000f)',
  },
  {
    why: 'a card the node does not have',
    spec: { apqns: ['0b.0004'] },
    apqns: ['0b.0004'],
    reasons: ['QueueNotFound'],
    message: '0b.0004 does not exist on node z1 (no card 0b)',
  },
  {
    why: 'vfio_ap cannot take a CEX3',
    spec: { apqns: ['03.0004'] },
    apqns: ['03.0004'],
    reasons: ['CardTypeUnsupported'],
    message: 'card 03 is a CEX3A (hwtype 9); vfio_ap takes CEX4 to CEX8',
  },
  { why: 'driver: host may keep a CEX3', spec: { apqns: ['03.0004'], driver: 'host' }, apqns: ['03.0004'], reasons: [] },
  {
    why: 'a request for CEX8 against a CEX7',
    spec: { request: { adapters: 1, domains: 1, minCardType: 'CEX8' } },
    apqns: ['06.0004'],
    reasons: ['CardTypeUnsupported'],
    message: 'card 06 is a CEX7C (CEX7); the request asks for CEX8 or newer',
  },
  {
    why: 'a request for EP11 against a CCA card',
    spec: { request: { adapters: 2, domains: 1, mode: 'EP11' } },
    apqns: ['05.0004', '06.0004'],
    reasons: ['ModeMismatch'],
    message: 'card 06 is in CCA mode; the request asks for EP11',
  },
  {
    why: 'a control domain above the node maximum',
    spec: { apqns: ['05.0004'], controlDomains: ['0060'] },
    apqns: ['05.0004'],
    reasons: ['ControlDomainOutOfRange'],
    message: "control domain 0060 is above node z1's highest domain 0054",
  },
  { why: 'an offline card', spec: { apqns: ['07.0004'] }, apqns: ['07.0004'], reasons: ['CardOffline'], message: 'card 07 is offline on node z1' },
  { why: 'a deconfigured card', spec: { apqns: ['09.0004'] }, apqns: ['09.0004'], reasons: ['CardOffline'], message: 'card 09 is deconfigured on node z1' },
  { why: 'a checkstopped card', spec: { apqns: ['08.0004'] }, apqns: ['08.0004'], reasons: ['CardCheckstopped'], message: 'card 08 on node z1 is checkstopped' },
  {
    why: 'a queue in an mdev this operator does not manage',
    spec: { apqns: ['0a.0005'] },
    apqns: ['0a.0005'],
    reasons: ['ForeignMdev'],
    message: /0a\.0005 on node z1 is assigned to mdev 11111111-2222-3333-4444-555555555555/,
  },
  {
    why: 'several problems at once: permanent ones first',
    spec: { request: { adapters: 3, domains: 1, mode: 'EP11' } },
    apqns: ['08.0004', '06.0004', '0b.0004'],
    reasons: ['QueueNotFound', 'ModeMismatch', 'CardCheckstopped'],
  },
];

for (const c of nodeCases) {
  test(`checkOnNode: ${c.why}`, (t) => {
    const problems = checkOnNode(valid(c.spec), c.apqns.map(parseApqn), node);
    t.deepEqual(
      problems.map((p) => p.reason),
      c.reasons,
    );
    if (typeof c.message === 'string') t.is(problems[0]!.message, c.message);
    else if (c.message) t.regex(problems[0]!.message, c.message);
  });
}

test('summarize: the first reason, every message; temporary only if all are', (t) => {
  const s = summarize([
    { reason: 'CardOffline', message: 'a', temporary: true },
    { reason: 'QueueNotFound', message: 'b', temporary: false },
  ]);
  t.deepEqual(s, { reason: 'CardOffline', message: 'a; b', temporary: false });
  t.throws(() => summarize([]));
});
