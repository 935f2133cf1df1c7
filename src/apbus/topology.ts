// The topology file of simulated nodes (api.md "Topology file"): YAML in, typed and defaulted
// NodeTopology objects out. Every error names the node, card or field it is about.
//
// Ids are hex strings as everywhere in the API ('05', '0004'). Bare YAML numbers are refused
// for ids: YAML reads 0010 as decimal ten, which is never what a hex id means.
import * as yaml from 'js-yaml';
import { ApbusInputError, MAX_ID, parseAdapterId, parseApqn, parseDomainId, type Apqn } from './ids.js';
import { Mask, applyMaskWrite } from './mask.js';
import { parseCardType, type CardModeLetter } from './model/hardware.js';
import { isKernelProfile, KERNEL_PROFILES, type KernelProfile } from './model/profile.js';

export interface CardTopology {
  readonly id: number;
  /** As written, e.g. 'CEX8P'. */
  readonly type: string;
  readonly hwtype: number;
  readonly mode: CardModeLetter;
  /** Usage domains the card has queues for, ascending. */
  readonly domains: readonly number[];
}

export interface HostLoadTopology {
  readonly apqn: Apqn;
  readonly pendingRequests: number;
  /** Seconds until these requests complete; null = they stay until the queue is reset. */
  readonly drainsAfterSeconds: number | null;
}

export interface NodeTopology {
  readonly name: string;
  readonly kernel: KernelProfile;
  readonly maxAdapterId: number;
  readonly maxDomainId: number;
  /** The host's control domains (ap_control_domain_mask), ascending. */
  readonly controlDomains: readonly number[];
  readonly cards: readonly CardTopology[];
  /** Initial host ownership masks (as if given on the kernel command line). */
  readonly apmask: Mask;
  readonly aqmask: Mask;
  readonly hostLoad: readonly HostLoadTopology[];
}

export interface Topology {
  readonly nodes: readonly NodeTopology[];
}

export const DEFAULT_KERNEL: KernelProfile = '6.10';
export const DEFAULT_MAX_ID = 255;

const NODE_KEYS = ['name', 'kernel', 'maxAdapterId', 'maxDomainId', 'controlDomains', 'cards', 'apmask', 'aqmask', 'hostLoad'];
const CARD_KEYS = ['id', 'type', 'domains'];
const LOAD_KEYS = ['apqn', 'pendingRequests', 'drainsAfterSeconds'];
const NODE_NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** Parses topology YAML; `source` (a file name) prefixes error messages. */
export function parseTopology(text: string, source = 'topology'): Topology {
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch (err) {
    throw new ApbusInputError(`${source}: not valid YAML: ${err instanceof Error ? err.message : String(err)}`);
  }
  return topologyFromObject(doc, source);
}

/** The same checks for an already-parsed document. */
export function topologyFromObject(doc: unknown, source = 'topology'): Topology {
  const at = new Where(source);
  const root = record(doc, at);
  onlyKeys(root, ['nodes'], at);
  const nodesRaw = root['nodes'];
  if (!Array.isArray(nodesRaw) || nodesRaw.length === 0) throw at.error('nodes: must be a non-empty list of nodes');
  const nodes = nodesRaw.map((raw, i) => parseNode(raw, at.field(`nodes[${i}]`)));
  const seen = new Set<string>();
  for (const node of nodes) {
    if (seen.has(node.name)) throw at.error(`node ${node.name}: the name is used twice`);
    seen.add(node.name);
  }
  return { nodes };
}

function parseNode(raw: unknown, at0: Where): NodeTopology {
  const obj = record(raw, at0);
  const nameRaw = obj['name'];
  if (typeof nameRaw !== 'string' || !NODE_NAME_RE.test(nameRaw)) {
    throw at0.error(`name: must be a Kubernetes node name (lower-case letters, digits, '-' and '.'), got ${show(nameRaw)}`);
  }
  const at = new Where(`${at0.source}: node ${nameRaw}`);
  onlyKeys(obj, NODE_KEYS, at);

  const kernelRaw = obj['kernel'] ?? DEFAULT_KERNEL;
  const kernel = typeof kernelRaw === 'number' ? kernelRaw.toFixed(2) : kernelRaw;
  if (!isKernelProfile(kernel)) {
    throw at.error(`kernel: must be one of ${KERNEL_PROFILES.join(', ')} (quote it: "6.10"), got ${show(kernelRaw)}`);
  }
  const maxAdapterId = maxId(obj['maxAdapterId'], at.field('maxAdapterId'));
  const maxDomainId = maxId(obj['maxDomainId'], at.field('maxDomainId'));

  const cardsRaw = obj['cards'] ?? [];
  if (!Array.isArray(cardsRaw)) throw at.error('cards: must be a list of cards');
  const cards = cardsRaw.map((c, i) => parseCard(c, i, at, maxAdapterId, maxDomainId));
  const cardIds = new Set<number>();
  for (const card of cards) {
    if (cardIds.has(card.id)) throw at.error(`card ${hex2(card.id)}: the id is used twice`);
    cardIds.add(card.id);
  }
  cards.sort((a, b) => a.id - b.id);

  const usage = [...new Set(cards.flatMap((c) => c.domains))].sort((a, b) => a - b);
  const controlDomains =
    obj['controlDomains'] === undefined ? usage : domainList(obj['controlDomains'], at.field('controlDomains'), maxDomainId);

  const apmask = initialMask(obj['apmask'], 'adapter', at.field('apmask'));
  const aqmask = initialMask(obj['aqmask'], 'domain', at.field('aqmask'));

  const loadRaw = obj['hostLoad'] ?? [];
  if (!Array.isArray(loadRaw)) throw at.error('hostLoad: must be a list of {apqn, pendingRequests, drainsAfterSeconds}');
  const hostLoad = loadRaw.map((l, i) => parseLoad(l, at.field(`hostLoad[${i}]`), cards));

  return { name: nameRaw, kernel, maxAdapterId, maxDomainId, controlDomains, cards, apmask, aqmask, hostLoad };
}

function parseCard(raw: unknown, i: number, at0: Where, maxA: number, maxD: number): CardTopology {
  const obj = record(raw, at0.field(`cards[${i}]`));
  const idRaw = obj['id'];
  const id = hexId(idRaw, 'adapter', at0.field(`cards[${i}].id`));
  const at = new Where(`${at0.source}: card ${hex2(id)}`);
  onlyKeys(obj, CARD_KEYS, at);
  if (id > maxA) throw at.error(`id: adapter ${hex2(id)} is above maxAdapterId ${maxA}`);
  const typeRaw = obj['type'];
  const kind = typeof typeRaw === 'string' ? parseCardType(typeRaw) : null;
  if (typeof typeRaw !== 'string' || kind === null) {
    throw at.error(`type: must be CEX4..CEX8 followed by C (CCA), P (EP11) or A (accelerator), or CEX2A/CEX2C/CEX3A/CEX3C; got ${show(typeRaw)}`);
  }
  if (obj['domains'] === undefined) throw at.error("domains: missing (a range like \"0000-000f\" or a list like [\"0004\"])");
  const domains = domainList(obj['domains'], at.field('domains'), maxD);
  return { id, type: typeRaw, hwtype: kind.hwtype, mode: kind.mode, domains };
}

function parseLoad(raw: unknown, at: Where, cards: readonly CardTopology[]): HostLoadTopology {
  const obj = record(raw, at);
  onlyKeys(obj, LOAD_KEYS, at);
  const apqnRaw = obj['apqn'];
  if (typeof apqnRaw !== 'string') throw at.error(`apqn: must be a string like "05.0004", got ${show(apqnRaw)}`);
  let apqn: Apqn;
  try {
    apqn = parseApqn(apqnRaw);
  } catch (err) {
    throw at.error(`apqn: ${(err as Error).message}`);
  }
  const card = cards.find((c) => c.id === apqn.adapter);
  if (!card || !card.domains.includes(apqn.domain)) throw at.error(`apqn: ${apqnRaw} is not a queue of any card of this node`);
  const n = obj['pendingRequests'];
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 1_000_000) {
    throw at.error(`pendingRequests: must be an integer 1..1000000, got ${show(n)}`);
  }
  const drains = obj['drainsAfterSeconds'];
  if (drains !== undefined && drains !== null && (typeof drains !== 'number' || !Number.isFinite(drains) || drains < 0)) {
    throw at.error(`drainsAfterSeconds: must be a number of seconds >= 0, got ${show(drains)}`);
  }
  return { apqn, pendingRequests: n, drainsAfterSeconds: typeof drains === 'number' ? drains : null };
}

/** all | none | a hex mask ('0x…', filled from bit 0) | a list of adapter/domain ids. */
function initialMask(raw: unknown, what: 'adapter' | 'domain', at: Where): Mask {
  if (raw === undefined || raw === 'all') return Mask.all();
  if (raw === 'none') return Mask.none();
  if (typeof raw === 'string') {
    if (!/^0x[0-9a-fA-F]{1,64}$/.test(raw)) {
      throw at.error(`must be all, none, a hex mask like "0x80" (bit 0 leftmost) or a list of ${what}s, got ${show(raw)}`);
    }
    return applyMaskWrite(Mask.none(), raw);
  }
  if (Array.isArray(raw)) return Mask.of(raw.map((v, i) => hexId(v, what, at.field(`[${i}]`))));
  throw at.error(`must be all, none, a hex mask or a list of ${what}s, got ${show(raw)}`);
}

/** A range string 'aaaa-zzzz', one domain 'dddd', or a list of domains. */
function domainList(raw: unknown, at: Where, maxD: number): number[] {
  let ids: number[];
  if (typeof raw === 'string' && raw.includes('-')) {
    const [lo, hi, ...more] = raw.split('-');
    if (more.length > 0) throw at.error(`${show(raw)} is not a range like "0000-000f"`);
    const first = hexId(lo, 'domain', at);
    const last = hexId(hi, 'domain', at);
    if (first > last) throw at.error(`range ${show(raw)} is reversed`);
    ids = [];
    for (let d = first; d <= last; d++) ids.push(d);
  } else if (typeof raw === 'string') {
    ids = [hexId(raw, 'domain', at)];
  } else if (Array.isArray(raw)) {
    ids = raw.map((v, i) => hexId(v, 'domain', at.field(`[${i}]`)));
  } else {
    throw at.error(`must be a range like "0000-000f" or a list like ["0004", "0005"], got ${show(raw)}`);
  }
  for (const d of ids) if (d > maxD) throw at.error(`domain ${hex4(d)} is above maxDomainId ${maxD}`);
  return [...new Set(ids)].sort((a, b) => a - b);
}

function hexId(raw: unknown, what: 'adapter' | 'domain', at: Where): number {
  if (typeof raw === 'number') {
    throw at.error(`${what} ${raw} must be a quoted hex string (e.g. "${what === 'adapter' ? '05' : '0004'}"): YAML reads bare numbers as decimal`);
  }
  if (typeof raw !== 'string') throw at.error(`${what} id must be a hex string, got ${show(raw)}`);
  try {
    return what === 'adapter' ? parseAdapterId(raw) : parseDomainId(raw);
  } catch (err) {
    throw at.error((err as Error).message);
  }
}

function maxId(raw: unknown, at: Where): number {
  if (raw === undefined) return DEFAULT_MAX_ID;
  if (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 0 || raw > MAX_ID) {
    throw at.error(`must be an integer 0..255, got ${show(raw)}`);
  }
  return raw;
}

function record(raw: unknown, at: Where): Record<string, unknown> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw at.error(`must be a mapping, got ${show(raw)}`);
  return raw as Record<string, unknown>;
}

function onlyKeys(obj: Record<string, unknown>, allowed: readonly string[], at: Where): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw at.error(`unknown field ${show(key)} (known: ${allowed.join(', ')})`);
  }
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

const hex2 = (n: number) => n.toString(16).padStart(2, '0');
const hex4 = (n: number) => n.toString(16).padStart(4, '0');

/** Where in the file we are, for error messages: 'topology.yaml: node a: card 05: domains'. */
class Where {
  constructor(readonly source: string) {}

  field(name: string): Where {
    return new Where(name.startsWith('[') ? `${this.source}${name}` : `${this.source}: ${name}`);
  }

  error(message: string): ApbusInputError {
    return new ApbusInputError(`${this.source}: ${message}`);
  }
}
