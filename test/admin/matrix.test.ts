// kubectl apqn matrix: the grid built from an APNodeState (pure), its text (golden) and JSON.
import test from 'ava';
import { buildGrid, describeMask, gridJson, renderGrid, type CellState } from '../../src/kubectl-apqn/matrix.js';
import { ansi } from '../../src/kubectl-apqn/text.js';
import { nodeState, type NodeDesc } from './fixtures.js';
import { matchGolden } from './golden.js';

const PAYMENTS_MDEV = '6d2f0a1e-8c1b-5b7e-9a55-0c0ffee00001';
const KEYS_MDEV = '6d2f0a1e-8c1b-5b7e-9a55-0c0ffee00002';
const FOREIGN_MDEV = 'ffffffff-0000-4000-8000-000000000001';

/** Domains 0004 and 0005 cleared (a mask plan for two reservations); a guest uses 06 x 0004,0005;
 *  someone else's mdev holds 05.0004; 05.0003 unbound by hand; 05.0001 busy; card 08 deconfigured. */
export const NODE_A: NodeDesc = {
  name: 'node-a',
  kernel: '6.10',
  cards: [
    { id: '05', type: 'CEX8C', domains: '0000-0007' },
    { id: '06', type: 'CEX7C', domains: '0000-0007' },
    { id: '07', type: 'CEX8P', domains: '0004-0006' },
    { id: '08', type: 'CEX7A', domains: '0000-0003', config: false },
  ],
  clearDomains: ['0004', '0005'],
  drivers: { '05.0003': '' },
  load: { '05.0001': 3 },
  mdevs: [
    { uuid: PAYMENTS_MDEV, reservation: 'payments/payments-vm', adapters: ['06'], domains: ['0004', '0005'], controlDomains: ['0004'], inUse: true },
    { uuid: KEYS_MDEV, reservation: 'keys/ep11-vm', adapters: ['07'], domains: ['0005'] },
    { uuid: FOREIGN_MDEV, adapters: ['05'], domains: ['0004'] },
  ],
};

const grid = buildGrid(nodeState(NODE_A));
const cell = (apqn: string) => grid.rows.flatMap((r) => r.cells).find((c) => c.apqn === apqn)!;

const CELLS: Array<{ apqn: string; state: CellState; letter: string; why: string }> = [
  { apqn: '05.0000', state: 'host', letter: 'H', why: 'idle queue of the host driver' },
  { apqn: '05.0001', state: 'hostBusy', letter: '*', why: 'host requests in flight' },
  { apqn: '05.0003', state: 'unbound', letter: '?', why: 'a queue device without a driver' },
  { apqn: '05.0004', state: 'foreign', letter: 'x', why: "in an mdev the operator did not make" },
  { apqn: '05.0005', state: 'vfioFree', letter: '.', why: 'on vfio_ap (domain cleared) and in no mdev' },
  { apqn: '06.0004', state: 'guest', letter: 'B', why: "a reservation's queue a guest uses: its letter in upper case" },
  { apqn: '07.0005', state: 'reserved', letter: 'a', why: "a reservation's queue, no guest" },
  { apqn: '07.0000', state: 'absent', letter: '-', why: 'the card has no queue in that domain' },
  { apqn: '08.0002', state: 'host', letter: 'H', why: 'a deconfigured card keeps its queue devices' },
];

for (const c of CELLS) {
  test(`matrix cell ${c.apqn}: ${c.why}`, (t) => {
    t.is(cell(c.apqn).state, c.state);
    t.is(cell(c.apqn).letter, c.letter);
  });
}

test('reservations are lettered in name order and say what they hold', (t) => {
  t.deepEqual(
    grid.legend.map((e) => [e.letter, e.reservation, e.inUse, e.queues]),
    [
      ['a', 'keys/ep11-vm', false, { total: 1, onVfio: 1, onHost: 0, missing: 0 }],
      ['b', 'payments/payments-vm', true, { total: 2, onVfio: 2, onHost: 0, missing: 0 }],
    ],
  );
});

test('rows: every card in id order, with its trouble', (t) => {
  t.deepEqual(grid.rows.map((r) => [r.adapter, r.type, r.trouble]), [
    ['05', 'CEX8C', ''],
    ['06', 'CEX7C', ''],
    ['07', 'CEX8P', ''],
    ['08', 'CEX7A', 'deconfigured'],
  ]);
  t.deepEqual(grid.domains, ['0000', '0001', '0002', '0003', '0004', '0005', '0006', '0007']);
});

test('host masks are summarised over the node ids', (t) => {
  t.is(grid.apmask, 'all');
  t.is(grid.aqmask, 'all except 0004-0005');
  t.is(describeMask('0x' + '0'.repeat(64), 84, (n) => n.toString(16)), 'none');
  t.is(describeMask('0x06' + '0'.repeat(62), 255, (n) => n.toString(16).padStart(2, '0')), 'only 05-06');
  t.is(describeMask(undefined, 84, String), 'not reported');
});

test('matrix text (plain) matches its golden', (t) => {
  matchGolden(t, 'kubectl-apqn/matrix-node-a.txt', renderGrid(grid));
});

test('matrix text on a terminal is coloured, with the same letters', (t) => {
  const coloured = renderGrid(grid, ansi);
  t.true(coloured.includes('\x1b['));
  t.is(coloured.replace(/\x1b\[[0-9;]*m/g, ''), renderGrid(grid));
});

test('matrix -o json: a letter string per row and the queues with their facts', (t) => {
  const json = gridJson(grid) as {
    rows: Array<{ adapter: string; letters: string }>;
    queues: Array<{ apqn: string; state: string; requestsInFlight?: number; reservation?: string }>;
  };
  t.deepEqual(json.rows.map((r) => `${r.adapter} ${r.letters}`), ['05 H*H?x.HH', '06 HHHHBBHH', '07 ----.aH-', '08 HHHH----']);
  t.like(json.queues.find((q) => q.apqn === '05.0001'), { state: 'hostBusy', requestsInFlight: 3 });
  t.like(json.queues.find((q) => q.apqn === '06.0005'), { state: 'guest', reservation: 'payments/payments-vm' });
  t.false(json.queues.some((q) => q.apqn === '07.0000'), 'absent queues of no reservation are left out');
});

test('a reserved queue whose card is gone shows as absent, and the legend says so', (t) => {
  const g = buildGrid(
    nodeState({
      name: 'node-c',
      cards: [{ id: '05', type: 'CEX8C', domains: '0000-0001' }],
      clearAdapters: ['05'],
      mdevs: [{ uuid: PAYMENTS_MDEV, reservation: 'p/r', adapters: ['05', '09'], domains: ['0001'] }],
    }),
  );
  t.deepEqual(g.rows.map((r) => [r.adapter, r.trouble, r.cells.map((c) => c.letter).join('')]), [
    ['05', '', '.a'],
    ['09', 'removed', '--'],
  ]);
  t.like(g.legend[0]!.queues, { total: 2, onVfio: 1, missing: 1 });
  t.regex(renderGrid(g), /1 of 2 not on the node/);
});

test('a node whose agent has not reported says so', (t) => {
  const state = nodeState({ name: 'node-d', cards: [] });
  delete state.status;
  t.is(renderGrid(buildGrid(state)), 'node node-d: 0 adapters (rows) x 0 domains (columns); host masks: apmask not reported, aqmask not reported\n\nno queues reported (has the agent on this node written its status?)\n');
});

test('a node with many domains is printed in blocks of 32 columns', (t) => {
  const g = buildGrid(nodeState({ name: 'node-wide', cards: [{ id: '0a', type: 'CEX8P', domains: '0000-0054' }], clearDomains: ['0040'] }));
  const text = renderGrid(g);
  matchGolden(t, 'kubectl-apqn/matrix-node-wide.txt', text);
  t.is(text.split('\n').filter((l) => l.startsWith('ADAPTER')).length, 3);
  t.true(text.split('\n').every((l) => l.length <= 120), 'no line wider than 120 columns');
});
