import test from 'ava';
import { ApbusInputError } from '../../src/apbus/ids.js';
import { ApBusModel } from '../../src/apbus/model/index.js';
import { parseTopology, topologyFromObject } from '../../src/apbus/topology.js';

const one = (yamlText: string) => parseTopology(yamlText, 'topo.yaml').nodes[0]!;

test('defaults: kernel 6.10, ids up to 255, control domains = usage domains, masks all, no load', (t) => {
  const n = one(`
nodes:
  - name: node-a
    cards:
      - { id: "05", type: CEX8P, domains: "0000-000f" }
      - { id: "06", type: CEX7C, domains: ["0004", "0010"] }
`);
  t.is(n.kernel, '6.10');
  t.is(n.maxAdapterId, 255);
  t.is(n.maxDomainId, 255);
  t.deepEqual(n.controlDomains, [...Array.from({ length: 16 }, (_, i) => i), 16]);
  t.true(n.apmask.isAll());
  t.true(n.aqmask.isAll());
  t.deepEqual(n.hostLoad, []);
  t.deepEqual(
    n.cards.map((c) => [c.id, c.hwtype, c.mode, c.domains.length]),
    [
      [5, 14, 'P', 16],
      [6, 13, 'C', 2],
    ],
  );
});

test('the example of api.md parses as written', (t) => {
  const n = one(`
nodes:
  - name: node-a
    kernel: "6.10"
    maxAdapterId: 255
    maxDomainId: 84
    controlDomains: ["0004", "0006"]
    cards:
      - { id: "05", type: CEX8P, domains: "0000-000f" }
      - { id: "06", type: CEX7C, domains: ["0004", "0005"] }
    apmask: all
    aqmask: all
    hostLoad:
      - { apqn: "05.0004", pendingRequests: 3, drainsAfterSeconds: 5 }
`);
  t.is(n.maxDomainId, 84);
  t.deepEqual(n.controlDomains, [4, 6]);
  t.deepEqual(n.hostLoad, [{ apqn: { adapter: 5, domain: 4 }, pendingRequests: 3, drainsAfterSeconds: 5 }]);
});

const maskCases: Array<{ why: string; value: unknown; bits: number[] | 'all' }> = [
  { why: 'all', value: 'all', bits: 'all' },
  { why: 'none', value: 'none', bits: [] },
  { why: 'a list of adapters sets those bits', value: ['05', '0x06', 'a'], bits: [5, 6, 10] },
  { why: 'a hex mask fills from bit 0 (leftmost)', value: '0x06', bits: [5, 6] },
  { why: 'an empty list is none', value: [], bits: [] },
];
for (const c of maskCases) {
  test(`initial apmask: ${c.why}`, (t) => {
    const n = topologyFromObject({ nodes: [{ name: 'n', cards: [], apmask: c.value }] }).nodes[0]!;
    if (c.bits === 'all') t.true(n.apmask.isAll());
    else t.deepEqual(n.apmask.bits(), c.bits);
  });
}

const typeCases: Array<[string, number, string]> = [
  ['CEX4A', 10, 'A'],
  ['CEX5C', 11, 'C'],
  ['CEX6P', 12, 'P'],
  ['CEX7C', 13, 'C'],
  ['CEX8P', 14, 'P'],
  ['CEX2A', 6, 'A'],
  ['CEX2C', 7, 'C'],
  ['CEX3A', 8, 'A'],
  ['CEX3C', 9, 'C'],
];
for (const [type, hwtype, mode] of typeCases) {
  test(`card type ${type} is hwtype ${hwtype}, mode ${mode}`, (t) => {
    const n = topologyFromObject({ nodes: [{ name: 'n', cards: [{ id: '01', type, domains: '0001' }] }] }).nodes[0]!;
    t.is(n.cards[0]!.hwtype, hwtype);
    t.is(n.cards[0]!.mode as string, mode);
  });
}

test('kernel written as a bare YAML number still means that profile', (t) => {
  t.is(one('nodes: [{ name: n, kernel: 6.19, cards: [] }]').kernel, '6.19');
  t.is(one('nodes: [{ name: n, kernel: 5.15, cards: [] }]').kernel, '5.15');
  t.is(one('nodes: [{ name: n, kernel: 6.10, cards: [] }]').kernel, '6.10');
});

const badCases: Array<{ why: string; yaml: string; message: RegExp }> = [
  { why: 'not YAML', yaml: 'nodes: [', message: /topo\.yaml: not valid YAML/ },
  { why: 'no nodes', yaml: 'nodes: []', message: /nodes: must be a non-empty list/ },
  { why: 'unknown top-level field', yaml: 'nodes: [{name: n}]\nextra: 1', message: /unknown field "extra"/ },
  { why: 'node without a name', yaml: 'nodes: [{ cards: [] }]', message: /nodes\[0\]: name: must be a Kubernetes node name/ },
  { why: 'node name with capitals', yaml: 'nodes: [{ name: NodeA }]', message: /name: must be a Kubernetes node name/ },
  { why: 'duplicate node names', yaml: 'nodes: [{ name: a }, { name: a }]', message: /node a: the name is used twice/ },
  { why: 'unknown node field', yaml: 'nodes: [{ name: a, kernal: "6.10" }]', message: /node a: unknown field "kernal"/ },
  { why: 'unknown kernel profile', yaml: 'nodes: [{ name: a, kernel: "7.0" }]', message: /node a: kernel: must be one of 5\.15, 6\.10, 6\.19/ },
  { why: 'maxDomainId above 255', yaml: 'nodes: [{ name: a, maxDomainId: 300 }]', message: /node a: maxDomainId: must be an integer 0\.\.255/ },
  { why: 'maxAdapterId as a string', yaml: 'nodes: [{ name: a, maxAdapterId: "63" }]', message: /node a: maxAdapterId: must be an integer/ },
  { why: 'card id as a bare YAML number', yaml: 'nodes: [{ name: a, cards: [{ id: 10, type: CEX8P, domains: "0001" }] }]', message: /node a: cards\[0\]\.id: adapter 10 must be a quoted hex string/ },
  { why: 'card id above 255', yaml: 'nodes: [{ name: a, cards: [{ id: "100", type: CEX8P, domains: "0001" }] }]', message: /cards\[0\]\.id: .*out of range/ },
  { why: 'card id above maxAdapterId', yaml: 'nodes: [{ name: a, maxAdapterId: 63, cards: [{ id: "40", type: CEX8P, domains: "0001" }] }]', message: /node a: card 40: id: adapter 40 is above maxAdapterId 63/ },
  { why: 'duplicate card id', yaml: 'nodes: [{ name: a, cards: [{ id: "05", type: CEX8P, domains: "0001" }, { id: "5", type: CEX8C, domains: "0001" }] }]', message: /node a: card 05: the id is used twice/ },
  { why: 'unknown card type', yaml: 'nodes: [{ name: a, cards: [{ id: "05", type: CEX9P, domains: "0001" }] }]', message: /node a: card 05: type: must be CEX4\.\.CEX8/ },
  { why: 'EP11 on a CEX3', yaml: 'nodes: [{ name: a, cards: [{ id: "05", type: CEX3P, domains: "0001" }] }]', message: /card 05: type:/ },
  { why: 'card without domains', yaml: 'nodes: [{ name: a, cards: [{ id: "05", type: CEX8P }] }]', message: /node a: card 05: domains: missing/ },
  { why: 'reversed domain range', yaml: 'nodes: [{ name: a, cards: [{ id: "05", type: CEX8P, domains: "000f-0000" }] }]', message: /card 05: domains: range "000f-0000" is reversed/ },
  { why: 'domain above maxDomainId', yaml: 'nodes: [{ name: a, maxDomainId: 15, cards: [{ id: "05", type: CEX8P, domains: "0000-0010" }] }]', message: /card 05: domains: domain 0010 is above maxDomainId 15/ },
  { why: 'domain that is not hex', yaml: 'nodes: [{ name: a, cards: [{ id: "05", type: CEX8P, domains: ["00zz"] }] }]', message: /card 05: domains\[0\]: invalid domain id/ },
  { why: 'unknown card field', yaml: 'nodes: [{ name: a, cards: [{ id: "05", type: CEX8P, domains: "0001", mode: EP11 }] }]', message: /node a: card 05: unknown field "mode"/ },
  { why: 'apmask word that is not all/none', yaml: 'nodes: [{ name: a, apmask: some }]', message: /node a: apmask: must be all, none, a hex mask/ },
  { why: 'aqmask list with a bad domain', yaml: 'nodes: [{ name: a, aqmask: ["0004", "zz"] }]', message: /node a: aqmask\[1\]: invalid domain id/ },
  { why: 'control domain above maxDomainId', yaml: 'nodes: [{ name: a, maxDomainId: 15, controlDomains: ["0020"] }]', message: /node a: controlDomains: domain 0020 is above maxDomainId 15/ },
  { why: 'host load on a queue no card has', yaml: 'nodes: [{ name: a, cards: [{ id: "05", type: CEX8P, domains: "0001" }], hostLoad: [{ apqn: "05.0002", pendingRequests: 1 }] }]', message: /node a: hostLoad\[0\]: apqn: 05\.0002 is not a queue of any card/ },
  { why: 'host load with zero requests', yaml: 'nodes: [{ name: a, cards: [{ id: "05", type: CEX8P, domains: "0001" }], hostLoad: [{ apqn: "05.0001", pendingRequests: 0 }] }]', message: /hostLoad\[0\]: pendingRequests: must be an integer 1\.\./ },
  { why: 'host load draining in negative time', yaml: 'nodes: [{ name: a, cards: [{ id: "05", type: CEX8P, domains: "0001" }], hostLoad: [{ apqn: "05.0001", pendingRequests: 1, drainsAfterSeconds: -1 }] }]', message: /hostLoad\[0\]: drainsAfterSeconds: must be a number of seconds >= 0/ },
  { why: 'host load APQN in a wrong spelling', yaml: 'nodes: [{ name: a, hostLoad: [{ apqn: "05", pendingRequests: 1 }] }]', message: /hostLoad\[0\]: apqn: invalid APQN/ },
];
for (const c of badCases) {
  test(`topology error: ${c.why}`, (t) => {
    const err = t.throws(() => parseTopology(c.yaml, 'topo.yaml'), { instanceOf: ApbusInputError });
    t.regex(err!.message, c.message);
  });
}

test('host load on a queue the host does not own at boot is refused by the model, naming node and queue', (t) => {
  const n = one(`
nodes:
  - name: node-a
    apmask: none
    cards: [{ id: "05", type: CEX8P, domains: "0004" }]
    hostLoad: [{ apqn: "05.0004", pendingRequests: 1 }]
`);
  const err = t.throws(() => ApBusModel.fromTopology(n), { instanceOf: ApbusInputError });
  t.regex(err!.message, /node node-a: hostLoad 05\.0004: the queue is not bound to the host driver at boot/);
});
