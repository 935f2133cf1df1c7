// Condition helpers in controller-runtime's style (meta.SetStatusCondition & co.), plus the
// "did the status change?" test that decides whether a status write is needed at all.
// Lists are never mutated: every helper returns a new array.

import type { Condition, ConditionStatus } from '../api/types.js';

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
}

/** metav1.Time text: RFC 3339 in UTC with whole seconds (what the API server stores and returns). */
export function rfc3339(now: Date | number): string {
  return new Date(typeof now === 'number' ? now : now.getTime()).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Sets a condition: replaces the one of the same type in place (or appends it). The
 * lastTransitionTime moves to `now` only when the status changed; a new reason, message or
 * generation alone keeps the old time.
 */
export function setCondition(list: readonly Condition[] | undefined, input: ConditionInput, now: Date | number): Condition[] {
  const conditions = [...(list ?? [])];
  const at = conditions.findIndex((c) => c.type === input.type);
  const previous = at >= 0 ? conditions[at] : undefined;
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message: input.message,
    ...(input.observedGeneration !== undefined ? { observedGeneration: input.observedGeneration } : {}),
    lastTransitionTime: previous && previous.status === input.status ? previous.lastTransitionTime : rfc3339(now),
  };
  if (at >= 0) conditions[at] = next;
  else conditions.push(next);
  return conditions;
}

export function removeCondition(list: readonly Condition[] | undefined, type: string): Condition[] {
  return (list ?? []).filter((c) => c.type !== type);
}

export function getCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

export function isTrue(list: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(list, type)?.status === 'True';
}

export function isFalse(list: readonly Condition[] | undefined, type: string): boolean {
  return getCondition(list, type)?.status === 'False';
}

/** Same conditions, every field equal; only the order may differ. */
export function conditionsEqual(a: readonly Condition[] | undefined, b: readonly Condition[] | undefined): boolean {
  return deepEqual(sortByType(a ?? []), sortByType(b ?? []));
}

/**
 * Whether writing `next` over `current` would change anything a reader cares about: a deep
 * comparison with JSON semantics (an `undefined` field equals a missing one) in which
 * every `conditions` list is compared without regard to order or lastTransitionTime.
 * Use it to skip status writes that would only churn timestamps.
 */
export function statusChanged(current: unknown, next: unknown): boolean {
  return !deepEqual(normalize(current), normalize(next));
}

function sortByType(list: readonly Condition[]): Condition[] {
  return [...list].sort((x, y) => (x.type < y.type ? -1 : x.type > y.type ? 1 : 0));
}

function normalize(value: unknown, key?: string): unknown {
  if (Array.isArray(value)) {
    const items = value.map((v) => normalize(v));
    if (key === 'conditions' && items.every(isConditionLike)) {
      return sortByType(items.map(({ lastTransitionTime: _ignored, ...rest }) => rest as Condition));
    }
    return items;
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = normalize(v, k);
    return out;
  }
  return value;
}

function isConditionLike(v: unknown): v is Condition {
  return v !== null && typeof v === 'object' && typeof (v as { type?: unknown }).type === 'string';
}

/** Structural equality of JSON-like values (undefined fields count as missing). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => deepEqual(x, b[i]));
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
