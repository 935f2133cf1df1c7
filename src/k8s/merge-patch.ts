// JSON values compared the way the API server stores them, and the RFC 7386 merge patch that
// turns one into another. A merge patch replaces arrays whole and deletes a key only when the
// patch sets it to null, so a field the new value drops must be sent as null.

type Json = unknown;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Object properties that are undefined or null are absent: the server does not store them. */
function absent(value: unknown): boolean {
  return value === undefined || value === null;
}

/** Structural equality; an object property set to undefined or null counts as absent. */
export function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const key of keys) {
      if (absent(a[key]) && absent(b[key])) continue;
      if (!deepEqual(a[key], b[key])) return false;
    }
    return true;
  }
  return false;
}

/**
 * The merge patch that makes `current` equal to `desired`, or undefined when they are already
 * equal. Keys present in `current` but absent (undefined or null) in `desired` become null.
 */
export function mergePatch(current: Json, desired: Json): Json | undefined {
  if (isPlainObject(current) && isPlainObject(desired)) {
    const patch: Record<string, unknown> = {};
    for (const key of Object.keys(current)) {
      if (!absent(current[key]) && absent(desired[key])) patch[key] = null;
    }
    for (const key of Object.keys(desired)) {
      if (absent(desired[key])) continue;
      const sub = mergePatch(current[key], desired[key]);
      if (sub !== undefined) patch[key] = sub;
    }
    return Object.keys(patch).length > 0 ? patch : undefined;
  }
  if (deepEqual(current, desired)) return undefined;
  return desired === undefined ? null : desired;
}
