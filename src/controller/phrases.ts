// Small wording helpers for condition messages: sentences a cluster admin reads.

/** 'a', 'a and b', 'a, b and c'; beyond `max` items: 'a, b, c and 9 more'. */
export function joinList(items: readonly string[], max = 8): string {
  if (items.length === 0) return '';
  if (items.length > max) return `${items.slice(0, max).join(', ')} and ${items.length - max} more`;
  if (items.length === 1) return items[0]!;
  return `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** Ascending ids as compact ranges: [0,1,2,3,7] -> '0000-0003, 0007' with the given formatter. */
export function idRanges(ids: readonly number[], format: (n: number) => string): string {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j === i ? format(sorted[i]!) : `${format(sorted[i]!)}-${format(sorted[j]!)}`);
    i = j + 1;
  }
  return parts.join(', ');
}

/** '1 queue' / '3 queues'. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
