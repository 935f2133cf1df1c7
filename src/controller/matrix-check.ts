// A vfio_ap guest always sees every adapter × domain pair of its matrix, so the APQNs of a
// vfio_ap reservation must be a full cross product. When they are not, the verdict names
// both ways out: the pairs to add (the rest of the product), or the fewest pairs to remove
// to leave the largest full sub-product.

import { type Apqn, ApbusInputError, apqnIndex, compareApqn, formatAdapterId, formatApqn, formatDomainId, parseApqn } from '../apbus/ids.js';
import { idRanges, joinList } from './phrases.js';

export type MatrixCheck =
  | { ok: true; adapters: number[]; domains: number[] }
  | {
      ok: false;
      reason: 'InvalidAPQN' | 'NotAMatrix';
      message: string;
      /** Pairs of the full product that are not listed (canonical, APQN order). */
      missing: string[];
      /** The fewest listed pairs to drop to leave a full product; empty when not computed. */
      removeToFit: string[];
    };

/** Largest full sub-products are searched by enumerating the smaller side up to this many ids. */
const SUB_PRODUCT_SEARCH_LIMIT = 16;
/** Up to this many APQNs the message lists them; beyond it, it describes them. */
const LIST_GIVEN_MAX = 6;

export function checkMatrix(apqns: readonly string[]): MatrixCheck {
  const parsed: Apqn[] = [];
  for (const text of apqns) {
    try {
      parsed.push(parseApqn(text));
    } catch (err) {
      if (!(err instanceof ApbusInputError)) throw err;
      return { ok: false, reason: 'InvalidAPQN', message: err.message, missing: [], removeToFit: [] };
    }
  }
  // Distinct pairs in the order first listed (spelling duplicates are validate.ts's business).
  const seen = new Set<number>();
  const given = parsed.filter((q) => {
    const i = apqnIndex(q.adapter, q.domain);
    return seen.has(i) ? false : (seen.add(i), true);
  });
  if (given.length === 0) {
    return { ok: false, reason: 'NotAMatrix', message: 'no APQNs given: a matrix needs at least one adapter.domain pair', missing: [], removeToFit: [] };
  }
  const adapters = [...new Set(given.map((q) => q.adapter))].sort((a, b) => a - b);
  const domains = [...new Set(given.map((q) => q.domain))].sort((a, b) => a - b);
  const missing: Apqn[] = [];
  for (const adapter of adapters) {
    for (const domain of domains) if (!seen.has(apqnIndex(adapter, domain))) missing.push({ adapter, domain });
  }
  if (missing.length === 0) return { ok: true, adapters, domains };

  const keep = largestSubProduct(given, adapters, domains);
  const removeToFit = keep ? given.filter((q) => !keep.has(apqnIndex(q.adapter, q.domain))).sort(compareApqn) : [];
  const describeGiven =
    given.length <= LIST_GIVEN_MAX
      ? joinList(given.map(formatApqn))
      : `The ${given.length} APQNs on adapters ${idRanges(adapters, formatAdapterId)} and domains ${idRanges(domains, formatDomainId)}`;
  const add = `add ${joinList(missing.map(formatApqn))}`;
  const remove = removeToFit.length > 0 ? `, or remove ${joinList(removeToFit.map(formatApqn))}` : '';
  return {
    ok: false,
    reason: 'NotAMatrix',
    message: `${describeGiven} do not form a full matrix: ${add}${remove}`,
    missing: missing.map(formatApqn),
    removeToFit: removeToFit.map(formatApqn),
  };
}

/**
 * The largest S × T contained in the given pairs (a maximum edge biclique), by enumerating
 * subsets of the smaller side: for adapters S the best T is every domain all of S share.
 * Ties keep the pairs listed first. Returns undefined when both sides are too large.
 */
function largestSubProduct(given: readonly Apqn[], adapters: number[], domains: number[]): Set<number> | undefined {
  const byAdapter = adapters.length <= domains.length;
  const side = byAdapter ? adapters : domains;
  if (side.length > SUB_PRODUCT_SEARCH_LIMIT) return undefined;
  const other = (q: Apqn): number => (byAdapter ? q.domain : q.adapter);
  const own = (q: Apqn): number => (byAdapter ? q.adapter : q.domain);
  const partners = side.map((id) => new Set(given.filter((q) => own(q) === id).map(other)));
  let best: { size: number; kept: Set<number>; rank: number[] } | undefined;
  for (let subset = 1; subset < 1 << side.length; subset++) {
    const chosen = side.filter((_, bit) => subset & (1 << bit));
    let shared = [...partners[side.indexOf(chosen[0]!)]!];
    for (const id of chosen.slice(1)) shared = shared.filter((x) => partners[side.indexOf(id)]!.has(x));
    const size = chosen.length * shared.length;
    if (size === 0 || (best && size < best.size)) continue;
    const sharedSet = new Set(shared);
    const chosenSet = new Set(chosen);
    const kept = new Set(
      given.filter((q) => chosenSet.has(own(q)) && sharedSet.has(other(q))).map((q) => apqnIndex(q.adapter, q.domain)),
    );
    // rank: positions in the input of the kept pairs; earlier positions kept wins a tie
    const rank = given.flatMap((q, pos) => (kept.has(apqnIndex(q.adapter, q.domain)) ? [pos] : []));
    if (!best || size > best.size || keepsEarlier(rank, best.rank)) best = { size, kept, rank };
  }
  return best?.kept;
}

function keepsEarlier(a: number[], b: number[]): boolean {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i]! < b[i]!;
  return false;
}
