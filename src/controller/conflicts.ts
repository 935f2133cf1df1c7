// Who holds which queue when reservations want the same one. Rules (api.md "Conflict"):
//  - A queue on a node has at most one holder. Holding is all-or-nothing per reservation: one
//    that cannot have every queue it wants holds none of them (a guest never gets part of its
//    matrix), so it does not block anyone else either.
//  - The older reservation wins: creationTimestamp, then namespace/name.
//  - Never a silent steal: a reservation the node state already gives its queues to (`holding`)
//    keeps them against any newcomer, older or not — e.g. an older reservation edited to want
//    them. A reservation being deleted keeps what it holds until the queues are released;
//    when the caller does not say (`holding` undefined) a deleted one is taken to hold its
//    queues, and a deleted one known not to hold anything gets nothing new.
// The losers get a Conflict verdict naming the holders; they win by themselves on a later
// pass once the holders are gone.

import type { APQNReservation } from '../api/types.js';
import { reservationKey } from '../api/types.js';
import { apqnIndex, compareApqn, formatApqn, parseApqn } from '../apbus/ids.js';
import { joinList } from './phrases.js';

export interface QueueWant {
  reservation: Pick<APQNReservation, 'metadata'>;
  node: string;
  /** Queues wanted on `node`, any accepted spelling. */
  apqns: readonly string[];
  /** True when the node state already gives these queues to this reservation; undefined when unknown. */
  holding?: boolean;
}

export type HolderVerdict =
  | { key: string; holds: true }
  | { key: string; holds: false; reason: 'Conflict'; holders: string[]; contested: string[]; message: string }
  | { key: string; holds: false; reason: 'Deleting'; holders: []; contested: []; message: string };

export interface ConflictResolution {
  /** node -> canonical APQN -> holder's namespace/name */
  holders: Map<string, Map<string, string>>;
  /** reservation namespace/name -> verdict */
  verdicts: Map<string, HolderVerdict>;
}

type Tier = 0 | 1;

interface Contender {
  key: string;
  node: string;
  apqns: string[];
  tier: Tier;
  created: number;
  deleting: boolean;
  holding: boolean | undefined;
}

export function resolveHolders(wants: readonly QueueWant[]): ConflictResolution {
  const contenders: Contender[] = [];
  const verdicts = new Map<string, HolderVerdict>();
  const seen = new Set<string>();
  for (const want of wants) {
    const key = reservationKey(want.reservation);
    if (seen.has(key)) throw new Error(`reservation ${key} is listed twice`);
    seen.add(key);
    const deleting = want.reservation.metadata.deletionTimestamp !== undefined;
    if (deleting && want.holding === false) {
      verdicts.set(key, { key, holds: false, reason: 'Deleting', holders: [], contested: [], message: 'being deleted and holds no queues' });
      continue;
    }
    contenders.push({
      key,
      node: want.node,
      apqns: canonical(want.apqns),
      tier: want.holding === true || deleting ? 0 : 1,
      created: createdAt(want.reservation.metadata.creationTimestamp),
      deleting,
      holding: want.holding,
    });
  }
  contenders.sort(precedence);

  const holders = new Map<string, Map<string, string>>();
  const winner = new Map<string, Contender>();
  for (const c of contenders) {
    const onNode = holders.get(c.node) ?? new Map<string, string>();
    const taken = c.apqns.filter((q) => onNode.has(q));
    if (taken.length === 0) {
      for (const q of c.apqns) onNode.set(q, c.key);
      holders.set(c.node, onNode);
      winner.set(c.key, c);
      verdicts.set(c.key, { key: c.key, holds: true });
      continue;
    }
    const holderKeys = [...new Set(taken.map((q) => onNode.get(q)!))].sort();
    verdicts.set(c.key, {
      key: c.key,
      holds: false,
      reason: 'Conflict',
      holders: holderKeys,
      contested: taken,
      message: conflictMessage(c, taken, holderKeys.map((k) => winner.get(k)!)),
    });
  }
  return { holders, verdicts };
}

/** Holders first, then older, then namespace/name. */
function precedence(a: Contender, b: Contender): number {
  return a.tier - b.tier || a.created - b.created || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);
}

function conflictMessage(loser: Contender, taken: string[], holders: Contender[]): string {
  const why = (h: Contender): string => {
    if (h.tier < loser.tier) return h.deleting ? 'being deleted, holds them until they are released' : 'already holds them';
    if (h.created < loser.created) return 'created earlier';
    if (h.created === loser.created) return 'same creation time, earlier by name';
    return 'already holds them';
  };
  const held = holders.map((h) => `${h.key} (${why(h)})`);
  const verb = taken.length === 1 ? 'is' : 'are';
  return `${joinList(taken)} on node ${loser.node} ${verb} held by ${joinList(held, 4)}; this reservation waits and proceeds by itself once ${holders.length === 1 ? `${holders[0]!.key} releases` : 'they release'} them`;
}

function canonical(apqns: readonly string[]): string[] {
  const parsed = apqns.map(parseApqn).sort(compareApqn);
  const seen = new Set<number>();
  return parsed.filter((q) => !seen.has(apqnIndex(q.adapter, q.domain)) && seen.add(apqnIndex(q.adapter, q.domain))).map(formatApqn);
}

/** Missing or unparsable timestamps sort last (treated as newest). */
function createdAt(timestamp: string | undefined): number {
  const t = timestamp === undefined ? Number.NaN : Date.parse(timestamp);
  return Number.isNaN(t) ? Number.POSITIVE_INFINITY : t;
}
