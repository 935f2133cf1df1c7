// Validation beyond the CRD schema. Two stages:
//  - validateSpec: the reservation on its own (exclusive fields, APQN spellings, duplicates,
//    the full-matrix rule for vfio_ap, control domains) — no node needed;
//  - checkOnNode: the reservation's queues against one node's reported inventory (queues that
//    do not exist, card types vfio_ap cannot take, request type/mode, cards offline).
// Every problem carries the condition reason and a message a cluster admin can act on, and
// says whether it may clear up by itself (`temporary`: a card coming back online) or needs
// the user to change the object.

import type { CardGeneration, CardMode, Driver, InUsePolicy, ReservationRequest, ReservationSpec } from '../api/types.js';
import {
  type Apqn,
  ApbusInputError,
  apqnIndex,
  compareApqn,
  formatAdapterId,
  formatApqn,
  formatDomainId,
  parseApqn,
  parseDomainId,
} from '../apbus/ids.js';
import { checkMatrix } from './matrix-check.js';
import {
  HWTYPE,
  MAX_VFIO_AP_HWTYPE,
  MIN_VFIO_AP_HWTYPE,
  type NodeInventory,
  cardHwtype,
  generationName,
} from './node-inventory.js';
import { idRanges, joinList } from './phrases.js';

export type RejectReason =
  | 'InvalidSpec'
  | 'InvalidAPQN'
  | 'DuplicateAPQN'
  | 'NotAMatrix'
  | 'InvalidControlDomain'
  | 'QueueNotFound'
  | 'ForeignMdev'
  | 'CardTypeUnsupported'
  | 'ModeMismatch'
  | 'ControlDomainOutOfRange'
  | 'CardCheckstopped'
  | 'CardOffline';

export interface Problem {
  reason: RejectReason;
  message: string;
  /** May clear up without a spec change (a card coming back); else the user must act. */
  temporary: boolean;
}

/** A reservation spec that passed validateSpec, with ids parsed and defaults applied. */
export interface ValidSpec {
  driver: Driver;
  /** Explicit queues: distinct, APQN order. Absent for request-based reservations. */
  apqns?: Apqn[];
  request?: ReservationRequest;
  controlDomains: number[];
  nodeName?: string;
  nodeSelector: Record<string, string>;
  inUsePolicy: InUsePolicy;
  drainTimeoutSeconds: number;
}

export type SpecVerdict = { ok: true; spec: ValidSpec } | { ok: false; problem: Problem };

const DRIVERS: readonly Driver[] = ['vfio_ap', 'host'];
const POLICIES: readonly InUsePolicy[] = ['Wait', 'Fail', 'Force'];
const MODES: readonly CardMode[] = ['CCA', 'EP11', 'Accel'];
export const DEFAULT_DRAIN_TIMEOUT_SECONDS = 300;

const permanent = (reason: RejectReason, message: string): { ok: false; problem: Problem } => ({
  ok: false,
  problem: { reason, message, temporary: false },
});

export function validateSpec(spec: ReservationSpec): SpecVerdict {
  const driver = spec.driver ?? 'vfio_ap';
  if (!DRIVERS.includes(driver)) return permanent('InvalidSpec', `driver ${JSON.stringify(driver)} is not one of vfio_ap, host`);
  const inUsePolicy = spec.inUsePolicy ?? 'Wait';
  if (!POLICIES.includes(inUsePolicy)) {
    return permanent('InvalidSpec', `inUsePolicy ${JSON.stringify(inUsePolicy)} is not one of Wait, Fail, Force`);
  }
  const drainTimeoutSeconds = spec.drainTimeoutSeconds ?? DEFAULT_DRAIN_TIMEOUT_SECONDS;
  if (!Number.isInteger(drainTimeoutSeconds) || drainTimeoutSeconds < 0) {
    return permanent('InvalidSpec', `drainTimeoutSeconds must be a whole number of seconds >= 0, got ${drainTimeoutSeconds}`);
  }
  const hasApqns = (spec.apqns?.length ?? 0) > 0;
  if (hasApqns && spec.request) return permanent('InvalidSpec', 'spec.apqns and spec.request exclude each other: set only one');
  if (!hasApqns && !spec.request) {
    return permanent('InvalidSpec', 'set spec.apqns (the queues) or spec.request (how many adapters and domains)');
  }

  const base = {
    driver,
    nodeSelector: spec.nodeSelector ?? {},
    inUsePolicy,
    drainTimeoutSeconds,
    ...(spec.nodeName ? { nodeName: spec.nodeName } : {}),
  };

  const controlDomains: number[] = [];
  for (const text of spec.controlDomains ?? []) {
    try {
      controlDomains.push(parseDomainId(text));
    } catch (err) {
      if (!(err instanceof ApbusInputError)) throw err;
      return permanent('InvalidControlDomain', `control domain ${err.message}`);
    }
  }
  if (driver === 'host' && controlDomains.length > 0) {
    return permanent('InvalidSpec', 'controlDomains apply to vfio_ap reservations only: remove them or use driver vfio_ap');
  }
  const distinctControlDomains = [...new Set(controlDomains)].sort((a, b) => a - b);

  if (spec.request) {
    const problem = requestProblem(spec.request);
    if (problem) return permanent('InvalidSpec', problem);
    return { ok: true, spec: { ...base, request: { ...spec.request }, controlDomains: distinctControlDomains } };
  }

  const texts = spec.apqns!;
  const parsed: Apqn[] = [];
  const bad: string[] = [];
  for (const text of texts) {
    try {
      parsed.push(parseApqn(text));
    } catch (err) {
      if (!(err instanceof ApbusInputError)) throw err;
      bad.push(err.message);
    }
  }
  if (bad.length > 0) {
    return permanent('InvalidAPQN', `${bad[0]}${bad.length > 1 ? ` (and ${bad.length - 1} more invalid)` : ''}`);
  }
  const duplicate = duplicateProblem(texts, parsed);
  if (duplicate) return permanent('DuplicateAPQN', duplicate);
  if (driver === 'vfio_ap') {
    const matrix = checkMatrix(parsed.map(formatApqn));
    if (!matrix.ok) return permanent(matrix.reason, matrix.message);
  }
  return { ok: true, spec: { ...base, apqns: [...parsed].sort(compareApqn), controlDomains: distinctControlDomains } };
}

function requestProblem(r: ReservationRequest): string | undefined {
  const count = (n: unknown): boolean => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 256;
  if (!count(r.adapters)) return `request.adapters must be a whole number from 1 to 256, got ${JSON.stringify(r.adapters)}`;
  if (!count(r.domains)) return `request.domains must be a whole number from 1 to 256, got ${JSON.stringify(r.domains)}`;
  if (r.minCardType !== undefined && !(r.minCardType in HWTYPE)) {
    return `request.minCardType ${JSON.stringify(r.minCardType)} is not one of ${Object.keys(HWTYPE).join(', ')}`;
  }
  if (r.mode !== undefined && !MODES.includes(r.mode)) {
    return `request.mode ${JSON.stringify(r.mode)} is not one of ${MODES.join(', ')}`;
  }
  return undefined;
}

/** Two entries naming one queue — in the same spelling or in two ('5.4' and '05.0004'). */
function duplicateProblem(texts: readonly string[], parsed: readonly Apqn[]): string | undefined {
  const spellings = new Map<number, string[]>();
  parsed.forEach((q, i) => {
    const key = apqnIndex(q.adapter, q.domain);
    spellings.set(key, [...(spellings.get(key) ?? []), texts[i]!]);
  });
  const dups = [...spellings.entries()].filter(([, s]) => s.length > 1).sort(([a], [b]) => a - b);
  if (dups.length === 0) return undefined;
  const describe = ([key, s]: [number, string[]]): string => {
    const canonical = formatApqn({ adapter: key >> 8, domain: key & 0xff });
    const distinct = [...new Set(s)];
    if (distinct.length === 1) return `${JSON.stringify(distinct[0])} is listed ${s.length} times`;
    return `${joinList(distinct.map((x) => JSON.stringify(x)))} ${distinct.length === 2 ? 'both' : 'all'} name ${canonical}`;
  };
  return `${joinList(dups.map(describe), 3)}: list each queue once`;
}

// ---------------------------------------------------------------------------------------------

/**
 * Checks `apqns` (the explicit ones, or the ones a request was given) against a node's
 * inventory. One problem per reason, permanent ones first; an empty list means the node fits.
 */
export function checkOnNode(spec: ValidSpec, apqns: readonly Apqn[], node: NodeInventory): Problem[] {
  const problems: Problem[] = [];
  const missing = apqns.filter((q) => !node.queues.has(apqnIndex(q.adapter, q.domain)));
  if (missing.length > 0) {
    problems.push({ reason: 'QueueNotFound', message: missingMessage(missing, node), temporary: false });
  }

  const foreign = apqns.filter((q) => node.foreignMdevQueues.has(apqnIndex(q.adapter, q.domain)));
  if (foreign.length > 0) {
    const uuids = [...new Set(foreign.map((q) => node.foreignMdevQueues.get(apqnIndex(q.adapter, q.domain))!))];
    problems.push({
      reason: 'ForeignMdev',
      message: `${joinList(foreign.map(formatApqn))} on node ${node.name} ${foreign.length === 1 ? 'is' : 'are'} assigned to ${uuids.length === 1 ? 'mdev' : 'mdevs'} ${joinList(uuids, 3)}, which this operator does not manage; unassign ${foreign.length === 1 ? 'it' : 'them'} there first`,
      temporary: true,
    });
  }

  const adapters = [...new Set(apqns.map((q) => q.adapter))].sort((a, b) => a - b);
  const cards = adapters.flatMap((id) => {
    const card = node.cards.get(id);
    return card ? [{ id, card, hwtype: cardHwtype(card) }] : [];
  });
  const name = (id: number): string => `card ${formatAdapterId(id)}`;

  const typeIssues: string[] = [];
  for (const { id, card, hwtype } of cards) {
    if (spec.driver === 'vfio_ap' && (hwtype === undefined || hwtype < MIN_VFIO_AP_HWTYPE || hwtype > MAX_VFIO_AP_HWTYPE)) {
      typeIssues.push(`${name(id)} is a ${card.type}${hwtype !== undefined ? ` (hwtype ${hwtype})` : ''}; vfio_ap takes CEX4 to CEX8`);
    } else if (spec.request?.minCardType && (hwtype ?? 0) < HWTYPE[spec.request.minCardType as CardGeneration]) {
      typeIssues.push(`${name(id)} is a ${card.type} (${generationName(hwtype)}); the request asks for ${spec.request.minCardType} or newer`);
    }
  }
  if (typeIssues.length > 0) problems.push({ reason: 'CardTypeUnsupported', message: joinList(typeIssues, 4), temporary: false });

  const wantedMode = spec.request?.mode;
  if (wantedMode) {
    const wrong = cards.filter(({ card }) => card.mode !== wantedMode);
    if (wrong.length > 0) {
      const what = wrong.map(({ id, card }) => `${name(id)} is in ${card.mode} mode`);
      problems.push({ reason: 'ModeMismatch', message: `${joinList(what, 4)}; the request asks for ${wantedMode}`, temporary: false });
    }
  }

  const tooHigh = spec.controlDomains.filter((d) => d > node.maxDomainId);
  if (tooHigh.length > 0) {
    problems.push({
      reason: 'ControlDomainOutOfRange',
      message: `control ${tooHigh.length === 1 ? 'domain' : 'domains'} ${joinList(tooHigh.map(formatDomainId))} ${tooHigh.length === 1 ? 'is' : 'are'} above node ${node.name}'s highest domain ${formatDomainId(node.maxDomainId)}`,
      temporary: false,
    });
  }

  const checkstopped = cards.filter(({ card }) => card.chkstop);
  if (checkstopped.length > 0) {
    problems.push({
      reason: 'CardCheckstopped',
      message: `${joinList(checkstopped.map(({ id }) => name(id)))} on node ${node.name} ${checkstopped.length === 1 ? 'is' : 'are'} checkstopped`,
      temporary: true,
    });
  }
  const offline = cards.filter(({ card }) => !card.chkstop && (!card.online || !card.config));
  if (offline.length > 0) {
    const what = offline.map(({ id, card }) => `${name(id)} is ${card.config ? 'offline' : 'deconfigured'}`);
    problems.push({ reason: 'CardOffline', message: `${joinList(what, 4)} on node ${node.name}`, temporary: true });
  }
  return problems;
}

function missingMessage(missing: readonly Apqn[], node: NodeInventory): string {
  const verb = missing.length === 1 ? 'does' : 'do';
  const hints = [...new Set(missing.map((q) => q.adapter))].slice(0, 3).map((id) => {
    const domains = [...node.queues.keys()].filter((i) => i >> 8 === id).map((i) => i & 0xff);
    if (!node.cards.has(id) && domains.length === 0) return `no card ${formatAdapterId(id)}`;
    if (domains.length === 0) return `card ${formatAdapterId(id)} has no queues`;
    return `card ${formatAdapterId(id)} has domains ${idRanges(domains, formatDomainId)}`;
  });
  return `${joinList(missing.map(formatApqn))} ${verb} not exist on node ${node.name} (${hints.join('; ')})`;
}

/** One problem for a condition: the first reason, every message. */
export function summarize(problems: readonly Problem[]): Problem {
  if (problems.length === 0) throw new Error('summarize() needs at least one problem');
  return {
    reason: problems[0]!.reason,
    message: problems.map((p) => p.message).join('; '),
    temporary: problems.every((p) => p.temporary),
  };
}
