// `kubectl apqn status`: reservations and claims, one line each — where they are, which
// queues, and the condition that explains their state. Pure: objects in, a table out.
import type { APQNClaim, APQNReservation, Condition } from '../api/types.js';
import { type Apqn, formatAdapterId, formatDomainId, parseApqn } from '../apbus/ids.js';
import { type Paint, plain, table } from './text.js';

function conditionOf(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** 'True', 'False/Draining', 'Unknown/AgentUnavailable', or '-' when the condition is not set. */
export function conditionCell(c: Condition | undefined, paint: Paint = plain): string {
  if (!c) return '-';
  if (c.status === 'True') return c.type === 'Conflict' ? paint('True', 'red') : paint('True', 'green');
  const text = `${c.status}/${c.reason}`;
  if (c.type === 'Conflict') return c.status === 'False' ? 'False' : paint(text, 'yellow');
  return paint(text, c.status === 'Unknown' ? 'yellow' : 'red');
}

/** A full cross product of more than two queues as 'aa,bb x dddd,eeee'; otherwise the list. */
export function compactApqns(texts: readonly string[] | undefined): string {
  if (!texts || texts.length === 0) return '-';
  const parsed: Apqn[] = [];
  for (const t of texts) {
    try {
      parsed.push(parseApqn(t));
    } catch {
      return texts.join(',');
    }
  }
  const adapters = [...new Set(parsed.map((q) => q.adapter))].sort((a, b) => a - b);
  const domains = [...new Set(parsed.map((q) => q.domain))].sort((a, b) => a - b);
  if (texts.length > 2 && adapters.length * domains.length === new Set(texts).size) {
    return `${adapters.map(formatAdapterId).join(',')} x ${domains.map(formatDomainId).join(',')}`;
  }
  return texts.join(',');
}

const oneLine = (text: string) => text.replace(/\s*\n\s*/g, ' ');

/** The sentence that explains a reservation's state best: the first condition that is not
 *  as it should be, in the order a reader needs it; else who holds it. */
export function reservationDetail(r: APQNReservation): string {
  const cs = r.status?.conditions;
  const conflict = conditionOf(cs, 'Conflict');
  if (conflict?.status === 'True') return oneLine(conflict.message);
  for (const type of ['Accepted', 'Scheduled', 'Bound', 'Ready']) {
    const c = conditionOf(cs, type);
    if (c && c.status !== 'True') return oneLine(c.message);
  }
  if (r.metadata.deletionTimestamp) return 'being deleted';
  const claimed = r.status?.claimedBy?.name;
  const ready = conditionOf(cs, 'Ready');
  if (claimed) return `claimed by ${claimed}${ready ? `; ${oneLine(ready.message)}` : ''}`;
  if (ready) return oneLine(ready.message);
  return r.status ? '' : 'no status yet (is the controller running?)';
}

/** The Bound condition's sentence (the controller's messages name the reservation). */
export function claimDetail(c: APQNClaim): string {
  const bound = conditionOf(c.status?.conditions, 'Bound');
  if (bound) return oneLine(bound.message);
  return `claims reservation ${c.spec?.reservationName ?? '?'}; no status yet (is the controller running?)`;
}

export interface StatusOptions {
  /** Add a NAMESPACE column (kubectl -A). */
  allNamespaces: boolean;
  paint?: Paint;
}

const byNamespaceName = (a: { metadata: { namespace?: string; name?: string } }, b: { metadata: { namespace?: string; name?: string } }) => {
  const ka = `${a.metadata.namespace ?? ''}/${a.metadata.name ?? ''}`;
  const kb = `${b.metadata.namespace ?? ''}/${b.metadata.name ?? ''}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

/** One entry per reservation and claim, as `status -o json|yaml` prints them: the table's facts, with whole conditions. */
export function statusJson(reservations: readonly APQNReservation[], claims: readonly APQNClaim[]): {
  reservations: Array<Record<string, unknown>>;
  claims: Array<Record<string, unknown>>;
} {
  const condition = (c: Condition | undefined) => (c ? { status: c.status, reason: c.reason, message: c.message } : null);
  return {
    reservations: [...reservations].sort(byNamespaceName).map((r) => ({
      namespace: r.metadata.namespace ?? '',
      name: r.metadata.name ?? '',
      node: r.status?.nodeName ?? r.spec?.nodeName ?? null,
      driver: r.spec?.driver ?? 'vfio_ap',
      apqns: r.status?.apqns ?? r.spec?.apqns ?? [],
      ready: condition(conditionOf(r.status?.conditions, 'Ready')),
      bound: condition(conditionOf(r.status?.conditions, 'Bound')),
      conflict: condition(conditionOf(r.status?.conditions, 'Conflict')),
      claimedBy: r.status?.claimedBy?.name ?? null,
      deleting: r.metadata.deletionTimestamp !== undefined,
      detail: reservationDetail(r),
    })),
    claims: [...claims].sort(byNamespaceName).map((c) => ({
      namespace: c.metadata.namespace ?? '',
      name: c.metadata.name ?? '',
      reservation: c.spec?.reservationName ?? null,
      phase: c.status?.phase ?? 'Pending',
      node: c.status?.nodeName ?? null,
      apqns: c.status?.apqns ?? [],
      bound: condition(conditionOf(c.status?.conditions, 'Bound')),
      detail: claimDetail(c),
    })),
  };
}

export function statusTable(reservations: readonly APQNReservation[], claims: readonly APQNClaim[], opts: StatusOptions): string {
  const paint = opts.paint ?? plain;
  if (reservations.length === 0 && claims.length === 0) return 'No APQN reservations or claims found.\n';
  const header = ['NAME', 'NODE', 'DRIVER', 'QUEUES', 'READY', 'BOUND', 'CONFLICT', 'DETAIL'];
  const rows: string[][] = [];
  for (const r of [...reservations].sort(byNamespaceName)) {
    const cs = r.status?.conditions;
    rows.push([
      `apqnr/${r.metadata.name ?? ''}`,
      r.status?.nodeName ?? r.spec?.nodeName ?? '-',
      r.spec?.driver ?? 'vfio_ap',
      compactApqns(r.status?.apqns ?? r.spec?.apqns),
      conditionCell(conditionOf(cs, 'Ready'), paint),
      conditionCell(conditionOf(cs, 'Bound'), paint),
      conditionCell(conditionOf(cs, 'Conflict'), paint),
      reservationDetail(r),
    ]);
  }
  for (const c of [...claims].sort(byNamespaceName)) {
    const phase = c.status?.phase ?? 'Pending';
    rows.push([
      `apqnc/${c.metadata.name ?? ''}`,
      c.status?.nodeName ?? '-',
      '-',
      compactApqns(c.status?.apqns),
      paint(phase, phase === 'Bound' ? 'green' : phase === 'Lost' ? 'red' : 'yellow'),
      conditionCell(conditionOf(c.status?.conditions, 'Bound'), paint),
      '-',
      claimDetail(c),
    ]);
  }
  if (opts.allNamespaces) {
    const namespaces = [...[...reservations].sort(byNamespaceName), ...[...claims].sort(byNamespaceName)].map((o) => o.metadata.namespace ?? '');
    return table(['NAMESPACE', ...header], rows.map((r, i) => [namespaces[i]!, ...r]));
  }
  return table(header, rows);
}
