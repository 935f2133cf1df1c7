// Planning time for one large node: 64 adapters x 85 domains (5,440 host queues) with 50
// vfio_ap reservations. No assertions; prints one line per scenario.
// Run: node --import=tsx bench/mask-plan.ts
import type { Apqn } from '../src/apbus/ids.js';
import { type HostQueue, type MaskPlanInput, MaskProblem, minCutCover, planMaskClears } from '../src/controller/mask-plan.js';

function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ADAPTERS = 64;
const DOMAINS = 85;
const RESERVATIONS = 50;

/** 50 disjoint products of 1-2 adapters x 1-3 domains, adapters drawn from the first `adapterPool`. */
function node(seed: number, adapterPool: number): MaskPlanInput {
  const random = seededRandom(seed);
  const pick = (n: number): number => Math.floor(random() * n);
  const taken = new Set<number>();
  const reserved: Apqn[] = [];
  let made = 0;
  while (made < RESERVATIONS) {
    const adapters = new Set(Array.from({ length: 1 + pick(2) }, () => pick(adapterPool)));
    const domains = new Set(Array.from({ length: 1 + pick(3) }, () => pick(DOMAINS)));
    const pairs = [...adapters].flatMap((adapter) => [...domains].map((domain) => ({ adapter, domain })));
    if (pairs.some((q) => taken.has(q.adapter * 256 + q.domain))) continue;
    for (const q of pairs) taken.add(q.adapter * 256 + q.domain);
    reserved.push(...pairs);
    made++;
  }
  const hostQueues: HostQueue[] = [];
  for (let adapter = 0; adapter < ADAPTERS; adapter++) {
    for (let domain = 0; domain < DOMAINS; domain++) hostQueues.push({ apqn: { adapter, domain } });
  }
  const ids = (n: number): Set<number> => new Set(Array.from({ length: n }, (_, i) => i));
  return { apmask: ids(ADAPTERS), aqmask: ids(DOMAINS), reserved, hostQueues };
}

function time<T>(what: () => T, runs = 5): { result: T; ms: number } {
  let result = what();
  const start = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) result = what();
  return { result, ms: Number(process.hrtime.bigint() - start) / 1e6 / runs };
}

for (const [label, pool] of [
  ['reservations spread over all 64 adapters', ADAPTERS],
  ['reservations on 12 adapters', 12],
  ['reservations on 8 adapters', 8],
] as const) {
  const input = node(42, pool);
  const problem = new MaskProblem(input);
  const cut = time(() => minCutCover(new MaskProblem(input)));
  const auto = time(() => planMaskClears(input));
  const heuristic = time(() => planMaskClears(input, { exactSideLimit: 0 }));
  console.log(
    `${label}: ${problem.adapters.length} adapters x ${problem.domains.length} domains to free\n` +
      `  min cut only          ${cut.ms.toFixed(1)} ms, displaces ${problem.trueCost(cut.result).weight}\n` +
      `  planMaskClears        ${auto.ms.toFixed(1)} ms, displaces ${auto.result.displacedWeight} (${auto.result.method}, ${auto.result.clearAdapters.length} adapter + ${auto.result.clearDomains.length} domain bits)\n` +
      `  min cut + local search ${heuristic.ms.toFixed(1)} ms, displaces ${heuristic.result.displacedWeight} (${heuristic.result.method})`,
  );
}
