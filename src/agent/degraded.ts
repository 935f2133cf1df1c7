// Degraded: a card the spec relies on (an adapter of a spec mdev, or of a queue moved by
// driver_override) is removed, checkstopped, deconfigured or offline, or a queue of a spec
// mdev is gone. Nothing for the agent to repair: it reports, and the condition clears when the
// card is back (the next pass re-applies whatever the card's return needs).
import { formatAdapterId, formatApqn } from '../apbus/ids.js';
import type { ConditionInput } from '../controller/conditions.js';
import type { BusFacts, CardTrouble } from './bus-facts.js';
import { TROUBLE_TEXT } from './plan.js';
import type { WantedState } from './spec.js';

const ORDER: ReadonlyArray<CardTrouble | 'QueueMissing'> = ['CardRemoved', 'CardCheckstopped', 'CardDeconfigured', 'CardOffline', 'QueueMissing'];

export function degradedCondition(wanted: WantedState, facts: BusFacts, generation?: number): ConditionInput {
  const gen = generation !== undefined ? { observedGeneration: generation } : {};
  // adapter → reservations using it
  const users = new Map<number, Set<string>>();
  const use = (a: number, r: string | undefined) => {
    const set = users.get(a) ?? new Set<string>();
    if (r) set.add(r);
    users.set(a, set);
  };
  for (const m of wanted.mdevs) for (const a of m.matrix.adapters) use(a, m.reservation);
  for (const o of wanted.overrides) if (o.driver === 'vfio_ap') use(o.apqn.adapter, wanted.intents.get(o.index)?.reservation);

  const found: Array<{ reason: CardTrouble | 'QueueMissing'; text: string }> = [];
  for (const [a, rs] of [...users].sort((x, y) => x[0] - y[0])) {
    const trouble = facts.cardTrouble(a);
    const forWhom = rs.size ? ` (used by ${[...rs].sort().join(', ')})` : '';
    if (trouble) {
      found.push({ reason: trouble, text: `card ${formatAdapterId(a)} ${TROUBLE_TEXT[trouble]}${forWhom}` });
      continue;
    }
    const missing: string[] = [];
    for (const m of wanted.mdevs) {
      if (!m.matrix.adapters.includes(a)) continue;
      for (const d of m.matrix.domains) if (!facts.queue(a, d)) missing.push(formatApqn({ adapter: a, domain: d }));
    }
    for (const o of wanted.overrides) {
      if (o.apqn.adapter === a && o.driver === 'vfio_ap' && !facts.queue(a, o.apqn.domain)) missing.push(formatApqn(o.apqn));
    }
    if (missing.length) found.push({ reason: 'QueueMissing', text: `${[...new Set(missing)].join(', ')} missing on card ${formatAdapterId(a)}${forWhom}` });
  }
  if (found.length === 0) {
    return { type: 'Degraded', status: 'False', reason: 'CardsServing', message: 'Every card the spec uses is present, configured and online.', ...gen };
  }
  const reason = ORDER.find((r) => found.some((f) => f.reason === r))!;
  return { type: 'Degraded', status: 'True', reason, message: `${found.map((f) => f.text).join('; ')}.`, ...gen };
}
