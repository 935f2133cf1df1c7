// `kubectl apqn matrix NODE`: a node's adapter × domain grid from its APNodeState — one row per
// adapter, one column per domain, one letter per queue saying who has it. Pure: the object in,
// a grid (for -o json) and its text out.
//
// Reservations come from the node spec's mdevs (what the controller asked for); guests and
// drivers from the status (what the agent saw). A reserved queue still on the host driver shows
// as a host queue: the grid says where a queue IS, the legend says what is still pending.
import type { APNodeState, CardStatus, MdevStatus, QueueStatus } from '../api/types.js';
import { apqnIndex, formatAdapterId, formatApqn, formatDomainId, parseAdapterId, parseApqn, parseDomainId } from '../apbus/ids.js';
import { Mask } from '../apbus/mask.js';
import { idRanges } from '../controller/phrases.js';
import { type Colour, type Paint, plain } from './text.js';

export type CellState =
  | 'host' // bound to the host driver (cex4queue), nothing in flight
  | 'hostBusy' // host driver, requests in flight
  | 'vfioFree' // vfio_ap, in no mdev
  | 'reserved' // vfio_ap, in a reservation's mdev
  | 'guest' // vfio_ap, in a reservation's mdev a guest has open
  | 'foreign' // vfio_ap, in an mdev this operator does not own
  | 'unbound' // a queue device with no driver
  | 'absent'; // no queue device

export const SYMBOL: Record<Exclude<CellState, 'reserved' | 'guest'>, string> = {
  host: 'H',
  hostBusy: '*',
  vfioFree: '.',
  foreign: 'x',
  unbound: '?',
  absent: '-',
};

const SYMBOL_TEXT: Array<[string, string]> = [
  [SYMBOL.host, 'host driver (cex4queue)'],
  [SYMBOL.hostBusy, 'host requests in flight'],
  [SYMBOL.vfioFree, 'vfio_ap, free'],
  [SYMBOL.unbound, 'no driver'],
  [SYMBOL.absent, 'no queue'],
  ['a-z', 'a reservation below (upper case: a guest uses it)'],
  [SYMBOL.foreign, 'an mdev not made by the operator'],
];
/** The legend's symbol lines: the bus states, then who holds vfio_ap queues. */
const LEGEND_LINES = [SYMBOL_TEXT.slice(0, 5), SYMBOL_TEXT.slice(5)];

/** Reservation letters: lower case, leaving out the ones that look like the symbols above. */
const LETTERS = 'abcdefgijkmnpqrstuvwyz0123456789';

export interface GridCell {
  apqn: string;
  state: CellState;
  letter: string;
  driver?: string;
  requestsInFlight?: number;
  online?: boolean;
  reservation?: string;
  mdev?: string;
}

export interface GridRow {
  adapter: string;
  /** e.g. CEX8C; '' when the node reports no such card (a reserved adapter that is gone). */
  type: string;
  /** Why the card cannot serve ('offline', 'deconfigured', 'checkstopped', 'removed'), or ''. */
  trouble: string;
  cells: GridCell[];
}

export interface LegendEntry {
  letter: string;
  reservation: string;
  mdev: string;
  adapters: string[];
  domains: string[];
  /** A guest has the mdev open. */
  inUse: boolean;
  queues: { total: number; onVfio: number; onHost: number; missing: number };
}

export interface Grid {
  node: string;
  kernel: string;
  apmask: string;
  aqmask: string;
  domains: string[];
  rows: GridRow[];
  legend: LegendEntry[];
  /** Mdevs the operator does not own, by UUID, with their APQNs. */
  foreignMdevs: Array<{ uuid: string; apqns: string[] }>;
}

interface Product {
  adapters: number[];
  domains: number[];
}

function tryParse<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch {
    return undefined;
  }
}

/** adapters × domains of an mdev's `matrix` lines ('aa.dddd', 'aa.', '.dddd'). */
function productOfLines(lines: readonly string[]): Product {
  const adapters = new Set<number>();
  const domains = new Set<number>();
  for (const line of lines) {
    const [a, d] = line.split('.');
    if (a) {
      const id = tryParse(() => parseAdapterId(a));
      if (id !== undefined) adapters.add(id);
    }
    if (d) {
      const id = tryParse(() => parseDomainId(d));
      if (id !== undefined) domains.add(id);
    }
  }
  return { adapters: [...adapters].sort((x, y) => x - y), domains: [...domains].sort((x, y) => x - y) };
}

function cardTrouble(card: CardStatus | undefined): string {
  if (!card) return 'removed';
  if (card.chkstop) return 'checkstopped';
  if (!card.config) return 'deconfigured';
  if (!card.online) return 'offline';
  return '';
}

/** 'all', 'none', 'all except 06', 'only 05-07' over ids 0..max. */
export function describeMask(text: string | undefined, max: number, format: (n: number) => string): string {
  if (text === undefined) return 'not reported';
  const mask = tryParse(() => Mask.parseKernel(text));
  if (!mask) return text;
  const set: number[] = [];
  const unset: number[] = [];
  for (let b = 0; b <= max; b++) (mask.has(b) ? set : unset).push(b);
  if (unset.length === 0) return 'all';
  if (set.length === 0) return 'none';
  return unset.length <= set.length ? `all except ${idRanges(unset, format)}` : `only ${idRanges(set, format)}`;
}

export function buildGrid(state: APNodeState): Grid {
  const status = state.status ?? {};
  const node = state.metadata.name ?? '';
  const cards = new Map<number, CardStatus>();
  for (const c of status.cards ?? []) {
    const id = tryParse(() => parseAdapterId(c.id));
    if (id !== undefined) cards.set(id, c);
  }
  const queues = new Map<number, QueueStatus>();
  for (const q of status.queues ?? []) {
    const apqn = tryParse(() => parseApqn(q.apqn));
    if (apqn) queues.set(apqnIndex(apqn.adapter, apqn.domain), q);
  }
  const mdevStatus = new Map<string, MdevStatus>((status.mdevs ?? []).map((m) => [m.uuid, m]));

  // Reservations: the spec's mdevs, lettered in reservation order.
  const specMdevs = [...(state.spec?.mdevs ?? [])].sort((a, b) => (a.reservation < b.reservation ? -1 : a.reservation > b.reservation ? 1 : 0));
  const reservedBy = new Map<number, LegendEntry>();
  const legend: LegendEntry[] = specMdevs.map((m, i) => {
    const adapters = m.adapters.map((a) => tryParse(() => parseAdapterId(a))).filter((n): n is number => n !== undefined);
    const domains = m.domains.map((d) => tryParse(() => parseDomainId(d))).filter((n): n is number => n !== undefined);
    const entry: LegendEntry = {
      letter: LETTERS[i] ?? '+',
      reservation: m.reservation,
      mdev: m.uuid,
      adapters: adapters.map(formatAdapterId),
      domains: domains.map(formatDomainId),
      inUse: mdevStatus.get(m.uuid)?.inUse === true,
      queues: { total: 0, onVfio: 0, onHost: 0, missing: 0 },
    };
    for (const a of adapters) {
      for (const d of domains) {
        const i = apqnIndex(a, d);
        if (!reservedBy.has(i)) reservedBy.set(i, entry);
        entry.queues.total++;
        const q = queues.get(i);
        if (!q) entry.queues.missing++;
        else if (q.driver === 'vfio_ap') entry.queues.onVfio++;
        else if (q.driver === 'cex4queue') entry.queues.onHost++;
      }
    }
    return entry;
  });

  // Mdevs not named by the spec and not owned: someone else's.
  const specUuids = new Set(specMdevs.map((m) => m.uuid));
  const foreignBy = new Map<number, string>();
  const foreignMdevs: Grid['foreignMdevs'] = [];
  for (const m of status.mdevs ?? []) {
    if (m.owned || specUuids.has(m.uuid)) continue;
    const p = productOfLines(m.matrix);
    const apqns: string[] = [];
    for (const a of p.adapters) {
      for (const d of p.domains) {
        foreignBy.set(apqnIndex(a, d), m.uuid);
        apqns.push(formatApqn({ adapter: a, domain: d }));
      }
    }
    foreignMdevs.push({ uuid: m.uuid, apqns });
  }

  const adapterIds = new Set<number>(cards.keys());
  const domainIds = new Set<number>();
  for (const i of queues.keys()) {
    adapterIds.add(i >> 8);
    domainIds.add(i & 0xff);
  }
  for (const i of reservedBy.keys()) {
    adapterIds.add(i >> 8);
    domainIds.add(i & 0xff);
  }
  const domains = [...domainIds].sort((a, b) => a - b);

  const rows: GridRow[] = [...adapterIds]
    .sort((a, b) => a - b)
    .map((a) => {
      const card = cards.get(a);
      const cells = domains.map((d): GridCell => {
        const i = apqnIndex(a, d);
        const apqn = formatApqn({ adapter: a, domain: d });
        const q = queues.get(i);
        const entry = reservedBy.get(i);
        const extra = { ...(entry ? { reservation: entry.reservation, mdev: entry.mdev } : {}) };
        if (!q) return { apqn, state: 'absent', letter: SYMBOL.absent, ...extra };
        const facts = { driver: q.driver, requestsInFlight: q.requestsInFlight, online: q.online };
        if (q.driver === 'cex4queue') {
          const busy = q.requestsInFlight > 0;
          return { apqn, state: busy ? 'hostBusy' : 'host', letter: busy ? SYMBOL.hostBusy : SYMBOL.host, ...facts, ...extra };
        }
        if (q.driver === '') return { apqn, state: 'unbound', letter: SYMBOL.unbound, ...facts, ...extra };
        if (entry) {
          const guest = entry.inUse || q.vfioStatus === 'in use';
          return { apqn, state: guest ? 'guest' : 'reserved', letter: guest ? entry.letter.toUpperCase() : entry.letter, ...facts, ...extra };
        }
        const foreign = foreignBy.get(i);
        if (foreign) return { apqn, state: 'foreign', letter: SYMBOL.foreign, ...facts, mdev: foreign };
        return { apqn, state: 'vfioFree', letter: SYMBOL.vfioFree, ...facts };
      });
      return { adapter: formatAdapterId(a), type: card?.type ?? '', trouble: cardTrouble(card), cells };
    });

  const kernel = status.kernel?.profile ?? (status.kernel?.driverOverride ? '6.19' : status.kernel?.apConfig ? '6.10' : '');
  return {
    node,
    kernel,
    apmask: describeMask(status.apmask, status.maxAdapterId ?? 255, formatAdapterId),
    aqmask: describeMask(status.aqmask, status.maxDomainId ?? 255, formatDomainId),
    domains: domains.map(formatDomainId),
    rows,
    legend,
    foreignMdevs,
  };
}

/** The object `-o json` prints: the grid plus one letter string per row for scripts. */
export function gridJson(grid: Grid): unknown {
  return {
    node: grid.node,
    kernel: grid.kernel,
    apmask: grid.apmask,
    aqmask: grid.aqmask,
    domains: grid.domains,
    symbols: Object.fromEntries(SYMBOL_TEXT.map(([s, t]) => [s, t])),
    rows: grid.rows.map((r) => ({ adapter: r.adapter, type: r.type, trouble: r.trouble, letters: r.cells.map((c) => c.letter).join('') })),
    queues: grid.rows.flatMap((r) => r.cells.filter((c) => c.state !== 'absent' || c.reservation)),
    reservations: grid.legend,
    foreignMdevs: grid.foreignMdevs,
  };
}

const RESERVATION_COLOURS: Colour[] = ['cyan', 'magenta', 'green', 'yellow', 'blue', 'red'];

function paintCell(cell: GridCell, legendIndex: Map<string, number>, paint: Paint): string {
  switch (cell.state) {
    case 'host':
      return paint(cell.letter, 'blue');
    case 'hostBusy':
      return paint(cell.letter, 'yellow', 'bold');
    case 'vfioFree':
    case 'absent':
      return paint(cell.letter, 'gray');
    case 'foreign':
    case 'unbound':
      return paint(cell.letter, 'red');
    case 'reserved':
    case 'guest': {
      const colour = RESERVATION_COLOURS[(legendIndex.get(cell.reservation ?? '') ?? 0) % RESERVATION_COLOURS.length]!;
      return cell.state === 'guest' ? paint(cell.letter, colour, 'bold', 'inverse') : paint(cell.letter, colour);
    }
  }
}

/** At most this many domain columns side by side; wider nodes are printed in blocks. */
export const DOMAINS_PER_BLOCK = 32;

export function renderGrid(grid: Grid, paint: Paint = plain): string {
  const out: string[] = [];
  const size = `${grid.rows.length} adapter${grid.rows.length === 1 ? '' : 's'} (rows) x ${grid.domains.length} domain${grid.domains.length === 1 ? '' : 's'} (columns)`;
  out.push(`node ${grid.node}${grid.kernel ? ` (kernel ${grid.kernel})` : ''}: ${size}; host masks: apmask ${grid.apmask}, aqmask ${grid.aqmask}`);
  if (grid.rows.length === 0 || grid.domains.length === 0) {
    out.push('', 'no queues reported (has the agent on this node written its status?)');
    return out.join('\n') + '\n';
  }
  const legendIndex = new Map(grid.legend.map((e, i) => [e.reservation, i]));
  const labelWidth = Math.max('ADAPTER'.length, ...grid.rows.map((r) => `${r.adapter} ${r.type}`.trimEnd().length));
  for (let start = 0; start < grid.domains.length; start += DOMAINS_PER_BLOCK) {
    const end = Math.min(start + DOMAINS_PER_BLOCK, grid.domains.length);
    const block = grid.domains.slice(start, end);
    // Two hex digits are enough for a domain (0..ff), as in `lszcrypt -d`.
    out.push('');
    out.push(`${'ADAPTER'.padEnd(labelWidth)}  ${block.map((d) => d.slice(2)).join(' ')}`);
    for (const row of grid.rows) {
      const label = `${row.adapter} ${row.type}`.trimEnd().padEnd(labelWidth);
      const cells = row.cells.slice(start, end).map((c) => ` ${paintCell(c, legendIndex, paint)}`);
      out.push(`${label}  ${cells.join(' ')}${row.trouble ? `   ${paint(row.trouble, 'red')}` : ''}`);
    }
  }
  out.push('');
  for (const line of LEGEND_LINES) out.push(line.map(([s, t]) => `${s} ${t}`).join('   '));
  for (const e of grid.legend) {
    const idx = legendIndex.get(e.reservation) ?? 0;
    const colour = RESERVATION_COLOURS[idx % RESERVATION_COLOURS.length]!;
    const where = `${e.adapters.join(',') || '-'} x ${e.domains.join(',') || '-'}`;
    const notes: string[] = [];
    if (e.inUse) notes.push('a guest uses it');
    if (e.queues.onHost > 0) notes.push(`${e.queues.onHost} of ${e.queues.total} still on the host driver`);
    if (e.queues.missing > 0) notes.push(`${e.queues.missing} of ${e.queues.total} not on the node`);
    const left = e.queues.total - e.queues.onVfio - e.queues.onHost - e.queues.missing;
    if (left > 0) notes.push(`${left} of ${e.queues.total} without a driver`);
    out.push(`${paint(e.letter, colour)} ${e.reservation}   mdev ${e.mdev}   ${where}${notes.length ? `   (${notes.join('; ')})` : ''}`);
  }
  for (const f of grid.foreignMdevs) {
    out.push(`${paint(SYMBOL.foreign, 'red')} mdev ${f.uuid} (not the operator's): ${f.apqns.length ? idList(f.apqns) : 'no queues'}`);
  }
  return out.join('\n') + '\n';
}

function idList(apqns: readonly string[]): string {
  return apqns.length > 8 ? `${apqns.slice(0, 8).join(', ')} and ${apqns.length - 8} more` : apqns.join(', ');
}
