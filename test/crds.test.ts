// The CRDs in crds/ against the real local API server (`npm test`): what they accept (every
// example, every accepted APQN spelling), what they reject and with which message, the defaults
// they apply, the status subresource, printer columns, names and category, and a node state as
// large as a real machine's. Objects are built with the wire types of src/api/types.ts, so a
// field the types have and the schema lacks is pruned by the server and fails a round trip.
import test, { type ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import * as yaml from 'js-yaml';
import { kubeConfig, kubectl, testNamespace } from './support/cluster.js';
import { formatAdapterId, formatApqn, parseAdapterId, parseApqn, parseDomainId } from '../src/apbus/ids.js';
import {
  API_VERSION,
  GROUP,
  PLURAL,
  VERSION,
  type APNodeState,
  type APQNClaim,
  type APQNReservation,
  type CardStatus,
  type ClaimSpec,
  type ClaimStatus,
  type Condition,
  type MdevIntent,
  type MdevStatus,
  type NodeStateSpec,
  type NodeStateStatus,
  type QueueStatus,
  type ReservationApplyStatus,
  type ReservationSpec,
  type ReservationStatus,
} from '../src/api/types.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CRD_DIR = path.join(ROOT, 'crds');
const EXAMPLES = path.join(ROOT, 'examples');

// ---------------------------------------------------------------------------------------------
// Access to the three kinds

type Target = 'reservation' | 'claim' | 'nodeState';
const KIND: Record<Target, { kind: string; plural: string; namespaced: boolean }> = {
  reservation: { kind: 'APQNReservation', plural: PLURAL.reservation, namespaced: true },
  claim: { kind: 'APQNClaim', plural: PLURAL.claim, namespaced: true },
  nodeState: { kind: 'APNodeState', plural: PLURAL.nodeState, namespaced: false },
};
const PLURAL_OF_KIND: Record<string, string> = Object.fromEntries(Object.values(KIND).map((k) => [k.kind, k.plural]));

type AnyObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; generation?: number } } & Record<string, unknown>;

function customObjects(): k8s.CustomObjectsApi {
  return kubeConfig().makeApiClient(k8s.CustomObjectsApi);
}

const mergePatch = () => k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

function object(target: Target, name: string, spec: unknown, namespace?: string): AnyObject {
  const obj: AnyObject = { apiVersion: API_VERSION, kind: KIND[target].kind, metadata: { name } };
  if (KIND[target].namespaced) obj.metadata.namespace = namespace;
  if (spec !== undefined) obj.spec = spec;
  return obj;
}

/** Creates an object; unknown fields are an error (fieldValidation Strict), not silently pruned. */
async function create(obj: AnyObject, opts: { dryRun?: boolean } = {}): Promise<AnyObject> {
  const api = customObjects();
  const plural = PLURAL_OF_KIND[obj.kind]!;
  const common = { group: GROUP, version: VERSION, plural, body: obj, fieldValidation: 'Strict', dryRun: opts.dryRun ? 'All' : undefined };
  return obj.metadata.namespace
    ? api.createNamespacedCustomObject({ ...common, namespace: obj.metadata.namespace })
    : api.createClusterCustomObject(common);
}

async function read(obj: AnyObject): Promise<AnyObject> {
  const api = customObjects();
  const plural = PLURAL_OF_KIND[obj.kind]!;
  const { name, namespace } = obj.metadata;
  return namespace
    ? api.getNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace, name })
    : api.getClusterCustomObject({ group: GROUP, version: VERSION, plural, name });
}

/** Merge-patches the main resource (spec, metadata; the server ignores status here). */
async function patchMain(obj: AnyObject, body: unknown): Promise<AnyObject> {
  const api = customObjects();
  const plural = PLURAL_OF_KIND[obj.kind]!;
  const { name, namespace } = obj.metadata;
  return namespace
    ? api.patchNamespacedCustomObject({ group: GROUP, version: VERSION, plural, namespace, name, body }, mergePatch())
    : api.patchClusterCustomObject({ group: GROUP, version: VERSION, plural, name, body }, mergePatch());
}

/** Merge-patches the status subresource (the server ignores spec here). */
async function patchStatus(obj: AnyObject, body: unknown): Promise<AnyObject> {
  const api = customObjects();
  const plural = PLURAL_OF_KIND[obj.kind]!;
  const { name, namespace } = obj.metadata;
  return namespace
    ? api.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, plural, namespace, name, body }, mergePatch())
    : api.patchClusterCustomObjectStatus({ group: GROUP, version: VERSION, plural, name, body }, mergePatch());
}

/** A cluster-scoped object for this test, deleted when the test ends. */
async function createClusterScoped(t: ExecutionContext, obj: AnyObject): Promise<AnyObject> {
  const created = await create(obj);
  t.teardown(async () => {
    try {
      await customObjects().deleteClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL_OF_KIND[obj.kind]!, name: obj.metadata.name });
    } catch {
      /* already gone */
    }
  });
  return created;
}

/** The API server's Status message of a failed call, or undefined when the call succeeded. */
async function rejection(call: Promise<unknown>): Promise<{ code: number; message: string } | undefined> {
  try {
    await call;
    return undefined;
  } catch (err) {
    if (!(err instanceof k8s.ApiException)) throw err;
    let body: unknown = err.body;
    if (typeof body === 'string') {
      try {
        body = JSON.parse(body);
      } catch {
        /* keep the text */
      }
    }
    const message = typeof body === 'object' && body !== null && 'message' in body ? String(body.message) : String(body);
    return { code: err.code, message };
  }
}

function condition(type: string, status: Condition['status'], reason: string, message: string): Condition {
  return { type, status, reason, message, observedGeneration: 1, lastTransitionTime: '2026-11-25T10:00:00Z' };
}

// ---------------------------------------------------------------------------------------------
// The CRDs the server serves are the files (installation must not drop defaults, enums or rules)

function crdFiles(): Array<{ file: string; crd: k8s.V1CustomResourceDefinition }> {
  return fs
    .readdirSync(CRD_DIR)
    .filter((f) => f.endsWith('.yaml'))
    .map((file) => ({ file, crd: yaml.load(fs.readFileSync(path.join(CRD_DIR, file), 'utf8')) as k8s.V1CustomResourceDefinition }))
    .filter(({ crd }) => crd?.kind === 'CustomResourceDefinition');
}

test('the API server serves each CRD exactly as written in crds/ (schema, defaults, CEL rules, columns, names)', (t) => {
  const files = crdFiles();
  t.deepEqual(files.map((f) => f.crd.spec.names.kind).sort(), ['APNodeState', 'APQNClaim', 'APQNReservation']);
  for (const { file, crd } of files) {
    const got = kubectl(['get', 'crd', crd.metadata!.name!, '-o', 'json']);
    t.is(got.status, 0, got.stderr);
    const served = JSON.parse(got.stdout) as k8s.V1CustomResourceDefinition;
    // A typed client-node call drops `default`, `enum` and `x-kubernetes-*` from plain objects;
    // this catches an installer that lets that happen.
    t.deepEqual(served.spec.versions, crd.spec.versions, `${file}: served versions differ from the file`);
    t.deepEqual(served.spec.names, crd.spec.names, file);
    t.is(served.spec.scope, crd.spec.scope, file);
  }
});

test('discovery: short names, category apqn, scope and status subresources', async (t) => {
  const list = (await customObjects().getAPIResources({ group: GROUP, version: VERSION })) as k8s.V1APIResourceList;
  const byName = new Map(list.resources.map((r) => [r.name, r]));
  const want: Array<[string, string, boolean]> = [
    [PLURAL.reservation, 'apqnr', true],
    [PLURAL.claim, 'apqnc', true],
    [PLURAL.nodeState, 'apns', false],
  ];
  for (const [plural, short, namespaced] of want) {
    const r = byName.get(plural);
    t.truthy(r, `${plural} in discovery`);
    t.deepEqual(r?.shortNames, [short], plural);
    t.deepEqual(r?.categories, ['apqn'], plural);
    t.is(r?.namespaced, namespaced, plural);
    t.true(byName.has(`${plural}/status`), `${plural}/status subresource`);
  }
});

// ---------------------------------------------------------------------------------------------
// Examples

function exampleDocs(): Array<{ file: string; obj: AnyObject }> {
  return fs
    .readdirSync(EXAMPLES)
    .filter((f) => /\.ya?ml$/.test(f) && f !== 'topology.yaml')
    .sort()
    .flatMap((file) =>
      yaml
        .loadAll(fs.readFileSync(path.join(EXAMPLES, file), 'utf8'))
        .filter((d) => d != null)
        .map((obj) => ({ file, obj: obj as AnyObject })),
    );
}

test('examples: every manifest starts with a comment and uses namespace default', (t) => {
  const files = fs.readdirSync(EXAMPLES).filter((f) => /\.ya?ml$/.test(f));
  t.true(files.length >= 5, `examples: ${files.join(', ')}`);
  for (const file of files) {
    t.regex(fs.readFileSync(path.join(EXAMPLES, file), 'utf8'), /^# \S/, `${file} starts with a comment`);
  }
  for (const { file, obj } of exampleDocs()) {
    if (obj.kind === 'Namespace') continue;
    if (KIND.nodeState.kind === obj.kind) continue;
    t.is(obj.metadata.namespace, 'default', `${file}: ${obj.kind}/${obj.metadata.name}`);
  }
});

test('examples: every manifest is accepted by the API server as written', async (t) => {
  const ns = await testNamespace(t, 'ex');
  const docs = exampleDocs();
  t.true(docs.some((d) => d.obj.kind === 'APQNReservation') && docs.some((d) => d.obj.kind === 'APQNClaim'));
  for (const { file, obj } of docs) {
    t.is(obj.apiVersion, API_VERSION, file);
    const placed: AnyObject = { ...obj, metadata: { ...obj.metadata, namespace: ns } };
    const created = await create(placed);
    t.like(created.spec as object, obj.spec as object, `${file}: stored spec keeps every field`);
  }
});

// The dev topology, as much of api.md's format as the consistency checks need.
interface TopologyCard {
  id: string;
  type: string;
  domains: string | string[];
}
interface TopologyNode {
  name: string;
  kernel?: string;
  maxDomainId?: number;
  cards: TopologyCard[];
  hostLoad?: Array<{ apqn: string; pendingRequests: number; drainsAfterSeconds: number }>;
}
const MODE_LETTER: Record<string, string> = { C: 'CCA', P: 'EP11', A: 'Accel' };

function cardDomains(card: TopologyCard): number[] {
  if (Array.isArray(card.domains)) return card.domains.map(parseDomainId);
  const [from, to] = card.domains.split('-').map(parseDomainId);
  return Array.from({ length: to! - from! + 1 }, (_, i) => from! + i);
}

function nodeQueues(node: TopologyNode): Set<string> {
  return new Set(node.cards.flatMap((c) => cardDomains(c).map((d) => formatApqn({ adapter: parseAdapterId(c.id), domain: d }))));
}

test('examples: the dev topology has the promised nodes and cards, and the examples fit it', (t) => {
  const topo = yaml.load(fs.readFileSync(path.join(EXAMPLES, 'topology.yaml'), 'utf8')) as { nodes: TopologyNode[] };
  const nodes = new Map(topo.nodes.map((n) => [n.name, n]));
  t.is(nodes.get('node-a')?.kernel, '6.10');
  t.true(['5.15', '6.19'].includes(nodes.get('node-b')?.kernel ?? ''), 'node-b kernel');
  const cards = topo.nodes.flatMap((n) => n.cards);
  t.deepEqual([...new Set(cards.map((c) => MODE_LETTER[c.type.slice(-1)]))].sort(), ['Accel', 'CCA', 'EP11']);
  t.true(cards.some((c) => c.type.startsWith('CEX7')) && cards.some((c) => c.type.startsWith('CEX8')));
  for (const node of topo.nodes) {
    const max = node.maxDomainId ?? 255;
    for (const card of node.cards) t.true(cardDomains(card).every((d) => d <= max), `${node.name} card ${card.id} within maxDomainId`);
    for (const load of node.hostLoad ?? []) t.true(nodeQueues(node).has(formatApqn(parseApqn(load.apqn))), `hostLoad ${load.apqn} exists`);
  }
  t.true(topo.nodes.some((n) => (n.hostLoad ?? []).length > 0), 'one queue with host load');

  const docs = exampleDocs().map((d) => d.obj);
  const reservations = docs.filter((o) => o.kind === 'APQNReservation') as unknown as APQNReservation[];
  for (const r of reservations.filter((r) => r.spec.apqns)) {
    const node = nodes.get(r.spec.nodeName ?? '');
    t.truthy(node, `${r.metadata.name}: nodeName is a topology node`);
    const apqns = r.spec.apqns!.map(parseApqn);
    for (const q of apqns) t.true(nodeQueues(node!).has(formatApqn(q)), `${r.metadata.name}: ${formatApqn(q)} exists on ${node!.name}`);
    if ((r.spec.driver ?? 'vfio_ap') === 'vfio_ap') {
      const adapters = new Set(apqns.map((q) => q.adapter));
      const domains = new Set(apqns.map((q) => q.domain));
      t.is(apqns.length, adapters.size * domains.size, `${r.metadata.name}: a full adapters x domains matrix`);
    }
  }
  const vfio = reservations.find((r) => r.spec.apqns && (r.spec.driver ?? 'vfio_ap') === 'vfio_ap');
  t.is(vfio?.spec.nodeName, 'node-a');
  t.true(reservations.some((r) => r.spec.driver === 'host'), 'a host example');
  const requested = reservations.find((r) => r.spec.request);
  const req = requested!.spec.request!;
  const fits = topo.nodes.some((n) => {
    const ok = n.cards.filter(
      (c) => (!req.mode || MODE_LETTER[c.type.slice(-1)] === req.mode) && (!req.minCardType || c.type.slice(0, 4) >= req.minCardType),
    );
    if (ok.length < req.adapters) return false;
    const common = ok.map(cardDomains).reduce((a, b) => a.filter((d) => b.includes(d)));
    return common.length >= req.domains;
  });
  t.true(fits, 'some topology node can satisfy the request example');
  const claim = docs.find((o) => o.kind === 'APQNClaim') as unknown as APQNClaim;
  t.is(claim.spec.reservationName, vfio?.metadata.name ?? '(no vfio example)', 'the claim names the vfio reservation');
});

// ---------------------------------------------------------------------------------------------
// Rejected manifests: each names the offending field

const VALID_SPEC: Record<Target, unknown> = {
  reservation: { nodeName: 'node-a', apqns: ['05.0004', '06.0004'] } satisfies ReservationSpec,
  claim: { reservationName: 'payments-vm' } satisfies ClaimSpec,
  nodeState: { bindingMode: 'Masks' } satisfies NodeStateSpec,
};

interface InvalidCase {
  why: string;
  target: Target;
  /** The spec to create (replaces the valid one); `null` = no spec at all. */
  spec?: unknown;
  /** Written through /status onto a valid object instead. */
  status?: unknown;
  /** The field path the error must name. */
  field: string;
  /** More text the error must contain. */
  says?: string[];
}

const res = (spec: Record<string, unknown>) => ({ target: 'reservation' as const, spec });
const apqns = (...list: unknown[]) => res({ nodeName: 'node-a', apqns: list });
const tooMany = Array.from({ length: 1025 }, (_, i) => formatApqn({ adapter: i >> 8, domain: i & 0xff }));

const invalid: InvalidCase[] = [
  { why: 'an APQN with a non-hex adapter digit (0g.0004)', ...apqns('0g.0004'), field: 'spec.apqns[0]' },
  { why: 'an APQN with a non-hex domain digit (05.00z4)', ...apqns('05.00z4'), field: 'spec.apqns[0]' },
  { why: 'a domain above 0x00ff (05.0100)', ...apqns('05.0100'), field: 'spec.apqns[0]' },
  { why: 'a domain above 0xff in 0x spelling (0x05.0x100)', ...apqns('0x05.0x100'), field: 'spec.apqns[0]' },
  { why: 'an adapter above 0xff (100.0004)', ...apqns('100.0004'), field: 'spec.apqns[0]' },
  { why: 'an APQN with three parts (5.4.3)', ...apqns('5.4.3'), field: 'spec.apqns[0]' },
  { why: 'shell metacharacters (05.0004;rm -rf /)', ...apqns('05.0004;rm -rf /'), field: 'spec.apqns[0]' },
  { why: 'a command substitution ($(id).4)', ...apqns('$(id).4'), field: 'spec.apqns[0]' },
  { why: 'whitespace inside an APQN (05. 0004)', ...apqns('05. 0004'), field: 'spec.apqns[0]' },
  { why: 'a trailing newline', ...apqns('05.0004\n'), field: 'spec.apqns[0]' },
  { why: 'a leading space', ...apqns(' 05.0004'), field: 'spec.apqns[0]' },
  { why: 'an adapter without a domain (05.)', ...apqns('05.'), field: 'spec.apqns[0]' },
  { why: 'a domain without an adapter (.0004)', ...apqns('.0004'), field: 'spec.apqns[0]' },
  { why: 'an APQN without a dot (050004)', ...apqns('050004'), field: 'spec.apqns[0]' },
  { why: 'an empty APQN', ...apqns(''), field: 'spec.apqns[0]' },
  { why: '0x without digits (0x.0x4)', ...apqns('0x.0x4'), field: 'spec.apqns[0]' },
  { why: 'a negative adapter (-5.4)', ...apqns('-5.4'), field: 'spec.apqns[0]' },
  { why: 'an APQN that is a number, not a string', ...apqns(5.4), field: 'spec.apqns[0]' },
  { why: 'a bad second APQN (zz.0004)', ...apqns('05.0004', 'zz.0004'), field: 'spec.apqns[1]' },
  { why: 'the same APQN twice', ...apqns('05.0004', '05.0004'), field: 'spec.apqns[1]', says: ['Duplicate value'] },
  {
    why: 'the same APQN in two spellings (05.0004, 5.4)',
    ...apqns('05.0004', '5.4'),
    field: 'spec.apqns',
    says: ['different spellings', '05.0004'],
  },
  {
    why: 'the same APQN in 0x and padded spellings (06.0004, 0X6.0x04)',
    ...apqns('06.0004', '0X6.0x04'),
    field: 'spec.apqns',
    says: ['different spellings', '06.0004'],
  },
  { why: 'an empty apqns list', ...apqns(), field: 'spec.apqns' },
  { why: 'more than 1024 APQNs', ...apqns(...tooMany), field: 'spec.apqns', says: ['Too many'] },
  { why: 'apqns as a string, not a list', ...res({ apqns: '05.0004' }), field: 'spec.apqns' },
  {
    why: 'both apqns and request',
    ...res({ apqns: ['05.0004'], request: { adapters: 1, domains: 1 } }),
    field: 'spec.request',
    says: ['exclusive'],
  },
  { why: 'neither apqns nor request', ...res({ nodeName: 'node-a' }), field: 'spec.apqns or spec.request' },
  { why: 'a reservation without spec', target: 'reservation', spec: null, field: 'spec', says: ['Required value'] },
  { why: 'an unknown driver (vfio)', ...res({ apqns: ['05.0004'], driver: 'vfio' }), field: 'spec.driver', says: ['Unsupported value'] },
  { why: 'a driver in the wrong case (VFIO_AP)', ...res({ apqns: ['05.0004'], driver: 'VFIO_AP' }), field: 'spec.driver' },
  { why: 'an unknown inUsePolicy (Retry)', ...res({ apqns: ['05.0004'], inUsePolicy: 'Retry' }), field: 'spec.inUsePolicy' },
  { why: 'a negative drainTimeoutSeconds', ...res({ apqns: ['05.0004'], drainTimeoutSeconds: -1 }), field: 'spec.drainTimeoutSeconds' },
  { why: 'a drainTimeoutSeconds above 86400', ...res({ apqns: ['05.0004'], drainTimeoutSeconds: 86401 }), field: 'spec.drainTimeoutSeconds' },
  { why: 'a drainTimeoutSeconds given as a string', ...res({ apqns: ['05.0004'], drainTimeoutSeconds: '300' }), field: 'spec.drainTimeoutSeconds' },
  { why: 'a fractional drainTimeoutSeconds', ...res({ apqns: ['05.0004'], drainTimeoutSeconds: 1.5 }), field: 'spec.drainTimeoutSeconds' },
  {
    why: 'controlDomains with driver host',
    ...res({ apqns: ['05.0004'], driver: 'host', controlDomains: ['0004'] }),
    field: 'spec.controlDomains',
    says: ['vfio_ap'],
  },
  { why: 'a control domain above 0xff (0100)', ...res({ apqns: ['05.0004'], controlDomains: ['0100'] }), field: 'spec.controlDomains[0]' },
  { why: 'a control domain with shell metacharacters (4;ls)', ...res({ apqns: ['05.0004'], controlDomains: ['4;ls'] }), field: 'spec.controlDomains[0]' },
  {
    why: 'the same control domain in two spellings (4, 0x0004)',
    ...res({ apqns: ['05.0004'], controlDomains: ['4', '0x0004'] }),
    field: 'spec.controlDomains',
    says: ['different spellings', '0004'],
  },
  { why: 'request.adapters 0', ...res({ request: { adapters: 0, domains: 1 } }), field: 'spec.request.adapters' },
  { why: 'request.domains 0', ...res({ request: { adapters: 1, domains: 0 } }), field: 'spec.request.domains' },
  { why: 'request.adapters above 256', ...res({ request: { adapters: 257, domains: 1 } }), field: 'spec.request.adapters' },
  { why: 'request.domains missing', ...res({ request: { adapters: 1 } }), field: 'spec.request.domains', says: ['Required value'] },
  { why: 'minCardType CEX3', ...res({ request: { adapters: 1, domains: 1, minCardType: 'CEX3' } }), field: 'spec.request.minCardType' },
  { why: 'minCardType in lower case (cex7)', ...res({ request: { adapters: 1, domains: 1, minCardType: 'cex7' } }), field: 'spec.request.minCardType' },
  { why: 'an unknown mode (XCP)', ...res({ request: { adapters: 1, domains: 1, mode: 'XCP' } }), field: 'spec.request.mode' },
  { why: 'a nodeName with capitals and underscore (Node_A)', ...res({ apqns: ['05.0004'], nodeName: 'Node_A' }), field: 'spec.nodeName' },
  { why: 'a nodeName with shell metacharacters', ...res({ apqns: ['05.0004'], nodeName: 'node-a;reboot' }), field: 'spec.nodeName' },
  { why: 'a nodeName ending in a dash', ...res({ apqns: ['05.0004'], nodeName: 'node-a-' }), field: 'spec.nodeName' },
  { why: 'a nodeName longer than 253 characters', ...res({ apqns: ['05.0004'], nodeName: 'a'.repeat(254) }), field: 'spec.nodeName' },
  { why: 'an empty nodeName', ...res({ apqns: ['05.0004'], nodeName: '' }), field: 'spec.nodeName' },
  { why: 'a nodeSelector value that is not a string', ...res({ apqns: ['05.0004'], nodeSelector: { zone: 1 } }), field: 'spec.nodeSelector.zone' },
  // claims
  { why: 'a claim without reservationName', target: 'claim', spec: { guest: { name: 'vm1' } }, field: 'spec.reservationName', says: ['Required value'] },
  { why: 'a claim without spec', target: 'claim', spec: null, field: 'spec', says: ['Required value'] },
  { why: 'a claim with an empty reservationName', target: 'claim', spec: { reservationName: '' }, field: 'spec.reservationName' },
  { why: 'a claim naming a reservation with capitals (Payments_VM)', target: 'claim', spec: { reservationName: 'Payments_VM' }, field: 'spec.reservationName' },
  { why: 'a claim whose guest name is not a string', target: 'claim', spec: { reservationName: 'a', guest: { name: 5 } }, field: 'spec.guest.name' },
  // node states (spec written by the controller: canonical ids only)
  { why: 'a node state apmask id not in canonical form (5)', target: 'nodeState', spec: { apmask: [{ id: '5', host: true }] }, field: 'spec.apmask[0].id' },
  { why: 'a node state aqmask id of adapter width (05)', target: 'nodeState', spec: { aqmask: [{ id: '05', host: false }] }, field: 'spec.aqmask[0].id' },
  {
    why: 'a node state queue intent with a non-canonical APQN (5.4)',
    target: 'nodeState',
    spec: { queues: [{ apqn: '5.4', reservation: 'default/r', inUsePolicy: 'Wait', drainTimeoutSeconds: 300 }] },
    field: 'spec.queues[0].apqn',
  },
  {
    why: 'a node state mdev with an upper-case UUID',
    target: 'nodeState',
    spec: { mdevs: [{ uuid: '6D2F1B3C-0A4E-4C5D-9E8F-0123456789AB', reservation: 'default/r', adapters: [], domains: [], controlDomains: [] }] },
    field: 'spec.mdevs[0].uuid',
  },
  { why: 'a node state override to an unknown driver', target: 'nodeState', spec: { overrides: [{ apqn: '05.0004', driver: 'zcrypt' }] }, field: 'spec.overrides[0].driver' },
  { why: 'a node state with an unknown bindingMode', target: 'nodeState', spec: { bindingMode: 'Sysfs' }, field: 'spec.bindingMode' },
  // status, through the status subresource
  {
    why: 'a reservation status with an unknown queue state',
    target: 'reservation',
    status: { queues: [{ apqn: '05.0004', driver: 'vfio_ap', state: 'Bogus' }] },
    field: 'status.queues[0].state',
  },
  {
    why: 'a reservation status condition with status Maybe',
    target: 'reservation',
    status: { conditions: [{ ...condition('Ready', 'True', 'Ready', ''), status: 'Maybe' }] },
    field: 'status.conditions[0].status',
  },
  { why: 'a claim status with an unknown phase', target: 'claim', status: { phase: 'Gone' }, field: 'status.phase' },
  {
    why: 'a node state status card with an unknown mode',
    target: 'nodeState',
    status: { cards: [{ id: '05', type: 'CEX8C', mode: 'XCP', online: true, config: true, chkstop: false }] },
    field: 'status.cards[0].mode',
  },
  {
    why: 'a node state status queue with negative requests in flight',
    target: 'nodeState',
    status: { queues: [{ apqn: '05.0004', driver: 'cex4queue', online: true, requestsInFlight: -1, requestCount: 0 }] },
    field: 'status.queues[0].requestsInFlight',
  },
];

for (const c of invalid) {
  test(`rejected: ${c.why}`, async (t) => {
    const ns = KIND[c.target].namespaced ? await testNamespace(t, 'bad') : undefined;
    const name = uniqueName('bad');
    let call: Promise<unknown>;
    if (c.status !== undefined) {
      const valid = object(c.target, name, VALID_SPEC[c.target], ns);
      if (ns) await create(valid);
      else await createClusterScoped(t, valid);
      call = patchStatus(valid, { status: c.status });
    } else {
      const spec = c.spec === null ? undefined : c.spec;
      // Cluster-scoped objects are only dry-run: a wrongly accepted one leaves nothing behind.
      call = create(object(c.target, name, spec, ns), { dryRun: !ns });
    }
    const err = await rejection(call);
    if (!err) return t.fail('the API server accepted it');
    t.is(err.code, 422, err.message);
    t.true(err.message.includes(c.field), `error names ${c.field}: ${err.message}`);
    for (const text of c.says ?? []) t.true(err.message.includes(text), `error says "${text}": ${err.message}`);
  });
}

test('the invalid-manifest table is at least 30 cases and each names a field', (t) => {
  t.true(invalid.length >= 30, `${invalid.length} cases`);
  t.is(new Set(invalid.map((c) => c.why)).size, invalid.length, 'titles are unique');
});

// ---------------------------------------------------------------------------------------------
// Accepted manifests, stored as sent

interface ValidCase {
  why: string;
  target: Target;
  spec: unknown;
}

const manyApqns = Array.from({ length: 1024 }, (_, i) => `0x${(i >> 8).toString(16)}.0x${(i & 0xff).toString(16)}`);
const valid: ValidCase[] = [
  { why: 'the base reservation used by the rejection table', target: 'reservation', spec: VALID_SPEC.reservation },
  { why: 'the base claim used by the rejection table', target: 'claim', spec: VALID_SPEC.claim },
  { why: 'the base node state used by the rejection table', target: 'nodeState', spec: VALID_SPEC.nodeState },
  { why: 'APQN spelled 5.4', ...apqns('5.4') },
  { why: 'APQN spelled 0x05.0x0004', ...apqns('0x05.0x0004') },
  { why: 'APQN in upper-case hex with 0X (0XA.0x00FF)', ...apqns('0XA.0x00FF') },
  { why: 'APQN with a four-digit adapter (0005.0004)', ...apqns('0005.0004') },
  { why: 'the highest and the lowest queue (ff.00ff, 00.0000)', ...apqns('ff.00ff', '00.0000') },
  { why: 'distinct queues in mixed spellings', ...apqns('5.4', '5.5', '0x6.4', '06.0005') },
  { why: 'queues that only look alike (05.0040, 5.4, 40.0005)', ...apqns('05.0040', '5.4', '40.0005') },
  { why: '1024 APQNs in 0x spelling (largest list; runtime CEL cost)', ...apqns(...manyApqns) },
  { why: 'a request with every field', ...res({ request: { adapters: 2, domains: 1, minCardType: 'CEX7', mode: 'EP11' } }) },
  { why: 'a request at the maximum (256 x 256)', ...res({ request: { adapters: 256, domains: 256 } }) },
  { why: 'driver host without controlDomains', ...res({ apqns: ['05.0004'], driver: 'host', inUsePolicy: 'Fail' }) },
  { why: 'controlDomains in several spellings', ...res({ apqns: ['05.0004'], controlDomains: ['4', '0x5', '0006', '0X00ff'] }) },
  { why: 'drainTimeoutSeconds 0 and inUsePolicy Force', ...res({ apqns: ['05.0004'], drainTimeoutSeconds: 0, inUsePolicy: 'Force' }) },
  { why: 'drainTimeoutSeconds 86400', ...res({ apqns: ['05.0004'], drainTimeoutSeconds: 86400 }) },
  { why: 'a dotted nodeName and a nodeSelector', ...res({ apqns: ['05.0004'], nodeName: 'z16.node-a.example.com', nodeSelector: { 'topology.kubernetes.io/zone': 'z1' } }) },
  { why: 'a claim with a guest', target: 'claim', spec: { reservationName: 'payments-vm', guest: { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: 'vm1' } } },
  { why: 'a node state with an empty spec', target: 'nodeState', spec: {} },
];

for (const c of valid) {
  test(`accepted: ${c.why}`, async (t) => {
    const ns = KIND[c.target].namespaced ? await testNamespace(t, 'ok') : undefined;
    const obj = object(c.target, uniqueName('ok'), c.spec, ns);
    const err = await rejection(create(obj, { dryRun: !ns }));
    t.is(err, undefined, err?.message);
    if (!ns) return;
    const stored = await read(obj);
    t.like(stored.spec as object, c.spec as object, 'stored as sent (plus defaults)');
  });
}

// ---------------------------------------------------------------------------------------------
// Defaults

test('defaults: driver vfio_ap, inUsePolicy Wait, drainTimeoutSeconds 300; explicit values (even 0) kept', async (t) => {
  const ns = await testNamespace(t, 'def');
  const explicit = object('reservation', 'explicit', { apqns: ['05.0004'] }, ns);
  const requested = object('reservation', 'requested', { request: { adapters: 1, domains: 1 } }, ns);
  for (const obj of [explicit, requested]) {
    await create(obj);
    const stored = (await read(obj)) as unknown as APQNReservation;
    t.is(stored.spec.driver, 'vfio_ap', obj.metadata.name);
    t.is(stored.spec.inUsePolicy, 'Wait', obj.metadata.name);
    t.is(stored.spec.drainTimeoutSeconds, 300, obj.metadata.name);
  }
  const kept = object('reservation', 'kept', { apqns: ['05.0004'], driver: 'host', inUsePolicy: 'Fail', drainTimeoutSeconds: 0 }, ns);
  await create(kept);
  t.like((await read(kept)).spec as object, { driver: 'host', inUsePolicy: 'Fail', drainTimeoutSeconds: 0 });
});

// ---------------------------------------------------------------------------------------------
// Status subresource

function fullReservationStatus(): Required<ReservationStatus> {
  return {
    observedGeneration: 1,
    nodeName: 'node-a',
    apqns: ['05.0004', '06.0004'],
    matrix: { adapters: ['05', '06'], domains: ['0004'], controlDomains: ['0004'] },
    mdevUUID: '6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab',
    claimedBy: { name: 'vm1-crypto' },
    queues: [
      { apqn: '05.0004', driver: 'vfio_ap', state: 'Assigned' },
      { apqn: '06.0004', driver: '', state: 'Draining', message: '3 host requests in flight' },
    ],
    displacedQueues: ['05.0005', '06.0005'],
    conditions: [
      condition('Accepted', 'True', 'Valid', 'a 2 x 1 matrix'),
      condition('Scheduled', 'True', 'NodeNamed', 'on node-a'),
      condition('Conflict', 'False', 'NoConflict', ''),
      condition('Bound', 'False', 'Draining', '06.0004 has 3 requests in flight'),
      condition('Ready', 'False', 'Draining', 'waiting for 06.0004'),
    ],
  };
}

test('status round trip: reservation status through /status; spec and status writes stay on their side', async (t) => {
  const ns = await testNamespace(t, 'st');
  const obj = object('reservation', 'payments-vm', { nodeName: 'node-a', apqns: ['05.0004', '06.0004'] }, ns);
  // status in a create is dropped: only /status writes it
  const created = await create({ ...obj, status: { nodeName: 'evil' } });
  t.is(created.status, undefined);
  t.is(created.metadata.generation, 1);

  const status = fullReservationStatus();
  const patched = await patchStatus(obj, { status });
  t.deepEqual(patched.status, status, 'every status field survives (nothing pruned)');
  let stored = await read(obj);
  t.deepEqual(stored.status, status);
  t.is(stored.metadata.generation, 1, 'a status write does not bump generation');

  // spec through the main resource: status untouched
  const afterSpec = await patchMain(obj, { spec: { drainTimeoutSeconds: 60 }, status: { nodeName: 'node-b' } });
  t.is((afterSpec.spec as ReservationSpec).drainTimeoutSeconds, 60);
  t.deepEqual(afterSpec.status, status, 'the main resource ignores status');
  t.is(afterSpec.metadata.generation, 2);

  // status through /status: spec untouched
  const afterStatus = await patchStatus(obj, { spec: { drainTimeoutSeconds: 1 }, status: { claimedBy: { name: 'vm2' } } });
  t.is((afterStatus.spec as ReservationSpec).drainTimeoutSeconds, 60, '/status ignores spec');
  t.deepEqual((afterStatus.status as ReservationStatus).claimedBy, { name: 'vm2' });
  stored = await read(obj);
  t.is(stored.metadata.generation, 2);
  t.is((stored.spec as ReservationSpec).drainTimeoutSeconds, 60);
});

test('status round trip: claim status keeps every field', async (t) => {
  const ns = await testNamespace(t, 'st');
  const spec: Required<ClaimSpec> = {
    reservationName: 'payments-vm',
    guest: { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: 'vm1' },
  };
  const obj = object('claim', 'vm1-crypto', spec, ns);
  await create(obj);
  const status: Required<ClaimStatus> = {
    observedGeneration: 1,
    phase: 'Bound',
    nodeName: 'node-a',
    mdevUUID: '6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab',
    apqns: ['05.0004', '06.0004'],
    resourceClaimName: 'vm1-crypto',
    conditions: [condition('Bound', 'True', 'Bound', 'holds default/payments-vm')],
  };
  await patchStatus(obj, { status });
  const stored = await read(obj);
  t.deepEqual(stored.status, status);
  t.deepEqual(stored.spec, spec);
});

// ---------------------------------------------------------------------------------------------
// APNodeState: every field, and a status the size of a big machine

function fullNodeStateSpec(): Required<NodeStateSpec> {
  const mdev: Required<MdevIntent> = {
    uuid: '6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab',
    reservation: 'default/payments-vm',
    adapters: ['05', '06'],
    domains: ['0004'],
    controlDomains: ['0004'],
  };
  return {
    bindingMode: 'Masks',
    apmask: [{ id: '05', host: false, original: true }, { id: '06', host: false }],
    aqmask: [{ id: '0004', host: false, original: true }],
    overrides: [{ apqn: '05.0004', driver: 'vfio_ap' }, { apqn: '06.0004', driver: 'cex4queue' }],
    queues: [{ apqn: '05.0004', reservation: 'default/payments-vm', inUsePolicy: 'Wait', drainTimeoutSeconds: 300 }],
    mdevs: [mdev],
  };
}

/** A machine with `adapters` cards of 85 domains each (z16: domains 00..54). */
function bigNodeStatus(adapters: number): Required<NodeStateStatus> {
  const cards: Array<Required<CardStatus>> = [];
  const queues: Array<Required<QueueStatus>> = [];
  for (let a = 0; a < adapters; a++) {
    const [mode, letter] = ([['CCA', 'C'], ['EP11', 'P'], ['Accel', 'A']] as const)[a % 3]!;
    cards.push({ id: formatAdapterId(a), type: `CEX8${letter}`, hwtype: 14, mode, online: true, config: true, chkstop: false });
    for (let d = 0; d <= 84; d++) {
      const assigned = a < 2 && d === 4;
      queues.push({
        apqn: formatApqn({ adapter: a, domain: d }),
        driver: assigned ? 'vfio_ap' : 'cex4queue',
        online: true,
        config: true,
        chkstop: false,
        requestsInFlight: d === 5 ? 3 : 0,
        requestCount: a * 1000 + d,
        vfioStatus: assigned ? 'assigned' : 'unassigned',
        cordoned: d === 6,
      });
    }
  }
  const mdev: Required<MdevStatus> = {
    uuid: '6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab',
    matrix: ['00.0004', '01.0004'],
    guestMatrix: ['00.0004', '01.0004'],
    controlDomains: ['0004'],
    owned: true,
    reservation: 'default/payments-vm',
    inUse: false,
  };
  const applied: Required<ReservationApplyStatus> = {
    reservation: 'default/payments-vm',
    phase: 'Applied',
    reason: 'Applied',
    message: 'queues assigned to the mdev',
    queues: [{ apqn: '00.0004', requestsInFlight: 0, requestCount: 4, state: 'Assigned' }],
  };
  return {
    observedGeneration: 1,
    heartbeatTime: '2026-11-25T10:00:00.000000Z',
    kernel: { apConfig: true, driverOverride: false, profile: '6.10' },
    maxAdapterId: 255,
    maxDomainId: 84,
    apmask: '0x3fffffffffffffff000000000000000000000000000000000000000000000000',
    aqmask: '0xf7ffffffffffffffffffe0000000000000000000000000000000000000000000',
    queueCount: queues.length,
    cards,
    queues,
    mdevs: [mdev],
    reservations: [applied],
    conditions: [
      condition('Synced', 'True', 'Applied', 'spec generation 1 applied'),
      condition('Drift', 'False', 'NoDrift', ''),
      condition('Degraded', 'False', 'Healthy', ''),
    ],
  };
}

test('APNodeState round trip: full spec, and a status of 5,440 queues through /status', async (t) => {
  const name = uniqueName('node');
  const spec = fullNodeStateSpec();
  const obj = object('nodeState', name, spec);
  const created = await createClusterScoped(t, obj);
  t.deepEqual(created.spec, spec, 'every spec field survives');

  const status = bigNodeStatus(64);
  t.is(status.queues.length, 5440);
  await patchStatus(obj, { status });
  const stored = (await read(obj)) as unknown as APNodeState;
  t.is(stored.status?.queues?.length, 5440);
  t.deepEqual(stored.status, status, 'every status field survives');
  t.deepEqual(stored.spec, spec);

  const table = kubectl(['get', 'apns', name]);
  t.is(table.status, 0, table.stderr);
  const [header, row] = table.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/));
  t.deepEqual(header, ['NAME', 'SYNCED', 'DRIFT', 'DEGRADED', 'QUEUES', 'AGE']);
  t.deepEqual(row?.slice(0, 5), [name, 'True', 'False', 'False', '5440']);
});

// ---------------------------------------------------------------------------------------------
// kubectl: printer columns, short names, category

test('kubectl: printer columns of reservations and claims show the status', async (t) => {
  const ns = await testNamespace(t, 'cols');
  const reservation = object('reservation', 'payments-vm', { nodeName: 'node-a', apqns: ['05.0004', '06.0004'] }, ns);
  await create(reservation);
  await patchStatus(reservation, {
    status: {
      nodeName: 'node-a',
      apqns: ['05.0004', '06.0004'],
      claimedBy: { name: 'vm1-crypto' },
      conditions: [condition('Ready', 'True', 'Ready', 'mdev has the reserved matrix')],
    } satisfies ReservationStatus,
  });
  const claim = object('claim', 'vm1-crypto', { reservationName: 'payments-vm' }, ns);
  await create(claim);
  await patchStatus(claim, {
    status: { phase: 'Bound', nodeName: 'node-a', mdevUUID: '6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab' } satisfies ClaimStatus,
  });

  const rows = (args: string[]) => {
    const out = kubectl(args);
    t.is(out.status, 0, out.stderr);
    return out.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/));
  };
  for (const args of [['get', 'apqnr', '-n', ns, '-o', 'wide'], ['get', 'apqnr', '-n', ns]]) {
    const [header, row] = rows(args);
    t.deepEqual(header, ['NAME', 'NODE', 'DRIVER', 'APQNS', 'READY', 'CLAIMED-BY', 'AGE'], args.join(' '));
    t.deepEqual(row?.slice(0, 6), ['payments-vm', 'node-a', 'vfio_ap', '["05.0004","06.0004"]', 'True', 'vm1-crypto']);
  }
  const [header, row] = rows(['get', 'apqnc', '-n', ns]);
  t.deepEqual(header, ['NAME', 'RESERVATION', 'PHASE', 'NODE', 'MDEV', 'AGE']);
  t.deepEqual(row?.slice(0, 5), ['vm1-crypto', 'payments-vm', 'Bound', 'node-a', '6d2f1b3c-0a4e-4c5d-9e8f-0123456789ab']);
});

test('kubectl: `get apqn` lists all three kinds; short names work', async (t) => {
  const ns = await testNamespace(t, 'cat');
  await create(object('reservation', 'r1', { apqns: ['05.0004'] }, ns));
  await create(object('claim', 'c1', { reservationName: 'r1' }, ns));
  const node = uniqueName('node');
  await createClusterScoped(t, object('nodeState', node, {}));

  const all = kubectl(['get', 'apqn', '-n', ns, '-o', 'name']);
  t.is(all.status, 0, all.stderr);
  const names = all.stdout.trim().split('\n');
  t.true(names.includes('apqnreservation.ap.s390x.io/r1'), all.stdout);
  t.true(names.includes('apqnclaim.ap.s390x.io/c1'), all.stdout);
  t.true(names.includes(`apnodestate.ap.s390x.io/${node}`), all.stdout);

  const short = kubectl(['get', 'apqnr,apqnc', '-n', ns, '-o', 'name']);
  t.is(short.status, 0, short.stderr);
  t.deepEqual(short.stdout.trim().split('\n').sort(), ['apqnclaim.ap.s390x.io/c1', 'apqnreservation.ap.s390x.io/r1']);
  const apns = kubectl(['get', 'apns', node, '-o', 'name']);
  t.is(apns.stdout.trim(), `apnodestate.ap.s390x.io/${node}`, apns.stderr);
});
